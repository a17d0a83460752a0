"""Migration 0005 (sweeps) on a database with data, both ways: nothing that cascades from ``run`` is lost,
the status check knows 'pruned' exactly while the revision is applied, and Optuna's schema comes and goes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from server import migrate
from server.db import Database
from tests.conftest import BACKENDS, OLD_EVENT, OLD_POINTS, OLD_TAG, database_at, fresh_postgres

COUNTS = ("run", "run_event", "run_tag", "latest_metric", "metric")


@pytest.fixture(params=BACKENDS)
def at_0004(request: pytest.FixtureRequest, tmp_path) -> Iterator[Database]:
    """A database at revision 0004 holding one run with an event, a tag and a point."""
    with database_at(request.param, tmp_path, "0004", (
        "INSERT INTO run (id, name, status, execute, attempts, losses, cancel_requested, epoch, created_at) "
        "VALUES (1, 'old', 'succeeded', true, 1, 0, false, 3, CURRENT_TIMESTAMP)"
    ), OLD_EVENT, OLD_TAG, *OLD_POINTS) as database:
        yield database


def counts(database: Database) -> dict[str, int]:
    with database.engine.connect() as connection:
        return {table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() for table in COUNTS}


def insert_run(database: Database, run_id: int, status: str) -> None:
    with database.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO run (id, name, status, execute, attempts, losses, cancel_requested, epoch, created_at) "
            f"VALUES ({run_id}, 'new', '{status}', true, 1, 0, false, 0, CURRENT_TIMESTAMP)"
        ))


def schemas(database: Database) -> set[str]:
    return set(inspect(database.engine).get_schema_names())


def test_upgrading_keeps_every_row_and_lets_a_run_end_pruned(at_0004):
    migrate.upgrade(at_0004.engine, "0005")

    assert migrate.current(at_0004.engine) == "0005"
    assert counts(at_0004) == dict.fromkeys(COUNTS, 1)
    insert_run(at_0004, 2, "pruned")
    with pytest.raises(IntegrityError, match="ck_run_status"):
        insert_run(at_0004, 3, "paused")
    with at_0004.engine.connect() as connection:
        assert connection.execute(text("SELECT sweep_id FROM run WHERE id = 1")).scalar_one() is None


def test_deleting_a_sweep_keeps_its_runs(at_0004):
    migrate.upgrade(at_0004.engine)
    with at_0004.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO sweep (id, name, status, spec, study_key, settled, created_at) "
            "VALUES (7, 's', 'succeeded', '{}', 'k7', true, CURRENT_TIMESTAMP)"
        ))
        connection.execute(text("UPDATE run SET sweep_id = 7"))
    with at_0004.transaction() as session:  # foreign keys on, as the server runs them
        session.execute(text("DELETE FROM sweep"))

    assert counts(at_0004) == dict.fromkeys(COUNTS, 1)
    with at_0004.engine.connect() as connection:
        assert connection.execute(text("SELECT sweep_id FROM run")).scalar_one() is None


def test_downgrading_keeps_every_row_and_turns_pruned_runs_cancelled(at_0004):
    migrate.upgrade(at_0004.engine, "0005")
    insert_run(at_0004, 2, "pruned")

    migrate.downgrade(at_0004.engine, "0004")

    assert migrate.current(at_0004.engine) == "0004"
    assert counts(at_0004) == {**dict.fromkeys(COUNTS, 1), "run": 2}
    with at_0004.engine.connect() as connection:
        assert connection.execute(text("SELECT status FROM run WHERE id = 2")).scalar_one() == "cancelled"
    with pytest.raises(IntegrityError, match="ck_run_status"):
        insert_run(at_0004, 3, "pruned")
    assert "sweep_id" not in {column["name"] for column in inspect(at_0004.engine).get_columns("run")}
    assert not {"sweep", "sweep_trial"} & set(inspect(at_0004.engine).get_table_names())


@pytest.mark.postgres
def test_optunas_schema_exists_exactly_while_the_revision_is_applied():
    with fresh_postgres() as url:
        database = Database(url)
        try:
            migrate.upgrade(database.engine)
            assert "optuna" in schemas(database)
            migrate.downgrade(database.engine, "0004")
            assert "optuna" not in schemas(database)
        finally:
            database.dispose()
