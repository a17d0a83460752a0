"""What a live stream of a run has not sent yet, read by its cursor (see `server.api.stream`).

A stream sends a run's points a step at a time, in step order, and its events in id
order; its cursor says up to which step and which event it has sent everything.

System metrics (``sys/...`` keys) have their own axis, seconds since the run started
(`trainer.system`), so they are left out of the step order and read apart by their own
cursor (`system_after`).

Points reported for a step the trainer has already passed (the test metrics of the
last and of the best epoch, reported at the end) would fall behind such a cursor. The
worker writes them in one transaction with the next event, stamped with that event's
exact time (`worker.reporter`): they are *bundled* with the event. A stream sends them
just before their event and never in the step order, so the event cursor covers them.

A run logged from outside (``execute: false``) may send one step's keys in several
requests, and its highest step is sent at once. What a later request writes at a step
the run had already reached is recorded under that ingest's number
(`server.models.MetricUpdate`), and a stream sends what was written after its write
cursor at the steps it has passed as *updates* of those steps (`updated_after`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.orm import Session

from server.models import LatestMetric, Metric, MetricUpdate, RunEvent
from trainer.system import PREFIX as SYSTEM_PREFIX


@dataclass(frozen=True)
class StepPoints:
    """The points of one step: ``{key: value}``."""

    step: int
    metrics: dict[str, float]


def _group(rows: Sequence[Any]) -> list[StepPoints]:
    """``(key, step, value)`` rows as one `StepPoints` per step, in step order."""
    grouped: dict[int, dict[str, float]] = defaultdict(dict)
    for key, step, value in rows:
        grouped[step][key] = value
    return [StepPoints(step, metrics) for step, metrics in sorted(grouped.items())]


def is_system(key: Any) -> ColumnElement[bool]:
    """Whether the metric key column ``key`` holds a system metric (a time axis, not epochs).

    substr, not LIKE: SQLite's LIKE ignores case, and the prefix is exact everywhere else."""
    return func.substr(key, 1, len(SYSTEM_PREFIX)) == SYSTEM_PREFIX


def _not_bundled() -> ColumnElement[bool]:
    return ~exists().where(RunEvent.run_id == Metric.run_id, RunEvent.time == Metric.time)


def steps_after(*, session: Session, run_id: int, after: int, max_steps: int, bundles: bool) -> list[StepPoints]:
    """The points of the next ``max_steps`` steps after ``after``, grouped by step.

    ``bundles``: leave out the points bundled with an event (runs executed by a worker).
    """
    # The highest step first, from the few latest values: an idle poll (nothing after the cursor) stops
    # here, since ``step > after`` cannot use the primary key (run_id, key, step) and would read the whole run.
    highest = session.scalar(
        select(func.max(LatestMetric.step)).where(LatestMetric.run_id == run_id, ~is_system(LatestMetric.key))
    )
    if highest is None or highest <= after:
        return []
    where = [Metric.run_id == run_id, Metric.step > after, ~is_system(Metric.key)]
    if bundles:
        where.append(_not_bundled())
    last = session.scalar(
        select(func.max(select(Metric.step).distinct().where(*where).order_by(Metric.step).limit(max_steps).subquery().c.step))
    )
    if last is None:
        return []
    rows = session.execute(
        select(Metric.key, Metric.step, Metric.value).where(*where, Metric.step <= last).order_by(Metric.step, Metric.key)
    )
    return _group(rows.all())


@dataclass(frozen=True)
class Update:
    """Points of one write at one step that a stream has already sent."""

    write: int
    points: StepPoints


def updated_after(
    *, session: Session, run_id: int, write: int | None, write_step: int | None, through_step: int,
) -> tuple[list[Update], int]:
    """The points written late (`MetricUpdate`) after ``(write, write_step)`` at steps up to ``through_step``,
    in the order (write, step), and the run's last write number (``write`` when nothing is newer).

    ``write_step`` None: everything of ``write`` was sent; otherwise its steps up to ``write_step``.
    ``write`` None: the stream does not know (it was opened from a step alone): no updates, only the
    last write number, from which it follows the run.
    """
    if write is None:
        return [], session.scalar(
            select(func.coalesce(func.max(MetricUpdate.write), 0)).where(MetricUpdate.run_id == run_id)
        )
    newer = MetricUpdate.write > write
    if write_step is not None:
        newer = or_(newer, and_(MetricUpdate.write == write, MetricUpdate.step > write_step))
    rows = session.execute(
        select(MetricUpdate.write, MetricUpdate.step, MetricUpdate.key, Metric.value)
        .join(Metric, and_(Metric.run_id == MetricUpdate.run_id, Metric.key == MetricUpdate.key, Metric.step == MetricUpdate.step))
        .where(MetricUpdate.run_id == run_id, newer)
    ).all()
    grouped: dict[tuple[int, int], dict[str, float]] = defaultdict(dict)
    for row_write, step, key, value in rows:
        if step <= through_step:  # later steps come in step order
            grouped[row_write, step][key] = value
    updates = [Update(w, StepPoints(step, metrics)) for (w, step), metrics in sorted(grouped.items())]
    return updates, max((row.write for row in rows), default=write)


def bundled(*, session: Session, run_id: int, events: Sequence[RunEvent]) -> dict[int, list[StepPoints]]:
    """For each of ``events`` (by id), the points bundled with it, grouped by step; events without any are left out."""
    by_time: dict[datetime, int] = {event.time: event.id for event in events}
    if not by_time:
        return {}
    rows = session.execute(
        select(Metric.time, Metric.key, Metric.step, Metric.value)
        .where(Metric.run_id == run_id, Metric.time.in_(list(by_time)), ~is_system(Metric.key))
        .order_by(Metric.step, Metric.key)
    )
    per_event: dict[int, list[tuple[str, int, float]]] = defaultdict(list)
    for time, key, step, value in rows:
        per_event[by_time[time]].append((key, step, value))
    return {event_id: _group(points) for event_id, points in per_event.items()}


def system_after(*, session: Session, run_id: int, after: int, max_steps: int) -> list[StepPoints]:
    """The run's system metrics of the next ``max_steps`` seconds after second ``after`` that have any, by second."""
    # Their few keys from the latest values first: an idle poll stops here, and the read below is one index
    # range of (run_id, key, step) per key.
    keys = list(session.scalars(
        select(LatestMetric.key).where(LatestMetric.run_id == run_id, is_system(LatestMetric.key), LatestMetric.step > after)
    ))
    if not keys:
        return []
    where = [Metric.run_id == run_id, Metric.key.in_(keys), Metric.step > after]
    last = session.scalar(
        select(func.max(select(Metric.step).distinct().where(*where).order_by(Metric.step).limit(max_steps).subquery().c.step))
    )
    rows = session.execute(
        select(Metric.key, Metric.step, Metric.value).where(*where, Metric.step <= last).order_by(Metric.step, Metric.key)
    )
    return _group(rows.all())
