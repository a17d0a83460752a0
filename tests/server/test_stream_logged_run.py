"""The live stream of a run logged from outside (``execute: false``), whose client posts a step's keys
in several requests: every point is sent as soon as it is stored (the highest step is not held
back), what arrives later for a step already sent comes as an update of that step, and a client
that drops anywhere and resumes by its last id receives every point exactly once.

The writes are the real ingest (`server.store.metrics.ingest`, as ``POST /runs/{id}/metrics``
does it), the reader the real `RunStream`, read after each write as a notice makes it read.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.api.stream import Cursor, parse_cursor
from server.models import utcnow
from server.store import metrics, runs
from tests.worker.test_stream_resume import received_with_drops, stream

# What a notebook loop sends: per epoch the training loss, then the validation metrics in a second
# request, some keys of an epoch only after the next one started, and one batch spanning two epochs.
POSTS = [
    [("loss/train", 1)], [("metric/val", 1), ("loss/val", 1)],
    [("loss/train", 2)], [("metric/val", 2)], [("loss/train", 3), ("loss/val", 2)],
    [("metric/val", 3)], [("lr", 1), ("lr", 2), ("lr", 3)], [("sys/cpu_percent", 4)], [("loss/val", 3)],
]


def logged_run(database) -> int:
    with database.transaction() as session:
        return runs.create(session=session, config=None, execute=False).id


def post(database, run_id: int, keys: list[tuple[str, int]]) -> None:
    with database.transaction() as session:
        metrics.ingest(session=session, run_id=run_id, points=[
            metrics.Point(key, step, float(step) + len(key) / 100, utcnow()) for key, step in keys
        ])


def points(messages) -> list[tuple[str, int, float]]:
    return [
        (key, data["step"], value) for m in messages if m.event in ("epoch", "system")
        for data in [json.loads(m.data)] for key, value in data["metrics"].items()
    ]


def stored(database, run_id: int) -> list[tuple[str, int, float]]:
    with database.transaction(write=False) as session:
        return sorted((k, s, v) for k, s, v, _ in metrics.iter_points(session=session, run_id=run_id))


def test_every_post_is_on_the_stream_at_once_and_later_keys_of_a_step_are_updates_of_it(database):
    run_id = logged_run(database)
    live = stream(database, run_id, Cursor())
    live.messages_of(live.read())
    post(database, run_id, [("loss/train", 1)])
    first = live.messages_of(live.read())
    assert [(m.event, json.loads(m.data)) for m in first] == [("epoch", {"step": 1, "metrics": {"loss/train": 1.1}})]
    post(database, run_id, [("metric/val", 1)])
    update = live.messages_of(live.read())
    assert [(m.event, json.loads(m.data)) for m in update] == [("epoch", {"step": 1, "metrics": {"metric/val": 1.1}})]
    assert update[0].id == "1:0~1"
    assert live.messages_of(live.read()) == []  # nothing twice


def test_a_page_that_loaded_the_history_and_its_write_continues_after_it(database):
    run_id = logged_run(database)
    post(database, run_id, [("loss/train", 1)])
    # What a page loads first: the history, and the write number of the last id.
    history = stream(database, run_id, Cursor())
    loaded = history.messages_of(history.read())
    write = int(loaded[-1].id.split("~")[1])
    post(database, run_id, [("metric/val", 1)])
    after = stream(database, run_id, parse_cursor(None, since_step=1, after_event=0, after_write=write))
    assert points(after.messages_of(after.read())) == [("metric/val", 1, 1.1)]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_client_resuming_from_its_last_id_misses_nothing_and_receives_nothing_twice(database, data):
    run_id = logged_run(database)
    received = received_with_drops(database, run_id, [lambda keys=keys: post(database, run_id, keys) for keys in POSTS], data)
    with database.transaction() as session:
        runs.set_status(session=session, run=runs.get(session=session, run_id=run_id), status="succeeded")
    last = stream(database, run_id, parse_cursor(received[-1].id if received else None, None, None))  # one more resume
    received += last.messages_of(last.read())

    got = points(received)
    assert len(got) == len(set((key, step) for key, step, _ in got)), "a point was sent twice"
    assert sorted(got) == stored(database, run_id)
    assert received[-1].event == "end"
