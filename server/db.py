"""The database engine and sessions: SQLite (WAL, foreign keys on) or PostgreSQL through psycopg 3.

Requests, the worker and the command line all get sessions from one `Database`.
A session is one transaction; whoever opens it commits it (the request scope
in the API, `Database.transaction` elsewhere), never the code that uses it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from time import monotonic
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

AFTER_COMMIT = "after_commit"
POOL_SIZE, MAX_OVERFLOW = 10, 20  # connections kept open, and opened beyond those under load
POOL_TIMEOUT = 10  # seconds a thread waits for a connection before the request gets 503
# Requests that may hold a session at once (server.api.admission): fewer than the pool's 30 connections,
# so that logins and live streams, which take theirs outside the queue, always find one; and fewer than
# the 40 threads of the thread pool, so that every request holding one can finish.
REQUEST_SLOTS = 20
# A PostgreSQL connection idle in the pool for longer than this is pinged before it is handed out.
PING_AFTER_IDLE = 10.0


def create_database_engine(url: str) -> Engine:
    """An engine for ``url``: SQLite tuned for one busy process, PostgreSQL with a checked pool."""
    parsed = make_url(url)
    pool = {"pool_size": POOL_SIZE, "max_overflow": MAX_OVERFLOW, "pool_timeout": POOL_TIMEOUT}
    if parsed.get_backend_name() != "sqlite":
        return _ping_when_idle(create_engine(url, **pool))
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


def _ping_when_idle(engine: Engine) -> Engine:
    """Ping a connection before handing it out only when it sat in the pool for `PING_AFTER_IDLE` seconds.

    SQLAlchemy's ``pool_pre_ping`` pings at every checkout: a round trip to PostgreSQL before each
    request's transaction, a quarter of an ingest's four. A connection returned moments ago is alive
    unless the server went away in between; then its request fails with OperationalError (a 503 asking
    to retry) and SQLAlchemy discards the pool. One idle longer, which a restart, a failover or an idle
    timeout may have closed, is pinged, and a dead one is replaced before anyone uses it (raising
    DisconnectionError from a checkout is how the pool is told to do that).
    """

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info["returned"] = monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned")  # none: a connection just opened
        if returned is None or monotonic() - returned < PING_AFTER_IDLE:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as error:  # the driver's own error for a closed connection
            raise DisconnectionError(str(error)) from error
        if not alive:
            raise DisconnectionError("the connection did not answer a ping")

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
