"""The FastAPI application: `create_app(settings)` builds one, with its own database engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI

from server import api, live, pages
from server.api import errors
from server.api.health import BrokerProbe
from server.db import Database
from server.dispatch import Dispatcher, KeepQueued
from server.settings import Settings, load_settings
from web import install as install_dashboard

DESCRIPTION = """
The system of record of the MILES dashboard: runs, their metric series and events,
experiments, and the catalogue of datasets and methods. The browser pages, the
workers and the Python client (`trainer.client.MilesClient`) all use this API.

Errors are JSON: `{"detail": "...", "errors": [{"field": "config.params.tau", "message": "..."}]}`.
When auth is on, send `Authorization: Bearer <token>` (`miles token create NAME`).
"""


def create_app(
    settings: Settings | None = None, *, dispatcher: Dispatcher | None = None, database: Database | None = None
) -> FastAPI:
    """The API for ``settings`` (default: from the environment). ``dispatcher`` hands queued runs to
    workers; the default leaves them queued in the database (see `server.dispatch`). ``database``
    shares an engine with its owner (a process embedding the server); by default the app has its own."""
    settings = settings or load_settings()
    owned = database is None
    database = database or Database(settings.database_url)

    notices = live.notices_for(settings)  # what wakes the live streams (server.api.stream)
    broker_probe = BrokerProbe(settings.redis_url)  # what /health pings

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await notices.close()
        broker_probe.close()
        if owned:
            database.dispose()

    app = FastAPI(
        title="MILES dashboard API", version=version("miles-dashboard"), description=DESCRIPTION, lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.database = database
    app.state.dispatcher = dispatcher or KeepQueued()
    app.state.notices = notices
    app.state.broker_probe = broker_probe
    errors.install(app)
    app.add_middleware(errors.BodyLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(errors.LastResort)  # added last: the outermost of the app's middleware
    app.include_router(api.router)
    install_dashboard(app, exists=pages.exists)
    return app
