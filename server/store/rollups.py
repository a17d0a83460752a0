"""Rollups: the minimum and maximum point of every bucket of ``16 * 4**level`` steps of a series.

`recompute` recomputes, within an ingest, every bucket its points fall in, level by level
from the level below (a bucket's extremes are the extremes of its children's), so a
point overwritten with a smaller value never leaves a stale maximum behind. An ingest
that only appends (every point after its series' last step, the way a training loop
logs) cannot invalidate a stored extreme: its own extremes per bucket and level are
computed here (`appended`) and merged into the stored rows in one statement (`merge_appended`).

`plan` decides how a read of ``lo..hi`` is bucketed, and `bucket_extremes` computes
those buckets in SQL: from the points of a moderately long series, else by merging at
most four rollup rows per bucket, so that a million-point series downsamples from a few
thousand rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
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
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from server.models import Metric, MetricRollup
from server.store.arrays import Float8Array, Int8Array, TextArray
from server.store.dialect import insert as dialect_insert

BASE, FANOUT = 16, 4
LEVELS = range(25)  # width(24) = 2**52: two buckets cover every step below 2**53
MAX_LEVEL = LEVELS[-1] + 1
_rollup = MetricRollup.__table__


class Stepped(Protocol):
    key: str
    step: int
    value: float


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
    return BASE * FANOUT**level


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


def recompute(
    session: Session, dialect: str, run_id: int, points: Sequence[Stepped], previous_hi: dict[str, int]
) -> None:
    """Recompute every bucket ``points`` fall in, level by level from the level below.

    ``previous_hi`` is each key's highest step before these points: a level starts being
    kept once a series reaches its width, and is then filled whole.
    """
    steps: dict[str, set[int]] = defaultdict(set)
    hi = _highest(points, previous_hi)
    for point in points:
        steps[point.key].add(point.step // BASE)
    # Buckets as inclusive ranges, never enumerated: steps may be as sparse as 0 and 2**52.
    affected = {key: _merge((bucket, bucket) for bucket in buckets) for key, buckets in steps.items()}
    for level in LEVELS:
        if level > 0:
            for key in list(affected):
                if width(level) > hi[key]:
                    del affected[key]  # the series is shorter than one bucket of this level
                elif width(level) > previous_hi.get(key, -1):
                    affected[key] = [(0, hi[key] // width(level))]  # a new level: all of it
                else:
                    affected[key] = _merge((a // FANOUT, b // FANOUT) for a, b in affected[key])
        if not affected:
            return
        ranges = [(key, a, b) for key, spans in affected.items() for a, b in spans]
        for chunk in range(0, len(ranges), 200):  # keep each statement's OR list short
            _recompute(session, dialect, run_id, level, ranges[chunk:chunk + 200])


def _highest(points: Sequence[Stepped], previous_hi: dict[str, int]) -> dict[str, int]:
    """Each key's highest step once ``points`` are written."""
    hi: dict[str, int] = dict(previous_hi)
    for point in points:
        hi[point.key] = max(hi.get(point.key, point.step), point.step)
    return hi


_INSERT = "INSERT INTO metric_rollup (run_id, key, level, bucket, count, min_step, min_value, max_step, max_value)"
# A stored bucket merged with the appended points' (EXCLUDED): counts add up; on a tie the stored extreme stays.
_ON_CONFLICT_MERGED = "ON CONFLICT (run_id, key, level, bucket) DO UPDATE SET " + ", ".join((
    "count = metric_rollup.count + EXCLUDED.count",
    *(f"{column} = CASE WHEN EXCLUDED.{side}_value {op} metric_rollup.{side}_value THEN EXCLUDED.{column} "
      f"ELSE metric_rollup.{column} END"
      for side, op in (("min", "<"), ("max", ">")) for column in (f"{side}_step", f"{side}_value")),
))
# One statement, its columns as arrays packed in binary (`server.store.arrays`, as points are written):
# building and binding a row at a time through SQLAlchemy cost more than the upsert itself.
_MERGE_ARRAYS = (
    _INSERT + " SELECT %(run_id)b, * FROM unnest(%(keys)b::text[], %(levels)b::bigint[], %(buckets)b::bigint[], "
    "%(counts)b::bigint[], %(min_steps)b::bigint[], %(min_values)b::float8[], %(max_steps)b::bigint[], "
    "%(max_values)b::float8[]) " + _ON_CONFLICT_MERGED
)

Merged = tuple[str, int, int, int, int, float, int, float]  # key, level, bucket, count, min and max points
# A whole level of some keys from the level below (`Appended.filled`), as `_extremes` computes it on PostgreSQL:
# a parent's extremes are its children's, min(ARRAY[value, step]) the minimum's point, the earliest on a tie.
_FILL = (
    _INSERT + " SELECT run_id, key, %(level)s, bucket / " + str(FANOUT) + ", sum(count), "
    "((min(ARRAY[min_value, min_step::float8]))[2])::bigint, min(min_value), "
    "(-((max(ARRAY[max_value, -max_step::float8]))[2]))::bigint, max(max_value) "
    "FROM metric_rollup WHERE run_id = %(run_id)s AND level = %(level)s - 1 AND key = ANY(%(keys)b::text[]) "
    "GROUP BY run_id, key, bucket / " + str(FANOUT) + " ON CONFLICT (run_id, key, level, bucket) DO UPDATE SET "
    + ", ".join(f"{column} = EXCLUDED.{column}" for column in ("count", "min_step", "min_value", "max_step", "max_value"))
)


@dataclass(frozen=True)
class Appended:
    """The rollups of an appended batch: ``rows`` to merge into the stored ones, then ``filled``, each level
    (ascending) with the keys whose series reach it with this batch over stored points: such a level is
    computed whole, in SQL, from the level below once that is merged."""

    rows: list[Merged]
    filled: list[tuple[int, list[str]]]


def appended(points: Sequence[Stepped], previous_hi: dict[str, int]) -> Appended:
    """The rollups of ``points``, which only append to their series (each after its key's step in
    ``previous_hi``: the caller has checked).

    Appended points are new steps, so each bucket's count grows by theirs, and its extremes are the
    stored ones or the batch's, whichever is smaller (larger); on a tie the stored one, whose step is
    earlier (the rule of `_extremes`). A level a series reaches with this batch is filled whole from
    the points when the series had none before; over stored points, it is left to `Appended.filled`
    (it was a full recompute from the points, a spike of 20 ms in the ingest of every series as it
    crossed step 64, 256, 1,024, ... : all of a loop's keys at once).
    """
    # Level 0 from the points, each level above from the one below (a bucket's extremes are its
    # children's), always in step order, so that on a tie the earlier point stays.
    below, tops = _first_level(points)
    hi = {**previous_hi, **tops}  # appended: each key's highest step is now its batch's
    reached: dict[str, int] = {}  # the first level each series reaches over stored points
    for key, top in tops.items():
        before = previous_hi.get(key, -1)
        first = next((level for level in LEVELS[1:] if before < width(level) <= top), None) if before >= 0 else None
        if first is not None:
            reached[key] = first
    rows: dict[tuple[str, int, int], list[Any]] = {}
    for level in LEVELS:
        rows.update(((key, level, bucket), row) for (key, bucket), row in below.items())
        above: dict[tuple[str, int], list[Any]] = {}
        for (key, bucket), row in below.items():  # in (key, bucket) order, as built
            if width(level + 1) <= hi[key] and reached.get(key, MAX_LEVEL) > level + 1:
                _fold(above, (key, bucket // FANOUT), list(row))
        if not above:
            break
        below = above
    filled = [
        (level, keys) for level in LEVELS[1:]
        if (keys := [key for key, first in reached.items() if first <= level and width(level) <= hi[key]])
    ]
    return Appended([(key, level, bucket, *row) for (key, level, bucket), row in rows.items()], filled)


def _first_level(points: Sequence[Stepped]) -> tuple[dict[tuple[str, int], list[Any]], dict[str, int]]:
    """Level 0 of `appended`: ``[count, min_step, min_value, max_step, max_value]`` of every (key, bucket),
    in (key, bucket) order, each extreme the earliest point that has it; and each key's highest step. In
    numpy: folding the points one by one in Python was a tenth of a 1,000-point ingest."""
    if not points:
        return {}, {}
    codes: dict[str, int] = {}  # keys as integers, in order of appearance (the order of keys is irrelevant)
    key = np.array([codes.setdefault(point.key, len(codes)) for point in points])
    step = np.array([point.step for point in points], dtype=np.int64)
    value = np.array([point.value for point in points], dtype=np.float64)
    order = np.lexsort((step, key))  # by key, then step
    key, step, value = key[order], step[order], value[order]
    bucket = step // BASE
    starts = np.empty(len(step), dtype=bool)  # where a (key, bucket) begins
    starts[0] = True
    starts[1:] = (key[1:] != key[:-1]) | (bucket[1:] != bucket[:-1])
    first = np.flatnonzero(starts)
    group = np.cumsum(starts) - 1
    counts = np.diff(first, append=len(step))
    low = _earliest(value == np.minimum.reduceat(value, first)[group], group)
    high = _earliest(value == np.maximum.reduceat(value, first)[group], group)
    names = list(codes)
    last = np.flatnonzero(np.diff(key, append=-1))  # the last point of each key: its highest step
    return {
        (names[k], b): [n, step_lo, value_lo, step_hi, value_hi]
        for k, b, n, step_lo, value_lo, step_hi, value_hi in zip(
            key[first].tolist(), bucket[first].tolist(), counts.tolist(), step[low].tolist(), value[low].tolist(),
            step[high].tolist(), value[high].tolist(), strict=True,
        )
    }, dict(zip([names[k] for k in key[last].tolist()], step[last].tolist(), strict=True))


def _earliest(hit: np.ndarray, group: np.ndarray) -> np.ndarray:
    """The first index of each group where ``hit`` holds (every group, sorted, has one)."""
    hits = np.flatnonzero(hit)
    return hits[np.flatnonzero(np.diff(group[hits], prepend=-1))]


def merge_appended(session: Session, run_id: int, merged: Appended) -> None:
    """Merge `appended`'s rows into the stored rollups and fill its new levels (on PostgreSQL,
    `merge_appended_arrays` is faster)."""
    session.execute(text(_INSERT + " VALUES (:run_id, :key, :level, :bucket, :count, :min_step, :min_value, "
                                   ":max_step, :max_value) " + _ON_CONFLICT_MERGED), [
        {"run_id": run_id, "key": key, "level": level, "bucket": bucket, "count": n, "min_step": min_step,
         "min_value": min_value, "max_step": max_step, "max_value": max_value}
        for key, level, bucket, n, min_step, min_value, max_step, max_value in merged.rows
    ])
    dialect = session.get_bind().dialect.name
    for level, keys in merged.filled:
        _recompute(session, dialect, run_id, level, [(key, 0, 2**53 // width(level)) for key in keys])  # all of it


def merge_appended_arrays(cursor: Any, run_id: int, merged: Appended) -> None:
    """`merge_appended` on PostgreSQL through a psycopg ``cursor``, one statement a level, which may be in a pipeline."""
    keys, levels, buckets, counts, min_steps, min_values, max_steps, max_values = zip(*merged.rows, strict=True)
    cursor.execute(_MERGE_ARRAYS, {
        "run_id": run_id, "keys": TextArray.of(keys), "levels": Int8Array.of(levels), "buckets": Int8Array.of(buckets),
        "counts": Int8Array.of(counts), "min_steps": Int8Array.of(min_steps), "min_values": Float8Array.of(min_values),
        "max_steps": Int8Array.of(max_steps), "max_values": Float8Array.of(max_values),
    })
    for level, keys in merged.filled:
        cursor.execute(_FILL, {"run_id": run_id, "level": level, "keys": TextArray.of(keys)})


def _fold(rows: dict[tuple[str, int], list[Any]], bucket: tuple[str, int], row: list[Any]) -> None:
    """Merge ``row`` ``[count, min_step, min_value, max_step, max_value]``, of later steps, into ``bucket``'s."""
    into = rows.get(bucket)
    if into is None:
        rows[bucket] = row
        return
    into[0] += row[0]
    if row[2] < into[2]:
        into[1], into[2] = row[1], row[2]
    if row[4] > into[4]:
        into[3], into[4] = row[3], row[4]


def _merge(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Inclusive ranges merged where they touch: (1, 2), (3, 3), (7, 9) -> (1, 3), (7, 9)."""
    merged: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def _recompute(session: Session, dialect: str, run_id: int, level: int, ranges: list[tuple[str, int, int]]) -> None:
    if level == 0:
        source = select(
            Metric.key, (Metric.step // BASE).label("bucket"), Metric.step, Metric.value,
            literal(1).label("weight"),
        ).where(Metric.run_id == run_id, or_(*(
            and_(Metric.key == key, Metric.step.between(a * BASE, b * BASE + BASE - 1))
            for key, a, b in ranges
        )))
    else:
        source = union_all(*_children(
            MetricRollup.bucket // FANOUT,
            MetricRollup.run_id == run_id, MetricRollup.level == level - 1, or_(*(
                and_(MetricRollup.key == key, MetricRollup.bucket.between(a * FANOUT, b * FANOUT + FANOUT - 1))
                for key, a, b in ranges
            )),
        ))
    extremes = _extremes(source.subquery(), dialect)
    statement = dialect_insert(dialect)(_rollup).from_select(
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


def bucket_extremes(
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
