"""`trainer.client`: the notebook client and the Tracker, against a real ``miles server`` (uvicorn) process."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from server.db import Database
from server.store import tokens
from tests.conftest import migrated
from tests.services import MilesStack, tiny_config
from trainer.client import MilesAPIError, MilesClient
from trainer.config import TrainConfig

SMALL = {"dataset": "mfeat", "modalities": ["pix", "fou"], "epochs": 3}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilesStack]:
    """One ``miles server`` on a SQLite file for the module (starting one takes seconds)."""
    home = tmp_path_factory.mktemp("client")
    stack = MilesStack(home=home, database_url=migrated(f"sqlite:///{home / 'miles.db'}"), redis=None)
    stack.start_server()
    yield stack
    stack.close()


@pytest.fixture
def client(stack: MilesStack) -> Iterator[MilesClient]:
    assert stack.server is not None
    with MilesClient(stack.server.url) as client:
        yield client


def finish_later(client: MilesClient, run_id: int, status: str, after: float) -> threading.Thread:
    def finish() -> None:
        time.sleep(after)
        client.request("PATCH", f"/runs/{run_id}", json={"status": status})

    thread = threading.Thread(target=finish)
    thread.start()
    return thread


# -- the client -----------------------------------------------------------------------------------


def test_a_config_is_submitted_as_a_dict_or_as_a_train_config(client):
    from_dict = client.submit(SMALL, name="from a dict", experiment="client", tags=["nb"])
    from_model = client.submit(TrainConfig(**SMALL), name="from a model")
    assert from_dict["status"] == from_model["status"] == "queued"
    assert from_dict["config"] == from_model["config"]
    assert (from_dict["experiment"], from_dict["tags"]) == ("client", ["nb"])


def test_an_invalid_config_raises_with_the_field_errors(client):
    with pytest.raises(MilesAPIError) as raised:
        client.submit({"dataset": "mfeat", "params": {"tau": 3}})
    assert raised.value.status == 422
    assert raised.value.errors == [{"field": "config.params.tau", "message": "must satisfy 0 <= tau <= 1 (got 3)"}]
    assert "config.params.tau" in str(raised.value)


def test_runs_are_iterated_across_pages(client):
    ids = {client.submit(SMALL, experiment="paged")["id"] for _ in range(5)}
    assert {run["id"] for run in client.runs(experiment="paged", page_size=2)} == ids


def test_an_unknown_run_raises_404(client):
    with pytest.raises(MilesAPIError, match="run 987654 not found") as raised:
        client.run(987654)
    assert raised.value.status == 404


def test_cancel_clone_and_delete(client):
    run = client.submit(SMALL)
    clone = client.clone(run["id"], seed=3, name="seed 3")
    assert (clone["config"]["seed"], clone["name"]) == (3, "seed 3")
    assert client.cancel(run["id"])["status"] == "cancelled"
    client.delete(run["id"])
    with pytest.raises(MilesAPIError):
        client.run(run["id"])


def test_wait_returns_the_finished_run(client):
    run = client.request("POST", "/runs", json={"execute": False})
    finisher = finish_later(client, run["id"], "succeeded", after=0.5)
    assert client.wait(run["id"], timeout=30, progress=False, poll=0.1)["status"] == "succeeded"
    finisher.join()


def test_wait_shows_a_run_that_has_ended_as_one_line(client, capsys):
    run = client.request("POST", "/runs", json={"execute": False, "config": tiny_config(epochs=5)})
    client.request("POST", f"/runs/{run['id']}/metrics", json={"points": [
        {"key": "loss/train", "step": step, "value": 1.0} for step in (1, 2, 3, 4)]})
    client.request("PATCH", f"/runs/{run['id']}", json={"status": "succeeded", "summary": {"time/train": 2.0}})
    assert client.wait(run["id"])["status"] == "succeeded"
    shown = capsys.readouterr().err
    assert "\r" not in shown and shown.count("\n") == 1, repr(shown)
    assert shown.startswith(f"run {run['id']}:  80%|") and shown.endswith("| 4/5 epochs, succeeded in 2 s, 0.5 s/epoch\n")


@pytest.mark.worker
def test_wait_times_the_training_alone_not_the_time_in_the_queue(miles_stack, sqlite_database, capsys):
    stack = miles_stack(database_url=sqlite_database, redis=None)
    stack.start_server()
    run = stack.submit(tiny_config(epochs=4))
    with MilesClient(stack.server.url) as client:
        waiting = threading.Thread(target=client.wait, args=(run["id"],), kwargs={"poll": 0.2})
        watched = time.monotonic()
        waiting.start()
        time.sleep(2.0)
        stack.start_worker("--cpu")  # the run has waited in the queue for this long, and more while it starts
        waiting.join(120)
        watched = time.monotonic() - watched
        trained = client.run(run["id"])["summary"]["time/train"]
    renders = [part for part in re.split(r"[\r\n]", capsys.readouterr().err) if part.strip()]
    assert any("queued: waiting for a worker" in part for part in renders)
    last = re.search(r"4/4 epochs, succeeded in ([\d.]+) s, ([\d.]+) s/epoch", renders[-1])
    assert last, renders[-1]
    assert float(last[1]) == pytest.approx(trained, rel=0.05, abs=0.01) and trained < watched - 2.0
    assert float(last[2]) == pytest.approx(trained / 4, rel=0.05, abs=0.01)


def test_wait_gives_up_after_its_timeout(client):
    run = client.submit(SMALL)
    with pytest.raises(TimeoutError, match="still queued"):
        client.wait(run["id"], timeout=0.3, progress=False, poll=0.1)


def test_metrics_come_as_plain_lists_and_as_a_data_frame(client):
    with client.track("frame") as tracked:
        for step in range(3):
            tracked.log(step, {"loss": 1.0 / (step + 1), "acc": step / 10})
    assert client.metrics(tracked.id, keys=["loss"]) == {"loss": {"steps": [0, 1, 2], "values": [1.0, 0.5, 1 / 3]}}
    frame = client.metrics_frame(tracked.id)
    assert list(frame.columns) == ["acc", "loss"] and frame.index.name == "step"
    assert frame.loc[2, "acc"] == pytest.approx(0.2)


def test_metrics_frame_says_pandas_is_needed_when_it_is_missing(client, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=re.escape("pip install 'miles-dashboard[notebook]'")):
        client.metrics_frame(1)


def test_the_client_sends_its_token(miles_stack, sqlite_database):
    database = Database(sqlite_database)
    with database.transaction() as session:
        secret = tokens.create(session=session, name="notebook")[1]
    database.dispose()
    server = miles_stack(database_url=sqlite_database, redis=None, auth="on").start_server()

    with pytest.raises(MilesAPIError) as raised:
        MilesClient(server.url).submit(SMALL)
    assert raised.value.status == 401
    assert MilesClient(server.url, token=secret).submit(SMALL)["status"] == "queued"
    assert secret not in repr(MilesClient(server.url, token=secret))


def test_the_client_imports_neither_the_server_nor_torch():
    probe = "import sys, trainer.client; print(sorted({'server', 'fastapi', 'sqlalchemy', 'torch'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip() == "[]"


# -- the tracker ----------------------------------------------------------------------------------


def test_a_tracked_loop_is_logged_in_batches_and_ends_succeeded(client):
    with client.track("my loop", params={"lr": 0.01}, experiment="tracked", tags=["mine"], batch_size=7) as run:
        for step in range(50):
            run.log(step, {"loss/train": 1 / (step + 1)})
        run.event("note", "halfway", step=25, data={"lr": 0.005})
        run.summary(best_loss=1 / 50)
    logged = client.run(run.id)
    assert (logged["status"], logged["execute"], logged["params"]) == ("succeeded", False, {"lr": 0.01})
    assert (logged["experiment"], logged["tags"], logged["summary"]) == ("tracked", ["mine"], {"best_loss": 0.02})
    assert client.metrics(run.id)["loss/train"]["steps"] == list(range(50))
    assert [(e["kind"], e["step"]) for e in client.events(run.id)] == [("note", 25)]


def test_a_loop_that_raises_ends_failed_with_the_error_and_the_error_goes_on(client):
    with pytest.raises(ValueError, match="diverged"), client.track("doomed") as run:
        run.log(0, {"loss": 1.0})
        raise ValueError("loss diverged")
    failed = client.run(run.id)
    assert (failed["status"], failed["error"]) == ("failed", "ValueError: loss diverged")
    assert client.metrics(run.id)["loss"]["values"] == [1.0]  # what was logged before the error was kept


def test_an_interrupted_loop_ends_cancelled(client):
    with pytest.raises(KeyboardInterrupt), client.track("interrupted") as run:
        raise KeyboardInterrupt
    assert client.run(run.id)["status"] == "cancelled"


def test_a_cancel_from_the_dashboard_reaches_the_loop(client):
    with client.track("stoppable", flush_interval=0.05) as run:
        client.cancel(run.id)
        for step in range(200):
            run.log(step, {"loss": 1.0})
            if run.cancel_requested:
                break
            time.sleep(0.01)
    assert step < 199 and client.run(run.id)["status"] == "cancelled"


def test_non_finite_values_are_skipped_with_a_warning(client):
    with pytest.warns(UserWarning, match="loss is nan at step 1"), client.track("nan") as run:
        run.log(0, {"loss": 1.0})
        run.log(1, {"loss": float("nan")})
    assert client.metrics(run.id)["loss"]["steps"] == [0]


def test_points_logged_while_the_server_is_down_arrive_once_it_is_back(client, stack):
    with client.track("outage", flush_interval=0.1) as run:
        run.log(0, {"loss": 1.0})
        run.flush()
        stack.server.stop()
        for step in range(1, 20):
            run.log(step, {"loss": 1.0 / (step + 1)})
        time.sleep(0.5)  # the tracker's sends fail and back off meanwhile
        stack.server.start()
    assert client.metrics(run.id)["loss"]["steps"] == list(range(20))
    assert client.run(run.id)["status"] == "succeeded"


def test_a_grid_is_submitted_whole_and_its_experiments_table_read_back(client):
    from trainer.grid import Grid

    grid = Grid(config=SMALL, methods=["joint", "miles"], fusions=["concat"], seeds=[0, 1])
    answer = client.submit_grid(grid, experiment="client grid", name="nb")
    assert [cell["key"] for cell in answer["cells"]] == [c.key for c in grid.cells]
    assert answer["cells"][0]["run"]["name"] == "nb: joint · concat · seed 0"
    table = client.results(experiment="client grid")
    assert [(row["method"], row["waiting"]) for row in table["groups"][0]["rows"]] == [
        ("joint", {"queued": 2}), ("miles", {"queued": 2})]
    with pytest.raises(MilesAPIError) as refused:
        client.submit_grid({"config": SMALL, "methods": ["nope"]}, experiment="client grid")
    assert refused.value.status == 422 and refused.value.errors[0]["field"] == "grid.methods.0"


def test_a_point_logged_after_a_quiet_spell_is_sent_at_once_and_a_burst_in_few_requests(client, stack):
    with client.track("live loop", flush_interval=0.5) as run:
        run.log(1, {"loss/train": 1.0})
        logged = time.monotonic()
        while not client.metrics(run.id).get("loss/train", {}).get("steps"):
            assert time.monotonic() - logged < 0.4, "the point waited for a batch or the interval"
            time.sleep(0.01)
        requests_before = _ingest_requests(stack)
        for step in range(2, 202):  # a burst right after a send: it waits out the interval together
            run.log(step, {"loss/train": 1.0 / step})
    assert client.metrics(run.id)["loss/train"]["steps"] == list(range(1, 202))
    assert _ingest_requests(stack) - requests_before <= 3


def _ingest_requests(stack: MilesStack) -> int:
    return stack.server.log().count("/metrics HTTP/1.1\" 200")
