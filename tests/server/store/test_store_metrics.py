"""The metric store: downsampling keeps every bucket's extremes, and ingest is idempotent under retries."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from server.store import metrics, rollups, runs

NOW = datetime(2024, 1, 1, tzinfo=UTC)
DATABASE_EXAMPLES = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def new_run(database):
    def make() -> int:
        with database.transaction() as session:
            return runs.create(session=session, config=None, execute=False).id

    return make


def ingest(database, run_id: int, points: list[tuple[str, int, float]]) -> None:
    with database.transaction() as session:
        metrics.ingest(session=session, run_id=run_id, points=[metrics.Point(k, s, v, NOW) for k, s, v in points])


def read(database, run_id: int, **options) -> dict[str, metrics.Series]:
    with database.transaction(write=False) as session:
        return metrics.series(session=session, run_id=run_id, **options)


# A series written in batches that may overwrite earlier points: steps spread over a wide range
# (so that reads use the rollups), packed together (so that they bucket the points themselves),
# or as sparse as the API allows.
steps = st.integers(0, 3000) | st.integers(0, 60) | st.integers(0, metrics.MAX_STEP)
batches = st.lists(
    st.lists(st.tuples(steps, st.integers(-50, 50).map(float)), min_size=1, max_size=120),
    min_size=1, max_size=4,
)


@DATABASE_EXAMPLES
@given(batches=batches, max_points=st.integers(10, 60), since=st.none() | st.integers(-1, 3000))
def test_downsampling_keeps_each_buckets_extremes_and_at_most_max_points(database, new_run, batches, max_points, since):
    run_id = new_run()
    stored: dict[int, float] = {}
    for batch in batches:
        ingest(database, run_id, [("loss", step, value) for step, value in batch])
        stored.update(dict(batch))
    expected = sorted((step, value) for step, value in stored.items() if since is None or step > since)
    series = read(database, run_id, keys=["loss"], since_step=since, max_points=max_points)["loss"]
    got = list(zip(series.steps, series.values, strict=True))

    assert len(got) <= max_points
    assert set(got) <= set(expected)  # real points only, nothing averaged
    assert got == sorted(got)
    if len(expected) <= max_points:
        assert got == expected
        return
    bucketing = rollups.plan(expected[0][0], expected[-1][0], max_points)
    assert bucketing is not None
    wanted: dict[int, list[float]] = defaultdict(list)
    kept: dict[int, set[float]] = defaultdict(set)
    for step, value in expected:
        wanted[bucketing.bucket(step)].append(value)
    for step, value in got:
        kept[bucketing.bucket(step)].add(value)
    for bucket, values in wanted.items():
        assert {min(values), max(values)} <= kept[bucket], f"bucket {bucket} lost an extreme"


@settings(DATABASE_EXAMPLES, max_examples=15)
@given(
    points=st.dictionaries(
        st.tuples(st.sampled_from(["loss/train", "util/pix", "util/fou"]), st.integers(0, 500)),
        st.floats(-1e6, 1e6), min_size=1, max_size=200,
    ),
    chunk=st.integers(1, 80),
    retries=st.lists(st.integers(0, 10), max_size=6),
)
def test_retried_and_overlapping_batches_store_each_point_once(database, new_run, points, chunk, retries):
    run_id = new_run()
    flat = [(key, step, value) for (key, step), value in points.items()]
    batches = [flat[i:i + chunk] for i in range(0, len(flat), chunk)]
    for attempt in [*range(len(batches)), *retries]:  # every batch, then some sent again
        ingest(database, run_id, batches[attempt % len(batches)])

    series = read(database, run_id)
    assert sum(len(s.steps) for s in series.values()) == len(points)
    for key, s in series.items():
        assert list(zip(s.steps, s.values, strict=True)) == sorted((st_, v) for (k, st_), v in points.items() if k == key)
    with database.transaction(write=False) as session:
        latest = metrics.latest(session=session, run_ids=[run_id])[run_id]
    for key, row in latest.items():
        top = max(step for (k, step) in points if k == key)
        assert (row.step, row.value) == (top, points[(key, top)])


def test_a_batch_mixing_new_and_stored_steps_overwrites_the_stored_ones(database, new_run):
    run_id = new_run()
    ingest(database, run_id, [("loss", step, 1.0) for step in range(10)])
    ingest(database, run_id, [("loss", 5, 50.0), ("loss", 10, 10.0), ("acc", 0, 0.5)])
    series = read(database, run_id)
    assert series["loss"].steps == list(range(11)) and series["loss"].values[5] == 50.0
    assert series["acc"].values == [0.5]


def test_a_batch_that_repeats_a_point_or_holds_naive_times_or_system_keys(database, new_run):
    """The cases `metrics.ingest` checks in C before it walks the points: a (key, step) twice in one batch
    (the last wins), a naive time (UTC), system keys beside epochs (their steps are seconds: neither the
    epoch nor late), and a batch that comes after one key's steps but not another's."""
    run_id = new_run()
    naive = datetime(2024, 1, 2, 3, 4, 5)
    with database.transaction() as session:
        done = metrics.ingest(session=session, run_id=run_id, progress=True, points=[
            metrics.Point("loss", 1, 1.0, NOW), metrics.Point("sys/cpu", 500, 3.0, NOW),
            metrics.Point("loss", 1, 2.0, naive), metrics.Point("loss", 2, 4.0, NOW),
        ])
    assert (done.accepted, done.epoch) == (3, 2)
    with database.transaction(write=False) as session:
        rows = {(key, step): (value, time) for key, step, value, time in metrics.iter_points(session=session, run_id=run_id)}
        late = session.execute(text("SELECT key, step FROM metric_update WHERE run_id = :r"), {"r": run_id}).all()
    value, time = rows[("loss", 1)]
    assert value == 2.0 and datetime.fromisoformat(str(time)).replace(tzinfo=None) == naive
    assert late == []
    with database.transaction() as session:  # "sys/cpu" at 400 is before its stored 500; "loss" at 3 after its 2
        done = metrics.ingest(session=session, run_id=run_id, points=[
            metrics.Point("sys/cpu", 400, 5.0, NOW), metrics.Point("loss", 3, 8.0, NOW), metrics.Point("loss", 2, 6.0, NOW),
        ])
    with database.transaction(write=False) as session:
        late = session.execute(text("SELECT key, step FROM metric_update WHERE run_id = :r"), {"r": run_id}).all()
    assert done.epoch == 3 and [tuple(row) for row in late] == [("loss", 2)]
    series = read(database, run_id)
    assert series["loss"].values == [2.0, 6.0, 8.0] and series["sys/cpu"].steps == [400, 500]


def test_an_overwritten_extreme_leaves_the_rollups(database, new_run):
    run_id = new_run()
    ingest(database, run_id, [("loss", step, 0.0) for step in range(20_000)])
    ingest(database, run_id, [("loss", 7_000, 9.0)])
    ingest(database, run_id, [("loss", 7_000, 1.0)])  # the spike is corrected
    series = read(database, run_id, max_points=20)["loss"]
    assert max(series.values) == 1.0 and (7_000, 1.0) in zip(series.steps, series.values, strict=True)


@pytest.mark.parametrize(("lo", "hi", "max_points"), [(0, 99, 100), (0, 100, 100), (0, 10**6, 2000), (5, 2**53 - 1, 10)])
def test_a_plan_never_makes_more_buckets_than_half_the_points(lo, hi, max_points):
    bucketing = rollups.plan(lo, hi, max_points)
    if hi - lo + 1 <= max_points:
        assert bucketing is None
    else:
        assert bucketing is not None
        assert bucketing.bucket(hi) - bucketing.bucket(lo) + 1 <= max_points // 2


def test_steps_as_sparse_as_the_largest_allowed_ingest_and_downsample(database, new_run):
    run_id = new_run()
    huge = metrics.MAX_STEP
    ingest(database, run_id, [("t", 0, 1.0), ("t", 1_700_000_000_000, 5.0), ("t", huge, -1.0)])
    ingest(database, run_id, [("t", step, 0.0) for step in range(1, 40)])
    series = read(database, run_id, max_points=10)["t"]
    assert {(1_700_000_000_000, 5.0), (huge, -1.0)} <= set(zip(series.steps, series.values, strict=True))
    assert len(series.steps) <= 10


def rollup_rows(database, run_id: int) -> list[tuple]:
    with database.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(
            "SELECT key, level, bucket, count, min_step, min_value, max_step, max_value FROM metric_rollup "
            "WHERE run_id = :run ORDER BY key, level, bucket"
        ), {"run": run_id})]


@pytest.mark.parametrize("batch", [1, 10, 63, 300])
def test_a_series_reaching_new_levels_over_stored_points_keeps_the_rollups_of_a_recompute(database, new_run, batch):
    """Steps 64, 256 and 1,024 start levels 1 to 3 of a series that has stored points: such a level is
    filled from the level below (`rollups.Appended.filled`), in batches of one step, of a loop's ten,
    and in batches that cross two levels at once, with ties among the values."""
    points = [(key, step, float((step * 7 + len(key)) % 5)) for step in range(1100) for key in ("loss", "util/audio")]
    appended, recomputed = new_run(), new_run()
    for start in range(0, len(points), 2 * batch):
        ingest(database, appended, points[start:start + 2 * batch])
    ingest(database, recomputed, points[:1])
    ingest(database, recomputed, points)
    rows = rollup_rows(database, appended)
    assert {level for _, level, *_ in rows} == {0, 1, 2, 3}
    assert rows == rollup_rows(database, recomputed)


@DATABASE_EXAMPLES
@given(
    series=st.lists(st.integers(-3, 3).map(float), min_size=1, max_size=400),  # few values: many ties
    cuts=st.lists(st.integers(1, 400), max_size=5),
    gap=st.integers(1, 40),
)
def test_appended_batches_keep_the_same_rollups_as_a_full_recompute(database, new_run, series, cuts, gap):
    # Appending runs merge each batch into the rollups; the other writes everything with an overwrite
    # (its first point again), which recomputes every bucket from the points.
    points = [("loss", n * gap, value) for n, value in enumerate(series)]
    appended, recomputed = new_run(), new_run()
    bounds = [0, *sorted(set(cuts)), len(points)]
    for start, end in zip(bounds, bounds[1:], strict=False):
        if start < end:
            ingest(database, appended, points[start:end])
    ingest(database, recomputed, points[:1])
    ingest(database, recomputed, points)
    assert rollup_rows(database, appended) == rollup_rows(database, recomputed)


@DATABASE_EXAMPLES
@given(
    series=st.lists(st.tuples(st.sampled_from(["b/loss", "a/acc", "util/x"]), st.integers(-2, 2).map(float)),
             min_size=1, max_size=300),
    cuts=st.lists(st.integers(1, 300), max_size=4),
    order=st.randoms(use_true_random=False),
)
def test_appended_batches_of_several_keys_in_any_order_keep_the_rollups_of_a_recompute(
    database, new_run, series, cuts, order,
):
    # Each key's steps rise from batch to batch; inside a batch the keys are interleaved and shuffled.
    steps: dict[str, int] = defaultdict(int)
    points = []
    for key, value in series:
        steps[key] += 1 + len(key)  # a different stride per key: buckets end at different points
        points.append((key, steps[key], value))
    appended, recomputed = new_run(), new_run()
    bounds = [0, *sorted(set(cuts)), len(points)]
    for start, end in zip(bounds, bounds[1:], strict=False):
        batch = points[start:end]
        order.shuffle(batch)
        if batch:
            ingest(database, appended, batch)
    ingest(database, recomputed, points[:1])
    ingest(database, recomputed, points)
    assert rollup_rows(database, appended) == rollup_rows(database, recomputed)
