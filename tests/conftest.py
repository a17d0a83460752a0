"""Shared fixtures: real services when the behaviour depends on them.

A test that needs a service calls `need`: without the service it is skipped on
a developer's machine and fails loudly under CI (``CI=true``).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ON_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_HOST, POSTGRES_PORT = "127.0.0.1", 5432


def need(available: bool, what: str) -> None:
    """Skip (locally) or fail (CI) when a required service or file is missing."""
    if available:
        return
    if ON_CI:
        pytest.fail(f"{what}; CI=true, so this is a failure, not a skip", pytrace=False)
    pytest.skip(what)


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real spoken and written digits (MILES_DATA_DIR, else ../shared/data beside the project)."""
    candidate = Path(os.environ.get("MILES_DATA_DIR") or ROOT.parent / "shared" / "data")
    need(
        (candidate / "fsdd" / "recordings").is_dir() and (candidate / "mnist5k").is_dir(),
        f"the digits data is not at {candidate} (set MILES_DATA_DIR)",
    )
    return candidate


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for the test session, dropped afterwards."""
    need(port_open(POSTGRES_HOST, POSTGRES_PORT), f"PostgreSQL is not reachable on {POSTGRES_HOST}:{POSTGRES_PORT}")
    import psycopg

    name = f"miles_test_{uuid.uuid4().hex[:12]}"
    admin = f"host={POSTGRES_HOST} port={POSTGRES_PORT} dbname=postgres user=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
