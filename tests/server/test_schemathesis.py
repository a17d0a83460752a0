"""Schemathesis over the OpenAPI schema: generated requests, valid and not, never make a server error.

Responses must also match the schema: documented status codes, content types and bodies.
Once with auth off (local mode), once with auth on and an admin's token.
It runs against PostgreSQL, the stricter backend (NUL bytes, integer widths); the
explicit bad-input tests run on both.
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import content_type_conformance, not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from server.app import create_app
from server.db import Database
from server.settings import Settings
from server.store import tokens

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# The schema does not depend on the database, so it is built here, at collection; the app
# under test gets the real database. (Schemathesis' from_fixture fails on this pytest.)
schema = schemathesis.openapi.from_dict(
    create_app(Settings(database_url="sqlite://", auth="off")).openapi(),
    # The coverage phase's hundreds of boundary cases per operation would triple the run.
    config=schemathesis.Config.from_dict({"phases": {"coverage": {"enabled": False}}}),
).include(path_regex="^/api/")


# PostgreSQL only: the session's migrated database and its engine (`db_url`, `shared_database`).
pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


@pytest.fixture(scope="module", params=["auth off", "auth on"])
def postgres_app(
    request: pytest.FixtureRequest, db_url: str, shared_database: Database, tmp_path_factory: pytest.TempPathFactory,
) -> FastAPI:
    home = tmp_path_factory.mktemp("schemathesis")
    auth = "on" if request.param == "auth on" else "off"
    return create_app(Settings(home=home, database_url=db_url, auth=auth), database=shared_database)


@pytest.fixture
def api(postgres_app: FastAPI, database: Database) -> FastAPI:
    """The app; `database` empties its tables after each operation's test."""
    return postgres_app


@pytest.fixture
def headers(postgres_app: FastAPI, database: Database) -> dict[str, str]:
    """A loopback Host (a server without auth answers only to those), and with auth on an admin's token,
    so that generated requests reach every handler (their own Authorization headers are replaced)."""
    if not postgres_app.state.settings.auth_enabled:
        return {"Host": "localhost"}
    with database.transaction() as session:
        secret = tokens.create(session=session, name="schemathesis", role="admin")[1]
    return {"Host": "localhost", "Authorization": f"Bearer {secret}"}


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_makes_a_server_error(case, api, headers):
    case.call_and_validate(checks=CHECKS, app=api, headers=headers)
