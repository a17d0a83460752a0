"""Run events: time-stamped notes of a run (``miles.decision``, ``run.started``, ...), shown as a log.

An event may carry an idempotency ``key`` unique within its run: the trainer
re-reports the events of an epoch after resuming, and a repeated key is not
stored twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from server.models import RunEvent, utcnow
from server.store.dialect import insert_for


@dataclass(frozen=True)
class NewEvent:
    step: int
    kind: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)
    key: str | None = None
    time: datetime | None = None


def add(*, session: Session, run_id: int, events: Sequence[NewEvent]) -> list[int]:
    """Store ``events``, skipping those whose key the run already has; the ids of those stored."""
    if not events:
        return []
    now = utcnow()
    statement = insert_for(session)(RunEvent.__table__).on_conflict_do_nothing(index_elements=["run_id", "key"]).returning(RunEvent.id)
    rows = [
        {"run_id": run_id, "step": e.step, "kind": e.kind, "message": e.message, "data": e.data, "key": e.key,
         "time": e.time or now}
        for e in events
    ]
    return sorted(session.scalars(statement, rows))


def kind_matches(kinds: Sequence[str]) -> ColumnElement[bool]:
    """Events of any of ``kinds``: exact kinds, or ``prefix*`` (``miles.*``)."""
    return or_(*(
        RunEvent.kind.startswith(kind[:-1], autoescape=True) if kind.endswith("*") else RunEvent.kind == kind
        for kind in kinds
    ))


def page(
    *, session: Session, run_id: int, after_id: int | None = None, kinds: Sequence[str] = (), limit: int = 1000
) -> list[RunEvent]:
    """The run's events in the order they were stored, after the event ``after_id``."""
    statement = select(RunEvent).where(RunEvent.run_id == run_id)
    if after_id is not None:
        statement = statement.where(RunEvent.id > after_id)
    if kinds:
        statement = statement.where(kind_matches(kinds))
    return list(session.scalars(statement.order_by(RunEvent.id).limit(limit)))
