"""Migration 0006 (metric_update, the runs-page filter indexes) on a database with data, both ways."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import inspect, text

from server import migrate
from server.db import Database
from server.models import RUN_FILTER_COLUMNS
from tests.conftest import BACKENDS, OLD_POINTS, database_at

COUNTS = ("run", "latest_metric", "metric")
NEW_INDEXES = {f"ix_run_{column}_created_at_id" for column in RUN_FILTER_COLUMNS}
OLD_INDEXES = {"ix_run_status_created_at", "ix_run_experiment_id", "ix_run_method", "ix_run_dataset", "ix_run_sweep_id"}


@pytest.fixture(params=BACKENDS)
def at_0005(request: pytest.FixtureRequest, tmp_path) -> Iterator[Database]:
    """A database at revision 0005 holding one logged run with a point."""
    with database_at(request.param, tmp_path, "0005", (
        "INSERT INTO run (id, name, status, execute, attempts, losses, cancel_requested, epoch, created_at) "
        "VALUES (1, 'old', 'running', false, 0, 0, false, 3, CURRENT_TIMESTAMP)"
    ), *OLD_POINTS) as database:
        yield database


def counts(database: Database) -> dict[str, int]:
    with database.engine.connect() as connection:
        return {table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() for table in COUNTS}


def run_indexes(database: Database) -> set[str]:
    return {index["name"] for index in inspect(database.engine).get_indexes("run")}


def test_upgrading_keeps_every_row_and_replaces_the_filter_indexes(at_0005):
    migrate.upgrade(at_0005.engine)

    assert migrate.current(at_0005.engine) == "0006"
    assert counts(at_0005) == dict.fromkeys(COUNTS, 1)
    assert run_indexes(at_0005) >= NEW_INDEXES and not OLD_INDEXES & run_indexes(at_0005)
    with at_0005.engine.begin() as connection:  # a late point of the old run is recorded, and goes with its run
        connection.execute(text("INSERT INTO metric_update (run_id, write, key, step) VALUES (1, 1, 'loss', 3)"))
    with at_0005.transaction() as session:  # foreign keys on, as the server runs them
        session.execute(text("DELETE FROM run"))
    with at_0005.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM metric_update")).scalar_one() == 0


def test_downgrading_keeps_every_row_and_restores_the_old_indexes(at_0005):
    migrate.upgrade(at_0005.engine)
    migrate.downgrade(at_0005.engine, "0005")

    assert migrate.current(at_0005.engine) == "0005"
    assert counts(at_0005) == dict.fromkeys(COUNTS, 1)
    assert run_indexes(at_0005) >= OLD_INDEXES and not NEW_INDEXES & run_indexes(at_0005)
    assert "metric_update" not in inspect(at_0005.engine).get_table_names()
