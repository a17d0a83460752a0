"""Sweeps end to end in team mode: PostgreSQL, the suite's own Redis, `miles server` driving the sweeps, and
`miles worker --cpu --concurrency 2` (two worker processes) running the trials.

One server and one pair of worker processes serve the module; each test starts its own sweep.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import optuna
import pytest

from tests.conftest import fresh_postgres, migrated
from tests.services import MilesStack, running_redis, tiny_config, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]
# A server whose driver vanished lets another take its sweeps over after this long (and a worker's runs).
HEARTBEAT_TIMEOUT = 8
BASE = {key: value for key, value in tiny_config().items() if key != "method"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilesStack]:
    home = tmp_path_factory.mktemp("sweeps")
    with fresh_postgres() as url, running_redis(home) as redis:
        stack = MilesStack(home=home, database_url=migrated(url), redis=redis,
                           settings={"heartbeat_timeout": HEARTBEAT_TIMEOUT})
        try:
            stack.start("--cpu", "--concurrency", "2")
            stack.workers[0].processes = 2
            yield stack
        except BaseException:
            for process in stack.processes():
                print(f"\n===== {process.name} log =====\n{process.log()[-6000:]}")
            raise
        finally:
            stack.close()


def start_sweep(stack: MilesStack, **fields: Any) -> dict[str, Any]:
    body = {"config": BASE, "methods": ["miles"], "space": {"lr": {"low": 1e-3, "high": 3e-2, "log": True}},
            "parallelism": 2, "seeds_for_best": 0} | fields
    with stack.api as api:
        response = api.post("/sweeps", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def sweep(stack: MilesStack, sweep_id: int) -> dict[str, Any]:
    with stack.api as api:
        return api.get(f"/sweeps/{sweep_id}").raise_for_status().json()


def trials(stack: MilesStack, sweep_id: int) -> list[dict[str, Any]]:
    with stack.api as api:
        return api.get(f"/sweeps/{sweep_id}/trials").raise_for_status().json()["items"]


def sweep_runs(stack: MilesStack, sweep_id: int) -> list[dict[str, Any]]:
    with stack.api as api:
        return api.get("/runs", params={"sweep": sweep_id, "limit": 500}).raise_for_status().json()["items"]


def wait_for_sweep(stack: MilesStack, sweep_id: int, *statuses: str, timeout: float = 240) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        found = sweep(stack, sweep_id)
        return found if found["status"] in statuses else None

    return wait_until(reached, timeout, f"sweep {sweep_id} to become {' or '.join(statuses)}", every=0.5)


def most_at_once(runs: list[dict[str, Any]]) -> int:
    """The most runs that were running at the same moment, from their start and end times."""
    moments = sorted(
        (datetime.fromisoformat(run[key]), change)
        for run in runs for key, change in (("started_at", 1), ("finished_at", -1))
    )
    running = most = 0
    for _, change in sorted(moments, key=lambda m: (m[0], m[1])):  # an end before a start at the same moment
        running += change
        most = max(most, running)
    return most


def test_a_random_sweep_of_six_trials_completes_two_runs_at_a_time(stack):
    started = start_sweep(stack, budget=6, sampler="random")

    done = wait_for_sweep(stack, started["id"], "succeeded", "failed")

    assert done["status"] == "succeeded" and done["progress"]["miles"]["complete"] == 6
    runs = sweep_runs(stack, started["id"])
    assert len(runs) == 6 and all(run["status"] == "succeeded" for run in runs)
    assert most_at_once(runs) == 2
    assert not [key for run in runs for key in run["summary"] if "test" in key], "a trial saw the test split"
    assert sorted(t["number"] for t in trials(stack, started["id"])) == list(range(6))


def first_grid_seed(values: list[float], first: float) -> int:
    """A seed with which Optuna's grid sampler draws ``first`` first (asked here exactly as the driver asks)."""
    for seed in range(50):
        study = optuna.create_study(sampler=optuna.samplers.GridSampler({"lr": values}, seed=seed))
        if study.ask({"lr": optuna.distributions.CategoricalDistribution(values)}).params["lr"] == first:
            return seed
    raise AssertionError(f"no seed puts {first} first")


def test_the_median_pruner_prunes_a_trial_clearly_worse_than_the_finished_one(stack):
    """One trial learns (lr 0.05), the other cannot (lr 1e-7): it starts after the first finished, so its first
    epochs fall below that trial's at the same epochs, and the median pruner must stop it."""
    good, hopeless = 0.05, 1e-7
    # Enough epochs that the hopeless trial outlives several rounds of the driver (0.5 s apart) even on an
    # idle machine, where a tiny epoch takes a few milliseconds: the pruner judges it as it trains.
    epochs = 200
    started = start_sweep(
        stack, sampler="grid", seed=first_grid_seed([good, hopeless], good), parallelism=1,
        config=BASE | {"epochs": epochs}, space={"lr": {"choices": [good, hopeless]}},
        pruner={"kind": "median", "startup_trials": 1},
    )

    done = wait_for_sweep(stack, started["id"], "succeeded", "failed")

    first, second = sorted(trials(stack, started["id"]), key=lambda t: t["number"])
    assert (first["params"]["lr"], first["state"], first["epoch"]) == (good, "complete", epochs)
    assert (second["params"]["lr"], second["state"], second["run_status"]) == (hopeless, "pruned", "pruned")
    assert second["value"] < first["value"] and second["epoch"] < epochs
    with stack.api as api:
        (event,) = api.get(f"/runs/{second['run_id']}/events", params={"kind": "run.pruned"}).json()["items"]
    assert event["step"] == event["data"]["epoch"] < epochs
    assert event["message"].startswith(f"pruned after epoch {event['step']} by the median pruner")
    assert done["status"] == "succeeded" and done["best"]["miles"]["number"] == first["number"]


def test_a_server_restarted_mid_sweep_finishes_it_with_exactly_its_budget(stack):
    started = start_sweep(stack, budget=6, config=BASE | {"epochs": 8})
    wait_until(lambda: len(trials(stack, started["id"])) >= 2, 120, "the first trials")

    assert stack.server is not None
    stack.server.kill()  # no goodbye: its lease on the sweep has to expire
    stack.start_server()
    done = wait_for_sweep(stack, started["id"], "succeeded", "failed")

    numbers = sorted(t["number"] for t in trials(stack, started["id"]))
    assert numbers == list(range(6)), "a trial was lost or run twice"
    runs = sweep_runs(stack, started["id"])
    assert len(runs) == 6 and {run["id"] for run in runs} == {t["run_id"] for t in trials(stack, started["id"])}
    assert done["status"] == "succeeded" and done["progress"]["miles"]["complete"] == 6


def test_cancelling_a_sweep_stops_its_running_trials_and_starts_no_more(stack):
    started = start_sweep(stack, budget=20, config=BASE | {"epochs": 300})
    wait_until(lambda: sum(r["status"] == "running" for r in sweep_runs(stack, started["id"])) == 2, 120, "two trials running")

    with stack.api as api:
        assert api.post(f"/sweeps/{started['id']}/cancel").json()["status"] == "cancelled"

    wait_until(lambda: all(r["status"] == "cancelled" for r in sweep_runs(stack, started["id"])), 20, "its runs to stop")
    wait_until(lambda: all(t["state"] == "failed" for t in trials(stack, started["id"])), 20, "its trials told")
    assert len(sweep_runs(stack, started["id"])) == 2
    assert all(r["progress"]["epoch"] < 300 for r in sweep_runs(stack, started["id"]))


def test_a_grid_sweep_enumerates_exactly_its_grid(stack):
    started = start_sweep(stack, sampler="grid", space={
        "batch_size": {"choices": [16, 32]}, "params.tau": {"choices": [0.1, 0.3]},
    })

    done = wait_for_sweep(stack, started["id"], "succeeded", "failed")

    combos = sorted((t["params"]["batch_size"], t["params"]["params.tau"]) for t in trials(stack, started["id"]))
    assert combos == sorted(itertools.product([16, 32], [0.1, 0.3]))
    assert done["status"] == "succeeded" and len(sweep_runs(stack, started["id"])) == 4
