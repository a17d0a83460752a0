"""Fixtures of the worker's tests that need no process: a migrated database of each backend, and a claimed run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import delete

from server.db import Database
from server.live import Publisher
from server.models import Base
from server.store import runs
from tests.conftest import migrated
from tests.services import tiny_config
from trainer.config import TrainConfig
from worker.reporter import DatabaseReporter

WORKER = "host:1"


@pytest.fixture(scope="session", params=("sqlite", "postgresql"))
def backend_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database of each backend, shared by the session."""
    if request.param == "sqlite":
        return migrated(f"sqlite:///{tmp_path_factory.mktemp('worker-sqlite') / 'miles.db'}")
    return migrated(request.getfixturevalue("postgres_url"))


@pytest.fixture
def database(backend_url: str) -> Iterator[Database]:
    """The backend's database, emptied after the test."""
    db = Database(backend_url)
    yield db
    with db.transaction() as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(delete(table))
    db.dispose()


def claimed_run(database: Database, **config: object) -> int:
    """A run of `tiny_config` (with ``config`` changes), submitted and claimed by `WORKER`."""
    with database.transaction() as session:
        run_id = runs.create(session=session, config=TrainConfig.model_validate(tiny_config(**config)), execute=True).id
        assert runs.claim(session=session, run_id=run_id, worker=WORKER)
    return run_id


class RecordingPublisher(Publisher):
    """A publisher without Redis that keeps the notices it would have published."""

    def __init__(self) -> None:
        super().__init__(None)
        self.notices: list[dict[str, object]] = []

    def publish(self, run_id: int, kind: str, *, happened: float | None = None, **fields: object) -> None:
        self.notices.append({"run": run_id, "type": kind, **fields})


def reporter_for(database: Database, run_id: int, attempt: int = 1, publisher: Publisher | None = None) -> DatabaseReporter:
    """The worker's reporter of ``run_id`` (claimed by `WORKER`), publishing to a `RecordingPublisher`."""
    return DatabaseReporter(
        database=database, publisher=publisher or RecordingPublisher(), run_id=run_id, worker=WORKER, attempt=attempt,
        should_stop=lambda: False,
    )
