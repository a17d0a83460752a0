"""The task ``miles.run_training``, run in this process on tiny real trainings: every way a run can end."""

from __future__ import annotations

import pytest
from celery.exceptions import Reject
from sqlalchemy import func, select

from server.models import Metric
from server.settings import Settings
from server.store import events, runs
from tests.worker.conftest import WORKER, Hook, RecordingPublisher, submit
from worker import tasks


def read(database, run_id: int):
    with database.transaction(write=False) as session:
        run = runs.get(session=session, run_id=run_id)
        notes = [(e.kind, e.message) for e in events.page(session=session, run_id=run_id)]
        per_step = dict(session.execute(
            select(Metric.step, func.count()).where(Metric.run_id == run_id, Metric.key == "loss/train").group_by(Metric.step)
        ).all())
    return run, notes, per_step


def test_a_queued_run_trains_to_success_with_its_summary_and_checkpoints(database, context):
    run_id = submit(database, epochs=3)
    job_context = context()

    assert tasks.Job(job_context, run_id).run() == "succeeded"

    run, notes, per_step = read(database, run_id)
    assert (run.status, run.epoch, run.worker, run.attempts) == ("succeeded", 3, WORKER, 1)
    assert run.summary["epochs_completed"] == 3 and "metric/test/fused" in run.summary
    assert per_step == {1: 1, 2: 1, 3: 1}
    assert notes[0][0] == "run.started" and notes[-1][0] == "run.finished"
    checkpoints = job_context.settings.run_artifacts(run_id) / "checkpoints"
    assert {"last.pt", "best.pt"} <= {p.name for p in checkpoints.iterdir()}
    statuses = [n["status"] for n in job_context.publisher.notices if n["type"] == "status"]
    assert statuses == ["running", "succeeded"]


def test_a_second_delivery_of_a_claimed_run_leaves_it_alone(database, context):
    run_id = submit(database)
    with database.transaction() as session:
        runs.claim(session=session, run_id=run_id, worker="elsewhere:7")
    assert tasks.Job(context(), run_id).run() == "skipped"
    run, notes, _ = read(database, run_id)
    assert (run.status, run.worker, run.attempts, notes) == ("running", "elsewhere:7", 1, [])


def test_a_run_beyond_this_workers_limits_fails_saying_which(database, context):
    run_id = submit(database, epochs=4)
    assert tasks.Job(context(max_epochs=2), run_id).run() == "failed"
    run, notes, _ = read(database, run_id)
    assert run.status == "failed" and "MILES_MAX_EPOCHS" in run.error and "at most 2" in run.error
    assert notes[-1] == ("run.failed", run.error)


def test_a_run_that_raises_keeps_the_error_and_where_it_happened(database, context, tmp_path):
    run_id = submit(database)
    job_context = context()
    checkpoints = job_context.settings.run_artifacts(run_id) / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "last.pt").write_bytes(b"")  # torn: a disk that filled up

    assert tasks.Job(job_context, run_id).run() == "failed"

    run, notes, _ = read(database, run_id)
    assert run.error.startswith("CheckpointError: cannot read checkpoint")
    assert "checkpoint.py" in run.error_detail and " in load: " in run.error_detail
    assert notes[-1][0] == "run.failed"


def test_a_run_out_of_time_fails_naming_the_limit(database, context):
    run_id = submit(database)
    assert tasks.Job(context(max_run_hours=1e-9), run_id).run() == "failed"
    assert "MILES_MAX_RUN_HOURS" in read(database, run_id)[0].error


def test_a_cancel_request_ends_the_running_run_cancelled_before_its_end(database, context):
    run_id = submit(database, epochs=100)

    def cancel_after_first_epoch(notice: dict[str, object]) -> None:
        if notice["type"] == "epoch" and notice["step"] == 1:
            with database.transaction() as session:
                runs.cancel(session=session, run=runs.get(session=session, run_id=run_id))

    assert tasks.Job(context(Hook(cancel_after_first_epoch)), run_id).run() == "cancelled"
    run, notes, _ = read(database, run_id)
    assert run.status == "cancelled" and run.epoch < 100 and notes[-1][0] == "run.cancelled"


def test_a_worker_shutting_down_hands_its_run_back_and_the_next_worker_resumes_it(database, context):
    run_id = submit(database, epochs=4)

    def shut_down_after_second_epoch(notice: dict[str, object]) -> None:
        if notice["type"] == "epoch" and notice["step"] == 2:
            tasks.SHUTDOWN.set()

    tasks.configure(context(Hook(shut_down_after_second_epoch)))
    with pytest.raises(Reject):  # the message goes back to the broker too
        tasks.run_training(run_id)
    run, notes, _ = read(database, run_id)
    assert (run.status, run.worker, run.epoch) == ("queued", None, 2) and notes[-1][0] == "run.requeued"

    tasks.SHUTDOWN.clear()
    assert tasks.Job(context(), run_id).run() == "succeeded"

    run, notes, per_step = read(database, run_id)
    assert (run.status, run.attempts) == ("succeeded", 2)
    checkpoints = context().settings.run_artifacts(run_id) / "checkpoints"
    assert ("run.resumed", f"resumed after epoch 2 from {checkpoints}") in notes
    assert per_step == {1: 1, 2: 1, 3: 1, 4: 1}


def test_a_run_that_cannot_be_claimed_goes_back_to_the_broker(tmp_path, monkeypatch):
    from server.db import Database
    from tests.conftest import free_port

    monkeypatch.setattr(tasks, "DATABASE_PAUSE", 0)
    unreachable = Database(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere")
    tasks.configure(tasks.WorkerContext(
        settings=Settings(home=tmp_path), database=unreachable, publisher=RecordingPublisher(), worker_id=WORKER,
    ))
    with pytest.raises(Reject, match="database is unreachable"):
        tasks.run_training(1)
    unreachable.dispose()
