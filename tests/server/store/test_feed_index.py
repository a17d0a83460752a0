"""A live stream's read of a long run is an index probe per point, not a scan of the run's events."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, inspect

from server.db import Database
from server.models import utcnow
from server.store import events, feed, metrics, runs
from trainer.config import TrainConfig


def test_run_events_are_indexed_by_run_and_time(database):
    indexes = {index["name"]: index["column_names"] for index in inspect(database.engine).get_indexes("run_event")}
    assert indexes["ix_run_event_run_id_time"] == ["run_id", "time"]


# EXPLAIN QUERY PLAN is SQLite's; PostgreSQL's plan depends on its statistics.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_bundled_points_check_probes_the_index_on_sqlite(database: Database):
    with database.transaction() as session:
        run_id = runs.create(session=session, config=TrainConfig(dataset="mfeat", epochs=3), execute=True).id
    start = utcnow()
    with database.transaction() as session:
        metrics.ingest(session=session, run_id=run_id, points=[
            metrics.Point(f"k{k}", step, 1.0, start + timedelta(seconds=step)) for step in range(20) for k in range(4)
        ])
        events.add(session=session, run_id=run_id, events=[
            events.NewEvent(step=i, kind="x", message="m", time=start + timedelta(seconds=i, microseconds=1))
            for i in range(30)
        ])
    statements: list[tuple[str, object]] = []

    def record(_conn, _cursor, statement, parameters, _context, _many) -> None:
        statements.append((statement, parameters))

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        with database.transaction(write=False) as session:
            found = feed.steps_after(session=session, run_id=run_id, after=-1, max_steps=500, bundles=True)
    finally:
        event.remove(database.engine, "before_cursor_execute", record)
    assert [s.step for s in found] == list(range(20))
    plans = []
    with database.engine.connect() as connection:
        for statement, parameters in statements:
            if "run_event" in statement:
                plans += [row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)]
    assert plans, "steps_after read no run_event"
    assert not [p for p in plans if p.startswith("SCAN") and "run_event" in p], plans
    assert any("ix_run_event_run_id_time" in p for p in plans), plans


def _statements_of(database: Database, read) -> tuple[object, list[str]]:
    seen: list[str] = []

    def record(_conn, _cursor, statement, _parameters, _context, _many) -> None:
        seen.append(statement)

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        with database.transaction(write=False) as session:
            result = read(session)
    finally:
        event.remove(database.engine, "before_cursor_execute", record)
    return result, [s for s in seen if s.lstrip().upper().startswith("SELECT")]


@pytest.mark.parametrize("execute", [True, False])
def test_an_idle_poll_reads_only_the_latest_values(database: Database, execute: bool):
    with database.transaction() as session:
        config = TrainConfig(dataset="mfeat", epochs=3) if execute else None
        run_id = runs.create(session=session, config=config, execute=execute).id
        metrics.ingest(session=session, run_id=run_id, points=[
            metrics.Point(key, step, 1.0, utcnow()) for step in (1, 2, 3) for key in ("a", "b")
        ])

    def poll(after: int):
        return lambda session: feed.steps_after(
            session=session, run_id=run_id, after=after, max_steps=10, bundles=execute,
        )

    # Caught up: the cursor is at step 3 (a logged run's highest step is sent at once too).
    caught_up = 3
    found, selects = _statements_of(database, poll(caught_up))
    assert found == [] and len(selects) == 1 and "latest_metric" in selects[0] and " metric" not in selects[0]
    # One step behind: the next step still comes, nothing is skipped.
    found, _ = _statements_of(database, poll(caught_up - 1))
    assert found == [feed.StepPoints(caught_up, {"a": 1.0, "b": 1.0})]


def test_a_run_without_points_yields_nothing(database: Database):
    with database.transaction() as session:
        run_id = runs.create(session=session, config=TrainConfig(dataset="mfeat", epochs=3), execute=True).id
    with database.transaction(write=False) as session:
        assert feed.steps_after(session=session, run_id=run_id, after=-1, max_steps=5, bundles=True) == []
