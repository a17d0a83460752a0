"""An unexpected error is a JSON 500 whose traceback appears once in the log of a real server."""

from __future__ import annotations

import logging
import threading
import time

import httpx
import pytest
import uvicorn

from server.app import create_app
from tests.conftest import free_port


def boom() -> None:
    raise RuntimeError("a bug")


@pytest.fixture
def serving(settings):
    app = create_app(settings)
    app.add_api_route("/api/v1/boom", boom)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_an_unexpected_error_is_logged_once_with_its_request(serving, caplog):
    with caplog.at_level(logging.INFO):
        response = httpx.get(f"{serving}/api/v1/boom")
        time.sleep(0.2)  # anything the server logs after answering
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error; the server log has the details", "errors": []}
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1, [(r.name, r.getMessage()) for r in tracebacks]
    assert tracebacks[0].getMessage() == "unexpected error on GET /api/v1/boom"
    assert "a bug" in caplog.text


def test_the_api_still_answers_after_an_error(serving):
    assert httpx.get(f"{serving}/api/v1/boom").status_code == 500
    assert httpx.get(f"{serving}/api/v1/health").status_code == 200
