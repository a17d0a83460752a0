"""The live stream against what the worker writes: a client that drops anywhere and resumes by its last id
receives every point and every event exactly once.

The worker's side is the real `DatabaseReporter` fed the calls a training makes (epochs,
decisions, then the test metrics of the last and of the best epoch, reported late); the
stream's side is the real `RunStream`, read after each write as a notice would make it.
Hypothesis chooses where connections drop, including between the points bundled with an
event and that event.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.api.stream import Cursor, RunStream, parse_cursor
from server.live import LocalNotices
from server.store import runs
from tests.worker.conftest import claimed_run, reporter_for

EPOCHS, BEST = 4, 2


def training(database, run_id: int) -> list[Callable[[], object]]:
    """The reporter calls of a run of EPOCHS epochs whose best validation epoch is BEST, then its end."""
    reporter = reporter_for(database, run_id)
    calls: list[Callable[[], object]] = [lambda: reporter.on_event(0, "run.started", "training", {})]
    for epoch in range(1, EPOCHS + 1):
        calls.append(lambda e=epoch: reporter.on_epoch(e, {"loss/train": 1 / e, "metric/val/fused": e / 10}))
        calls.append(lambda e=epoch: reporter.on_event(e, "miles.decision", f"epoch {e}", {"delta": e / 10}))
    calls += [
        lambda: reporter.on_epoch(EPOCHS, {"metric/test/fused": 0.7, "loss/test": 0.3}),
        lambda: reporter.on_epoch(BEST, {"metric/test/fused": 0.8, "loss/test": 0.2}),
        lambda: reporter.on_event(EPOCHS, "run.finished", "finished", {}),
    ]

    def finish() -> None:
        with database.transaction() as session:
            runs.finish(session=session, run_id=run_id, status="succeeded", summary={"best_epoch": BEST})

    return [*calls, finish]


def stream(database, run_id: int, cursor: Cursor) -> RunStream:
    return RunStream(database, LocalNotices(), run_id, cursor, lifetime=60)


def content(messages) -> list[tuple[str, str]]:
    """The messages that carry data (status is state, sent again on every connection), comparable."""
    return [(m.event, m.data) for m in messages if m.event != "status"]


def points(messages) -> list[tuple[str, int]]:
    return [(key, data["step"]) for m in messages if m.event == "epoch" for data in [json.loads(m.data)] for key in data["metrics"]]


def received_with_drops(database, run_id: int, writes: list[Callable[[], object]], data: st.DataObject) -> list:
    """What a client receives while ``writes`` happen, its connection dropping where Hypothesis chooses and
    resuming by the last id it got."""
    live = stream(database, run_id, Cursor())
    received = []
    for write in writes:
        write()
        batch = live.messages_of(live.read())
        cut = data.draw(st.none() | st.integers(0, max(0, len(batch) - 1)), label="drop after")
        if cut is None:
            received += batch
            continue
        received += batch[:cut]
        last_id = received[-1].id if received else None
        live = stream(database, run_id, parse_cursor(last_id, None, None))
        received += live.messages_of(live.read())
    return received


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_client_resuming_from_its_last_id_misses_nothing_and_receives_nothing_twice(database, data):
    run_id = claimed_run(database)
    received = received_with_drops(database, run_id, training(database, run_id), data)

    everything = stream(database, run_id, Cursor())
    reference = everything.messages_of(everything.read())
    assert sorted(content(received)) == sorted(content(reference))
    assert len(points(received)) == len(set(points(received))) == 2 * EPOCHS + 4
    assert received[-1].event == "end" and json.loads(received[-1].data) == {"status": "succeeded"}


def test_a_page_that_loaded_the_history_continues_after_it(database):
    run_id = claimed_run(database)
    writes = training(database, run_id)
    for write in writes[:5]:  # started, epochs 1 and 2 with their decisions
        write()
    page_loaded = stream(database, run_id, Cursor())
    history = page_loaded.messages_of(page_loaded.read())
    last_event = max(json.loads(m.data)["id"] for m in history if m.event == "run_event")
    for write in writes[5:]:
        write()

    after = stream(database, run_id, parse_cursor(None, since_step=2, after_event=last_event))
    rest = after.messages_of(after.read())

    everything = stream(database, run_id, Cursor())
    assert sorted(content(history + rest)) == sorted(content(everything.messages_of(everything.read())))
    assert rest[0].event == "status" and all(json.loads(m.data).get("step", 3) >= 3 for m in rest if m.event == "epoch" and "loss/train" in m.data)
