"""The worker's side of a run's life: claim, heartbeat, finish."""

from __future__ import annotations

import pytest

from server.store import runs
from trainer.config import TrainConfig


@pytest.fixture
def queued(database) -> int:
    with database.transaction() as session:
        return runs.create(session=session, config=TrainConfig(dataset="mfeat", epochs=2), execute=True).id


def test_only_one_worker_claims_a_queued_run(database, queued):
    with database.transaction() as session:
        assert runs.claim(session=session, run_id=queued, worker="gpu-0") is True
    with database.transaction() as session:
        assert runs.claim(session=session, run_id=queued, worker="gpu-1") is False
        run = runs.get(session=session, run_id=queued)
        assert (run.status, run.worker, run.attempts) == ("running", "gpu-0", 1)
        assert run.started_at is not None and run.heartbeat_at is not None


def test_a_run_cancelled_while_queued_is_not_claimed(database, queued):
    with database.transaction() as session:
        runs.cancel(session=session, run=runs.get(session=session, run_id=queued))
    with database.transaction() as session:
        assert runs.claim(session=session, run_id=queued, worker="gpu-0") is False


def test_a_run_finishes_once_with_its_error_and_summary(database, queued):
    with database.transaction() as session:
        runs.claim(session=session, run_id=queued, worker="gpu-0")
        assert runs.finish(session=session, run_id=queued, status="failed", error="CUDA out of memory",
                           error_detail="RuntimeError: CUDA out of memory", summary={"epochs_completed": 1})
        assert not runs.finish(session=session, run_id=queued, status="succeeded")
        run = runs.get(session=session, run_id=queued)
        assert (run.status, run.error, run.summary) == ("failed", "CUDA out of memory", {"epochs_completed": 1})


def test_finishing_needs_a_final_status(database, queued):
    with database.transaction() as session, pytest.raises(ValueError, match="final status"):
        runs.finish(session=session, run_id=queued, status="running")
