"""The live stream with system samples among the epochs: a client that drops anywhere and resumes by its last
id receives every epoch point and every system sample exactly once (their steps, epochs and seconds, apart).

The worker's side is the real `DatabaseReporter` and system samples written as the worker's monitor writes
them (`WorkerMonitor._record`); Hypothesis chooses where connections drop.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.api.stream import Cursor
from server.store import runs
from tests.worker.conftest import claimed_run
from tests.worker.test_monitor import monitor_of
from tests.worker.test_stream_resume import EPOCHS, content, received_with_drops, stream, training
from worker.monitor import Watched

SECONDS = (1, 11, 21, 31, 41)  # one sample a second after the start, then every 10 s (plus the test's own time)


def with_samples(database, run_id: int) -> list[Callable[[], object]]:
    """The run's reporter calls (tests.worker.test_stream_resume) with a system sample after each of the first five."""
    with database.transaction(write=False) as session:
        started = runs.get(session=session, run_id=run_id).started_at
    monitor = monitor_of(database)  # never entered: only its writing of samples is used
    samples = [
        # As if taken ``second`` seconds into the run (the worker's clock, not the test's, sets the step).
        lambda s=second: monitor._record(
            Watched(run_id, started - timedelta(seconds=s)), {"sys/cpu_percent": 50.0 + s, "sys/memory_mib": 300.0},
        )
        for second in SECONDS
    ]
    calls = training(database, run_id)
    mixed: list[Callable[[], object]] = []
    for index, call in enumerate(calls):
        mixed.append(call)
        if index < len(samples):
            mixed.append(samples[index])
    return mixed


def system_points(messages) -> list[tuple[str, int]]:
    return [(key, data["step"]) for m in messages if m.event == "system" for data in [json.loads(m.data)] for key in data["metrics"]]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_client_resuming_from_its_last_id_gets_every_system_sample_once(database, data):
    run_id = claimed_run(database)
    received = received_with_drops(database, run_id, with_samples(database, run_id), data)

    everything = stream(database, run_id, Cursor())
    assert sorted(content(received)) == sorted(content(everything.messages_of(everything.read())))
    samples = system_points(received)
    assert len(samples) == len(set(samples)) == 2 * len(SECONDS)
    seconds = sorted({step for _, step in samples})
    assert len(seconds) == len(SECONDS) and all(b - a >= 9 for a, b in zip(seconds, seconds[1:], strict=False))
    epochs = [json.loads(m.data)["step"] for m in received if m.event == "epoch" and "loss/train" in m.data]
    assert sorted(epochs) == list(range(1, EPOCHS + 1)), "seconds never hold back an epoch"
