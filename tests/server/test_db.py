"""The SQLite engine is tuned for a busy server: WAL, foreign keys, writers that wait for the lock."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from server.db import Database, after_commit


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'miles.db'}")
    with database.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    database.dispose()


def test_concurrent_read_then_write_transactions_wait_instead_of_failing(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'miles.db'}")
    with database.transaction() as session:
        session.execute(text("CREATE TABLE counter (n INTEGER)"))
        session.execute(text("INSERT INTO counter VALUES (0)"))
    errors: list[BaseException] = []

    def increment() -> None:
        try:
            for _ in range(20):
                with database.transaction() as session:
                    value = session.execute(text("SELECT n FROM counter")).scalar_one()
                    session.execute(text("UPDATE counter SET n = :n"), {"n": value + 1})
        except BaseException as error:  # collected for the assertion below
            errors.append(error)

    threads = [threading.Thread(target=increment) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with database.transaction(write=False) as session:
        assert session.execute(text("SELECT n FROM counter")).scalar_one() == 80
    assert errors == []
    database.dispose()


def test_after_commit_callbacks_run_only_once_the_transaction_commits(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'miles.db'}")
    ran: list[str] = []
    with database.transaction() as session:
        after_commit(session, lambda: ran.append("committed"))
        assert ran == []
    assert ran == ["committed"]
    with pytest.raises(RuntimeError, match="the handler failed"), database.transaction() as session:
        after_commit(session, lambda: ran.append("rolled back"))
        raise RuntimeError("the handler failed")
    assert ran == ["committed"]
    database.dispose()


def _backend_pid(database: Database) -> int:
    with database.engine.connect() as connection:
        return connection.execute(text("SELECT pg_backend_pid()")).scalar_one()


def _terminate(postgres_url: str, pid: int) -> None:
    import psycopg

    with psycopg.connect(postgres_url.replace("+psycopg", ""), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_a_connection_returned_moments_ago_is_handed_out_without_a_ping(postgres_url, monkeypatch):
    database = Database(postgres_url)
    pings: list[object] = []
    real_ping = database.engine.dialect.do_ping
    monkeypatch.setattr(database.engine.dialect, "do_ping", lambda conn: pings.append(conn) or real_ping(conn))
    first = _backend_pid(database)
    for _ in range(5):
        assert _backend_pid(database) == first  # the same pooled connection each time
    assert pings == []
    database.dispose()


def test_a_connection_idle_long_enough_is_pinged_and_replaced_when_the_server_closed_it(postgres_url, monkeypatch):
    import server.db

    database = Database(postgres_url)
    first = _backend_pid(database)
    _terminate(postgres_url, first)  # as a restart or an idle timeout would
    monkeypatch.setattr(server.db, "PING_AFTER_IDLE", 0.0)
    with database.transaction() as session:  # no error reaches the caller: the dead one was discarded
        assert session.execute(text("SELECT pg_backend_pid()")).scalar_one() != first
    database.dispose()
