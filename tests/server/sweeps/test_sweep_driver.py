"""The sweep driver, one round at a time, on each backend: workers are played by hand (claim, epochs, finish).

What a real worker does to a run is exactly what these helpers do through the store; the
end-to-end tests with worker processes are in tests/worker/test_sweeps_team.py.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from optuna.trial import TrialState
from sqlalchemy import select

from server.db import Database
from server.models import Run, RunEvent, SweepTrial
from server.settings import Settings
from server.store import experiments, leases, runs
from server.store import metrics as metric_store
from server.store import sweeps as store
from server.sweeps import spec
from server.sweeps.driver import SweepDriver
from server.sweeps.study import Studies
from trainer.config import TrainConfig

WORKER = "host:1"
BASE = {
    "dataset": "synthetic", "dataset_params": {"dim": 8, "classes": 3, "train_size": 96, "val_size": 32, "test_size": 32},
    "epochs": 3, "device": "cpu",
}


class Recorder:
    """A dispatcher that keeps what it was asked to enqueue."""

    def __init__(self) -> None:
        self.enqueued: list[int] = []

    def enqueue(self, run_id: int, queue: str) -> None:
        self.enqueued.append(run_id)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, database_url=db_url, auth="off", heartbeat_timeout=30)


@pytest.fixture
def make_driver(database: Database, settings: Settings) -> Iterator[Callable[..., SweepDriver]]:
    """``make_driver(**settings)``: a driver with its own studies (a server process of its own) and a `Recorder`."""
    made: list[tuple[SweepDriver, Studies]] = []

    def make(**changes: Any) -> SweepDriver:
        studies = Studies(settings.database_url)
        driver = SweepDriver(settings.model_copy(update=changes), database, Recorder(), studies)
        made.append((driver, studies))
        return driver

    yield make
    for _driver, studies in made:
        studies.close()


def start_sweep(database: Database, settings: Settings, **fields: Any) -> int:
    body = {"config": BASE, "methods": ["miles"], "space": {"lr": {"low": 1e-4, "high": 1e-2, "log": True}},
            "seeds_for_best": 0} | fields
    plan = spec.plan(spec.SweepCreate.model_validate(body), settings)
    with database.transaction() as session:
        return store.create(
            session=session, name="test sweep", spec=plan.model_dump(mode="json"),
            experiment=experiments.ensure(session=session, name="sweeps"), owner_token_id=None,
        ).id


def sweep_runs(database: Database, sweep_id: int) -> list[Run]:
    with database.transaction(write=False) as session:
        return list(session.scalars(select(Run).where(Run.sweep_id == sweep_id).order_by(Run.id)))


def trial_rows(database: Database, sweep_id: int) -> list[SweepTrial]:
    with database.transaction(write=False) as session:
        return list(session.scalars(select(SweepTrial).where(SweepTrial.sweep_id == sweep_id).order_by(SweepTrial.id)))


def sweep_status(database: Database, sweep_id: int) -> str:
    with database.transaction(write=False) as session:
        return store.get(session=session, sweep_id=sweep_id).status


def claim(database: Database, run_id: int) -> None:
    with database.transaction() as session:
        assert runs.claim(session=session, run_id=run_id, worker=WORKER)


def train(database: Database, run_id: int, fused: list[float]) -> None:
    """The run's epochs, one validation fused metric each, as the worker's reporter writes them."""
    with database.transaction() as session:
        points = [metric_store.Point("metric/val/fused", epoch, value, runs.utcnow()) for epoch, value in enumerate(fused, 1)]
        metric_store.ingest(session=session, run_id=run_id, points=points)
        assert leases.renew(session=session, run_id=run_id, worker=WORKER, epoch=len(fused)).held


def finish(database: Database, run_id: int, fused: float | None = 0.8, status: str = "succeeded") -> None:
    """Claim (when queued) and end the run, with the summary a trial's run has: validation metrics, no test."""
    with database.transaction() as session:
        runs.claim(session=session, run_id=run_id, worker=WORKER)
        summary = {"best_epoch": 1, "metric/val/fused": fused, "metric/val/strong": 0.7, "metric/val/weak": 0.4}
        assert runs.finish(session=session, run_id=run_id, status=status, summary=summary if status == "succeeded" else None)


def test_the_driver_keeps_parallelism_runs_queued_and_stops_at_the_budget(database, settings, make_driver):
    sweep_id = start_sweep(database, settings, budget=3, parallelism=2)
    driver = make_driver()

    driver.tick()
    first = sweep_runs(database, sweep_id)
    assert [run.status for run in first] == ["queued", "queued"] and driver.dispatcher.enqueued == [r.id for r in first]
    driver.tick()
    assert len(sweep_runs(database, sweep_id)) == 2  # no slot is free
    finish(database, first[0].id, fused=0.6)
    driver.tick()
    assert len(sweep_runs(database, sweep_id)) == 3
    for run in sweep_runs(database, sweep_id)[1:]:
        finish(database, run.id, fused=0.7)
    driver.tick()
    driver.tick()

    assert len(sweep_runs(database, sweep_id)) == 3
    assert [(t.number, t.state, t.value) for t in trial_rows(database, sweep_id)] == [
        (0, "complete", 0.6), (1, "complete", 0.7), (2, "complete", 0.7),
    ]
    assert sweep_status(database, sweep_id) == "succeeded"


def test_a_trials_run_never_evaluates_test_and_carries_the_sampled_values(database, settings, make_driver):
    sweep_id = start_sweep(database, settings, budget=1, parallelism=1, space={
        "lr": {"low": 1e-4, "high": 1e-2, "log": True}, "params.tau": {"choices": [0.35]},
    })
    make_driver().tick()

    (run,) = sweep_runs(database, sweep_id)
    (trial,) = trial_rows(database, sweep_id)
    assert run.spec["evaluate_test"] is False
    assert run.spec["lr"] == trial.params["lr"] and 1e-4 <= run.spec["lr"] <= 1e-2
    assert run.spec["params"]["tau"] == 0.35 and run.experiment.name == "sweeps"
    assert run.name == "test sweep · miles #0"


def test_a_failed_run_is_told_failed_and_counts_against_the_budget(database, settings, make_driver):
    sweep_id = start_sweep(database, settings, budget=2, parallelism=1)
    driver = make_driver()
    driver.tick()
    finish(database, sweep_runs(database, sweep_id)[0].id, status="failed")
    driver.tick()
    finish(database, sweep_runs(database, sweep_id)[1].id, fused=0.9)
    driver.tick()
    driver.tick()

    assert [t.state for t in trial_rows(database, sweep_id)] == ["failed", "complete"]
    assert len(sweep_runs(database, sweep_id)) == 2 and sweep_status(database, sweep_id) == "succeeded"


def test_a_sweep_whose_every_trial_failed_ends_failed_saying_so(database, settings, make_driver):
    sweep_id = start_sweep(database, settings, budget=1, parallelism=1)
    driver = make_driver()
    driver.tick()
    finish(database, sweep_runs(database, sweep_id)[0].id, status="failed")
    driver.tick()
    driver.tick()
    with database.transaction(write=False) as session:
        sweep = store.get(session=session, sweep_id=sweep_id)
    assert sweep.status == "failed" and "no trial of any method completed" in sweep.error


def test_a_trial_the_study_holds_without_a_run_is_adopted_not_asked_again(database, settings, make_driver):
    """The server stopped between the study's trial and the run's transaction: the next driver queues that trial."""
    sweep_id = start_sweep(database, settings, budget=2, parallelism=1)
    with database.transaction(write=False) as session:
        sweep = store.get(session=session, sweep_id=sweep_id)
    crashed = make_driver()
    orphan = crashed.studies.of(sweep.study_key, spec.SweepPlan.model_validate(sweep.spec), "miles").ask()

    driver = make_driver()
    driver.tick()
    (run,) = sweep_runs(database, sweep_id)
    assert run.spec["lr"] == orphan.params["lr"]
    finish(database, run.id)
    for _ in range(3):
        driver.tick()
        for queued in sweep_runs(database, sweep_id):
            if queued.status == "queued":
                finish(database, queued.id)

    assert [t.number for t in trial_rows(database, sweep_id)] == [0, 1]
    study = driver.studies.of(sweep.study_key, spec.SweepPlan.model_validate(sweep.spec), "miles")
    assert [t.state for t in study.trials()] == [TrialState.COMPLETE, TrialState.COMPLETE]


def test_a_new_server_goes_on_with_the_sweep_to_exactly_its_budget(database, settings, make_driver):
    sweep_id = start_sweep(database, settings, budget=4, parallelism=2)
    first = make_driver()
    first.tick()
    finish(database, sweep_runs(database, sweep_id)[0].id)
    first.stop()  # hands its lease back

    second = make_driver()
    for _ in range(6):
        second.tick()
        for run in sweep_runs(database, sweep_id):
            if run.status == "queued":
                finish(database, run.id)

    assert sorted(t.number for t in trial_rows(database, sweep_id)) == [0, 1, 2, 3]
    assert len(sweep_runs(database, sweep_id)) == 4 and sweep_status(database, sweep_id) == "succeeded"


def test_a_second_server_leaves_a_sweep_alone_while_another_drives_it(database, settings, make_driver):
    sweep_id = start_sweep(database, settings, budget=3, parallelism=1)
    first, second = make_driver(), make_driver()
    first.tick()
    finish(database, sweep_runs(database, sweep_id)[0].id)

    second.tick()
    assert len(sweep_runs(database, sweep_id)) == 1
    first.stop()
    second.tick()
    assert len(sweep_runs(database, sweep_id)) == 2


def test_the_median_pruner_prunes_a_trial_clearly_worse_than_the_finished_one(database, settings, make_driver):
    sweep_id = start_sweep(database, settings, budget=2, parallelism=1, pruner={"kind": "median", "startup_trials": 1})
    driver = make_driver()
    driver.tick()
    good = sweep_runs(database, sweep_id)[0].id
    claim(database, good)
    train(database, good, [0.85, 0.9, 0.95])
    driver.tick()  # reported, not pruned: nothing finished to compare with
    finish(database, good, fused=0.95)
    driver.tick()
    bad = sweep_runs(database, sweep_id)[1].id
    claim(database, bad)
    train(database, bad, [0.2])

    driver.tick()

    with database.transaction(write=False) as session:
        run = runs.get(session=session, run_id=bad)
        (event,) = session.scalars(select(RunEvent).where(RunEvent.run_id == bad, RunEvent.kind == "run.pruned"))
    assert run.status == "pruned" and run.finished_at is not None
    assert event.step == 1 and event.data["epoch"] == 1 and event.data["median"] == 0.85
    assert event.message == ("pruned after epoch 1 by the median pruner: validation fused head 0.2000, below the "
                             "median 0.8500 of 1 finished trials at that epoch")
    assert [(t.state, t.value) for t in trial_rows(database, sweep_id)] == [("complete", 0.95), ("pruned", 0.2)]
    with database.transaction() as session:  # its worker, still training, finds the run no longer its own
        assert not leases.renew(session=session, run_id=bad, worker=WORKER, epoch=2).held


def test_a_grid_sweep_enumerates_exactly_its_grid(database, settings, make_driver):
    sweep_id = start_sweep(database, settings, sampler="grid", parallelism=3, space={
        "batch_size": {"choices": [16, 32]}, "params.tau": {"choices": [0.1, 0.2, 0.3]},
    })
    driver = make_driver()
    for _ in range(5):
        driver.tick()
        for run in sweep_runs(database, sweep_id):
            if run.status == "queued":
                finish(database, run.id)

    combos = sorted((t.params["batch_size"], t.params["params.tau"]) for t in trial_rows(database, sweep_id))
    assert combos == sorted(itertools.product([16, 32], [0.1, 0.2, 0.3]))
    assert sweep_status(database, sweep_id) == "succeeded"


def test_the_best_configuration_of_each_method_is_rerun_on_new_seeds_and_tested(database, settings, make_driver):
    sweep_id = start_sweep(database, settings, methods=["miles", "joint"], budget=2, parallelism=4, seeds_for_best=2)
    driver = make_driver()
    driver.tick()
    for run, fused in zip(sweep_runs(database, sweep_id), [0.5, 0.6, 0.8, 0.7], strict=True):
        finish(database, run.id, fused=fused)
    driver.tick()
    assert sweep_status(database, sweep_id) == "confirming"

    driver.tick()
    reruns = [(t, r) for t in trial_rows(database, sweep_id) if t.role == "best" for r in sweep_runs(database, sweep_id) if r.id == t.run_id]
    trials = {(t.method, t.number): t for t in trial_rows(database, sweep_id) if t.role == "trial"}
    assert sorted((t.method, t.number, t.seed) for t, _ in reruns) == [
        ("joint", 1, 1), ("joint", 1, 2), ("miles", 1, 1), ("miles", 1, 2),
    ]
    for trial, run in reruns:
        assert run.spec["evaluate_test"] is True and run.seed == trial.seed
        assert run.spec["lr"] == trials[(trial.method, trial.number)].params["lr"]
    with database.transaction(write=False) as session:
        best = store.get(session=session, sweep_id=sweep_id).best
    assert {m: (b["number"], b["value"]) for m, b in best.items()} == {"miles": (1, 0.8), "joint": (1, 0.7)}
    for _, run in reruns:
        finish(database, run.id)
    driver.tick()
    assert sweep_status(database, sweep_id) == "succeeded"


def test_cancelling_a_sweep_cancels_its_queued_runs_and_asks_for_no_more(database, settings, make_driver):
    sweep_id = start_sweep(database, settings, budget=5, parallelism=2)
    driver = make_driver()
    driver.tick()
    running, queued = sweep_runs(database, sweep_id)
    claim(database, running.id)

    with database.transaction() as session:
        store.cancel(session=session, sweep=store.get(session=session, sweep_id=sweep_id, lock=True))
    driver.tick()

    assert [(r.status, r.cancel_requested) for r in sweep_runs(database, sweep_id)] == [("running", True), ("cancelled", False)]
    finish(database, running.id, status="cancelled")
    driver.tick()
    assert [t.state for t in trial_rows(database, sweep_id)] == ["failed", "failed"]
    with database.transaction(write=False) as session:
        sweep = store.get(session=session, sweep_id=sweep_id)
        assert sweep.status == "cancelled" and sweep.settled and store.to_drive(session=session) == []


def test_a_trial_whose_run_was_deleted_is_told_failed_and_not_run_again(database, settings, make_driver):
    sweep_id = start_sweep(database, settings, budget=2, parallelism=1)
    driver = make_driver()
    driver.tick()
    with database.transaction() as session:
        runs.delete(session=session, run=runs.get(session=session, run_id=sweep_runs(database, sweep_id)[0].id))
    driver.tick()

    rows = trial_rows(database, sweep_id)
    assert [(t.number, t.state, t.error) for t in rows] == [(0, "failed", "its run was deleted"), (1, "running", None)]


def test_a_trial_waits_for_room_when_its_owner_is_at_the_active_runs_limit(database, settings, make_driver):
    sweep_id = start_sweep(database, settings, budget=1, parallelism=1)
    with database.transaction() as session:  # the owner (anonymous here) already has its one run
        other = runs.create(session=session, config=TrainConfig.model_validate(BASE), execute=True).id
    driver = make_driver(max_active_runs=1)

    driver.tick()
    assert sweep_runs(database, sweep_id) == []
    finish(database, other)
    driver.tick()
    assert len(sweep_runs(database, sweep_id)) == 1 and [t.number for t in trial_rows(database, sweep_id)] == [0]
