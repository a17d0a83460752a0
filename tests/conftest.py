"""Shared fixtures: real services when the behaviour depends on them.

A test that needs a service calls `need`: without the service it is skipped on
a developer's machine and fails loudly under CI (``CI=true``).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from server.db import Database
    from tests.services import MilesStack, RedisProcess

ROOT = Path(__file__).resolve().parents[1]
ON_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_HOST, POSTGRES_PORT = "127.0.0.1", 5432


def need(available: bool, what: str) -> None:
    """Skip (locally) or fail (CI) when a required service or file is missing."""
    if available:
        return
    if ON_CI:
        pytest.fail(f"{what}; CI=true, so this is a failure, not a skip", pytrace=False)
    pytest.skip(what)


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real spoken and written digits (MILES_DATA_DIR, else ../shared/data beside the project)."""
    candidate = Path(os.environ.get("MILES_DATA_DIR") or ROOT.parent / "shared" / "data")
    need(
        (candidate / "fsdd" / "recordings").is_dir() and (candidate / "mnist5k").is_dir(),
        f"the digits data is not at {candidate} (set MILES_DATA_DIR)",
    )
    return candidate


@contextmanager
def fresh_postgres(*, durable: bool = True) -> Iterator[str]:
    """A new, empty PostgreSQL database on the running server, dropped afterwards.

    Not ``durable``: its commits do not wait for the disk (``synchronous_commit = off``), which
    halves the time of a suite of small transactions; only a crash of PostgreSQL itself could
    lose one, and the database is thrown away anyway.
    """
    need(port_open(POSTGRES_HOST, POSTGRES_PORT), f"PostgreSQL is not reachable on {POSTGRES_HOST}:{POSTGRES_PORT}")
    import psycopg

    name = f"miles_test_{uuid.uuid4().hex[:12]}"
    admin = f"host={POSTGRES_HOST} port={POSTGRES_PORT} dbname=postgres user=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        if not durable:
            conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    try:
        yield f"postgresql+psycopg://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, empty, not durable PostgreSQL database for the test session, dropped afterwards."""
    with fresh_postgres(durable=False) as url:
        yield url


# -- migrated databases: one per backend for the session, or one for a single test -----------------------


def migrated(url: str) -> str:
    from server import migrate
    from server.db import Database

    database = Database(url)
    migrate.upgrade(database.engine)
    database.dispose()
    return url


BACKENDS = ("sqlite", "postgresql")

# Rows an older revision holds, for the migration tests: one run's event, tag and point.
OLD_EVENT = ("INSERT INTO run_event (run_id, step, time, kind, message, data, key) "
             "VALUES (1, 3, CURRENT_TIMESTAMP, 'run.started', 'hello', '{}', 'k')")
OLD_TAG = "INSERT INTO run_tag (run_id, tag) VALUES (1, 'kept')"
OLD_POINTS = tuple(
    f"INSERT INTO {table} (run_id, key, step, value, time) VALUES (1, 'loss', 3, 0.5, CURRENT_TIMESTAMP)"
    for table in ("latest_metric", "metric")
)


@contextmanager
def database_at(backend: str, tmp_path: Path, revision: str, *statements: str) -> Iterator[Database]:
    """A fresh database of ``backend`` migrated to ``revision`` and holding what ``statements`` insert:
    the data a migration after it must keep."""
    from sqlalchemy import text

    from server import migrate
    from server.db import Database

    with ExitStack() as cleanup:
        url = f"sqlite:///{tmp_path / 'old.db'}" if backend == "sqlite" else cleanup.enter_context(fresh_postgres())
        database = Database(url)
        cleanup.callback(database.dispose)
        migrate.upgrade(database.engine, revision)
        with database.engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement))
        yield database


@pytest.fixture(scope="session", params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database of each backend, shared by the session: a test that takes it runs on both."""
    if request.param == "sqlite":
        return migrated(f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'miles.db'}")
    return migrated(request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="session")
def shared_database(db_url: str) -> Iterator[Database]:
    """One engine per backend for the session (compiled statements are cached per engine)."""
    from server.db import Database

    db = Database(db_url)
    yield db
    db.dispose()


def empty(database: Database) -> None:
    """Delete every row of every table."""
    from sqlalchemy import delete

    from server.models import Base

    with database.transaction() as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(delete(table))


@pytest.fixture
def database(shared_database: Database) -> Iterator[Database]:
    """The backend's database (`db_url`), emptied after the test: each test starts from empty tables."""
    yield shared_database
    empty(shared_database)


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A new PostgreSQL database migrated to the newest revision, for this test only."""
    with fresh_postgres() as url:
        yield migrated(url)


@pytest.fixture
def sqlite_database(tmp_path: Path) -> str:
    """A new SQLite file migrated to the newest revision, for this test only (local mode)."""
    return migrated(f"sqlite:///{tmp_path / 'miles.db'}")


# -- real processes (tests/services.py): Redis, `miles server`, `miles worker` ----------------------------


@pytest.fixture
def redis_process(tmp_path: Path) -> Iterator[RedisProcess]:
    """The test's own ``redis-server`` on a free port (stop, kill or start it again at will), killed afterwards."""
    from tests.services import running_redis

    with running_redis(tmp_path) as redis:
        yield redis


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    setattr(item, f"report_{report.when}", report)  # lets fixtures see whether the test failed
    return report


@pytest.fixture
def miles_stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., MilesStack]]:
    """``miles_stack(database_url=..., redis=RedisProcess | None, **settings)``: a `MilesStack` whose
    processes are stopped after the test; when the test failed, their logs are printed."""
    from tests.services import MilesStack

    stacks: list[MilesStack] = []

    def make(*, database_url: str, redis: RedisProcess | None, **settings: Any) -> MilesStack:
        home = tmp_path / f"home{len(stacks)}"
        home.mkdir()
        stack = MilesStack(home=home, database_url=database_url, redis=redis, settings=settings)
        stacks.append(stack)
        return stack

    yield make
    failed = getattr(request.node, "report_call", None) is not None and request.node.report_call.failed
    for stack in stacks:
        if failed:
            for process in stack.processes():
                print(f"\n===== {process.name} log ({process.log_path}) =====\n{process.log()[-6000:]}")
        stack.close()
