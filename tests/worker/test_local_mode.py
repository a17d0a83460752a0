"""Local mode: SQLite and the SQLite broker, no Redis at all; `miles server` and `miles worker` as separate processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import migrated
from tests.services import MilesStack, SseMessage, tiny_config, training_epochs

pytestmark = [pytest.mark.worker, pytest.mark.slow]


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilesStack]:
    home = tmp_path_factory.mktemp("local")
    stack = MilesStack(home=home, database_url=migrated(f"sqlite:///{home / 'miles.db'}"), redis=None)
    with stack.serving():
        yield stack


def test_a_run_submitted_in_local_mode_trains_streams_and_completes(local):
    run = local.submit(tiny_config(epochs=3))
    assert run["queue"] == "cpu"

    messages = list(local.stream(run["id"]))

    assert training_epochs(messages) == [1, 2, 3]
    assert messages[0].event == "status" and messages[-1].data == {"status": "succeeded"}
    finished = local.run(run["id"])
    assert finished["status"] == "succeeded" and finished["summary"]["epochs_completed"] == 3


def test_a_stopped_worker_hands_its_run_back_and_the_next_one_resumes_it(local):
    epochs = 400  # long enough not to end before the worker stops, even on an idle machine (ms per epoch)
    run = local.submit(tiny_config(epochs=epochs))
    seen: list[SseMessage] = []
    for message in local.stream(run["id"]):
        seen.append(message)
        if message.event == "epoch" and message.data["step"] == 2:
            break

    stopping = local.workers[-1]
    assert stopping.stop() == 0  # SIGTERM: warm shutdown
    assert stopping.session_pids() == [], "a worker process outlived its supervisor"
    assert local.run(run["id"])["status"] == "queued"
    local.start_worker("--cpu")
    seen += local.stream(run["id"], headers={"Last-Event-ID": seen[-1].id})

    assert training_epochs(seen) == list(range(1, epochs + 1))
    kinds = [m.data["kind"] for m in seen if m.event == "run_event"]
    assert "run.requeued" in kinds and "run.resumed" in kinds
    finished = local.run(run["id"])
    assert (finished["status"], finished["attempts"]) == ("succeeded", 2)
