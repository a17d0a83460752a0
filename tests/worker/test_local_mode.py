"""Local mode: SQLite and the SQLite broker, no Redis at all; `miles server` and `miles worker` as separate processes."""

from __future__ import annotations

import pytest

from tests.services import tiny_config

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def test_a_run_submitted_in_local_mode_trains_streams_and_completes(miles_stack, sqlite_database):
    stack = miles_stack(database_url=sqlite_database, redis=None)
    stack.start_server()
    stack.start_worker("--cpu")
    run = stack.submit(tiny_config(epochs=3))
    assert run["queue"] == "cpu"

    messages = list(stack.stream(run["id"]))

    epochs = [m.data["step"] for m in messages if m.event == "epoch" and "loss/train" in m.data["metrics"]]
    assert epochs == [1, 2, 3]
    assert messages[0].event == "status" and messages[-1].event == "end"
    assert messages[-1].data == {"status": "succeeded"}
    finished = stack.run(run["id"])
    assert finished["status"] == "succeeded" and finished["summary"]["epochs_completed"] == 3
