"""The database engine and sessions: SQLite (WAL, foreign keys on) or PostgreSQL through psycopg 3.

Requests, the worker and the command line all get sessions from one `Database`.
A session is one transaction; whoever opens it commits it (the request scope
in the API, `Database.transaction` elsewhere), never the code that uses it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

AFTER_COMMIT = "after_commit"
POOL_SIZE, MAX_OVERFLOW = 10, 20  # connections kept open, and opened beyond those under load
POOL_TIMEOUT = 10  # seconds a thread waits for a connection before the request gets 503
# Requests that may hold a session at once (server.api.admission): fewer than the pool's 30 connections,
# so that logins and live streams, which take theirs outside the queue, always find one; and fewer than
# the 40 threads of the thread pool, so that every request holding one can finish.
REQUEST_SLOTS = 20


def create_database_engine(url: str) -> Engine:
    """An engine for ``url``: SQLite tuned for one busy process, PostgreSQL with a checked pool."""
    parsed = make_url(url)
    pool = {"pool_size": POOL_SIZE, "max_overflow": MAX_OVERFLOW, "pool_timeout": POOL_TIMEOUT}
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **pool)
    in_memory = not parsed.database or parsed.database == ":memory:"
    if not in_memory:
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    # check_same_thread: FastAPI runs sync handlers on a thread pool, one request at a time per
    # connection. timeout: how long a writer waits for another writer's lock, in seconds.
    # (An in-memory database lives in one connection per thread: no pool to size.)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **({} if in_memory else pool))

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy, not the sqlite3 module, emits BEGIN (see _begin), so that a writing
        # transaction can take the write lock up front.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable at each checkpoint; safe with WAL
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # A deferred transaction that reads and then writes fails at once ("database is
        # locked", no waiting) when another writer committed in between; BEGIN IMMEDIATE
        # takes the write lock first and waits for it instead.
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


class Database:
    """The engine and the session factories of one database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_database_engine(url)
        self.dialect = self.engine.dialect.name
        writer = self.engine.execution_options(sqlite_begin="IMMEDIATE") if self.dialect == "sqlite" else self.engine
        self._readers = sessionmaker(self.engine, expire_on_commit=False)
        self._writers = sessionmaker(writer, expire_on_commit=False)

    def session(self, *, write: bool) -> Session:
        """A new session; ``write`` ones take SQLite's write lock when their transaction begins."""
        return (self._writers if write else self._readers)()

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Session]:
        """A session committed on success (then its after-commit callbacks run), rolled back on error."""
        session = self.session(write=write)
        try:
            yield session
            commit(session)
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()

    @property
    def display_url(self) -> str:
        """The URL with any password masked, for messages and logs."""
        return make_url(self.url).render_as_string(hide_password=True)


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the session's transaction has committed (e.g. enqueue a job)."""
    session.info.setdefault(AFTER_COMMIT, []).append(callback)


def commit(session: Session) -> None:
    """Commit, then run the after-commit callbacks; a callback's error reaches the caller."""
    session.commit()
    callbacks: list[Callable[[], None]] = session.info.pop(AFTER_COMMIT, [])
    for callback in callbacks:
        callback()
