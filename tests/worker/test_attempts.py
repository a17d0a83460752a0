"""Only lost workers use up a run's MILES_MAX_ATTEMPTS, and MILES_MAX_RUN_HOURS counts training across attempts.

A worker that shuts down cleanly hands its run back (`leases.release`): that must not bring the
run closer to failing as "worker lost". The time limit is the run's, not each attempt's.
"""

from __future__ import annotations

from datetime import timedelta

import torch
from sqlalchemy import update

from server.models import Run, utcnow
from server.store import events, leases, runs
from tests.worker.conftest import Hook, submit
from trainer import checkpoint
from worker import tasks


def read(database, run_id: int) -> Run:
    with database.transaction(write=False) as session:
        return runs.get(session=session, run_id=run_id)


def lose(database, run_id: int, worker: str = "gone:9") -> None:
    """``worker`` claims the run and dies: its heartbeat is ten minutes old."""
    with database.transaction() as session:
        assert runs.claim(session=session, run_id=run_id, worker=worker)
        session.execute(update(Run).where(Run.id == run_id).values(heartbeat_at=utcnow() - timedelta(minutes=10)))


def sweep(database, max_attempts: int) -> leases.Swept:
    with database.transaction() as session:
        return leases.sweep(session=session, timeout=60, max_attempts=max_attempts)


# -- counting: store level ---------------------------------------------------------------------------


def test_hand_backs_do_not_count_toward_the_attempts_allowed(database):
    run_id = submit(database)
    for restart in range(2):  # two clean worker restarts
        with database.transaction() as session:
            assert runs.claim(session=session, run_id=run_id, worker=f"host:{restart}")
            assert leases.release(session=session, run_id=run_id, worker=f"host:{restart}", reason="shutting down")
    lose(database, run_id)

    assert sweep(database, max_attempts=2).requeued == {run_id: "cpu"}
    run = read(database, run_id)
    assert (run.status, run.attempts, run.losses) == ("queued", 3, 1)

    lose(database, run_id)
    assert sweep(database, max_attempts=2).failed == [run_id]
    run = read(database, run_id)
    assert (run.status, run.attempts, run.losses) == ("failed", 4, 2)
    assert "gave up after losing its worker 2 times (MILES_MAX_ATTEMPTS=2)" in run.error


def test_a_requeue_after_a_loss_says_how_many_losses_are_left(database):
    run_id = submit(database)
    lose(database, run_id)
    sweep(database, max_attempts=3)
    with database.transaction(write=False) as session:
        [note] = events.page(session=session, run_id=run_id)
    assert note.kind == "run.requeued" and "(loss 1 of the 3 allowed)" in note.message


# -- with the real task: trainings, checkpoints, hand-backs ----------------------------------------------


def shut_down_after(step: int) -> Hook:
    def act(notice: dict[str, object]) -> None:
        if notice["type"] == "epoch" and notice["step"] == step:
            tasks.SHUTDOWN.set()

    return Hook(act)


def test_a_run_handed_back_twice_then_lost_resumes_instead_of_failing(database, context):
    run_id = submit(database, epochs=4)
    for step in (1, 2):  # two graceful restarts of the worker, each after one more epoch
        assert tasks.Job(context(shut_down_after(step)), run_id).run() == "released"
        tasks.SHUTDOWN.clear()
    lose(database, run_id)  # then a real loss
    assert sweep(database, max_attempts=2).requeued == {run_id: "cpu"}

    assert tasks.Job(context(max_attempts=2), run_id).run() == "succeeded"
    run = read(database, run_id)
    assert (run.status, run.epoch, run.attempts, run.losses) == ("succeeded", 4, 4, 1)


def test_the_time_limit_counts_the_training_of_earlier_attempts(database, context):
    run_id = submit(database, epochs=4)
    first = context(shut_down_after(2), max_run_hours=1)
    assert tasks.Job(first, run_id).run() == "released"
    tasks.SHUTDOWN.clear()
    checkpoints = first.settings.run_artifacts(run_id) / "checkpoints"
    trained = checkpoint.trained_seconds(checkpoints)
    assert 0 < trained < 600  # what the two epochs took

    # As if the two epochs had taken an hour: the run has used up MILES_MAX_RUN_HOURS=1.
    state = checkpoint.load(checkpoints / checkpoint.LAST, torch.device("cpu"))
    checkpoint.save(checkpoints, checkpoint.LAST, {k: v for k, v in state.items() if k != "format"} | {"elapsed": 3600.0})
    assert checkpoint.trained_seconds(checkpoints) == 3600.0

    assert tasks.Job(context(max_run_hours=1), run_id).run() == "failed"
    run = read(database, run_id)
    assert run.epoch == 2 and "MILES_MAX_RUN_HOURS=1" in run.error


def test_a_run_with_time_left_resumes_to_its_end(database, context):
    run_id = submit(database, epochs=3)
    assert tasks.Job(context(shut_down_after(1), max_run_hours=1), run_id).run() == "released"
    tasks.SHUTDOWN.clear()
    assert tasks.Job(context(max_run_hours=1), run_id).run() == "succeeded"


def test_trained_seconds_is_zero_without_a_readable_checkpoint(tmp_path):
    assert checkpoint.trained_seconds(tmp_path) == 0.0
    (tmp_path / checkpoint.LAST).write_bytes(b"torn")
    assert checkpoint.trained_seconds(tmp_path) == 0.0
