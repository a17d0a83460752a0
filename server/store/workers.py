"""The registry of `miles worker` processes: registration, heartbeats, what each one is doing, who is lost.

Each worker process registers when it starts (`register`), then `beat`s every few
seconds, pushing its ``expires_at`` a heartbeat timeout ahead (its own
MILES_HEARTBEAT_TIMEOUT): a worker whose ``expires_at`` has passed is *lost*. Nothing
here depends on Celery's remote control, which the local broker lacks: the database is
the one place where every worker, in local and in team mode, says it is alive. A worker
that stops cleanly `unregister`s; a lost one stays listed, marked, for `KEEP_LOST`, and
is then `prune`d.

`serving` answers the question behind the "no worker" warning of a queued run: which of
some queues a live worker consumes, by one range of the index on (queue, expires_at).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, select, update
from sqlalchemy.orm import Session

from server.models import Run, Worker, utcnow

KEEP_LOST = timedelta(days=1)
# What to run so that a queue is served (`miles worker --gpus` takes the GPUs' indices: 0 is the first).
SERVE_COMMANDS = {"cpu": "miles worker --cpu", "gpu": "miles worker --gpus 0"}
RECENT_SAMPLES = 60  # readings kept for the Workers page: ten minutes at MILES_SYSTEM_INTERVAL=10


@dataclass(frozen=True)
class Registration:
    """What a worker process says of itself when it starts."""

    name: str  # host:pid, the id its runs record
    host: str
    pid: int
    process: str  # gpu0, cpu1, ...
    queue: str
    facts: dict[str, Any]  # trainer.system.MachineFacts.as_dict()


def register(*, session: Session, worker: Registration, timeout: float) -> None:
    """Add (or, for a name seen before, renew) a worker: idle, live for ``timeout`` seconds."""
    now = utcnow()
    row = session.scalar(select(Worker).where(Worker.name == worker.name))
    if row is None:
        row = Worker(name=worker.name)
        session.add(row)
    row.host, row.pid, row.process, row.queue, row.facts = worker.host, worker.pid, worker.process, worker.queue, worker.facts
    row.started_at, row.heartbeat_at, row.expires_at = now, now, now + timedelta(seconds=timeout)
    row.state, row.run_id, row.recent = "idle", None, []
    session.flush()


def beat(
    *, session: Session, name: str, timeout: float, run_id: int | None, reading: Sequence[float | None] | None = None,
) -> bool:
    """The worker is alive and training ``run_id`` (None: idle); ``reading`` (unix seconds, cpu %, gpu %)
    joins its recent utilization. False when its row is gone (pruned while it was silent): register again."""
    row = session.scalar(select(Worker).where(Worker.name == name).with_for_update())
    if row is None:
        return False
    now = utcnow()
    row.heartbeat_at, row.expires_at = now, now + timedelta(seconds=timeout)
    row.state, row.run_id = ("busy", run_id) if run_id is not None else ("idle", None)
    if reading is not None:
        row.recent = [*row.recent, list(reading)][-RECENT_SAMPLES:]
    session.flush()
    return True


def assign(*, session: Session, name: str, run_id: int | None) -> None:
    """Mark the worker busy with ``run_id`` (in the transaction that claims it), or idle again."""
    session.execute(
        update(Worker).where(Worker.name == name)
        .values(state="busy" if run_id is not None else "idle", run_id=run_id)
        .execution_options(synchronize_session=False)
    )


def unregister(*, session: Session, name: str) -> None:
    """A worker stopping cleanly leaves the list."""
    session.execute(delete(Worker).where(Worker.name == name))


def prune(*, session: Session, now: datetime | None = None) -> int:
    """Forget the workers lost for longer than `KEEP_LOST`; how many."""
    cutoff = (now or utcnow()) - KEEP_LOST
    return session.execute(delete(Worker).where(Worker.expires_at < cutoff)).rowcount or 0


@dataclass(frozen=True)
class Listed:
    worker: Worker
    lost: bool
    run_name: str | None


def listing(*, session: Session) -> list[Listed]:
    """Every worker seen in the last day: the live ones first (busy, then idle), then the lost, each by name."""
    now = utcnow()
    rows = session.execute(
        select(Worker, Run.name).outerjoin(Run, Run.id == Worker.run_id).where(Worker.expires_at >= now - KEEP_LOST)
    ).all()
    found = [Listed(worker, worker.expires_at < now, run_name) for worker, run_name in rows]
    return sorted(found, key=lambda item: (item.lost, item.worker.state != "busy", item.worker.host, item.worker.process))


def serving_query(queues: Collection[str], now: datetime) -> Select[tuple[str]]:
    """The queues among ``queues`` that a worker live at ``now`` consumes: a range of the (queue, expires_at) index."""
    return select(Worker.queue).where(Worker.queue.in_(sorted(queues)), Worker.expires_at > now).distinct()


def serving(*, session: Session, queues: Collection[str]) -> set[str]:
    """Which of ``queues`` at least one live worker consumes (one indexed query)."""
    if not queues:
        return set()
    return set(session.scalars(serving_query(queues, utcnow())))
