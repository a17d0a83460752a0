"""Bursts of concurrent writes against a real `miles server` on PostgreSQL: all answered, nothing lost.

A burst used to stall every database request for the pool's 30 s timeout and end some
with 500: the request holding the advisory lock waited for a thread of the pool that
the requests queued behind its lock were sitting on. Now each answer is a success, or a
clear 429/503 with ``Retry-After``, and an unrelated request stays fast meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from server.db import Database
from server.store import tokens
from tests.services import tiny_config

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

BURST = 100
ANSWER_WITHIN = 60.0  # seconds: generous for two shared cores, far below a stall's cost
UNRELATED_WITHIN = 3.0  # seconds for one unrelated request amid the burst, on two busy cores (a stall lasted 30-60 s)


def create_token(database_url: str) -> str:
    database = Database(database_url)
    try:
        with database.transaction() as session:
            return tokens.create(session=session, name="burst")[1]
    finally:
        database.dispose()


def burst(
    url: str, secret: str, requests: list[tuple[str, str, Any]], probe: str, what: str,
) -> tuple[list[httpx.Response | Exception], httpx.Response | Exception, float]:
    """Send ``requests`` (method, path, body) at once, and ``probe`` (a GET) once they are all in flight;
    the answers in order (or the error that ended one), the probe's answer, and how long it took.
    Prints the figures: the answers by status, how long the burst took, and the probe's."""
    started = time.monotonic()
    answers, probed, probe_seconds = asyncio.run(_burst(url, secret, requests, probe))
    print(f"\n{len(requests)} {what}: {dict(codes_of(answers))} in {time.monotonic() - started:.2f} s; "
          f"an unrelated read: {outcome(probed)} in {probe_seconds:.3f} s")
    return answers, probed, probe_seconds


async def _burst(
    url: str, secret: str, requests: list[tuple[str, str, Any]], probe: str,
) -> tuple[list[httpx.Response | Exception], httpx.Response | Exception, float]:
    headers = {"Authorization": f"Bearer {secret}"}
    limits = httpx.Limits(max_connections=BURST + 10, max_keepalive_connections=BURST + 10)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=ANSWER_WITHIN, limits=limits) as client:
        sent = [asyncio.ensure_future(client.request(method, path, json=body)) for method, path, body in requests]
        await asyncio.sleep(0.3)  # the burst is being served
        started = time.monotonic()
        try:
            probed: httpx.Response | Exception = await client.get(probe)
        except httpx.HTTPError as error:
            probed = error
        probe_seconds = time.monotonic() - started
        return list(await asyncio.gather(*sent, return_exceptions=True)), probed, probe_seconds


def outcome(answer: httpx.Response | Exception) -> int | str:
    return answer.status_code if isinstance(answer, httpx.Response) else type(answer).__name__


def codes_of(answers: list[httpx.Response | Exception]) -> Counter[int | str]:
    """How many answers had each status; an error instead of an answer counts by its name."""
    return Counter(outcome(answer) for answer in answers)


def check_answers(answers: list[httpx.Response | Exception], success: int) -> Counter[int]:
    """Each answer a success or a 429/503 with Retry-After (not an error, not a dropped connection)."""
    codes = Counter(response.status_code for response in answers if isinstance(response, httpx.Response))
    for response in answers:
        assert isinstance(response, httpx.Response), f"no answer: {response!r}"
        assert response.status_code in (success, 429, 503), f"{response.status_code}: {response.text[:300]}"
        if response.status_code in (429, 503):
            assert response.headers.get("retry-after"), response.headers
    return codes


@pytest.fixture
def team_server(postgres_database, redis_process, miles_stack):
    """A `miles server` on PostgreSQL with Redis, auth on, room for the whole burst, and a token."""
    secret = create_token(postgres_database)
    stack = miles_stack(database_url=postgres_database, redis=redis_process, auth="on", max_active_runs=BURST + 50)
    server = stack.start_server("--log-level", "warning")
    return f"{server.url}/api/v1", secret


def test_a_hundred_concurrent_submissions_of_one_token_are_all_answered_and_none_lost(team_server):
    url, secret = team_server
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secret}"}, timeout=10) as api:
        other = api.post("/runs", json={"config": tiny_config(), "name": "unrelated"}).raise_for_status().json()
    requests = [("POST", "/runs", {"config": tiny_config(seed=i), "name": f"burst {i}"}) for i in range(BURST)]
    answers, probed, probe_seconds = burst(url, secret, requests, f"/runs/{other['id']}", "submissions")
    codes = check_answers(answers, 201)
    created = {response.json()["name"] for response in answers if response.status_code == 201}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secret}"}, timeout=10) as api:
        stored = {run["name"] for run in api.get("/runs", params={"q": "burst", "limit": 500}).json()["items"]}
    assert stored == created and codes[201] == BURST  # room for all: each one stored, none twice
    assert outcome(probed) == 200 and probe_seconds < UNRELATED_WITHIN


def test_a_hundred_concurrent_ingests_into_one_run_are_all_answered_and_none_lost(team_server):
    url, secret = team_server
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secret}"}, timeout=10) as api:
        run = api.post("/runs", json={"execute": False, "name": "logged"}).raise_for_status().json()
        other = api.post("/runs", json={"execute": False, "name": "unrelated"}).raise_for_status().json()
    points = 50
    requests = [
        ("POST", f"/runs/{run['id']}/metrics", {"points": [
            {"key": f"loss/{i}", "step": step, "value": step / 10} for step in range(points)
        ]})
        for i in range(BURST)
    ]
    answers, probed, probe_seconds = burst(url, secret, requests, f"/runs/{other['id']}/metrics/latest", "ingests")
    codes = check_answers(answers, 200)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secret}"}, timeout=30) as api:
        latest = api.get(f"/runs/{run['id']}/metrics/latest").json()["latest"]
        series = api.get(f"/runs/{run['id']}/metrics", params={"keys": "loss/*"}).json()["series"]
    accepted = {f"loss/{i}" for i, response in enumerate(answers) if response.status_code == 200}
    assert set(latest) == accepted and codes[200] == BURST
    assert all(series[key]["steps"] == list(range(points)) for key in accepted)
    assert outcome(probed) == 200 and probe_seconds < UNRELATED_WITHIN
