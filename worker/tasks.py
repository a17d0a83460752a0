"""The task ``miles.run_training(run_id)``: run one queued run to its end.

1. Claim the run: a compare-and-set ``queued`` -> ``running`` that records this worker
   (``host:pid``), the start time and the attempt, and, in the same transaction, the
   machine it trains on (``run.machine``) and this worker busy with it in the workers
   list. A second delivery of the same run finds it claimed (or ended) and leaves it.
   While it trains, the worker's monitor thread samples its system metrics.
2. Build its `TrainConfig` from the stored spec, refusing what this server's limits do
   not allow, and train it with the `DatabaseReporter`, checkpoints under
   ``<artifact_dir>/runs/<id>/checkpoints``, resuming after ``last.pt`` when an earlier
   attempt left one. MILES_MAX_RUN_HOURS counts the training of every attempt: what the
   checkpoint records of the earlier ones, and this one's time.
3. End it ``succeeded`` (with its summary), ``cancelled`` (a cancel reaches the trainer
   within half a second and it stops before its next batch), or ``failed`` (the error,
   where it happened, and a ``run.failed`` event). When this worker is shutting down the
   run goes back to the queue instead, to resume elsewhere; when another worker took the
   run over (this one was presumed lost), it is left alone.

When the database is unreachable, nothing is lost either: a run that cannot be claimed
has its message handed back to the broker a few seconds later, and a run interrupted
mid-training stays ``running`` until the heartbeat sweep re-queues it.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from celery.exceptions import Reject
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError

from server import policy
from server.db import Database
from server.live import Publisher
from server.settings import Settings
from server.store import leases, runs, workers
from server.store.errors import NotFound, StoreError
from trainer import checkpoint
from trainer.config import TrainConfig
from trainer.loop import Training, TrainResult
from trainer.spec import explain
from worker.lease import Lease
from worker.monitor import WorkerMonitor
from worker.reporter import DatabaseReporter, LeaseLost

log = logging.getLogger("miles.worker")

SHUTDOWN = threading.Event()  # set when this worker process is asked to shut down (warm shutdown)
Final = Literal["succeeded", "failed", "cancelled"]
Outcome = Final | Literal["released", "skipped", "lost", "interrupted"]
DATABASE_PAUSE = 5.0  # seconds to wait before handing back a message whose run could not be claimed


@dataclass(frozen=True)
class WorkerContext:
    """What every task of a worker process shares."""

    settings: Settings
    database: Database
    publisher: Publisher
    worker_id: str  # host:pid, recorded on the runs this process claims
    monitor: WorkerMonitor | None = None  # the heartbeat in the workers list, and system sampling


_context: WorkerContext | None = None


def configure(context: WorkerContext) -> None:
    global _context
    _context = context


def run_training(run_id: int) -> str:
    """Celery task ``miles.run_training``: run ``run_id`` to a final state, or hand it back on shutdown."""
    if _context is None:
        raise RuntimeError("worker.tasks.configure() was not called: start workers with `miles worker`")
    if SHUTDOWN.is_set():  # a message delivered while this worker stops (e.g. the one it just handed back)
        log.info("run %d left in the queue: this worker is shutting down", run_id)
        raise Reject(f"run {run_id} not started: this worker is shutting down", requeue=True)
    try:
        outcome = Job(_context, run_id).run()
    except ClaimFailed as error:
        # The run is still queued: give the message back for a later try rather than lose it.
        log.error("run %d could not be claimed (%s); retrying in %g s", run_id, error, DATABASE_PAUSE)
        time.sleep(DATABASE_PAUSE)
        raise Reject(f"run {run_id} not claimed: the database is unreachable", requeue=True) from error
    if outcome == "released":
        # Back to the broker as well, so that another worker (or this one, restarted) takes it.
        log.info("run %d handed back to the queue: this worker is shutting down", run_id)
        raise Reject(f"run {run_id} handed back: this worker is shutting down", requeue=True)
    return outcome


class QuietRejects(logging.Filter):
    """Drops Celery's report of a rejected ``run_training``, a warning with the traceback of the
    `Reject`: rejecting is how this task hands a run back to the queue, and the task has said so
    in one line of its own (or, when the database was unreachable, in an error)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], Reject))


class JobFailed(Exception):
    """The run cannot be trained as specified; the message is for its user."""


class ClaimFailed(Exception):
    """The database could not be reached to claim the run."""


@dataclass(frozen=True)
class Claimed:
    spec: dict[str, Any]
    attempt: int
    started_at: datetime


class Job:
    def __init__(self, context: WorkerContext, run_id: int) -> None:
        self.context = context
        self.settings = context.settings
        self.database = context.database
        self.run_id = run_id
        self.worker = context.worker_id
        self.checkpoint_dir: Path = self.settings.run_artifacts(run_id) / "checkpoints"

    def run(self) -> Outcome:
        try:
            claimed = self._claim()
        except OperationalError as error:
            raise ClaimFailed(str(error.orig or error)) from error
        if claimed is None:
            return "skipped"
        with self._sampled(claimed):
            return self._train(claimed)

    @contextmanager
    def _sampled(self, claimed: Claimed) -> Iterator[None]:
        """While the run trains here, the worker's monitor samples its system metrics and shows the worker busy."""
        monitor = self.context.monitor
        if monitor is None:
            yield
            return
        monitor.watch(self.run_id, claimed.started_at)
        try:
            yield
        finally:
            monitor.unwatch()

    def _train(self, claimed: Claimed) -> Outcome:
        self._announce("running")
        # MILES_MAX_RUN_HOURS bounds the run's training across attempts: earlier ones left their time in the checkpoint.
        budget = self.settings.max_run_hours * 3600 - checkpoint.trained_seconds(self.checkpoint_dir)
        lease = Lease(self.database, self.run_id, self.worker, shutdown=SHUTDOWN, max_seconds=budget)
        reporter = DatabaseReporter(
            database=self.database, publisher=self.context.publisher, run_id=self.run_id, worker=self.worker,
            attempt=claimed.attempt, should_stop=lease.should_stop,
        )
        with lease:
            try:
                training = Training(self._config(claimed.spec), reporter, checkpoint_dir=self.checkpoint_dir)
                if self.context.monitor is not None:
                    self.context.monitor.count_samples(lambda: training.samples_seen)
                result = training.run(resume=True)
            except LeaseLost:
                return "lost"
            except OperationalError as error:
                # The database went away mid-run: the run stays `running` until the heartbeat sweep,
                # once the database is back, re-queues it to resume from its last checkpoint.
                log.error("run %d interrupted: the database is unreachable (%s)", self.run_id, error.orig or error)
                return "interrupted"
            except Exception as error:  # anything the training raises ends the run failed, with the reason
                return self._fail(error)
        return self._conclude(result, reporter, lease)

    def _claim(self) -> Claimed | None:
        with self.database.transaction() as session:
            if not runs.claim(session=session, run_id=self.run_id, worker=self.worker):
                try:
                    status = runs.get(session=session, run_id=self.run_id).status
                except NotFound:
                    status = "deleted"
                log.info("run %d is %s, not queued: this delivery leaves it alone", self.run_id, status)
                return None
            run = runs.get(session=session, run_id=self.run_id)
            if self.context.monitor is not None:
                run.machine = {"worker": self.worker, **self.context.monitor.registration.facts}
                workers.assign(session=session, name=self.worker, run_id=self.run_id)
            log.info("run %d claimed by %s (attempt %d)", self.run_id, self.worker, run.attempts)
            assert run.started_at is not None  # set by the claim
            return Claimed(spec=dict(run.spec or {}), attempt=run.attempts, started_at=run.started_at)

    def _config(self, spec: dict[str, Any]) -> TrainConfig:
        try:
            config = TrainConfig.model_validate(spec)
        except ValidationError as error:
            problems = "; ".join(map(str, explain(error)))
            raise JobFailed(f"the run's stored config is not valid for this version of miles: {problems}") from None
        try:
            policy.check_config(config, self.settings, field="config")
        except StoreError as error:
            raise JobFailed(f"refused by this worker's limits: {error}") from None
        if config.device.startswith("cuda:"):
            # Each GPU worker process sees exactly one device (CUDA_VISIBLE_DEVICES): its own.
            config = config.model_copy(update={"device": "cuda"})
        return config

    def _conclude(self, result: TrainResult, reporter: DatabaseReporter, lease: Lease) -> Outcome:
        if result.status == "succeeded":
            return self._finish("succeeded", summary=reporter.summary)
        if lease.reason == "shutdown":
            return self._release(result.epochs_completed)
        if lease.reason == "deadline":
            return self._fail(JobFailed(
                f"the run trained longer than this server allows (MILES_MAX_RUN_HOURS={self.settings.max_run_hours:g})"
            ))
        if lease.reason == "lost":
            return "lost"
        return self._finish("cancelled", note=("run.cancelled", f"cancelled during epoch {result.epochs_completed + 1}"))

    def _finish(
        self, status: Final, *, summary: dict[str, Any] | None = None, error: str | None = None,
        detail: str | None = None, note: tuple[str, str] | None = None,
    ) -> Outcome:
        with self.database.transaction() as session:
            state = leases.renew(session=session, run_id=self.run_id, worker=self.worker)
            if not state.held:
                return "lost"
            if note is not None:
                kind, message = note
                leases.note(
                    session=session, run=runs.get(session=session, run_id=self.run_id), kind=kind, message=message,
                    data={"error": error, "where": detail} if error else None,
                )
            runs.finish(
                session=session, run_id=self.run_id, status=status, error=error, error_detail=detail, summary=summary,
            )
        log.info("run %d %s", self.run_id, status)
        self._announce(status)
        return status

    def _fail(self, error: BaseException) -> Outcome:
        message = str(error) if isinstance(error, JobFailed) else f"{type(error).__name__}: {error}"
        frames = traceback.extract_tb(error.__traceback__)
        detail = f"{frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}: {frames[-1].line}" if frames else None
        if not isinstance(error, JobFailed):
            log.error("run %d failed", self.run_id, exc_info=error)
        try:
            return self._finish("failed", error=message, detail=detail, note=("run.failed", message))
        except Exception:  # the database itself failed: the heartbeat sweep will recover the run
            log.exception("run %d: cannot record its failure", self.run_id)
            return "failed"

    def _release(self, epochs: int) -> Outcome:
        with self.database.transaction() as session:
            held = leases.release(
                session=session, run_id=self.run_id, worker=self.worker,
                reason=f"worker {self.worker} shutting down during epoch {epochs + 1}",
            )
        if not held:
            return "lost"
        self._announce("queued")
        return "released"

    def _announce(self, status: str) -> None:
        self.context.publisher.publish(self.run_id, "status", status=status)
