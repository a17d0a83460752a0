"""Migration 0004 (workers) on a database with data, both ways: the worker table and run.machine come and go,
and nothing that cascades from ``run`` is lost."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import inspect, text

from server import migrate
from server.db import Database
from tests.conftest import BACKENDS, OLD_EVENT, OLD_POINTS, OLD_TAG, database_at

COUNTS = ("run", "run_event", "run_tag", "latest_metric", "metric")


@pytest.fixture(params=BACKENDS)
def at_0003(request: pytest.FixtureRequest, tmp_path) -> Iterator[Database]:
    """A database at revision 0003 holding one run with an event, a tag and a point."""
    with database_at(request.param, tmp_path, "0003", (
        "INSERT INTO run (id, name, status, execute, attempts, losses, cancel_requested, epoch, created_at) "
        "VALUES (1, 'old', 'running', true, 1, 0, false, 3, CURRENT_TIMESTAMP)"
    ), OLD_EVENT, OLD_TAG, *OLD_POINTS) as database:
        yield database


def counts(database: Database) -> dict[str, int]:
    with database.engine.connect() as connection:
        return {table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() for table in COUNTS}


def test_upgrading_adds_the_worker_table_and_an_empty_machine_to_each_run(at_0003):
    migrate.upgrade(at_0003.engine, "0004")
    assert counts(at_0003) == dict.fromkeys(COUNTS, 1)
    schema = inspect(at_0003.engine)
    assert "worker" in schema.get_table_names()
    assert "ix_worker_queue_expires_at" in {index["name"] for index in schema.get_indexes("worker")}
    with at_0003.engine.connect() as connection:
        assert connection.execute(text("SELECT machine FROM run")).scalar_one() is None


def test_downgrading_drops_them_and_keeps_every_run_row(at_0003):
    migrate.upgrade(at_0003.engine, "0004")
    with at_0003.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO worker (name, host, pid, process, queue, facts, started_at, heartbeat_at, expires_at, state, "
            "run_id, recent) VALUES ('box:1', 'box', 1, 'cpu0', 'cpu', '{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, "
            "CURRENT_TIMESTAMP, 'busy', 1, '[]')"
        ))
    migrate.downgrade(at_0003.engine, "0003")
    assert migrate.current(at_0003.engine) == "0003"
    assert counts(at_0003) == dict.fromkeys(COUNTS, 1)
    schema = inspect(at_0003.engine)
    assert "worker" not in schema.get_table_names()
    assert "machine" not in {column["name"] for column in schema.get_columns("run")}
