"""Auth: API tokens on writes (and reads, unless opened), from a header or the login cookie."""

from __future__ import annotations

import pytest

from server.store import runs, tokens
from server.store.errors import Invalid

RUNS = "/api/v1/runs"


@pytest.fixture
def secret(database) -> str:
    with database.transaction() as session:
        return tokens.create(session=session, name="ci")[1]


@pytest.fixture
def secured(make_client, make_settings):
    return make_client(make_settings(auth="on"))


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_with_auth_off_no_token_is_needed(client, small_config):
    assert client.post(RUNS, json={"config": small_config}).status_code == 201


def test_auto_turns_auth_on_for_a_public_bind_address(make_client, make_settings):
    client = make_client(make_settings(auth="auto", host="0.0.0.0"))
    assert client.get(RUNS).status_code == 401


def test_a_write_without_a_token_is_401_saying_how_to_get_one(secured, small_config):
    response = secured.post(RUNS, json={"config": small_config})
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in response.json()["detail"] and "miles token create" in response.json()["detail"]


def test_a_valid_token_is_let_through_and_owns_its_runs(secured, secret, small_config, database):
    response = secured.post(RUNS, json={"config": small_config}, headers=bearer(secret))
    assert response.status_code == 201
    with database.transaction(write=False) as session:
        token = tokens.find(session=session, ref="ci")
        assert token.last_used_at is not None
        assert runs.get(session=session, run_id=response.json()["id"]).owner_token_id == token.id


def test_a_wrong_token_is_401_saying_it_is_not_valid(secured, secret):
    response = secured.get(RUNS, headers=bearer(secret + "x"))
    assert response.status_code == 401 and "not valid" in response.json()["detail"]


def test_a_revoked_token_is_401_saying_when_it_was_revoked(secured, secret, database):
    with database.transaction() as session:
        tokens.revoke(session=session, ref="ci")
    response = secured.get(RUNS, headers=bearer(secret))
    assert response.status_code == 401 and "'ci'" in response.json()["detail"] and "revoked" in response.json()["detail"]


def test_an_authorization_header_of_another_scheme_is_refused(secured, secret):
    response = secured.get(RUNS, headers={"Authorization": f"Basic {secret}"})
    assert response.status_code == 401 and "Bearer <token>" in response.json()["detail"]


def test_reads_need_a_token_unless_opened(make_client, make_settings, small_config):
    closed = make_client(make_settings(auth="on"))
    opened = make_client(make_settings(auth="on", public_reads=True))
    assert closed.get(RUNS).status_code == 401
    assert opened.get(RUNS).status_code == 200
    assert opened.post(RUNS, json={"config": small_config}).status_code == 401


def test_health_and_the_session_are_open_to_all(secured):
    assert secured.get("/api/v1/health").status_code == 200
    assert secured.get("/api/v1/session").json() == {"auth": True, "public_reads": False, "token": None, "role": None}


def test_logging_in_keeps_the_token_in_an_httponly_cookie(secured, secret, small_config):
    response = secured.post("/api/v1/login", json={"token": secret})
    assert response.json() == {"token": "ci", "role": "member"}
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert secured.get(RUNS).status_code == 200
    assert secured.post(RUNS, json={"config": small_config}).status_code == 201
    assert secured.get("/api/v1/session").json()["token"] == "ci"


def test_logging_in_with_a_bad_token_is_refused(secured):
    response = secured.post("/api/v1/login", json={"token": "miles_guess"})
    assert response.status_code == 401 and "set-cookie" not in response.headers


def test_logging_out_forgets_the_cookie(secured, secret):
    secured.post("/api/v1/login", json={"token": secret})
    assert secured.post("/api/v1/logout").status_code == 204
    assert secured.get(RUNS).status_code == 401


def test_a_cross_site_write_with_the_cookie_is_refused(secured, secret, small_config):
    secured.post("/api/v1/login", json={"token": secret})
    response = secured.post(RUNS, json={"config": small_config}, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403 and "cross-site" in response.json()["detail"]


def test_the_active_limit_counts_each_tokens_runs_apart(make_client, make_settings, database, small_config):
    client = make_client(make_settings(auth="on", max_active_runs=1))
    with database.transaction() as session:
        first, second = tokens.create(session=session, name="a")[1], tokens.create(session=session, name="b")[1]
    assert client.post(RUNS, json={"config": small_config}, headers=bearer(first)).status_code == 201
    assert client.post(RUNS, json={"config": small_config}, headers=bearer(first)).status_code == 429
    assert client.post(RUNS, json={"config": small_config}, headers=bearer(second)).status_code == 201


def test_the_token_is_never_stored(database):
    with database.transaction() as session:
        token, secret = tokens.create(session=session, name="stored")
        assert secret not in (token.hash, token.prefix) and token.hash == tokens.digest(secret)
        assert secret.startswith(token.prefix) and len(secret) > 40


def test_a_token_revokes_itself_and_is_refused_from_then_on(secured, secret, database):
    assert secured.post("/api/v1/session/revoke", headers=bearer(secret)).status_code == 204
    response = secured.get(RUNS, headers=bearer(secret))
    assert response.status_code == 401 and "revoked" in response.json()["detail"]
    with database.transaction(write=False) as session:
        assert tokens.all_tokens(session=session)[0].revoked_at is not None


def test_signing_out_and_revoking_from_the_page_forgets_the_cookie_too(secured, secret):
    secured.post("/api/v1/login", json={"token": secret})
    response = secured.post("/api/v1/session/revoke")
    assert response.status_code == 204 and 'miles_token=""' in response.headers["set-cookie"]
    assert secured.get("/api/v1/session").json()["token"] is None
    assert secured.post("/api/v1/login", json={"token": secret}).status_code == 401


def test_a_cross_site_page_cannot_revoke_the_signed_in_token(secured, secret):
    secured.post("/api/v1/login", json={"token": secret})
    response = secured.post("/api/v1/session/revoke", headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert secured.get(RUNS).status_code == 200


def test_without_auth_there_is_no_token_to_revoke(client):
    response = client.post("/api/v1/session/revoke")
    assert response.status_code == 409 and "auth is off" in response.json()["detail"]


def test_the_session_and_the_login_say_the_tokens_role(secured, database):
    with database.transaction() as session:
        viewer = tokens.create(session=session, name="eyes", role="viewer")[1]
    assert secured.post("/api/v1/login", json={"token": viewer}).json() == {"token": "eyes", "role": "viewer"}
    assert secured.get("/api/v1/session").json()["role"] == "viewer"


def test_a_token_gets_a_role_the_store_knows_or_none(database):
    with database.transaction() as session:
        assert tokens.create(session=session, name="plain")[0].role == "member"  # the default
        with pytest.raises(Invalid, match="admin, member, viewer"):
            tokens.create(session=session, name="boss", role="owner")
