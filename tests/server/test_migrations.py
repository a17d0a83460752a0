"""Alembic: an empty database migrates to the newest revision and back, and matches the models."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import inspect

from server import migrate
from server.db import Database
from server.models import Base
from tests.conftest import BACKENDS, fresh_postgres


@pytest.fixture(params=BACKENDS)
def empty_database(request: pytest.FixtureRequest, tmp_path) -> Iterator[Database]:
    """A database with no tables at all, of each backend."""
    with contextlib.ExitStack() as cleanup:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'empty.db'}"
        else:
            url = cleanup.enter_context(fresh_postgres())
        database = Database(url)
        cleanup.callback(database.dispose)  # before the PostgreSQL database is dropped
        yield database


def tables(database: Database) -> set[str]:
    return set(inspect(database.engine).get_table_names()) - {"alembic_version"}


def test_an_empty_database_migrates_to_head_and_back_to_base(empty_database):
    assert migrate.current(empty_database.engine) is None
    migrate.upgrade(empty_database.engine)
    assert migrate.current(empty_database.engine) == migrate.head()
    assert tables(empty_database) == set(Base.metadata.tables)
    migrate.downgrade(empty_database.engine, "base")
    assert migrate.current(empty_database.engine) is None and tables(empty_database) == set()
    migrate.upgrade(empty_database.engine)  # and forward again
    assert tables(empty_database) == set(Base.metadata.tables)


def test_the_migrations_build_exactly_the_models(empty_database):
    migrate.upgrade(empty_database.engine)
    config = migrate.alembic_config()
    with empty_database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.check(config)  # raises when the models hold anything the migrations do not


def test_the_server_refuses_an_unmigrated_database_and_names_the_fix(empty_database):
    with pytest.raises(migrate.DatabaseNotReady, match="miles db upgrade"):
        migrate.check_current(empty_database.engine, "here")
    migrate.upgrade(empty_database.engine)
    migrate.check_current(empty_database.engine, "here")


def test_a_database_migrated_by_a_newer_version_is_refused(empty_database):
    migrate.upgrade(empty_database.engine)
    with empty_database.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = 'from_the_future'")
    with pytest.raises(migrate.DatabaseNotReady, match="does not know"):
        migrate.check_current(empty_database.engine, "here")
