"""/api/v1/health: what a load balancer or `docker compose` probes."""

from __future__ import annotations

from tests.conftest import free_port


def test_health_is_ok_when_the_database_answers(client):
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() | {"version": None} == {"status": "ok", "database": "ok", "broker": "not configured", "version": None}


def test_health_is_503_when_the_database_is_down(make_client, make_settings):
    down = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    response = make_client(make_settings(database_url=down)).get("/api/v1/health")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable" and response.json()["database"].startswith("unreachable")


def test_an_unreachable_broker_degrades_health(make_client, make_settings):
    response = make_client(make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")).get("/api/v1/health")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["broker"].split(":")[0]) == ("degraded", "unreachable")


def test_a_reachable_broker_is_reported(make_client, make_settings, redis_process):
    response = make_client(make_settings(redis_url=redis_process.url)).get("/api/v1/health")
    assert response.json()["broker"] == "ok"
