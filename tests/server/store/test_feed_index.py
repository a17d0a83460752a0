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


def test_the_bundled_points_check_probes_the_index_on_sqlite(database: Database):
    if database.dialect != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's; PostgreSQL's plan depends on its statistics")
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
            found = feed.steps_after(session=session, run_id=run_id, after=-1, max_steps=500, bundles=True, hold_last=False)
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
