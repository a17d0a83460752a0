"""`miles sweep ...` and `client.sweep(...)`: what the command line reads, and both against a real ``miles server``."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import click
import pytest

from server.sweep_commands import parse_dimension, parse_objective
from tests.conftest import migrated
from tests.services import MILES, MilesStack, wait_until
from trainer.client import MilesAPIError, MilesClient
from trainer.config import TrainConfig

SMALL = {"dataset": "mfeat", "modalities": ["pix", "fou"], "epochs": 2, "device": "cpu"}


def test_a_range_a_log_range_a_stepped_range_and_choices_are_read_from_the_command_line():
    assert parse_dimension("lr=1e-4..1e-2:log") == ("lr", {"low": 1e-4, "high": 1e-2, "log": True})
    assert parse_dimension("params.tau=0..0.5") == ("params.tau", {"low": 0.0, "high": 0.5})
    assert parse_dimension("params.tau=0.1..0.3:0.1") == ("params.tau", {"low": 0.1, "high": 0.3, "step": 0.1})
    assert parse_dimension("batch_size=32,64") == ("batch_size", {"choices": [32, 64]})
    assert parse_dimension("fusion=concat,sum") == ("fusion", {"choices": ["concat", "sum"]})


def test_a_dimension_that_cannot_be_read_says_what_is_expected():
    with pytest.raises(click.BadParameter, match="PATH=LOW..HIGH"):
        parse_dimension("lr")
    with pytest.raises(click.BadParameter, match="must be numbers"):
        parse_dimension("lr=a..b")


def test_an_objective_is_a_kind_or_weights():
    assert parse_objective("weak") == {"kind": "weak"}
    assert parse_objective("fused=0.5,weak=0.5") == {"kind": "weighted", "weights": {"fused": 0.5, "weak": 0.5}}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilesStack]:
    """One ``miles server`` (driving its sweeps) on a SQLite file, without a worker: trials stay queued."""
    home = tmp_path_factory.mktemp("sweep-commands")
    stack = MilesStack(home=home, database_url=migrated(f"sqlite:///{home / 'miles.db'}"), redis=None)
    stack.start_server()
    yield stack
    stack.close()


def miles(stack: MilesStack, *args: str) -> subprocess.CompletedProcess[str]:
    assert stack.server is not None
    env = stack.env() | {"MILES_URL": stack.server.url}
    return subprocess.run([MILES, "sweep", *args], capture_output=True, text=True, env=env, timeout=120)


def test_a_config_with_a_method_tunes_that_method_with_its_hyperparameters_fixed(stack):
    assert stack.server is not None
    config = TrainConfig.model_validate(SMALL | {"method": "miles", "params": {"mu": 0.25}})
    with MilesClient(stack.server.url) as client:
        sweep = client.sweep(config, space={"params.tau": {"low": 0.0, "high": 0.5}}, budget=2, seeds_for_best=0)
        assert sweep["plan"]["methods"] == ["miles"] and sweep["plan"]["params"]["miles"]["mu"] == 0.25
        trials = wait_until(lambda: client.sweep_trials(sweep["id"]), 30, "the server to queue the first trials")
        assert all(0 <= t["params"]["params.tau"] <= 0.5 for t in trials)
        with pytest.raises(MilesAPIError) as refused:
            client.sweep(SMALL, methods=["miles"], space={"lr": {"low": 0.0, "high": 0.1}})
        assert refused.value.status == 422 and refused.value.errors[0]["field"] == "space.lr.low"
        assert client.cancel_sweep(sweep["id"])["status"] == "cancelled"


def test_the_command_line_creates_lists_shows_and_cancels_a_sweep(stack):
    created = miles(stack, "create", "--dataset", "mfeat", "--epochs", "2", "--device", "cpu", "--methods", "miles,joint",
                    "--space", "lr=1e-4..1e-2:log", "--space", "params.tau=0..0.5", "--budget", "3", "--name", "by hand",
                    "--no-watch")
    assert created.returncode == 0, created.stderr
    first_line = created.stdout.splitlines()[0]
    assert first_line.startswith("sweep ") and "by hand · searching" in first_line
    sweep_id = first_line.split()[1]
    assert "miles        0/3 trials" in created.stdout and "over lr, params.tau" in created.stdout

    listed = miles(stack, "list")
    assert listed.returncode == 0 and any(line.split()[:3] == [sweep_id, "by", "hand"] for line in listed.stdout.splitlines())
    shown = miles(stack, "show", sweep_id, "--trials")
    assert shown.returncode == 0 and "random sampler, 2 at a time" in shown.stdout
    cancelled = miles(stack, "cancel", sweep_id)
    assert cancelled.returncode == 0 and cancelled.stdout.strip().startswith(f"sweep {sweep_id} cancelled")
    again = miles(stack, "cancel", sweep_id)
    assert again.returncode == 1 and "already cancelled" in again.stderr


def test_a_refused_sweep_names_its_fields_on_the_command_line(stack):
    refused = miles(stack, "create", "--dataset", "mfeat", "--space", "lr=0..2", "--no-watch")
    assert refused.returncode == 1
    assert "space.lr.low: must satisfy 0 < lr <= 1 (got 0.0)" in refused.stderr
    assert "space.lr.high: must satisfy 0 < lr <= 1 (got 2.0)" in refused.stderr


