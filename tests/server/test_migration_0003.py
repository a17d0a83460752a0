"""Migration 0003 on a database with data, both ways: tokens become members, progress keeps 64 bits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from server import migrate
from server.db import Database
from tests.conftest import BACKENDS, database_at

BIG = 2**40


@pytest.fixture(params=BACKENDS)
def at_0002(request: pytest.FixtureRequest, tmp_path) -> Iterator[Database]:
    """A database at revision 0002 holding one token and one run that created it."""
    with database_at(request.param, tmp_path, "0002", (
        "INSERT INTO api_token (id, name, hash, prefix, created_at) VALUES (1, 'ci', 'h', 'miles_', CURRENT_TIMESTAMP)"
    ), (
        "INSERT INTO run (id, name, status, execute, attempts, losses, cancel_requested, epoch, created_at, "
        "owner_token_id) VALUES (1, 'old', 'running', false, 0, 0, false, 7, CURRENT_TIMESTAMP, 1)"
    )) as database:
        yield database


def test_upgrading_makes_every_token_a_member_and_keeps_the_runs_owner(at_0002):
    migrate.upgrade(at_0002.engine)
    with at_0002.engine.connect() as connection:
        assert connection.execute(text("SELECT name, role FROM api_token")).one() == ("ci", "member")
        assert connection.execute(text("SELECT epoch, owner_token_id FROM run")).one() == (7, 1)


def test_after_upgrading_a_run_holds_progress_past_32_bits(at_0002):
    migrate.upgrade(at_0002.engine)
    with at_0002.engine.begin() as connection:
        connection.execute(text("UPDATE run SET epoch = :big"), {"big": BIG})
    with at_0002.engine.connect() as connection:
        assert connection.execute(text("SELECT epoch FROM run")).scalar_one() == BIG


@pytest.mark.parametrize("at_0002", ["postgresql"], indirect=True)  # SQLite cannot add a CHECK to a table
def test_postgresql_refuses_a_role_it_does_not_know(at_0002):
    migrate.upgrade(at_0002.engine)
    with pytest.raises(IntegrityError, match="ck_api_token_role"), at_0002.engine.begin() as connection:
        connection.execute(text("UPDATE api_token SET role = 'owner'"))


def test_downgrading_keeps_every_row_and_clamps_progress_to_32_bits(at_0002):
    migrate.upgrade(at_0002.engine)
    with at_0002.engine.begin() as connection:
        connection.execute(text("UPDATE run SET epoch = :big"), {"big": BIG})
    migrate.downgrade(at_0002.engine, "0002")
    with at_0002.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM api_token")).scalar_one() == 1
        expected = 2**31 - 1 if at_0002.dialect == "postgresql" else BIG  # SQLite's column was 64-bit all along
        assert connection.execute(text("SELECT epoch FROM run")).scalar_one() == expected
