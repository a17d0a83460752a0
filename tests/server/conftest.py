"""Fixtures of the server's tests: every test that takes `db_url` runs on SQLite and on PostgreSQL.

`db_url` and `database` (tests/conftest.py) are each backend's database, migrated once
per session with Alembic (as `miles db upgrade` does); tests start from empty tables.
`client` is the real app on that database, through Starlette's test client.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from server.app import create_app
from server.db import Database
from server.settings import Settings
from server.store import runs

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette's test client would prefer httpx2 to httpx
    from fastapi.testclient import TestClient


@pytest.fixture
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No MILES_* variable of the developer's, and the test's folder as the working directory (no stray .env)."""
    for name in list(os.environ):
        if name.startswith("MILES_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def make_settings(db_url: str, clean_environment: Path) -> Callable[..., Settings]:
    """Settings of a test server on the backend, isolated from the developer's MILES_* variables."""
    tmp_path = clean_environment

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"home": tmp_path / "home", "database_url": db_url, "auth": "off"} | overrides
        return Settings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def make_client(database: Database) -> Iterator[Callable[..., TestClient]]:
    """Clients of apps built from given settings (for auth and limits) and `create_app` options."""
    clients: list[TestClient] = []

    def make(settings: Settings, **options: Any) -> TestClient:
        shared = database if settings.database_url == database.url else None
        # localhost: a server without auth answers only to loopback names (server.api.local).
        client = TestClient(create_app(settings, database=shared, **options), base_url="http://localhost")
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[[Settings], TestClient], settings: Settings) -> TestClient:
    return make_client(settings)


@pytest.fixture
def small_config() -> dict[str, Any]:
    """A valid TrainConfig of a few epochs."""
    return {"dataset": "mfeat", "modalities": ["pix", "fou"], "epochs": 3}


@pytest.fixture
def make_run(client: TestClient, small_config: dict[str, Any]) -> Callable[..., dict[str, Any]]:
    """Submit a run through the API and return it: ``make_run(name="a", config={"seed": 2})``."""

    def make(**fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"config": small_config} | fields
        if "config" in fields and fields["config"] is not None:
            body["config"] = small_config | fields["config"]
        response = client.post("/api/v1/runs", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    return make


class RecordingDispatcher:
    """Enqueues by checking, from a separate connection, that the run's row is already committed."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.enqueued: list[tuple[int, str, str]] = []

    def enqueue(self, run_id: int, queue: str) -> None:
        with self.database.transaction(write=False) as session:
            self.enqueued.append((run_id, queue, runs.get(session=session, run_id=run_id).status))
