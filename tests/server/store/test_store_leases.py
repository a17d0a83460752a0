"""A worker's lease on its run: renewal, hand-back, and the sweep that recovers runs whose worker was lost."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from server.models import Run, utcnow
from server.store import events, leases, runs
from trainer.config import TrainConfig


def submit(database, device: str = "cpu") -> int:
    with database.transaction() as session:
        return runs.create(session=session, config=TrainConfig(dataset="mfeat", epochs=5, device=device), execute=True).id


@pytest.fixture
def running(database) -> int:
    """A run claimed by worker host:1."""
    run_id = submit(database)
    with database.transaction() as session:
        assert runs.claim(session=session, run_id=run_id, worker="host:1")
    return run_id


def silence(database, run_id: int, seconds: float) -> None:
    """Make the run's last heartbeat ``seconds`` old."""
    with database.transaction() as session:
        session.execute(update(Run).where(Run.id == run_id).values(heartbeat_at=utcnow() - timedelta(seconds=seconds)))


def read(database, run_id: int) -> Run:
    with database.transaction(write=False) as session:
        return runs.get(session=session, run_id=run_id)


def kinds(database, run_id: int) -> list[str]:
    with database.transaction(write=False) as session:
        return [event.kind for event in events.page(session=session, run_id=run_id)]


def test_renewing_a_held_lease_records_the_heartbeat_and_the_progress(database, running):
    silence(database, running, 30)
    with database.transaction() as session:
        state = leases.renew(session=session, run_id=running, worker="host:1", epoch=2)
    assert state == leases.LeaseState(held=True, cancel_requested=False)
    run = read(database, running)
    assert run.epoch == 2 and (utcnow() - run.heartbeat_at).total_seconds() < 5


def test_a_lease_reports_a_cancel_request(database, running):
    with database.transaction() as session:
        runs.cancel(session=session, run=runs.get(session=session, run_id=running))
    with database.transaction() as session:
        assert leases.check(session=session, run_id=running, worker="host:1").cancel_requested is True


def test_a_worker_whose_run_went_to_another_holds_no_lease_and_writes_nothing(database, running):
    with database.transaction() as session:
        leases.release(session=session, run_id=running, worker="host:1", reason="test")
        assert runs.claim(session=session, run_id=running, worker="host:2")
    with database.transaction() as session:
        assert leases.renew(session=session, run_id=running, worker="host:1", epoch=4).held is False
    assert read(database, running).epoch == 0


def test_a_released_run_goes_back_to_the_queue_with_a_note(database, running):
    with database.transaction() as session:
        assert leases.release(session=session, run_id=running, worker="host:1", reason="worker host:1 shutting down")
    run = read(database, running)
    assert (run.status, run.worker, run.attempts) == ("queued", None, 1)
    assert kinds(database, running) == ["run.requeued"]


def test_the_sweep_requeues_a_run_whose_worker_stopped_beating(database, running):
    silence(database, running, 120)
    with database.transaction() as session:
        swept = leases.sweep(session=session, timeout=60, max_attempts=3)
    assert swept.requeued == {running: "cpu"} and not swept.failed
    run = read(database, running)
    assert (run.status, run.worker) == ("queued", None)
    with database.transaction(write=False) as session:
        [note] = events.page(session=session, run_id=running)
    assert note.kind == "run.requeued" and "worker host:1 lost: no heartbeat for 120 s" in note.message


def test_the_sweep_fails_a_lost_run_that_used_its_last_attempt(database, running):
    silence(database, running, 120)
    with database.transaction() as session:
        swept = leases.sweep(session=session, timeout=60, max_attempts=1)
    assert swept.failed == [running]
    run = read(database, running)
    assert run.status == "failed" and run.error.startswith("worker lost") and "MILES_MAX_ATTEMPTS=1" in run.error
    assert kinds(database, running) == ["run.failed"]


def test_the_sweep_cancels_a_lost_run_that_was_being_cancelled(database, running):
    with database.transaction() as session:
        runs.cancel(session=session, run=runs.get(session=session, run_id=running))
    silence(database, running, 120)
    with database.transaction() as session:
        assert leases.sweep(session=session, timeout=60, max_attempts=3).cancelled == [running]
    assert read(database, running).status == "cancelled"


def test_the_sweep_leaves_live_runs_and_logged_runs_alone(database, running):
    with database.transaction() as session:
        logged = runs.create(session=session, config=None, execute=False).id
    silence(database, logged, 600)
    with database.transaction() as session:
        swept = leases.sweep(session=session, timeout=60, max_attempts=3)
    assert swept == leases.Swept()
    assert read(database, running).status == "running" and read(database, logged).status == "running"


def test_queued_runs_are_listed_oldest_first_with_their_queue(database):
    first, second = submit(database, "cuda"), submit(database)
    with database.transaction() as session:
        runs.create(session=session, config=None, execute=False)
    with database.transaction(write=False) as session:
        assert list(leases.queued(session=session).items()) == [(first, "gpu"), (second, "cpu")]
