"""Schemathesis over the OpenAPI schema: generated requests, valid and not, never make a server error.

Responses must also match the schema: documented status codes, content types and bodies.
It runs against PostgreSQL, the stricter backend (NUL bytes, integer widths); the
explicit bad-input tests run on both.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import content_type_conformance, not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from server import migrate
from server.app import create_app
from server.db import Database
from server.settings import Settings

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# The schema does not depend on the database, so it is built here, at collection; the app
# under test gets the real database. (Schemathesis' from_fixture fails on this pytest.)
schema = schemathesis.openapi.from_dict(
    create_app(Settings(database_url="sqlite://", auth="off")).openapi(),
    # The coverage phase's hundreds of boundary cases per operation would triple the run.
    config=schemathesis.Config.from_dict({"phases": {"coverage": {"enabled": False}}}),
).include(path_regex="^/api/")


@pytest.fixture(scope="module")
def postgres_app(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    database = Database(postgres_url)
    migrate.upgrade(database.engine)
    home = tmp_path_factory.mktemp("schemathesis")
    yield create_app(Settings(home=home, database_url=postgres_url, auth="off"), database=database)
    database.dispose()


@pytest.fixture
def api(postgres_app: FastAPI, wipe) -> Iterator[FastAPI]:
    yield postgres_app
    wipe(postgres_app.state.database)


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_makes_a_server_error(case, api):
    case.call_and_validate(checks=CHECKS, app=api)
