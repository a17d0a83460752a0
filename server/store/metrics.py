"""Metric series: idempotent batched ingest, latest values, and downsampled reads.

A series is the points ``(step, value)`` of one key of one run; a repeated
``(run, key, step)`` overwrites. Downsampling keeps, in each bucket of steps,
the point of the minimum and the point of the maximum (real points, never
averages), so spikes survive. `plan` chooses the buckets:

- a short series (``hi - lo + 1 <= max_points``) is returned whole;
- otherwise there are between ``max_points // 4`` and ``max_points // 2``
  buckets of equal width, each giving at most two points. They are computed
  from the *rollups* when the series is long: for each level ``l``, the
  extremes of every bucket of ``width(l) = 16 * 4**l`` steps, kept up to date
  by `ingest`, so that a read merges a few thousand rows in SQL instead of
  scanning millions of points.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Double,
    Row,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from server.models import LatestMetric, Metric, MetricRollup

MAX_STEP = 2**53 - 1  # the largest integer a browser's JavaScript holds exactly
MAX_POINTS_PER_REQUEST = 50_000
ROLLUP_BASE, ROLLUP_FANOUT = 16, 4
LEVELS = range(25)  # width(24) = 2**52: two buckets cover every step
_INGEST_LOCK = 0x6D6574  # with the run id: one ingest of a run at a time (rollups are recomputed)

_metric = Metric.__table__
_latest = LatestMetric.__table__
_rollup = MetricRollup.__table__


class Point(NamedTuple):
    key: str
    step: int
    value: float
    time: datetime


@dataclass
class Series:
    steps: list[int]
    values: list[float]


@dataclass(frozen=True)
class Bucketing:
    """Buckets of ``width`` steps from ``origin``, computed from the points (``level`` None) or from
    the rollups of ``level`` (``width`` is then a multiple of that level's width)."""

    origin: int
    width: int
    level: int | None

    def bucket(self, step: int) -> int:
        return (step - self.origin) // self.width


def width(level: int) -> int:
    return ROLLUP_BASE * ROLLUP_FANOUT**level


def plan(lo: int, hi: int, max_points: int) -> Bucketing | None:
    """How to downsample the steps ``lo..hi`` to at most ``max_points`` points (None: no need).

    ``max_points`` must be at least 8, so that the rollup level chosen is one `ingest` keeps.
    """
    if hi - lo + 1 <= max_points:
        return None
    buckets = max_points // 2
    for level in LEVELS:  # the finest level with at most 4 rollup rows per bucket
        size = width(level)
        rows = hi // size - lo // size + 1
        if rows <= 4 * buckets:
            break
    if level == 0 and rows <= buckets:  # even the finest rollup is too coarse: use the points
        return Bucketing(origin=lo, width=-(-(hi - lo + 1) // buckets), level=None)
    return Bucketing(origin=lo // size * size, width=-(-rows // buckets) * size, level=level)


# -- writing --------------------------------------------------------------------------------------


def ingest(*, session: Session, run_id: int, points: Sequence[Point]) -> int:
    """Upsert ``points`` (a repeated ``(key, step)`` overwrites; the last one in ``points`` wins).

    Keeps the latest value of each key and the rollups up to date, in the caller's
    transaction. Returns the number of distinct points written.
    """
    unique = [  # naive times are UTC (and PostgreSQL's driver cannot mix them with aware ones in an array)
        point if point.time.tzinfo is not None else point._replace(time=point.time.replace(tzinfo=UTC))
        for point in {(point.key, point.step): point for point in points}.values()
    ]
    if not unique:
        return 0
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        # Rollups are recomputed from what is committed; two ingests of one run must not interleave.
        session.execute(text("SELECT pg_advisory_xact_lock(:key, :run)"), {"key": _INGEST_LOCK, "run": run_id})
    previous_hi: dict[str, int] = {key: step for key, step in session.execute(
        select(LatestMetric.key, LatestMetric.step).where(
            LatestMetric.run_id == run_id, LatestMetric.key.in_(sorted({point.key for point in unique}))
        )
    )}
    # latest_metric first: its foreign key locks the run row, so the run cannot be deleted under us.
    _upsert_latest(session, dialect, run_id, unique)
    # Points after every stored step of their key cannot collide: a plain INSERT is enough (and faster).
    appending = all(point.step > previous_hi.get(point.key, -1) for point in unique)
    _write_points(session, dialect, run_id, unique, overwrite=not appending)
    _update_rollups(session, dialect, run_id, unique, previous_hi)
    return len(unique)


def _insert(dialect: str) -> Any:
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def _write_points(session: Session, dialect: str, run_id: int, points: list[Point], *, overwrite: bool) -> None:
    on_conflict = " ON CONFLICT (run_id, key, step) DO UPDATE SET value = EXCLUDED.value, time = EXCLUDED.time"
    if dialect == "postgresql":
        # The whole batch in one statement, its columns as four arrays sent in binary (``%b``):
        # psycopg formats 50,000 floats and timestamps as text ten times slower than it packs them.
        driver = session.connection().connection.driver_connection
        with driver.cursor() as cursor:
            cursor.execute(
                "INSERT INTO metric (run_id, key, step, value, time) "
                "SELECT %(run_id)b, * FROM unnest(%(keys)b::text[], %(steps)b::bigint[], %(values)b::float8[], "
                "%(times)b::timestamptz[])" + (on_conflict if overwrite else ""),
                {
                    "run_id": run_id,
                    "keys": [p.key for p in points],
                    "steps": [p.step for p in points],
                    "values": [p.value for p in points],
                    "times": [p.time for p in points],
                },
            )
        return
    statement = sqlite.insert(_metric)
    if overwrite:
        statement = statement.on_conflict_do_update(
            index_elements=["run_id", "key", "step"], set_={"value": statement.excluded.value, "time": statement.excluded.time}
        )
    session.execute(statement, [{"run_id": run_id, **p._asdict()} for p in points])


def _upsert_latest(session: Session, dialect: str, run_id: int, points: list[Point]) -> None:
    newest: dict[str, Point] = {}
    for point in points:
        if point.key not in newest or point.step >= newest[point.key].step:
            newest[point.key] = point
    statement = _insert(dialect)(_latest)
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["run_id", "key"],
        set_={"step": excluded.step, "value": excluded.value, "time": excluded.time},
        where=_latest.c.step <= excluded.step,  # a late point of an earlier step is not the latest
    )
    session.execute(statement, [{"run_id": run_id, **p._asdict()} for p in newest.values()])


def _update_rollups(
    session: Session, dialect: str, run_id: int, points: list[Point], previous_hi: dict[str, int]
) -> None:
    """Recompute every rollup bucket the points fall in, level by level, from the level below.

    A level starts being kept once a series reaches its width; it is then filled whole.
    """
    affected: dict[str, set[int]] = defaultdict(set)
    hi: dict[str, int] = dict(previous_hi)
    for point in points:
        affected[point.key].add(point.step // ROLLUP_BASE)
        hi[point.key] = max(hi.get(point.key, point.step), point.step)
    for level in LEVELS:
        if level > 0:
            for key in list(affected):
                if width(level) > hi[key]:
                    del affected[key]  # the series is shorter than one bucket of this level
                elif width(level) > previous_hi.get(key, -1):
                    affected[key] = set(range(hi[key] // width(level) + 1))  # a new level: all of it
                else:
                    affected[key] = {bucket // ROLLUP_FANOUT for bucket in affected[key]}
        if not affected:
            return
        ranges = [(key, a, b) for key, buckets in affected.items() for a, b in _runs(buckets)]
        for chunk in range(0, len(ranges), 200):  # keep each statement's OR list short
            _recompute(session, dialect, run_id, level, ranges[chunk:chunk + 200])


def _runs(buckets: set[int]) -> Iterator[tuple[int, int]]:
    """Consecutive integers as inclusive ranges: {1, 2, 3, 7} -> (1, 3), (7, 7)."""
    ordered = sorted(buckets)
    start = previous = ordered[0]
    for bucket in ordered[1:]:
        if bucket != previous + 1:
            yield start, previous
            start = bucket
        previous = bucket
    yield start, previous


def _recompute(session: Session, dialect: str, run_id: int, level: int, ranges: list[tuple[str, int, int]]) -> None:
    if level == 0:
        source = select(
            Metric.key, (Metric.step // ROLLUP_BASE).label("bucket"), Metric.step, Metric.value,
            literal(1).label("weight"),
        ).where(Metric.run_id == run_id, or_(*(
            and_(Metric.key == key, Metric.step.between(a * ROLLUP_BASE, b * ROLLUP_BASE + ROLLUP_BASE - 1))
            for key, a, b in ranges
        )))
    else:
        source = union_all(*_children(
            MetricRollup.bucket // ROLLUP_FANOUT,
            MetricRollup.run_id == run_id, MetricRollup.level == level - 1, or_(*(
                and_(MetricRollup.key == key, MetricRollup.bucket.between(a * ROLLUP_FANOUT, b * ROLLUP_FANOUT + ROLLUP_FANOUT - 1))
                for key, a, b in ranges
            )),
        ))
    extremes = _extremes(source.subquery(), dialect)
    statement = _insert(dialect)(_rollup).from_select(
        ["run_id", "level", "key", "bucket", "count", "min_step", "min_value", "max_step", "max_value"],
        # The WHERE keeps SQLite from reading ON CONFLICT as a join's ON clause.
        select(literal(run_id), literal(level), *extremes.subquery().c).where(true()),
    )
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["run_id", "key", "level", "bucket"],
        set_={name: excluded[name] for name in ("count", "min_step", "min_value", "max_step", "max_value")},
    )
    session.execute(statement)


def _children(parent: ColumnElement[int], *where: ColumnElement[bool]) -> list[Select[Any]]:
    """Rollup rows as candidate points of their ``parent`` bucket: a bucket's extremes are the extremes
    of its children's extreme points, and its count is the sum of theirs (carried by the minima)."""
    child = MetricRollup
    return [
        select(child.key, parent.label("bucket"), child.min_step.label("step"), child.min_value.label("value"),
               child.count.label("weight")).where(*where),
        select(child.key, parent, child.max_step, child.max_value, literal(0)).where(*where),
    ]


def _extremes(source: Any, dialect: str) -> Select[Any]:
    """Per (key, bucket) of ``source`` (key, bucket, step, value, weight): the total weight ``n``
    and the points of the minimum and of the maximum (ties: the earliest step)."""
    if dialect == "postgresql":
        # One hash aggregation, no sort: min(ARRAY[value, step]) is the minimum's point (arrays
        # compare element by element), exact for steps below 2**53; -step makes max() prefer the earliest.
        def pair(step: ColumnElement[Any]) -> ColumnElement[Any]:
            return postgresql.array([source.c.value, cast(step, Double)])

        low = func.min(pair(source.c.step), type_=postgresql.ARRAY(Double))
        high = func.max(pair(-source.c.step), type_=postgresql.ARRAY(Double))
        return select(
            source.c.key, source.c.bucket, func.sum(source.c.weight).label("n"),
            cast(low[2], BigInteger).label("min_step"), func.min(source.c.value).label("min_value"),
            cast(-high[2], BigInteger).label("max_step"), func.max(source.c.value).label("max_value"),
        ).group_by(source.c.key, source.c.bucket)
    partition = (source.c.key, source.c.bucket)
    ranked = select(
        source.c.key, source.c.bucket, source.c.step, source.c.value,
        func.sum(source.c.weight).over(partition_by=partition).label("n"),
        func.row_number().over(partition_by=partition, order_by=(source.c.value, source.c.step)).label("low"),
        func.row_number().over(partition_by=partition, order_by=(source.c.value.desc(), source.c.step)).label("high"),
    ).subquery()
    low_row, high_row = ranked.c.low == 1, ranked.c.high == 1
    return select(
        ranked.c.key, ranked.c.bucket, func.max(ranked.c.n).label("n"),
        func.max(case((low_row, ranked.c.step))).label("min_step"), func.max(case((low_row, ranked.c.value))).label("min_value"),
        func.max(case((high_row, ranked.c.step))).label("max_step"), func.max(case((high_row, ranked.c.value))).label("max_value"),
    ).where(or_(low_row, high_row)).group_by(ranked.c.key, ranked.c.bucket)


# -- reading --------------------------------------------------------------------------------------


def series_keys(*, session: Session, run_id: int) -> list[str]:
    """The keys of the run's series, sorted."""
    return list(session.scalars(select(LatestMetric.key).where(LatestMetric.run_id == run_id).order_by(LatestMetric.key)))


class Latest(NamedTuple):
    step: int
    value: float


def latest(*, session: Session, run_ids: Sequence[int]) -> dict[int, dict[str, Latest]]:
    """For each run, its series' points of the highest step, by key."""
    found: dict[int, dict[str, Latest]] = {run_id: {} for run_id in run_ids}
    if run_ids:
        # Plain rows, not ORM objects: a page of 50 runs reads hundreds of these.
        rows = session.execute(
            select(LatestMetric.run_id, LatestMetric.key, LatestMetric.step, LatestMetric.value)
            .where(LatestMetric.run_id.in_(run_ids)).order_by(LatestMetric.run_id, LatestMetric.key)
        )
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
        bucketing = plan(lo, hi, max_points)
        extremes = _bucket_extremes(session, run_id, key, bucketing, lo, hi, after) if bucketing else None
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


def _bucket_extremes(
    session: Session, run_id: int, key: str, bucketing: Bucketing, lo: int, hi: int, after: int
) -> list[Row[Any]]:
    """Per bucket of ``bucketing``: the count ``n`` and the min and max points of the series after ``after``."""
    points = (Metric.run_id == run_id, Metric.key == key, Metric.step > after)
    if bucketing.level is None:
        source: Any = select(
            Metric.key, ((Metric.step - bucketing.origin) // bucketing.width).label("bucket"), Metric.step,
            Metric.value, literal(1).label("weight"),
        ).where(*points)
    else:
        size = width(bucketing.level)
        first, last, merge = lo // size, hi // size, bucketing.width // size
        parts = []
        if after >= first * size:  # the first rollup row also holds points at or before since_step
            parts.append(select(Metric.key, literal(0).label("bucket"), Metric.step, Metric.value, literal(1).label("weight"))
                         .where(*points, Metric.step < (first + 1) * size))
            first += 1
        parts += _children(
            (MetricRollup.bucket - bucketing.origin // size) // merge,
            MetricRollup.run_id == run_id, MetricRollup.key == key, MetricRollup.level == bucketing.level,
            MetricRollup.bucket.between(first, last),
        )
        source = union_all(*parts)
    return list(session.execute(_extremes(source.subquery(), session.get_bind().dialect.name).order_by("bucket")))


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

