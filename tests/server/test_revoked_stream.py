"""A revoked token's open live stream ends within seconds, against a real server with Redis (team mode)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from server.db import Database
from server.store import tokens
from tests.services import read_sse

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

ENDS_WITHIN = 5.0  # seconds; the stream checks its token at every read, at least every 2 s with Redis


def test_revoking_a_token_ends_its_open_stream_within_seconds(postgres_database, redis_process, miles_stack):
    database = Database(postgres_database)
    try:
        with database.transaction() as session:
            secret = tokens.create(session=session, name="watcher")[1]
    finally:
        database.dispose()
    stack = miles_stack(database_url=postgres_database, redis=redis_process, auth="on", stream_lifetime=300)
    server = stack.start_server("--log-level", "warning")
    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=f"{server.url}/api/v1", headers=headers, timeout=10) as api:
        run = api.post("/runs", json={"execute": False, "name": "watched"}).raise_for_status().json()
    revoked_at: list[float] = []

    def revoke() -> None:
        time.sleep(1.0)  # the stream is open and idle by then
        with httpx.Client(base_url=f"{server.url}/api/v1", headers=headers, timeout=10) as api:
            api.post("/session/revoke").raise_for_status()
        revoked_at.append(time.monotonic())

    revoker = threading.Thread(target=revoke)
    with httpx.stream("GET", f"{server.url}/api/v1/runs/{run['id']}/stream", headers=headers,
                      timeout=httpx.Timeout(5.0, read=30.0)) as response:
        assert response.status_code == 200
        revoker.start()
        received = list(read_sse(response.iter_lines()))  # until the server closes the stream
    ended = time.monotonic()
    revoker.join()
    assert [m.event for m in received] == ["status", "revoked"]
    assert "revoked" in received[-1].data["detail"]
    print(f"\nthe stream ended {ended - revoked_at[0]:.2f} s after its token was revoked")
    assert ended - revoked_at[0] < ENDS_WITHIN
    # And a reconnection is refused.
    again = httpx.get(f"{server.url}/api/v1/runs/{run['id']}/stream", headers=headers, timeout=10)
    assert again.status_code == 401
