"""Local mode (auth off): only loopback host names (DNS rebinding), and changes only from the server's own pages."""

from __future__ import annotations

import pytest

from server.api.local import host_name, same_origin

RUNS = "/api/v1/runs"


@pytest.fixture
def run_id(make_run) -> int:
    return make_run()["id"]


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1:8000", "[::1]:8000", "127.0.0.5", "LOCALHOST."])
def test_loopback_host_names_are_served(client, host):
    assert client.get(RUNS, headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["attacker.example:8000", "attacker.example", "192.168.1.20:8000", "0.0.0.0:8000", ""])
def test_a_rebinding_host_name_is_refused_with_421_saying_why(client, host):
    for path in (RUNS, "/", "/docs"):  # the API, the pages and the API's page alike
        response = client.get(path, headers={"Host": host})
        assert response.status_code == 421, (host, path)
        assert "loopback" in response.json()["detail"] and "DNS rebinding" in response.json()["detail"]


def test_a_rebinding_host_cannot_change_anything_either(client, run_id):
    response = client.post(f"{RUNS}/{run_id}/cancel", headers={"Host": "attacker.example"})
    assert response.status_code == 421
    assert client.get(f"{RUNS}/{run_id}").json()["status"] == "queued"


def test_a_cross_origin_form_post_cannot_cancel_a_run(client, run_id):
    # What a web page's <form method=post action="http://127.0.0.1:8000/api/v1/runs/1/cancel"> sends.
    response = client.post(
        f"{RUNS}/{run_id}/cancel", content=b"", headers={
            "Host": "127.0.0.1:8000", "Origin": "https://attacker.example",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 403 and "cross-site" in response.json()["detail"]
    assert client.get(f"{RUNS}/{run_id}").json()["status"] == "queued"


@pytest.mark.parametrize("referer", ["https://attacker.example/page.html", "null"])
def test_a_cross_site_referer_without_origin_is_refused_too(client, run_id, referer):
    response = client.delete(f"{RUNS}/{run_id}", headers={"Host": "127.0.0.1:8000", "Referer": referer})
    assert response.status_code == 403


def test_an_opaque_origin_is_refused(client, run_id):
    response = client.post(f"{RUNS}/{run_id}/cancel", headers={"Host": "127.0.0.1:8000", "Origin": "null"})
    assert response.status_code == 403


def test_the_servers_own_pages_and_clients_without_an_origin_may_change_things(client, run_id):
    own = client.patch(f"{RUNS}/{run_id}", json={"name": "renamed"},
                       headers={"Host": "127.0.0.1:8000", "Origin": "http://127.0.0.1:8000"})
    assert own.status_code == 200
    assert client.post(f"{RUNS}/{run_id}/cancel", headers={"Host": "127.0.0.1:8000"}).status_code == 200  # curl, Python


def test_a_specific_bind_address_is_served_by_that_name(make_client, make_settings):
    client = make_client(make_settings(auth="off", host="192.168.1.20"))
    assert client.get(RUNS, headers={"Host": "192.168.1.20:8000"}).status_code == 200
    assert client.get(RUNS, headers={"Host": "attacker.example"}).status_code == 421


def test_with_auth_on_tokens_guard_the_server_and_any_name_is_served(make_client, make_settings):
    client = make_client(make_settings(auth="on", public_reads=True))
    assert client.get(RUNS, headers={"Host": "miles.example.org"}).status_code == 200


@pytest.mark.parametrize(("host", "name"), [("[::1]:8000", "::1"), ("LocalHost.:80", "localhost"), ("a.b", "a.b"), ("", "")])
def test_a_host_header_is_read_as_its_name(host, name):
    assert host_name(host) == name


def test_same_origin_compares_the_origin_with_the_host_it_was_sent_to():
    assert same_origin({"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:8000"})
    assert not same_origin({"host": "127.0.0.1:8000", "origin": "http://localhost:8000"})
    assert same_origin({"host": "127.0.0.1:8000"})
