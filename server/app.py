"""The FastAPI application: `create_app(settings)` builds one, with its own database engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI

from server import api, live, pages
from server.api import errors
from server.api.admission import Admission
from server.api.health import BrokerProbe
from server.api.local import LocalOnly
from server.db import REQUEST_SLOTS, Database
from server.dispatch import Dispatcher, KeepQueued
from server.settings import Settings, load_settings
from server.sweeps.driver import start_driving
from server.sweeps.study import Studies
from web import install as install_dashboard

ADMISSION_WAIT = 20.0  # seconds a request may queue for the database before it gets 503 (server.api.admission)

DESCRIPTION = """
The system of record of the MILES dashboard: runs, their metric series and events,
experiments, and the catalogue of datasets and methods. The browser pages, the
workers and the Python client (`trainer.client.MilesClient`) all use this API.

Errors are JSON: `{"detail": "...", "errors": [{"field": "config.params.tau", "message": "..."}]}`.
When auth is on, send `Authorization: Bearer <token>` (`miles token create NAME --role admin|member|viewer`):
viewers read, members also submit and change the runs they created, admins change everything (403 otherwise).
"""


def create_app(
    settings: Settings | None = None, *, dispatcher: Dispatcher | None = None, database: Database | None = None,
    drive_sweeps: bool = True,
) -> FastAPI:
    """The API for ``settings`` (default: from the environment). ``dispatcher`` hands queued runs to
    workers; the default leaves them queued in the database (see `server.dispatch`). ``database``
    shares an engine with its owner (a process embedding the server); by default the app has its own.
    ``drive_sweeps``: run the sweeps' driver while the app runs (server.sweeps.driver)."""
    settings = settings or load_settings()
    owned = database is None
    database = database or Database(settings.database_url)
    dispatcher = dispatcher or KeepQueued()

    notices = live.notices_for(settings)  # what wakes the live streams (server.api.stream)
    broker_probe = BrokerProbe(settings.redis_url)  # what /health pings
    studies = Studies(settings.database_url)  # Optuna's studies of the sweeps, opened when first needed

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop_driving = start_driving(settings, database, dispatcher, studies) if drive_sweeps else None
        yield
        if stop_driving is not None:
            stop_driving()
        studies.close()
        await notices.close()
        broker_probe.close()
        if owned:
            database.dispose()

    app = FastAPI(
        title="MILES dashboard API", version=version("miles-dashboard"), description=DESCRIPTION, lifespan=lifespan,
        docs_url=None, redoc_url=None,  # served by the dashboard, without a CDN (web.api_docs)
    )
    app.state.settings = settings
    app.state.database = database
    app.state.dispatcher = dispatcher
    app.state.studies = studies
    app.state.notices = notices
    app.state.broker_probe = broker_probe
    app.state.admission = Admission(slots=REQUEST_SLOTS, wait=ADMISSION_WAIT)
    errors.install(app)
    app.add_middleware(errors.BodyLimit, max_bytes=settings.max_request_bytes)
    if not settings.auth_enabled:  # no token stands guard: loopback names and our own pages only
        app.add_middleware(LocalOnly, bind_host=settings.host)
    app.add_middleware(errors.LastResort)  # added last: the outermost of the app's middleware
    app.include_router(api.router)
    install_dashboard(app, exists=pages.exists, preload=pages.preload)
    return app
