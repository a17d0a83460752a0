"""Helpers of the worker's tests that need no process: runs, a worker's context and its reporter.

They take `database` (tests/conftest.py): a migrated database of each backend, emptied after each test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from server.db import Database
from server.live import Publisher
from server.settings import Settings
from server.store import runs
from tests.services import tiny_config
from trainer.config import TrainConfig
from worker import tasks
from worker.reporter import DatabaseReporter

WORKER = "host:1"


@pytest.fixture(autouse=True)
def no_shutdown() -> Iterator[None]:
    """Every test starts, and leaves, with the worker's shutdown flag down."""
    tasks.SHUTDOWN.clear()
    yield
    tasks.SHUTDOWN.clear()


def submit(database: Database, **config: object) -> int:
    """A queued run of `tiny_config` (with ``config`` changes)."""
    with database.transaction() as session:
        return runs.create(session=session, config=TrainConfig.model_validate(tiny_config(**config)), execute=True).id


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


class Hook(RecordingPublisher):
    """A publisher that calls ``action(notice)`` on each notice: to act at a given moment of the run."""

    def __init__(self, action: Callable[[dict[str, object]], None]) -> None:
        super().__init__()
        self.action = action

    def publish(self, run_id: int, kind: str, *, happened: float | None = None, **fields: object) -> None:
        super().publish(run_id, kind, **fields)
        self.action(self.notices[-1])


@pytest.fixture
def context(database: Database, db_url: str, tmp_path: Path) -> Callable[..., tasks.WorkerContext]:
    """``context(publisher, **settings)``: what a worker process hands its tasks, on the test's database."""

    def make(publisher: RecordingPublisher | None = None, **settings: object) -> tasks.WorkerContext:
        values = {"home": tmp_path, "database_url": db_url, "redis_url": None} | settings
        return tasks.WorkerContext(
            settings=Settings(**values), database=database, publisher=publisher or RecordingPublisher(), worker_id=WORKER,
        )

    return make


def reporter_for(database: Database, run_id: int, attempt: int = 1, publisher: Publisher | None = None) -> DatabaseReporter:
    """The worker's reporter of ``run_id`` (claimed by `WORKER`), publishing to a `RecordingPublisher`."""
    return DatabaseReporter(
        database=database, publisher=publisher or RecordingPublisher(), run_id=run_id, worker=WORKER, attempt=attempt,
        should_stop=lambda: False,
    )
