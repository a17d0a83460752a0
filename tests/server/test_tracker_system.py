"""A Tracker's system metrics (``track(..., system=True)``, ``log_system``) against a real ``miles server``."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.conftest import migrated
from tests.services import MilesStack
from trainer.client import MilesClient


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilesClient]:
    """A client of one ``miles server`` on a SQLite file, for the module."""
    home = tmp_path_factory.mktemp("tracker")
    server = MilesStack(home=home, database_url=migrated(f"sqlite:///{home / 'miles.db'}"), redis=None)
    try:
        with MilesClient(server.start_server().url) as client:
            yield client
    finally:
        server.close()


def test_a_tracked_run_sends_no_system_metrics_unless_asked(client):
    with client.track("quiet") as run:
        run.log(1, {"loss/train": 0.5})
    assert set(client.metrics(run.id)) == {"loss/train"}


def test_a_tracked_run_with_system_on_samples_at_the_start_and_every_interval(client):
    with client.track("watched", system=True, system_interval=1) as run:
        for step in range(1, 4):
            run.log(step, {"loss/train": 1 / step})
            time.sleep(0.8)
    series = client.metrics(run.id, keys=["sys/*"])
    assert {"sys/cpu_percent", "sys/memory_mib"} <= set(series)
    seconds = series["sys/memory_mib"]["steps"]
    assert seconds[0] == 0 and len(seconds) >= 2 and seconds == sorted(set(seconds))
    assert client.run(run.id)["progress"]["epoch"] == 3, "system seconds are not epochs"


def test_log_system_logs_one_sample_now(client):
    with client.track("by hand") as run:
        values = run.log_system()
    assert values["sys/memory_mib"] > 10
    assert client.metrics(run.id, keys=["sys/memory_mib"])["sys/memory_mib"]["steps"] == [0]
