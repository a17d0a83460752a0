"""The heartbeat sweep locks each stale run once, and ends it through the same rules as a worker would."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, update

from server.models import Run, utcnow
from server.store import leases, runs
from trainer.config import TrainConfig


def claimed(database, *, cancel: bool = False) -> int:
    with database.transaction() as session:
        run = runs.create(session=session, config=TrainConfig(dataset="mfeat", epochs=5, device="cpu"), execute=True)
        assert runs.claim(session=session, run_id=run.id, worker="host:1")
        session.execute(update(Run).where(Run.id == run.id).values(
            heartbeat_at=utcnow() - timedelta(seconds=600), cancel_requested=cancel,
        ))
        return run.id


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # SQLite has no row locks (FOR UPDATE)
def test_the_sweep_locks_the_stale_runs_in_one_statement(database):
    cancelling, failing = claimed(database, cancel=True), claimed(database)
    locks: list[str] = []

    def record(_conn, _cursor, statement, _parameters, _context, _many) -> None:
        if "FOR UPDATE" in statement:
            locks.append(statement)

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        with database.transaction() as session:
            swept = leases.sweep(session=session, timeout=60, max_attempts=1)
    finally:
        event.remove(database.engine, "before_cursor_execute", record)
    assert (swept.cancelled, swept.failed) == ([cancelling], [failing])
    assert len(locks) == 1, locks


def test_ending_a_locked_run_twice_changes_nothing_the_second_time(database):
    run_id = claimed(database)
    with database.transaction() as session:
        run = runs.get(session=session, run_id=run_id)
        assert runs.end(session=session, run=run, status="failed", error="first")
        assert not runs.end(session=session, run=run, status="succeeded")
        with pytest.raises(ValueError, match="not a final status"):
            runs.end(session=session, run=run, status="running")
    with database.transaction(write=False) as session:
        run = runs.get(session=session, run_id=run_id)
        assert (run.status, run.error) == ("failed", "first")
