"""Helpers of the worker's tests that need no process: a claimed run and its reporter.

They take `database` (tests/conftest.py): a migrated database of each backend, emptied after each test.
"""

from __future__ import annotations

from server.db import Database
from server.live import Publisher
from server.store import runs
from tests.services import tiny_config
from trainer.config import TrainConfig
from worker.reporter import DatabaseReporter

WORKER = "host:1"


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
