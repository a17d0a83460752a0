"""A worker's hold on a running run: heartbeats, handing a run back, and recovering runs whose worker vanished.

A worker claims a run (`runs.claim`: ``queued`` -> ``running``, recording the worker), then
`renew`s its lease every few seconds. Every write the worker makes afterwards is
conditional on still holding it, so a worker that was presumed dead and comes back
cannot overwrite the run's new owner. When a worker is asked to shut down it
`release`s its run back to the queue. A run whose worker stopped renewing for longer
than MILES_HEARTBEAT_TIMEOUT is found by `sweep` and re-queued (it resumes from its last
checkpoint), cancelled (when a cancel was pending), or failed with the reason "worker
lost" once its worker has been lost MILES_MAX_ATTEMPTS times. Only such losses count: a
run handed back by `release` (a clean shutdown) keeps its allowance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from server.models import Run, utcnow
from server.store import events, runs


@dataclass(frozen=True)
class LeaseState:
    held: bool  # the run is still running on this worker
    cancel_requested: bool


@dataclass
class Swept:
    """What `sweep` did: the runs to enqueue again (id -> queue), and those it ended."""

    requeued: dict[int, str] = field(default_factory=dict)
    cancelled: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def _held(run_id: int, worker: str) -> tuple:
    return (Run.id == run_id, Run.status == "running", Run.worker == worker)


def renew(*, session: Session, run_id: int, worker: str, epoch: int | None = None) -> LeaseState:
    """Record that ``worker`` is alive and still running the run (and its epochs completed)."""
    values: dict[str, object] = {"heartbeat_at": utcnow()}
    if epoch is not None:
        values["epoch"] = epoch
    row = session.execute(
        update(Run).where(*_held(run_id, worker)).values(**values).returning(Run.cancel_requested)
        .execution_options(synchronize_session=False)
    ).first()
    return LeaseState(held=row is not None, cancel_requested=bool(row and row[0]))


def check(*, session: Session, run_id: int, worker: str) -> LeaseState:
    """Whether ``worker`` still holds the run and whether someone asked it to stop, without writing."""
    row = session.execute(select(Run.cancel_requested).where(*_held(run_id, worker))).first()
    return LeaseState(held=row is not None, cancel_requested=bool(row and row[0]))


def release(*, session: Session, run_id: int, worker: str, reason: str) -> bool:
    """Hand the run back to the queue (its worker is shutting down); False when ``worker`` no longer held it."""
    run = session.scalar(select(Run).where(*_held(run_id, worker)).with_for_update(of=Run))
    if run is None:
        return False
    _requeue(session, run, reason)
    return True


def _requeue(session: Session, run: Run, reason: str) -> None:
    run.status, run.worker, run.heartbeat_at = "queued", None, None
    note(session=session, run=run, kind="run.requeued", message=f"{reason}; back in the queue, to resume after epoch {run.epoch}")


def note(*, session: Session, run: Run, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
    """An event of the run's life cycle (``run.requeued``, ``run.failed``, ...) at its current epoch, with
    the attempt in its data. One of each kind per attempt: a repeated one is not stored twice."""
    events.add(session=session, run_id=run.id, events=[
        events.NewEvent(step=run.epoch, kind=kind, message=message, data={"attempt": run.attempts, **(data or {})},
                        key=f"{kind}#{run.attempts}"),
    ])


def sweep(*, session: Session, timeout: float, max_attempts: int) -> Swept:
    """Recover every running run whose heartbeat is older than ``timeout`` seconds."""
    now = utcnow()
    stale = session.scalars(
        select(Run).where(
            Run.execute.is_(True), Run.status == "running", Run.heartbeat_at < now - timedelta(seconds=timeout)
        ).order_by(Run.id).with_for_update(of=Run, skip_locked=True)  # two sweeps at once split the runs between them
    ).all()
    swept = Swept()
    for run in stale:
        silent = (now - run.heartbeat_at).total_seconds() if run.heartbeat_at else timeout
        lost = f"worker {run.worker} lost: no heartbeat for {silent:.0f} s (MILES_HEARTBEAT_TIMEOUT={timeout:g})"
        run.losses += 1
        if run.cancel_requested:
            note(session=session, run=run, kind="run.cancelled", message=f"{lost}; the run was being cancelled, so it ends cancelled")
            runs.end(session=session, run=run, status="cancelled")
            swept.cancelled.append(run.id)
        elif run.losses >= max_attempts:
            error = f"worker lost: {lost}; gave up after losing its worker {run.losses} times (MILES_MAX_ATTEMPTS={max_attempts})"
            note(session=session, run=run, kind="run.failed", message=error)
            runs.end(session=session, run=run, status="failed", error=error)
            swept.failed.append(run.id)
        else:
            _requeue(session, run, f"{lost} (loss {run.losses} of the {max_attempts} allowed)")
            swept.requeued[run.id] = run.queue  # every executed run has one (runs.create)
    session.flush()
    return swept


def queued(*, session: Session) -> dict[int, str]:
    """Every queued run a worker is to execute, oldest first: id -> queue (to enqueue them again)."""
    rows = session.execute(
        select(Run.id, Run.queue).where(Run.execute.is_(True), Run.status == "queued").order_by(Run.created_at, Run.id)
    )
    return {run_id: queue for run_id, queue in rows}
