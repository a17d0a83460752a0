"""Benchmark of the server's cost of driving a sweep, against PostgreSQL; prints JSON.

For each sampler (random, TPE), a sweep of MILES over lr, tau and mu whose study already holds
1,000 finished trials (with their runs and trial rows) and 4 running, then, timed one at a time as
the trials in flight end and are replaced:

- reporting: what the driver does when a trial's run has ended: tell the study, then record the outcome;
- suggestion: what it does for the slot that frees: ask the study for a trial, then the one transaction
  that creates its run and the trial's row (enqueued on a dispatcher that keeps it);
- an idle round: one `tick` of the driver over the sweep when nothing has changed.

    python bench/sweeps.py                # --trials 1000 --samples 60
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, bench/ would come first on the path; the repository root gives `tests`.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import optuna  # noqa: E402
import psycopg  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from bench import stats  # noqa: E402
from server.db import Database  # noqa: E402
from server.dispatch import KeepQueued  # noqa: E402
from server.models import Run, SweepTrial  # noqa: E402
from server.settings import Settings  # noqa: E402
from server.store import experiments, runs  # noqa: E402
from server.store import sweeps as store  # noqa: E402
from server.sweeps import spec  # noqa: E402
from server.sweeps.driver import SweepDriver  # noqa: E402
from server.sweeps.study import Studies  # noqa: E402
from tests.conftest import fresh_postgres, migrated  # noqa: E402

SPACE = {"lr": {"low": 1e-4, "high": 1e-2, "log": True}, "params.tau": {"low": 0.0, "high": 0.5},
         "params.mu": {"low": 0.05, "high": 1.0}}
CONFIG = {"dataset": "mfeat", "epochs": 30, "device": "cpu"}
RUNNING = 4  # trials in flight at once (the sweep's parallelism)
WARMUP = 10  # rounds before the timed ones


def ms(samples: list[float]) -> dict[str, float]:
    return stats.percentiles(samples, (50, 95), scale=1000, digits=2, unit="_ms")


def finished_sweep(database: Database, settings: Settings, studies: Studies, sampler: str, trials: int) -> tuple[int, str]:
    """A searching sweep whose study holds ``trials`` finished trials, each with its succeeded run and told row."""
    plan = spec.plan(spec.SweepCreate.model_validate(
        {"config": CONFIG, "methods": ["miles"], "space": SPACE, "sampler": sampler, "budget": 10_000, "parallelism": RUNNING}
    ), settings)
    with database.transaction() as session:
        sweep = store.create(session=session, name=f"bench {sampler}", spec=plan.model_dump(mode="json"),
                             experiment=experiments.ensure(session=session, name="bench"), owner_token_id=None)
    study = studies.of(sweep.study_key, plan, "miles")
    rng = random.Random(0)
    study.study.add_trials([
        optuna.trial.create_trial(
            params=(params := {"lr": 10 ** rng.uniform(-4, -2), "params.tau": rng.uniform(0, 0.5),
                               "params.mu": rng.uniform(0.05, 1)}),
            distributions=study.distributions, value=0.9 + 0.1 * rng.random() - abs(params["params.tau"] - 0.2) / 10,
        )
        for _ in range(trials)
    ])
    with database.transaction() as session:
        run_ids = session.scalars(insert(Run).returning(Run.id), [
            {"name": f"trial {n}", "status": "succeeded", "execute": True, "method": "miles", "dataset": "mfeat",
             "attempts": 1, "epoch": 30, "cancel_requested": False, "sweep_id": sweep.id, "spec": CONFIG,
             "summary": {"metric/val/fused": 0.9}}
            for n in range(trials)
        ]).all()
        session.execute(insert(SweepTrial), [
            {"sweep_id": sweep.id, "method": "miles", "role": "trial", "number": n, "seed": 0, "params": {},
             "run_id": run_id, "state": "complete", "value": 0.9, "told": True}
            for n, run_id in enumerate(run_ids)
        ])
    return sweep.id, sweep.study_key


def bench_sampler(database: Database, settings: Settings, sampler: str, trials: int, samples: int) -> dict[str, object]:
    studies = Studies(settings.database_url)
    try:
        sweep_id, study_key = finished_sweep(database, settings, studies, sampler, trials)
        driver = SweepDriver(settings, database, KeepQueued(), studies)
        with database.transaction(write=False) as session:
            sweep = store.get(session=session, sweep_id=sweep_id)
        plan = spec.SweepPlan.model_validate(sweep.spec)
        study = studies.of(study_key, plan, "miles")
        suggest, report, idle = [], [], []

        def suggestion() -> float:
            started = time.perf_counter()
            asked = study.ask()
            assert driver._start(sweep, plan, "miles", asked.number, dict(asked.params))
            return time.perf_counter() - started

        def reporting(trial: store.OpenTrial) -> float:
            with database.transaction() as session:  # its run ends (not timed: the worker's part)
                assert trial.run_id is not None and runs.claim(session=session, run_id=trial.run_id, worker="bench")
                runs.finish(session=session, run_id=trial.run_id, status="succeeded", summary={"metric/val/fused": 0.95})
            started = time.perf_counter()
            driver._close({"miles": study}, trial, "complete", 0.95)
            return time.perf_counter() - started

        # The steady state of a sweep: RUNNING trials in flight; each round one ends and one takes its slot.
        for _ in range(RUNNING):
            suggestion()  # the first reads the study's finished trials into Optuna's cache
        for round_ in range(WARMUP + samples):  # the first rounds warm the caches (ours, Optuna's, PostgreSQL's)
            with database.transaction(write=False) as session:
                oldest = store.open_trials(session=session, sweep_id=sweep_id)[0]
            reported, suggested = reporting(oldest), suggestion()
            if round_ >= WARMUP:
                report.append(reported)
                suggest.append(suggested)
        with database.transaction() as session:  # no free slot: a round finds nothing to do
            session.execute(insert(Run), [{"name": "busy", "status": "running", "execute": True, "attempts": 1,
                                           "epoch": 0, "cancel_requested": False, "sweep_id": sweep_id}] * plan.parallelism)
        for _ in range(samples):
            started = time.perf_counter()
            driver.tick()
            idle.append(time.perf_counter() - started)
        return {"finished_trials": trials, "suggestion": ms(suggest), "reporting": ms(report), "idle_round": ms(idle)}
    finally:
        studies.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=60)
    options = parser.parse_args()
    with fresh_postgres() as url, tempfile.TemporaryDirectory() as home:
        database = Database(migrated(url))
        settings = Settings(home=Path(home), database_url=url, auth="off", max_active_runs=100_000)
        try:
            results = {sampler: bench_sampler(database, settings, sampler, options.trials, options.samples)
                       for sampler in ("random", "tpe")}
        finally:
            database.dispose()
        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
            postgres = conn.execute("SHOW server_version").fetchone()[0]
    print(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "postgresql": postgres,
                    "optuna": optuna.__version__, "load_average": os.getloadavg()[0]},
        **results,
    }, indent=2))


if __name__ == "__main__":
    main()
