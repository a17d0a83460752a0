"""Metric series: idempotent batched ingest, latest values, and downsampled reads.

A series is the points ``(step, value)`` of one key of one run; a repeated
``(run, key, step)`` overwrites. Downsampling keeps, in each bucket of steps,
the point of the minimum and the point of the maximum (real points, never
averages), so spikes survive: a series longer than ``max_points`` steps gets
between ``max_points // 4`` and ``max_points // 2`` buckets of equal width, each
giving at most two points, computed in SQL from the rollups (see `rollups`) that
every ingest keeps up to date.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import (
    Row,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from server.models import LatestMetric, Metric, MetricUpdate, Run
from server.store import rollups
from server.store.arrays import Float8Array, Int8Array, TextArray, TimestamptzArray
from server.store.errors import NotFound
from trainer.system import is_system

MAX_STEP = 2**53 - 1  # the largest integer a browser's JavaScript holds exactly
MAX_POINTS_PER_REQUEST = 50_000
_INGEST_LOCK = 0x6D6574  # with the run id: one ingest of a run at a time (rollups are recomputed)

_metric = Metric.__table__
_latest = LatestMetric.__table__
_update = MetricUpdate.__table__


class Point(NamedTuple):
    key: str
    step: int
    value: float
    time: datetime


@dataclass
class Series:
    steps: list[int]
    values: list[float]


# -- writing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ingested:
    """What an ingest did: the distinct points written, the highest step among them that is an epoch
    (not a system metric's, whose steps are seconds), and whether someone asked the run to stop."""

    accepted: int
    epoch: int | None
    cancel_requested: bool


def ingest(*, session: Session, run_id: int, points: Sequence[Point], progress: bool = False) -> Ingested:
    """Upsert ``points`` (a repeated ``(key, step)`` overwrites; the last one in ``points`` wins).

    Keeps the latest value of each key, the rollups and the record of late points
    (`MetricUpdate`) up to date, in the caller's transaction; with ``progress``, also the epoch of
    a logged run, whose steps are its epochs (as a worker's are). `NotFound` when there is no
    run ``run_id``.
    """
    unique = _distinct(points)
    postgres = session.get_bind().dialect.name == "postgresql"
    # On PostgreSQL the reads are one round trip and the writes another (a pipeline each): under
    # load each trip waits for the database's process to be scheduled, and they were most of a
    # small request's time. Rollups are recomputed from what is committed, so two ingests of one
    # run must not interleave (the advisory lock; SQLite lets one writer in at a time).
    run, previous_hi = _read_postgres(session, run_id) if postgres else _read(session, run_id)
    if run is None:
        raise NotFound(f"run {run_id} not found")
    execute, epoch, spec, cancel_requested = run
    # A batch names a few keys: what depends on the key is decided once per key, the rest in C.
    keys = set(map(itemgetter(0), unique))
    system = {key for key in keys if is_system(key)}
    epochs = [point.step for point in unique if point.key not in system] if system else list(map(itemgetter(1), unique))
    highest = max(epochs, default=None)
    if not unique:
        return Ingested(0, highest, cancel_requested)
    # Every key's highest step says which points are late (a run has a few dozen keys).
    reached = max((step for key, step in previous_hi.items() if not is_system(key)), default=-1)
    late = [] if min(epochs, default=reached + 1) > reached else [
        point for point in unique if point.step <= reached and point.key not in system
    ]
    appending = _appends(unique, keys, previous_hi)
    merged = rollups.appended(unique, previous_hi) if appending else None
    moved = None
    if progress and not execute and highest is not None:
        moved = min(max(epoch, highest), (spec or {}).get("epochs") or MAX_STEP)
        moved = None if moved == epoch else moved
    if postgres:
        _write_postgres(session, run_id, unique, late, appending, merged, moved)
    else:
        if late:
            _record_late(session, run_id, late)
        # latest_metric first: its foreign key locks the run row, so the run cannot be deleted under us.
        _upsert_latest(session, run_id, unique)
        _write_points(session, run_id, unique, overwrite=not appending)
        if merged is not None:
            rollups.merge_appended(session, run_id, merged)
        if moved is not None:
            session.execute(update(Run).where(Run.id == run_id).values(epoch=moved))
    if merged is None:
        rollups.recompute(session, session.get_bind().dialect.name, run_id, unique, previous_hi)
    return Ingested(len(unique), highest, cancel_requested)


_RUN = "SELECT execute, epoch, spec, cancel_requested FROM run WHERE id = %s"
_HIGHEST = "SELECT key, step FROM latest_metric WHERE run_id = %s"
_COLUMNS = "unnest(%(keys)b::text[], %(steps)b::bigint[], %(values)b::float8[], %(times)b::timestamptz[])"
_LATE = (
    "INSERT INTO metric_update (run_id, write, key, step) SELECT %(run_id)b, "
    "COALESCE((SELECT max(write) FROM metric_update WHERE run_id = %(run_id)b), 0) + 1, * "
    "FROM unnest(%(keys)b::text[], %(steps)b::bigint[])"
)
_LATEST = (
    "INSERT INTO latest_metric (run_id, key, step, value, time) SELECT %(run_id)b, * FROM " + _COLUMNS +
    " ON CONFLICT (run_id, key) DO UPDATE SET step = EXCLUDED.step, value = EXCLUDED.value, time = EXCLUDED.time"
    " WHERE latest_metric.step <= EXCLUDED.step"  # a late point of an earlier step is not the latest
)
_POINTS = "INSERT INTO metric (run_id, key, step, value, time) SELECT %(run_id)b, * FROM " + _COLUMNS
_OVERWRITE = " ON CONFLICT (run_id, key, step) DO UPDATE SET value = EXCLUDED.value, time = EXCLUDED.time"


def _distinct(points: Sequence[Point]) -> list[Point]:
    """``points`` without repeats of a (key, step), the last of each kept, every time aware (a naive one
    is UTC, and PostgreSQL's driver cannot mix them in an array). Checked in C first: a batch rarely
    repeats a point or holds a naive time, and a pass of Python over every point for each was a
    tenth of a 1,000-point ingest."""
    if len(set(map(itemgetter(0, 1), points))) < len(points):
        points = list({(point.key, point.step): point for point in points}.values())
    if any(time.tzinfo is None for time in set(map(itemgetter(3), points))):
        points = [
            point if point.time.tzinfo is not None else point._replace(time=point.time.replace(tzinfo=UTC))
            for point in points
        ]
    return list(points)


def _appends(points: list[Point], keys: set[str], previous_hi: dict[str, int]) -> bool:
    """Whether every point comes after its key's highest stored step (then none can collide with a stored
    one): in C when the whole batch comes after every one of its keys' stored steps, as a loop's does."""
    if min(map(itemgetter(1), points)) > max((previous_hi.get(key, -1) for key in keys), default=-1):
        return True
    return all(point.step > previous_hi.get(point.key, -1) for point in points)


def _read(session: Session, run_id: int) -> tuple[Row[Any] | None, dict[str, int]]:
    """The run's fields that an ingest needs, and every key's highest step."""
    run = session.execute(
        select(Run.execute, Run.epoch, Run.spec, Run.cancel_requested).where(Run.id == run_id)
    ).one_or_none()
    return run, dict(session.execute(select(LatestMetric.key, LatestMetric.step).where(LatestMetric.run_id == run_id)).all())


def _read_postgres(session: Session, run_id: int) -> tuple[tuple[Any, ...] | None, dict[str, int]]:
    """`_read` under the run's ingest lock, in one round trip."""
    driver = session.connection().connection.driver_connection
    with driver.pipeline(), driver.cursor() as lock, driver.cursor() as run, driver.cursor() as highest:
        lock.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_INGEST_LOCK, run_id))
        run.execute(_RUN, (run_id,))  # read after the lock is taken: what the previous holder committed
        highest.execute(_HIGHEST, (run_id,))
        return run.fetchone(), dict(highest.fetchall())


def _write_postgres(
    session: Session, run_id: int, points: list[Point], late: list[Point], appending: bool,
    merged: rollups.Appended | None, epoch: int | None,
) -> None:
    """The writes of an ingest in one round trip, each batch as arrays sent in binary (``%b``, packed by
    `server.store.arrays`): psycopg formats 50,000 floats and timestamps as text ten times slower."""
    columns = _columns(run_id, points)
    driver = session.connection().connection.driver_connection
    with driver.pipeline(), driver.cursor() as cursor:
        if late:
            cursor.execute(_LATE, {"run_id": run_id, "keys": TextArray.of([p.key for p in late]),
                                   "steps": Int8Array.of([p.step for p in late])})
        # latest_metric first: its foreign key locks the run row, so the run cannot be deleted under us.
        cursor.execute(_LATEST, _columns(run_id, _newest(points)))
        cursor.execute(_POINTS + ("" if appending else _OVERWRITE), columns)
        if merged is not None:
            rollups.merge_appended_arrays(cursor, run_id, merged)
        if epoch is not None:
            cursor.execute("UPDATE run SET epoch = %s WHERE id = %s", (epoch, run_id))


def _columns(run_id: int, points: list[Point]) -> dict[str, Any]:
    """The parameters of `_COLUMNS` (``points`` is never empty)."""
    keys, steps, values, times = zip(*points, strict=True)
    return {"run_id": run_id, "keys": TextArray.of(keys), "steps": Int8Array.of(steps),
            "values": Float8Array.of(values), "times": TimestamptzArray.of(times)}


def _record_late(session: Session, run_id: int, late: list[Point]) -> None:
    """Record the points written at a step the run had reached, under this ingest's number: the streams
    that have sent their step send them as updates (the lock above, or SQLite's one writer, keeps
    two ingests of a run from taking the same number)."""
    write = (session.scalar(select(func.max(MetricUpdate.write)).where(MetricUpdate.run_id == run_id)) or 0) + 1
    session.execute(_update.insert(), [{"run_id": run_id, "write": write, "key": p.key, "step": p.step} for p in late])


def _write_points(session: Session, run_id: int, points: list[Point], *, overwrite: bool) -> None:
    statement = sqlite.insert(_metric)
    if overwrite:
        statement = statement.on_conflict_do_update(
            index_elements=["run_id", "key", "step"], set_={"value": statement.excluded.value, "time": statement.excluded.time}
        )
    session.execute(statement, [{"run_id": run_id, **p._asdict()} for p in points])


def _newest(points: list[Point]) -> list[Point]:
    """The point of the highest step of each key."""
    newest: dict[str, Point] = {}
    for point in points:
        if point.key not in newest or point.step >= newest[point.key].step:
            newest[point.key] = point
    return list(newest.values())


def _upsert_latest(session: Session, run_id: int, points: list[Point]) -> None:
    statement = sqlite.insert(_latest)
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["run_id", "key"],
        set_={"step": excluded.step, "value": excluded.value, "time": excluded.time},
        where=_latest.c.step <= excluded.step,  # a late point of an earlier step is not the latest
    )
    session.execute(statement, [{"run_id": run_id, **p._asdict()} for p in _newest(points)])


# -- reading --------------------------------------------------------------------------------------


def series_keys(*, session: Session, run_id: int) -> list[str]:
    """The keys of the run's series, sorted."""
    return list(session.scalars(select(LatestMetric.key).where(LatestMetric.run_id == run_id).order_by(LatestMetric.key)))


class Latest(NamedTuple):
    step: int
    value: float


def latest(
    *, session: Session, run_ids: Sequence[int], keys: Sequence[str] | None = None,
) -> dict[int, dict[str, Latest]]:
    """For each run, its series' points of the highest step, by key: every key, or those ``keys`` name
    (exact keys and ``prefix*`` patterns)."""
    found: dict[int, dict[str, Latest]] = {run_id: {} for run_id in run_ids}
    if run_ids:
        # Plain rows, not ORM objects: a page of 50 runs reads hundreds of these.
        statement = select(LatestMetric.run_id, LatestMetric.key, LatestMetric.step, LatestMetric.value).where(
            LatestMetric.run_id.in_(run_ids)
        )
        if keys is not None:
            exact = [key for key in keys if not key.endswith("*")]
            prefixes = [key[:-1] for key in keys if key.endswith("*")]
            statement = statement.where(or_(
                LatestMetric.key.in_(exact), *(LatestMetric.key.startswith(prefix, autoescape=True) for prefix in prefixes)
            ))
        rows = session.execute(statement.order_by(LatestMetric.run_id, LatestMetric.key))
        for run_id, key, step, value in rows:
            found[run_id][key] = Latest(step, value)
    return found


def resolve(patterns: Sequence[str] | None, known: Sequence[str]) -> list[str]:
    """The keys ``patterns`` name, in their order: exact keys (present or not) and ``prefix*`` matches."""
    if patterns is None:
        return list(known)
    chosen: dict[str, None] = {}
    for pattern in patterns:
        if pattern.endswith("*"):
            chosen.update((key, None) for key in known if key.startswith(pattern[:-1]))
        else:
            chosen[pattern] = None
    return list(chosen)


def series(
    *, session: Session, run_id: int, keys: Sequence[str] | None = None, since_step: int | None = None,
    max_points: int | None = None,
) -> dict[str, Series]:
    """The run's series named by ``keys`` (all when None; ``prefix*`` allowed), after ``since_step``.

    With ``max_points`` (at least 8), each series holds at most that many points.
    """
    his: dict[str, int] = {
        key: step for key, step in session.execute(
            select(LatestMetric.key, LatestMetric.step).where(LatestMetric.run_id == run_id)
        )
    }
    result: dict[str, Series] = {}
    whole: list[str] = []
    after = -1 if since_step is None else since_step
    for key in resolve(keys, sorted(his)):
        hi = his.get(key)
        result[key] = Series([], [])
        if hi is None or hi <= after:
            continue
        if max_points is None:
            whole.append(key)
            continue
        # ORDER BY ... LIMIT 1 rather than min(): an index probe whatever the table's statistics say.
        lo = session.scalar(
            select(Metric.step).where(Metric.run_id == run_id, Metric.key == key, Metric.step > after)
            .order_by(Metric.step).limit(1)
        )
        bucketing = rollups.plan(lo, hi, max_points)
        extremes = rollups.bucket_extremes(session, run_id, key, bucketing, lo, hi, after) if bucketing else None
        if extremes is None or sum(row.n for row in extremes) <= max_points:
            whole.append(key)
        else:
            result[key] = _points(extremes)
    if whole:
        rows = session.execute(
            select(Metric.key, Metric.step, Metric.value)
            .where(Metric.run_id == run_id, Metric.key.in_(whole), Metric.step > after)
            .order_by(Metric.key, Metric.step)
        )
        for key, step, value in rows:
            result[key].steps.append(step)
            result[key].values.append(value)
    return result


def _points(extremes: list[Row[Any]]) -> Series:
    result = Series([], [])
    for row in extremes:
        pair = sorted({(row.min_step, row.min_value), (row.max_step, row.max_value)})
        for step, value in pair:
            result.steps.append(step)
            result.values.append(value)
    return result


def iter_points(*, session: Session, run_id: int, keys: Sequence[str] | None = None) -> Iterator[Row[Any]]:
    """Every point of the run (``key, step, value, time``) by key and step, streamed from the database."""
    statement = select(Metric.key, Metric.step, Metric.value, Metric.time).where(Metric.run_id == run_id)
    if keys is not None:
        statement = statement.where(Metric.key.in_(resolve(keys, series_keys(session=session, run_id=run_id))))
    yield from session.execute(statement.order_by(Metric.key, Metric.step).execution_options(yield_per=5000))

