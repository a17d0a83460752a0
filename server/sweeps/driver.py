"""The sweep driver: a thread of the server process that runs every active sweep to its end.

Every `TICK` seconds, for each sweep it holds (a lease on the sweep row, so that two servers
on one database never drive the same sweep; a stopping server hands its leases back, a
crashed one's expire after MILES_HEARTBEAT_TIMEOUT):

1. **Tell.** Each trial whose run ended is told to its study: ``complete`` with the
   objective from the run's summary (validation only), ``failed`` otherwise. A running
   trial's new epochs are reported to the pruner; a trial it condemns ends ``pruned``.
2. **Ask.** While slots are free (parallelism minus the sweep's queued and running runs)
   and a method has budget left, ask its study for a trial and queue the trial's run.
3. **Conclude.** Once every trial of every method is told: record each method's best trial
   and queue its reruns on new seeds (``confirming``), then end the sweep.

No trial is lost or run twice across a restart: the study creates a trial (its own
transaction), then one transaction creates the run together with the `SweepTrial` row
that links them (unique per trial). A trial the study has but no row names (the server
stopped in between, or the run was refused by MILES_MAX_ACTIVE_RUNS) is *adopted*: its
run is created with the parameters the study stored. Budgets count the study's trials,
so an adopted trial is never asked for again, and telling a trial twice does nothing.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from server import policy
from server.api.runs import submit
from server.db import Database, after_commit
from server.dispatch import BrokerUnavailable, Dispatcher
from server.live import Publisher
from server.models import FINAL_STATUSES, Metric, Sweep
from server.settings import Settings
from server.store import sweeps as store
from server.store.errors import Invalid, LimitReached
from server.sweeps.spec import HalvingPruner, MedianPruner, SweepPlan
from server.sweeps.study import MethodStudy, Studies

log = logging.getLogger("miles.sweeps")

TICK = 0.5  # seconds between two rounds over the active sweeps


def identity() -> str:
    """This process, as a lease names it: host, pid and a random part (a pid can come back)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class SweepDriver:
    """Drives the sweeps of one database from a background thread (`start`, `stop`), or a `tick` at a time."""

    def __init__(
        self, settings: Settings, database: Database, dispatcher: Dispatcher, studies: Studies,
        publisher: Publisher | None = None, *, interval: float = TICK,
    ) -> None:
        self.settings = settings
        self.database = database
        self.dispatcher = dispatcher
        self.studies = studies
        self.publisher = publisher or Publisher(None)
        self.interval = interval
        self.name = identity()
        self._renewed: dict[int, float] = {}  # sweep id -> when this driver last renewed its lease
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned: set[tuple[int, str]] = set()

    # -- the thread -------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="miles-sweep-driver", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Finish the current round, then hand the leases back so that another server can go on at once."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        try:
            with self.database.transaction() as session:
                store.release(session=session, driver=self.name)
        except SQLAlchemyError as error:
            log.warning("could not hand back the sweeps this server drove (%s); they resume after the lease expires", error)

    def _loop(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.tick()
            except Exception:  # a database blip or a bug in one round must not end the driving
                log.exception("a round of the sweep driver failed; trying again")

    # -- one round --------------------------------------------------------------------------------

    def tick(self) -> None:
        """One round over every sweep that needs driving."""
        with self.database.transaction(write=False) as session:
            sweep_ids = store.to_drive(session=session)
        for sweep_id in sweep_ids:
            if self._stopping.is_set():
                return
            if self._hold(sweep_id):
                self.drive(sweep_id)

    def _hold(self, sweep_id: int) -> bool:
        # Renewed a few times per timeout, not every round: on SQLite each renewal takes the write lock.
        renewed = self._renewed.get(sweep_id)
        if renewed is not None and time.monotonic() - renewed < self.settings.heartbeat_timeout / 4:
            return True
        with self.database.transaction() as session:
            held = store.hold(session=session, sweep_id=sweep_id, driver=self.name, timeout=self.settings.heartbeat_timeout)
        if held:
            self._renewed[sweep_id] = time.monotonic()
        else:
            self._renewed.pop(sweep_id, None)
        return held

    def drive(self, sweep_id: int) -> None:
        """Everything one round does for one sweep."""
        with self.database.transaction(write=False) as session:
            sweep = store.get(session=session, sweep_id=sweep_id)
            plan = SweepPlan.model_validate(sweep.spec)
            open_trials = store.open_trials(session=session, sweep_id=sweep_id)
        studies = {study.method: study for study in self.studies.each(sweep.study_key, plan)}
        self._tell(sweep, plan, studies, open_trials)
        if sweep.status == "searching":
            self._search(sweep, plan, studies)
        elif sweep.status == "confirming":
            self._confirm(sweep, plan)
        else:
            self._wind_down(sweep, studies)

    # -- telling the studies ----------------------------------------------------------------------

    def _tell(self, sweep: Sweep, plan: SweepPlan, studies: dict[str, MethodStudy], trials: list[store.OpenTrial]) -> None:
        running: dict[str, dict[int, FrozenTrial]] = {}
        for trial in trials:
            if trial.status == "running" and trial.role == "trial" and plan.pruner is not None:
                if trial.method not in running:
                    running[trial.method] = {t.number: t for t in studies[trial.method].trials(TrialState.RUNNING)}
                frozen = running[trial.method].get(trial.number)
                if frozen is not None and self._prune(sweep, plan, studies[trial.method], trial, frozen):
                    self._close(studies, trial, "pruned", None)
            elif trial.status is None or trial.status in FINAL_STATUSES:
                self._close(studies, trial, *self._outcome(plan, trial))

    def _close(self, studies: dict[str, MethodStudy], trial: store.OpenTrial, state: str, value: float | None,
               error: str | None = None) -> None:
        """Tell the study how the trial ended, then record it: a crash in between tells it again, which is harmless."""
        if trial.role == "trial":
            value = studies[trial.method].tell(trial.number, state, value)
        with self.database.transaction() as session:
            store.record(session=session, trial_id=trial.id, state=state, value=value, error=error)

    def _outcome(self, plan: SweepPlan, trial: store.OpenTrial) -> tuple[str, float | None, str | None]:
        """(state, objective, error) of a trial whose run ended, or was never made, or was deleted."""
        if trial.status is None:
            return "failed", None, trial.error or "its run was deleted"
        if trial.status == "succeeded":
            value = plan.objective.value(trial.summary or {}, plan.modalities)
            if value is None:
                return "failed", None, f"its summary has no {plan.objective.describe()}"
            return "complete", value, None
        if trial.status == "pruned":
            return "pruned", None, None
        return "failed", None, trial.error or f"its run ended {trial.status}"

    def _prune(self, sweep: Sweep, plan: SweepPlan, study: MethodStudy, trial: store.OpenTrial, frozen: FrozenTrial) -> bool:
        """Report the epochs the pruner has not seen yet; end the trial's run ``pruned`` when it says so."""
        reported = max(frozen.intermediate_values, default=0)
        if trial.epoch <= reported or trial.run_id is None:
            return False
        run_id = trial.run_id
        keys = plan.objective.keys(plan.modalities)
        with self.database.transaction(write=False) as session:
            rows = session.execute(
                select(Metric.step, Metric.key, Metric.value).where(
                    Metric.run_id == run_id, Metric.key.in_(keys), Metric.step > reported, Metric.step <= trial.epoch,
                )
            ).all()
        epochs: dict[int, dict[str, float]] = {}
        for step, key, value in rows:
            epochs.setdefault(step, {})[key] = value
        last: tuple[int, float] | None = None
        for epoch in sorted(epochs):
            value = plan.objective.value(epochs[epoch], plan.modalities)
            if value is not None:
                study.report(frozen, epoch, value)
                last = (epoch, value)
        if last is None or not study.should_prune(frozen):
            return False
        epoch, value = last
        message, data = self._why_pruned(plan, study, epoch, value)
        with self.database.transaction() as session:
            pruned = store.runs.prune(session=session, run_id=run_id, epoch=epoch, message=message, data=data)
            if pruned:
                after_commit(session, lambda: self.publisher.publish(run_id, "status", status="pruned"))
        if pruned:
            log.info("sweep %d: %s trial %d pruned after epoch %d", sweep.id, trial.method, trial.number, epoch)
        return pruned

    def _why_pruned(self, plan: SweepPlan, study: MethodStudy, epoch: int, value: float) -> tuple[str, dict[str, Any]]:
        objective = plan.objective.describe()
        data: dict[str, Any] = {"objective": value, "pruner": plan.pruner.kind if plan.pruner else None}
        others = [
            t.intermediate_values[epoch] for t in study.trials(TrialState.COMPLETE) if epoch in t.intermediate_values
        ]
        if isinstance(plan.pruner, MedianPruner) and others:
            median = statistics.median(others)
            data |= {"median": median, "trials": len(others)}
            return (f"pruned after epoch {epoch} by the median pruner: {objective} {value:.4f}, below the median "
                    f"{median:.4f} of {len(others)} finished trials at that epoch"), data
        if isinstance(plan.pruner, HalvingPruner):
            factor = plan.pruner.reduction_factor
            return (f"pruned after epoch {epoch} by successive halving: {objective} {value:.4f} is not in the best "
                    f"1/{factor} of the trials that reached this epoch"), data
        return f"pruned after epoch {epoch}: {objective} {value:.4f}", data

    # -- asking for trials ------------------------------------------------------------------------

    def _slots(self, sweep: Sweep, plan: SweepPlan) -> int:
        with self.database.transaction(write=False) as session:
            return plan.parallelism - store.active_runs(session=session, sweep_id=sweep.id)

    def _search(self, sweep: Sweep, plan: SweepPlan, studies: dict[str, MethodStudy]) -> None:
        slots = self._slots(sweep, plan)
        if slots <= 0:
            return  # every slot busy: nothing to start, and runs still active, so nothing to conclude
        # Trials the studies hold without a run (the server stopped between the two): their runs first.
        for method, study in studies.items():
            orphans = self._orphans(sweep, study)
            while orphans and slots > 0:
                frozen = orphans.pop(0)
                if not self._start(sweep, plan, method, frozen.number, dict(frozen.params)):
                    return
                slots -= 1
        counts = {method: study.count() for method, study in studies.items()}
        turn = 0
        while slots > 0:
            open_methods = [m for m in studies if counts[m] < studies[m].budget]
            if not open_methods:
                break
            method = open_methods[turn % len(open_methods)]
            turn += 1
            asked = studies[method].ask()
            counts[method] += 1
            if not self._start(sweep, plan, method, asked.number, dict(asked.params)):
                return
            slots -= 1
        if all(counts[m] >= s.budget and not s.trials(TrialState.RUNNING) for m, s in studies.items()):
            with self.database.transaction(write=False) as session:
                if store.any_open(session=session, sweep_id=sweep.id):
                    return
            self._conclude(sweep, plan, studies)

    def _orphans(self, sweep: Sweep, study: MethodStudy) -> list[FrozenTrial]:
        running = study.trials(TrialState.RUNNING)
        with self.database.transaction(write=False) as session:
            known = store.known_numbers(
                session=session, sweep_id=sweep.id, method=study.method, numbers=[t.number for t in running],
            )
        return sorted((t for t in running if t.number not in known), key=lambda t: t.number)

    def _start(
        self, sweep: Sweep, plan: SweepPlan, method: str, number: int, values: dict[str, Any], *, seed: int | None = None,
    ) -> bool:
        """Queue the run of trial ``number`` of ``method`` (with ``seed``: a rerun of the best), with its row,
        in one transaction. False when no run may be queued now (the sweep ended, or the owner is at
        MILES_MAX_ACTIVE_RUNS): the trial stays in its study, to be adopted later."""
        role = "trial" if seed is None else "best"
        config_data = plan.run_config(method, values, seed=seed)
        try:
            config, error = policy.validate_config(config_data, field="config"), None
        except Invalid as invalid:
            config, error = None, f"its configuration is not valid: {invalid}"
        what = f"{method} #{number}" if seed is None else f"best {method} (#{number}), seed {seed}"
        try:
            with self.database.transaction() as session:
                locked = store.get(session=session, sweep_id=sweep.id, lock=True)
                if locked.status != ("searching" if seed is None else "confirming"):
                    return False
                run = None
                if config is not None:
                    experiment = locked.experiment.name if locked.experiment else None
                    run = submit(
                        session, self.settings, self.dispatcher, locked.owner_token_id, config=config, execute=True,
                        field="config", name=f"{locked.name} · {what}", experiment=experiment, tags=plan.tags,
                        sweep_id=sweep.id,
                    )
                store.add_trial(
                    session=session, sweep_id=sweep.id, method=method, role=role, number=number,
                    seed=config_data["seed"], params=values, run_id=run.id if run else None, error=error,
                )
        except LimitReached as limit:
            self._warn_once(sweep.id, "limit", f"sweep {sweep.id} waits for room: {limit}")
            return False
        except BrokerUnavailable as unavailable:  # committed and queued; the dispatcher enqueues it later
            self._warn_once(sweep.id, "broker", f"sweep {sweep.id}: {unavailable}")
        return True

    def _warn_once(self, sweep_id: int, topic: str, message: str) -> None:
        if (sweep_id, topic) not in self._warned:
            self._warned.add((sweep_id, topic))
            log.warning(message)

    # -- the end of the search, and the reruns of the best ------------------------------------------

    def _conclude(self, sweep: Sweep, plan: SweepPlan, studies: dict[str, MethodStudy]) -> None:
        best: dict[str, Any] = {}
        for method, study in studies.items():
            trial = study.best()
            if trial is not None:
                best[method] = {"number": trial.number, "value": trial.value, "params": dict(trial.params)}
        if not best:
            status, error = "failed", "no trial of any method completed; see the trials' runs for why"
        elif plan.seeds_for_best:
            status, error = "confirming", None
        else:
            status, error = "succeeded", None
        with self.database.transaction() as session:
            store.advance(session=session, sweep_id=sweep.id, status=status, best=best, error=error)
        log.info("sweep %d: search done (%s); %s", sweep.id, ", ".join(f"{m} #{b['number']}" for m, b in best.items())
                 or "no trial completed", status)

    def _confirm(self, sweep: Sweep, plan: SweepPlan) -> None:
        slots = self._slots(sweep, plan)
        missing = 0
        for method, best in (sweep.best or {}).items():
            with self.database.transaction(write=False) as session:
                done = store.rerun_seeds(session=session, sweep_id=sweep.id, method=method)
            for seed in plan.best_seeds:
                if seed in done:
                    continue
                if slots <= 0:
                    missing += 1
                    continue
                if not self._start(sweep, plan, method, best["number"], dict(best["params"]), seed=seed):
                    return
                slots -= 1
        if missing:
            return
        with self.database.transaction() as session:
            if not store.any_open(session=session, sweep_id=sweep.id):
                store.advance(session=session, sweep_id=sweep.id, status="succeeded")

    def _wind_down(self, sweep: Sweep, studies: dict[str, MethodStudy]) -> None:
        """An ended sweep: its trials without a run fail; once every trial is told, it is settled."""
        for study in studies.values():
            for orphan in self._orphans(sweep, study):
                study.tell(orphan.number, "failed", None)
        with self.database.transaction() as session:
            if store.any_open(session=session, sweep_id=sweep.id):
                return
            store.settle(session=session, sweep_id=sweep.id)
        self._renewed.pop(sweep.id, None)
        self.studies.forget(sweep.study_key)


def start_driving(settings: Settings, database: Database, dispatcher: Dispatcher, studies: Studies) -> Callable[[], None]:
    """Start a driver thread; returns what stops it."""
    driver = SweepDriver(settings, database, dispatcher, studies, Publisher(settings.redis_url))
    driver.start()

    def stop() -> None:
        driver.stop()
        driver.publisher.close()

    return stop
