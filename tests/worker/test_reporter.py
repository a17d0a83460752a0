"""The database reporter: one transaction per epoch, idempotent events, late points bundled with their event."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from server.models import Metric
from server.store import events, feed, leases, runs
from tests.worker.conftest import WORKER, RecordingPublisher, claimed_run, reporter_for
from worker.reporter import LeaseLost, json_safe


def stored_events(database, run_id: int):
    with database.transaction(write=False) as session:
        return events.page(session=session, run_id=run_id)


def test_an_epoch_is_stored_with_the_runs_progress_then_announced(database):
    run_id = claimed_run(database)
    publisher = RecordingPublisher()
    reporter_for(database, run_id, publisher=publisher).on_epoch(1, {"loss/train": 0.5, "metric/val/fused": 0.75})
    with database.transaction(write=False) as session:
        run = runs.get(session=session, run_id=run_id)
        rows = session.execute(select(Metric.key, Metric.step, Metric.value).where(Metric.run_id == run_id)).all()
    assert run.epoch == 1
    assert sorted(rows) == [("loss/train", 1, 0.5), ("metric/val/fused", 1, 0.75)]
    assert publisher.notices == [{"run": run_id, "type": "epoch", "step": 1}]


def test_the_events_of_an_epoch_trained_again_after_a_resume_are_stored_once(database):
    run_id = claimed_run(database)
    for _attempt in range(2):
        reporter = reporter_for(database, run_id)
        reporter.on_epoch(1, {"loss/train": 0.5})
        reporter.on_event(1, "miles.decision", "slowed a", {"slowed": "a"})
        reporter.on_event(1, "miles.decision", "second decision", {})
    assert [(e.kind, e.key) for e in stored_events(database, run_id)] == [
        ("miles.decision", "miles.decision@1"), ("miles.decision", "miles.decision@1#2"),
    ]


def test_each_start_of_a_run_is_an_event_of_its_own(database):
    run_id = claimed_run(database)
    reporter_for(database, run_id, attempt=1).on_event(0, "run.started", "training", {})
    reporter_for(database, run_id, attempt=2).on_event(0, "run.started", "training again", {})
    assert [e.message for e in stored_events(database, run_id)] == ["training", "training again"]


def test_points_of_a_passed_epoch_are_bundled_with_the_next_event(database):
    run_id = claimed_run(database)
    reporter = reporter_for(database, run_id)
    reporter.on_epoch(1, {"loss/train": 0.5})
    reporter.on_epoch(2, {"loss/train": 0.4})
    reporter.on_epoch(2, {"metric/test/fused": 0.9})  # the test metrics at the end: epoch 2 is passed
    reporter.on_epoch(1, {"metric/test/fused": 0.8})
    with database.transaction(write=False) as session:
        assert session.scalar(select(Metric.value).where(Metric.key == "metric/test/fused")) is None  # held back
    reporter.on_event(2, "run.finished", "done", {})
    [finished] = stored_events(database, run_id)
    with database.transaction(write=False) as session:
        bundled = feed.bundled(session=session, run_id=run_id, events=[finished])
        in_order = feed.steps_after(session=session, run_id=run_id, after=-1, max_steps=10, bundles=True)
    assert bundled == {finished.id: [feed.StepPoints(1, {"metric/test/fused": 0.8}), feed.StepPoints(2, {"metric/test/fused": 0.9})]}
    assert [s.metrics for s in in_order] == [{"loss/train": 0.5}, {"loss/train": 0.4}]


def test_the_first_epoch_after_a_resume_is_not_taken_for_a_late_report(database):
    run_id = claimed_run(database)
    reporter = reporter_for(database, run_id, attempt=2)
    reporter.on_event(3, "run.resumed", "resumed after epoch 3", {})
    reporter.on_epoch(4, {"loss/train": 0.3})
    with database.transaction(write=False) as session:
        assert runs.get(session=session, run_id=run_id).epoch == 4


def test_values_that_are_not_finite_are_left_out_and_noted(database):
    run_id = claimed_run(database)
    reporter_for(database, run_id).on_epoch(1, {"loss/train": float("nan"), "metric/val/fused": 0.5})
    with database.transaction(write=False) as session:
        keys = session.scalars(select(Metric.key).where(Metric.run_id == run_id)).all()
    assert keys == ["metric/val/fused"]
    [note] = stored_events(database, run_id)
    assert note.kind == "metrics.not_finite" and note.data == {"keys": ["loss/train"]}


def test_event_data_that_json_cannot_hold_is_made_null():
    assert json_safe({"u": {"a": float("nan"), "b": 0.5}, "rates": [float("inf"), 1e-3]}) == {
        "u": {"a": None, "b": 0.5}, "rates": [None, 1e-3],
    }


def test_a_worker_that_lost_its_run_writes_nothing(database):
    run_id = claimed_run(database)
    with database.transaction() as session:
        leases.release(session=session, run_id=run_id, worker=WORKER, reason="test")
    with pytest.raises(LeaseLost):
        reporter_for(database, run_id).on_epoch(1, {"loss/train": 0.5})
    with database.transaction(write=False) as session:
        assert session.scalar(select(Metric.key).where(Metric.run_id == run_id)) is None
