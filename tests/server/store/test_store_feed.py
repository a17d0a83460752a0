"""What a live stream has not sent yet: points by step, and points bundled with the event written with them."""

from __future__ import annotations

from datetime import timedelta

from server.models import utcnow
from server.store import events, feed, metrics, runs
from trainer.config import TrainConfig


def points(*triples, time):
    return [metrics.Point(key, step, value, time) for key, step, value in triples]


def make_run(database, execute: bool = True) -> int:
    """An executed run (queued) or, with ``execute=False``, a run logged from outside."""
    config = TrainConfig(dataset="mfeat", epochs=3) if execute else None
    with database.transaction() as session:
        return runs.create(session=session, config=config, execute=execute).id


def test_points_come_a_step_at_a_time_after_the_cursor(database):
    run_id = make_run(database)
    now = utcnow()
    with database.transaction() as session:
        metrics.ingest(session=session, run_id=run_id, points=points(("a", 1, 1.0), ("b", 1, 2.0), ("a", 2, 3.0),
                                                                     ("a", 3, 4.0), time=now))
    with database.transaction(write=False) as session:
        found = feed.steps_after(session=session, run_id=run_id, after=1, max_steps=10, bundles=True)
        first = feed.steps_after(session=session, run_id=run_id, after=-1, max_steps=2, bundles=True)
    assert found == [feed.StepPoints(2, {"a": 3.0}), feed.StepPoints(3, {"a": 4.0})]
    assert [s.step for s in first] == [1, 2] and first[0].metrics == {"a": 1.0, "b": 2.0}


def test_points_written_with_an_event_come_with_it_and_not_in_step_order(database):
    run_id = make_run(database)
    start = utcnow()
    late = start + timedelta(seconds=1)
    with database.transaction() as session:
        metrics.ingest(session=session, run_id=run_id, points=points(("loss", 1, 1.0), ("loss", 2, 0.5), time=start))
        [event_id] = events.add(session=session, run_id=run_id, events=[
            events.NewEvent(step=2, kind="run.finished", message="done", time=late),
        ])
        metrics.ingest(session=session, run_id=run_id, points=points(("test", 2, 0.9), ("test", 1, 0.8), time=late))
    with database.transaction(write=False) as session:
        in_order = feed.steps_after(session=session, run_id=run_id, after=-1, max_steps=10, bundles=True)
        bundled = feed.bundled(session=session, run_id=run_id, events=events.page(session=session, run_id=run_id))
    assert in_order == [feed.StepPoints(1, {"loss": 1.0}), feed.StepPoints(2, {"loss": 0.5})]
    assert bundled == {event_id: [feed.StepPoints(1, {"test": 0.8}), feed.StepPoints(2, {"test": 0.9})]}


def test_the_highest_step_of_a_logged_run_is_sent_at_once_and_what_comes_later_for_it_is_an_update(database):
    run_id = make_run(database, execute=False)
    with database.transaction() as session:
        metrics.ingest(session=session, run_id=run_id, points=points(("a", 1, 1.0), ("a", 2, 2.0), time=utcnow()))
    with database.transaction(write=False) as session:
        sent = feed.steps_after(session=session, run_id=run_id, after=-1, max_steps=10, bundles=False)
        assert feed.updated_after(session=session, run_id=run_id, write=None, write_step=None, through_step=2) == ([], 0)
    assert [s.step for s in sent] == [1, 2]
    with database.transaction() as session:  # write 1: another key of step 2, a step not reached yet, a late system point
        metrics.ingest(session=session, run_id=run_id, points=points(
            ("b", 2, 5.0), ("a", 3, 3.0), ("sys/cpu", 1, 9.0), time=utcnow()),
        )
    with database.transaction() as session:  # write 2: two earlier steps of a new key, and step 3 again
        metrics.ingest(session=session, run_id=run_id, points=points(
            ("c", 1, 7.0), ("c", 2, 8.0), ("a", 3, 4.0), time=utcnow()),
        )
    with database.transaction(write=False) as session:
        updates, last = feed.updated_after(session=session, run_id=run_id, write=0, write_step=None, through_step=2)
        assert last == 2
        assert updates == [
            feed.Update(1, feed.StepPoints(2, {"b": 5.0})),
            feed.Update(2, feed.StepPoints(1, {"c": 7.0})), feed.Update(2, feed.StepPoints(2, {"c": 8.0})),
        ]
        # Of write 2, step 1 was sent already; step 3 (write 2) is not passed by this stream: it comes in step order.
        assert feed.updated_after(session=session, run_id=run_id, write=2, write_step=1, through_step=2) == (
            [feed.Update(2, feed.StepPoints(2, {"c": 8.0}))], 2,
        )
        assert feed.updated_after(session=session, run_id=run_id, write=2, write_step=None, through_step=3) == ([], 2)


def test_a_loop_posting_each_step_once_in_order_records_no_late_point(database):
    run_id = make_run(database, execute=False)
    for step in range(1, 4):
        with database.transaction() as session:
            metrics.ingest(session=session, run_id=run_id, points=points(("a", step, 1.0), ("b", step, 2.0), time=utcnow()))
    with database.transaction(write=False) as session:
        assert feed.updated_after(session=session, run_id=run_id, write=None, write_step=None, through_step=3) == ([], 0)
