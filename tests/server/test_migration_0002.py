"""Migration 0002 on a database with data, both ways: nothing that cascades from ``run`` is lost."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import inspect, text

from server import migrate
from server.db import Database
from tests.conftest import BACKENDS, OLD_EVENT, OLD_POINTS, OLD_TAG, database_at

COUNTS = ("run", "run_event", "run_tag", "latest_metric", "metric")


@pytest.fixture(params=BACKENDS)
def at_0001(request: pytest.FixtureRequest, tmp_path) -> Iterator[Database]:
    """A database at revision 0001 holding one run with an event, a tag and a point."""
    with database_at(request.param, tmp_path, "0001", (
        "INSERT INTO run (id, name, status, execute, attempts, cancel_requested, epoch, created_at, checkpoint_dir) "
        "VALUES (1, 'old', 'running', true, 2, false, 3, CURRENT_TIMESTAMP, '/old/place')"
    ), OLD_EVENT, OLD_TAG, *OLD_POINTS) as database:
        yield database


def counts(database: Database) -> dict[str, int]:
    with database.engine.connect() as connection:
        return {table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() for table in COUNTS}


def test_upgrading_keeps_every_row_and_counts_no_loss_yet(at_0001):
    migrate.upgrade(at_0001.engine)
    assert migrate.current(at_0001.engine) == migrate.head()
    assert counts(at_0001) == dict.fromkeys(COUNTS, 1)
    with at_0001.engine.connect() as connection:
        assert connection.execute(text("SELECT attempts, losses FROM run")).one() == (2, 0)
    indexes = {index["name"] for index in inspect(at_0001.engine).get_indexes("run_event")}
    assert "ix_run_event_run_id_time" in indexes
    assert "checkpoint_dir" not in {column["name"] for column in inspect(at_0001.engine).get_columns("run")}


def test_downgrading_keeps_every_row(at_0001):
    migrate.upgrade(at_0001.engine)
    migrate.downgrade(at_0001.engine, "0001")
    assert migrate.current(at_0001.engine) == "0001"
    assert counts(at_0001) == dict.fromkeys(COUNTS, 1)
    columns = {column["name"] for column in inspect(at_0001.engine).get_columns("run")}
    assert "losses" not in columns and "checkpoint_dir" in columns  # back, empty: nothing read it
    assert "ix_run_event_run_id_time" not in {index["name"] for index in inspect(at_0001.engine).get_indexes("run_event")}
