"""GET /workers, and the warning of a queued run that no live worker would take (RunOut.unserved)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from server.models import Worker, utcnow
from server.store import workers
from tests.server.store.test_store_workers import FACTS, registration

RUNS = "/api/v1/runs"


def register(database, name: str = "box:1", queue: str = "cpu") -> None:
    with database.transaction() as session:
        workers.register(session=session, worker=registration(name, queue=queue), timeout=30)


def test_the_list_shows_each_worker_with_its_queue_device_and_state(client, database):
    register(database)

    [worker] = client.get("/api/v1/workers").json()["items"]

    assert worker | {"started_at": None, "heartbeat_at": None} == {
        "name": "box:1", "host": "box", "pid": 1, "process": "cpu0", "queues": ["cpu"], "status": "idle",
        "device": "cpu", "device_name": FACTS["device_name"], "gpu_memory_mib": None, "cuda": None, "torch": "2.13.0",
        "version": "0.1.0", "started_at": None, "heartbeat_at": None, "run": None, "recent": [],
    }


def test_a_busy_worker_links_its_run_and_a_silent_one_is_marked_lost(client, database, make_run):
    run = make_run(name="training now")
    register(database, "box:1")
    register(database, "box:2")
    with database.transaction() as session:
        workers.beat(session=session, name="box:1", timeout=30, run_id=run["id"], reading=(1.0, 99.5, 40.0))
        session.execute(update(Worker).where(Worker.name == "box:2").values(expires_at=utcnow() - timedelta(seconds=1)))

    items = client.get("/api/v1/workers").json()["items"]

    assert [(w["name"], w["status"]) for w in items] == [("box:1", "busy"), ("box:2", "lost")]
    assert items[0]["run"] == {"id": run["id"], "name": "training now"} and items[0]["recent"] == [[1.0, 99.5, 40.0]]


def test_a_run_submitted_with_no_live_worker_on_its_queue_is_created_with_the_command_that_serves_it(client):
    response = client.post(RUNS, json={"config": {"dataset": "mfeat", "epochs": 2, "device": "cpu"}})

    assert response.status_code == 201
    unserved = response.json()["unserved"]
    assert unserved["queue"] == "cpu" and unserved["command"] == "miles worker --cpu"
    assert "miles worker --cpu" in unserved["message"]
    run_id = response.json()["id"]
    assert client.get(f"{RUNS}/{run_id}").json()["unserved"] == unserved
    assert client.get(RUNS).json()["items"][0]["unserved"] == unserved


def test_a_gpu_run_without_a_gpu_worker_names_the_gpu_command(client, database):
    register(database, queue="cpu")
    run = client.post(RUNS, json={"config": {"dataset": "mfeat", "epochs": 2, "device": "cuda"}}).json()
    assert run["unserved"]["queue"] == "gpu" and run["unserved"]["command"] == "miles worker --gpus 0"


def test_a_live_worker_on_the_queue_clears_the_warning_and_a_lost_one_does_not(client, database, make_run):
    run = make_run(config={"device": "cpu"})
    register(database, "box:1", queue="cpu")
    assert client.get(f"{RUNS}/{run['id']}").json()["unserved"] is None

    with database.transaction() as session:
        session.execute(update(Worker).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert client.get(f"{RUNS}/{run['id']}").json()["unserved"]["queue"] == "cpu"


def test_runs_that_are_not_queued_carry_no_warning(client, make_run):
    run = make_run(config={"device": "cpu"})
    assert client.post(f"{RUNS}/{run['id']}/cancel").json()["unserved"] is None
    logged = client.post(RUNS, json={"execute": False}).json()
    assert logged["unserved"] is None
