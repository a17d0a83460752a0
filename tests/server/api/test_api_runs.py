"""/api/v1/runs: submitting, reading, updating, cancelling, cloning and deleting runs."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.dispatch import BrokerUnavailable
from server.store import leases
from server.store import runs as run_store
from tests.server.conftest import RecordingDispatcher

RUNS = "/api/v1/runs"


def fields(response: Any) -> dict[str, str]:
    return {error["field"]: error["message"] for error in response.json()["errors"]}


# -- submitting -----------------------------------------------------------------------------------


def test_a_submitted_config_is_queued_with_every_default_filled_in(client):
    response = client.post(RUNS, json={"config": {"dataset": "mfeat", "method": "miles", "params": {"tau": 0.3}}})
    assert response.status_code == 201
    run = response.json()
    assert response.headers["location"] == f"{RUNS}/{run['id']}"
    assert run["status"] == "queued" and run["execute"] is True
    assert run["config"]["params"] == {"tau": 0.3, "mu": 0.5, "utilization_split": "val"}
    assert run["modalities"] == run["config"]["modalities"] == ["pix", "fou"]
    assert (run["method"], run["dataset"], run["fusion"], run["seed"]) == ("miles", "mfeat", "concat", 0)
    assert run["progress"] == {"epoch": 0, "epochs": 30}
    assert run["latest"] == {} and run["started_at"] is None


def test_a_run_without_a_name_is_named_after_its_config(make_run):
    assert make_run()["name"] == "miles on mfeat (pix+fou, concat)"


def test_the_experiment_named_on_submission_is_created_once(make_run):
    first, second = make_run(experiment="ablation"), make_run(experiment="ablation")
    assert first["experiment"] == second["experiment"] == "ablation"
    assert first["experiment_id"] == second["experiment_id"] is not None


def test_an_executed_run_needs_a_config(client):
    response = client.post(RUNS, json={"name": "nothing to run"})
    assert response.status_code == 422
    assert "execute" in fields(response)["config"]


def test_a_logged_run_starts_running_with_its_free_form_params(client):
    response = client.post(RUNS, json={"execute": False, "name": "my loop", "params": {"lr": 0.01, "layers": [64, 64]}})
    assert response.status_code == 201
    run = response.json()
    assert (run["status"], run["execute"], run["config"]) == ("running", False, None)
    assert run["params"] == {"lr": 0.01, "layers": [64, 64]} and run["started_at"] is not None
    assert run["progress"] == {"epoch": 0, "epochs": None}


def test_free_form_params_are_refused_on_an_executed_run(small_config, client):
    response = client.post(RUNS, json={"config": small_config, "params": {"lr": 1}})
    assert response.status_code == 422 and "config.params" in fields(response)["params"]


def test_an_out_of_range_hyperparameter_is_named_with_its_range(client):
    response = client.post(RUNS, json={"config": {"dataset": "mfeat", "params": {"tau": 2}}})
    assert response.status_code == 422
    assert fields(response) == {"config.params.tau": "must satisfy 0 <= tau <= 1 (got 2)"}
    assert "config.params.tau" in response.json()["detail"]


def test_an_unknown_config_field_is_named_with_the_allowed_ones(client):
    response = client.post(RUNS, json={"config": {"dataset": "mfeat", "epoch": 3}})
    assert response.status_code == 422
    assert "allowed fields" in fields(response)["config.epoch"]


def test_more_epochs_than_the_server_allows_are_refused(small_config, make_client, make_settings):
    client = make_client(make_settings(max_epochs=5))
    response = client.post(RUNS, json={"config": small_config | {"epochs": 6}})
    assert response.status_code == 422
    assert "at most 5" in fields(response)["config.epochs"] and "MILES_MAX_EPOCHS" in fields(response)["config.epochs"]


@pytest.mark.parametrize("data_path", ["../outside", "/etc", "fine/../../outside", "escape"])
def test_a_data_path_may_not_lead_outside_the_data_directory(client, settings, tmp_path, data_path):
    settings.data_root.mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (settings.data_root / "escape").symlink_to(tmp_path / "outside")
    response = client.post(RUNS, json={"config": {"dataset": "folder", "data_path": data_path, "epochs": 1}})
    assert response.status_code == 422
    assert "outside the server's data directory" in fields(response)["config.data_path"]


def test_a_data_path_inside_the_data_directory_is_accepted(client, settings):
    (settings.data_root / "mine").mkdir(parents=True)
    response = client.post(RUNS, json={"config": {"dataset": "folder", "data_path": "mine", "epochs": 1}})
    assert response.status_code == 201 and response.json()["config"]["data_path"] == "mine"


def test_submissions_beyond_the_active_limit_are_refused_with_429(small_config, make_client, make_settings):
    client = make_client(make_settings(max_active_runs=2))
    for _ in range(2):
        assert client.post(RUNS, json={"config": small_config}).status_code == 201
    response = client.post(RUNS, json={"config": small_config})
    assert response.status_code == 429
    assert "MILES_MAX_ACTIVE_RUNS=2" in response.json()["detail"]


def test_cancelled_and_logged_runs_leave_room_under_the_active_limit(small_config, make_client, make_settings):
    client = make_client(make_settings(max_active_runs=1))
    first = client.post(RUNS, json={"config": small_config}).json()
    assert client.post(RUNS, json={"execute": False}).status_code == 201
    assert client.post(f"{RUNS}/{first['id']}/cancel").status_code == 200
    assert client.post(RUNS, json={"config": small_config}).status_code == 201


def test_a_run_is_handed_to_the_dispatcher_only_once_committed(small_config, database, settings):
    dispatcher = RecordingDispatcher(database)
    with TestClient(create_app(settings, dispatcher=dispatcher), base_url="http://localhost") as client:
        gpu = client.post(RUNS, json={"config": small_config | {"device": "cuda"}}).json()
        cpu = client.post(RUNS, json={"config": small_config}).json()  # device auto: MILES_AUTO_QUEUE, cpu
        client.post(RUNS, json={"execute": False})
    assert dispatcher.enqueued == [(gpu["id"], "gpu", "queued"), (cpu["id"], "cpu", "queued")]


class DownBroker:
    def enqueue(self, run_id: int, queue: str) -> None:
        raise BrokerUnavailable("redis://broker:6379 refused the connection")


def test_a_broker_outage_answers_503_and_keeps_the_run_queued(small_config, database, settings):
    with TestClient(create_app(settings, dispatcher=DownBroker()), base_url="http://localhost") as client:
        response = client.post(RUNS, json={"config": small_config})
        assert response.status_code == 503
        assert "saved as queued" in response.json()["detail"] and "refused" in response.json()["detail"]
        assert [run["status"] for run in client.get(RUNS).json()["items"]] == ["queued"]


# -- reading --------------------------------------------------------------------------------------


def test_a_run_reads_back_with_its_latest_metric_values(client, make_run):
    run = make_run()
    client.post(f"{RUNS}/{run['id']}/metrics", json={"points": [
        {"key": "metric/val/fused", "step": 1, "value": 0.8}, {"key": "metric/val/fused", "step": 2, "value": 0.9},
    ]})
    read = client.get(f"{RUNS}/{run['id']}").json()
    assert read["latest"] == {"metric/val/fused": {"step": 2, "value": 0.9}}
    assert read["name"] == run["name"] and read["config"] == run["config"]


def test_an_unknown_run_is_a_404_naming_it(client):
    response = client.get(f"{RUNS}/424242")
    assert response.status_code == 404
    assert response.json() == {"detail": "run 424242 not found", "errors": []}


# -- updating -------------------------------------------------------------------------------------


def test_a_run_can_be_renamed_retagged_and_moved(client, make_run):
    run = make_run(tags=["old", "keep"])
    response = client.patch(f"{RUNS}/{run['id']}", json={"name": "renamed", "tags": ["keep", "new"], "experiment": "moved"})
    assert response.status_code == 200
    updated = response.json()
    assert (updated["name"], updated["tags"], updated["experiment"]) == ("renamed", ["keep", "new"], "moved")
    detached = client.patch(f"{RUNS}/{run['id']}", json={"experiment": None}).json()
    assert detached["experiment"] is None and detached["experiment_id"] is None


def test_a_logged_run_is_finished_by_its_client(client):
    run = client.post(RUNS, json={"execute": False}).json()
    response = client.patch(f"{RUNS}/{run['id']}", json={"status": "failed", "error": "ValueError: bad batch",
                                                         "summary": {"best": 0.9}})
    finished = response.json()
    assert (finished["status"], finished["error"], finished["summary"]) == ("failed", "ValueError: bad batch", {"best": 0.9})
    assert finished["finished_at"] is not None


def test_reporting_the_same_final_status_again_is_harmless(client):
    run = client.post(RUNS, json={"execute": False}).json()
    for _ in range(2):
        assert client.patch(f"{RUNS}/{run['id']}", json={"status": "succeeded"}).status_code == 200


def test_a_finished_run_keeps_its_status(client):
    run = client.post(RUNS, json={"execute": False}).json()
    client.patch(f"{RUNS}/{run['id']}", json={"status": "succeeded"})
    response = client.patch(f"{RUNS}/{run['id']}", json={"status": "failed"})
    assert response.status_code == 409 and "already succeeded" in response.json()["detail"]


def test_the_status_of_an_executed_run_belongs_to_its_worker(client, make_run):
    run = make_run()
    response = client.patch(f"{RUNS}/{run['id']}", json={"status": "succeeded"})
    assert response.status_code == 409 and "cancel" in response.json()["detail"]


# -- cancelling -----------------------------------------------------------------------------------


def test_cancelling_a_queued_run_ends_it_at_once(client, make_run):
    cancelled = client.post(f"{RUNS}/{make_run()['id']}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"] is not None


def test_cancelling_a_running_run_asks_its_worker_to_stop(client, make_run, database):
    run = make_run()
    with database.transaction() as session:
        assert run_store.claim(session=session, run_id=run["id"], worker="gpu-0")
    response = client.post(f"{RUNS}/{run['id']}/cancel").json()
    assert (response["status"], response["cancel_requested"]) == ("running", True)
    with database.transaction() as session:
        assert leases.check(session=session, run_id=run["id"], worker="gpu-0").cancel_requested


def test_a_finished_run_cannot_be_cancelled(client, make_run):
    run = make_run()
    client.post(f"{RUNS}/{run['id']}/cancel")
    response = client.post(f"{RUNS}/{run['id']}/cancel")
    assert response.status_code == 409 and "already cancelled" in response.json()["detail"]


# -- cloning --------------------------------------------------------------------------------------


def test_a_clone_is_the_same_run_with_the_overrides_merged_in(client, make_run):
    source = make_run(experiment="sweep", tags=["a"], config={"params": {"tau": 0.3}})
    response = client.post(f"{RUNS}/{source['id']}/clone", json={"overrides": {"seed": 3, "params": {"mu": 0.25}}})
    assert response.status_code == 201
    clone = response.json()
    assert clone["id"] != source["id"] and clone["status"] == "queued"
    assert clone["config"] == source["config"] | {"seed": 3, "params": {"tau": 0.3, "mu": 0.25, "utilization_split": "val"}}
    assert (clone["experiment"], clone["tags"]) == ("sweep", ["a"])


def test_a_clone_with_another_seed_names_its_own_seed_not_the_sources(client, make_run):
    source = make_run(name="miles tau 0.2 (seed 0)")
    clone = client.post(f"{RUNS}/{source['id']}/clone", json={"overrides": {"seed": 3}}).json()
    assert clone["name"] == "miles tau 0.2 (seed 3)"
    plain = client.post(f"{RUNS}/{make_run(name='no seed here')['id']}/clone", json={"overrides": {"seed": 3}}).json()
    assert plain["name"] == "no seed here"


def test_a_clone_with_another_method_starts_from_that_methods_defaults(client, make_run):
    source = make_run(config={"params": {"tau": 0.3}})
    clone = client.post(f"{RUNS}/{source['id']}/clone", json={"overrides": {"method": "joint"}}).json()
    assert clone["config"]["method"] == "joint" and clone["config"]["params"] == {}


def test_invalid_overrides_are_named_under_overrides(client, make_run):
    response = client.post(f"{RUNS}/{make_run()['id']}/clone", json={"overrides": {"lr": 5}})
    assert response.status_code == 422
    assert fields(response) == {"overrides.lr": "must satisfy 0 < lr <= 1 (got 5)"}


def test_a_logged_run_without_a_config_cannot_be_cloned(client):
    run = client.post(RUNS, json={"execute": False}).json()
    response = client.post(f"{RUNS}/{run['id']}/clone", json={})
    assert response.status_code == 409 and "without a config" in response.json()["detail"]


# -- deleting -------------------------------------------------------------------------------------


def test_deleting_a_run_removes_its_metrics_events_and_files(client, make_run, settings):
    run = make_run()
    client.post(f"{RUNS}/{run['id']}/metrics", json={"points": [{"key": "loss", "step": 1, "value": 1.0}]})
    client.post(f"{RUNS}/{run['id']}/events", json={"events": [{"kind": "note", "message": "hi"}]})
    files = settings.run_artifacts(run["id"])
    files.mkdir(parents=True)
    (files / "best.pt").write_bytes(b"weights")
    assert client.delete(f"{RUNS}/{run['id']}").status_code == 204
    assert client.get(f"{RUNS}/{run['id']}").status_code == 404
    assert client.get(f"{RUNS}/{run['id']}/metrics").status_code == 404
    assert not files.exists()


def test_a_run_executing_on_a_worker_must_be_cancelled_before_deletion(client, make_run, database):
    run = make_run()
    with database.transaction() as session:
        run_store.claim(session=session, run_id=run["id"], worker="gpu-0")
    response = client.delete(f"{RUNS}/{run['id']}")
    assert response.status_code == 409 and "cancel it first" in response.json()["detail"]
