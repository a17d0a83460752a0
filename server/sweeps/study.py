"""Optuna's side of a sweep: its storage on the project's database, one study per method, samplers, pruners.

**Where the studies live.** Optuna's RDBStorage creates and owns its tables and migrates
them with an Alembic history of its own, kept, like ours, in a table named
``alembic_version``. So that neither history reads the other's revision, Optuna gets a
namespace of its own on the project's database:

- PostgreSQL: the schema ``optuna`` of the same database (created by migration
  0005), reached through the connection's ``search_path``;
- SQLite: SQLite's namespaces are files, so a file beside the database
  (``miles.db`` -> ``miles-optuna.db``).

Our Alembic environment only looks at its own schema (and file), so autogenerate never
sees Optuna's tables; Optuna never sees ours. ``optuna storage upgrade`` works on that
namespace as on any Optuna storage.

A study is named ``<sweep.study_key>-<method>``; the key is random per sweep, so a study
can never be mistaken for another sweep's, even in a database whose ids started again.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import make_url

from server.sweeps.space import Dimension, Kind
from server.sweeps.spec import HalvingPruner, MedianPruner, SweepPlan

log = logging.getLogger("miles.sweeps")
optuna.logging.set_verbosity(optuna.logging.WARNING)
SCHEMA = "optuna"
STATES = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "failed": TrialState.FAIL}


def storage_location(database_url: str) -> tuple[str, dict[str, Any]]:
    """The URL and engine options of Optuna's storage for the project's database at ``database_url``."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:"):
            return "sqlite:///:memory:", {}
        path = Path(database).expanduser()
        beside = path.with_name(f"{path.stem}-optuna{path.suffix or '.db'}")
        # Write-ahead logging, as for the database itself: the pages read importance while the driver writes.
        with sqlite3.connect(beside) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
        return url.set(database=str(beside)).render_as_string(hide_password=False), {"connect_args": {"timeout": 30}}
    options = {"connect_args": {"options": f"-c search_path={SCHEMA}"}, "pool_pre_ping": True}
    return url.render_as_string(hide_password=False), options


def distribution(dimension: Dimension, kind: Kind, *, grid: bool) -> BaseDistribution:
    """Optuna's distribution for a dimension (a grid draws from its enumerated values)."""
    if grid or not dimension.is_range:
        values = dimension.values(kind)
        assert values is not None, "the plan checked that a grid's dimensions are enumerable"
        return CategoricalDistribution(values)
    assert dimension.low is not None and dimension.high is not None
    if kind == "int":
        step = int(dimension.step or 1)
        return IntDistribution(int(dimension.low), int(dimension.high), log=dimension.log, step=step)
    return FloatDistribution(dimension.low, dimension.high, log=dimension.log, step=dimension.step)


def pruner_of(plan: SweepPlan) -> optuna.pruners.BasePruner:
    """The plan's pruner. Steps are epochs, from 1: a median warm-up of k epochs lets epochs 1..k pass."""
    if isinstance(plan.pruner, MedianPruner):
        return optuna.pruners.MedianPruner(
            n_startup_trials=plan.pruner.startup_trials, n_warmup_steps=plan.pruner.warmup_epochs + 1,
        )
    if isinstance(plan.pruner, HalvingPruner):
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=plan.pruner.min_epochs, reduction_factor=plan.pruner.reduction_factor,
        )
    return optuna.pruners.NopPruner()


class GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler, told by ask-and-tell: its ``after_trial`` stops an ``optimize()`` loop once the grid
    is covered, which raises outside one. The budget (the grid's size) is the driver's stop."""

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Any) -> None:
        return None


class MethodStudy:
    """One method's study of a sweep: asks, tells, reports and prunes its trials."""

    def __init__(self, study: optuna.Study, plan: SweepPlan, method: str) -> None:
        self.study = study
        self.plan = plan
        self.method = method
        grid = plan.sampler == "grid"
        self.distributions = {
            path: distribution(dimension, plan.kinds[method][path], grid=grid)
            for path, dimension in plan.spaces[method].items()
        }
        if grid:
            values = {path: list(d.choices) for path, d in self.distributions.items()}  # type: ignore[attr-defined]
            study.sampler = GridSampler(values, seed=plan.seed)
        else:
            # Seeded by the sweep's seed and how many trials the study held when this process opened it: a
            # server restarted mid-sweep draws new configurations, not the sequence again from its start.
            seed = int(np.random.SeedSequence([plan.seed, self.count()]).generate_state(1)[0])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.sampler = (
                    optuna.samplers.RandomSampler(seed=seed) if plan.sampler == "random"
                    else optuna.samplers.TPESampler(seed=seed, constant_liar=True)
                )

    @property
    def budget(self) -> int:
        return self.plan.budgets[self.method]

    def trials(self, *states: TrialState) -> list[FrozenTrial]:
        return self.study.get_trials(deepcopy=False, states=states or None)

    def count(self) -> int:
        return len(self.trials())

    def ask(self) -> optuna.Trial:
        """A new trial (``number``, ``params``), its parameters drawn by the plan's sampler."""
        return self.study.ask(self.distributions)

    def tell(self, number: int, state: str, value: float | None) -> float | None:
        """The trial ended ``state`` (``complete`` with ``value``, ``pruned`` or ``failed``); a repeat does nothing.
        Returns the value the study holds (a pruned trial's is its last reported epoch's)."""
        told = self.study.tell(number, value if state == "complete" else None, state=STATES[state], skip_if_finished=True)
        return told.value

    # A running trial of another process is reached through its storage id (FrozenTrial._trial_id):
    # Optuna's public Trial handle only comes from ask().
    def report(self, trial: FrozenTrial, epoch: int, value: float) -> None:
        optuna.trial.Trial(self.study, trial._trial_id).report(value, epoch)

    def should_prune(self, trial: FrozenTrial) -> bool:
        return optuna.trial.Trial(self.study, trial._trial_id).should_prune()

    def best(self) -> FrozenTrial | None:
        """The completed trial of the highest objective; None before any trial completed."""
        try:
            return self.study.best_trial
        except ValueError:
            return None

    def importance(self) -> dict[str, float]:
        """Optuna's importance of each searched parameter (PED-ANOVA), from the completed trials."""
        complete = self.trials(TrialState.COMPLETE)
        varied = [p for p in self.distributions if len({repr(t.params.get(p)) for t in complete}) > 1]
        if len(complete) < 2 or not varied:
            return {}
        try:
            return optuna.importance.get_param_importances(self.study, params=varied)
        except (ValueError, RuntimeError, ZeroDivisionError) as error:  # e.g. every value the same
            log.info("no importance for %s: %s", self.study.study_name, error)
            return {}


class Studies:
    """The studies of every sweep, in Optuna's storage for one database; a study is loaded once per process
    and kept (its finished trials are cached by Optuna), shared by the driver and the API."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._storage: optuna.storages.RDBStorage | None = None
        self._studies: dict[str, MethodStudy] = {}
        self._lock = threading.Lock()

    @property
    def storage(self) -> optuna.storages.RDBStorage:
        with self._lock:
            if self._storage is None:
                url, options = storage_location(self.database_url)
                self._storage = optuna.storages.RDBStorage(url, engine_kwargs=options)
            return self._storage

    def of(self, study_key: str, plan: SweepPlan, method: str) -> MethodStudy:
        name = f"{study_key}-{method}"
        study = self._studies.get(name)
        if study is None:
            loaded = optuna.create_study(
                study_name=name, storage=self.storage, direction="maximize", load_if_exists=True,
                pruner=pruner_of(plan),
            )
            study = self._studies.setdefault(name, MethodStudy(loaded, plan, method))
        return study

    def each(self, study_key: str, plan: SweepPlan) -> Iterator[MethodStudy]:
        for method in plan.methods:
            yield self.of(study_key, plan, method)

    def forget(self, study_key: str) -> None:
        """Drop the studies of a sweep from memory (it ended: nothing asks or tells any more)."""
        for name in [name for name in self._studies if name.startswith(f"{study_key}-")]:
            del self._studies[name]

    def close(self) -> None:
        self._studies.clear()
        if self._storage is not None:
            self._storage.engine.dispose()
            self._storage = None
