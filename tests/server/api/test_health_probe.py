"""/api/v1/health probes the broker through one client for the app's lifetime, closed with the app."""

from __future__ import annotations

from importlib.metadata import version

import redis

from tests.services import wait_until


def test_the_version_is_the_apps(client):
    assert client.get("/api/v1/health").json()["version"] == client.app.version == version("miles-dashboard")


def test_repeated_probes_share_one_connection_which_closes_with_the_app(make_client, make_settings, redis_process):
    admin = redis.Redis(port=redis_process.port)
    me = admin.client_id()

    def pinging() -> set[str]:
        return {c["addr"] for c in admin.client_list() if int(c["id"]) != me and c["cmd"] == "ping"}

    client = make_client(make_settings(redis_url=redis_process.url))
    already = pinging()  # e.g. the fixture's readiness check, closing
    assert client.get("/api/v1/health").json()["broker"] == "ok"
    [probe] = pinging() - already
    for _ in range(5):
        assert client.get("/api/v1/health").json()["broker"] == "ok"
    assert pinging() - already == {probe}  # the same pooled connection, not one per probe

    client.__exit__(None, None, None)  # the app shuts down

    # Redis drops the connection once it reads the close, which on a loaded machine can take a moment.
    wait_until(lambda: probe not in {c["addr"] for c in admin.client_list()}, 5, "the probe's connection to close")
