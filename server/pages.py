"""What the server tells the dashboard's pages (`web`): whether the run, experiment or sweep in a page's
address exists, what a run page's script would ask the API for first (`preload`), and errors on
page addresses as HTML pages rather than the API's JSON.

Only a visitor who may read runs is told whether one exists: with auth on and no valid token
(nor MILES_PUBLIC_READS), the page is sent as for any run, and its script leads to the login.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import SQLAlchemyError

from server.models import Experiment, Run, Sweep
from web.routes import Kind, error_page

API_PREFIX = "/api/"
MODELS: dict[Kind, type[Run] | type[Experiment] | type[Sweep]] = {"run": Run, "experiment": Experiment, "sweep": Sweep}


def exists(request: Request, kind: Kind, ident: int) -> bool | None:
    """`web.routes.Exists` for this server's database."""
    from server.api.deps import (
        authenticate,  # here: deps -> local -> errors -> this module at import time
    )

    settings, database = request.app.state.settings, request.app.state.database
    try:
        authenticate(request, settings, database, None)
        with database.transaction(write=False) as session:
            return session.get(MODELS[kind], ident) is not None
    except HTTPException:  # not signed in (or not allowed to read): not told
        return None
    except SQLAlchemyError:  # the database is down: the page's script says so
        return None


PRELOADED_POINTS = 2000  # the run page's first read of the metrics (max_points)
PRELOADED_EVENTS = 1000  # a longer log is left to the page's script, a page at a time


def preload(request: Request, kind: Kind, ident: int) -> dict[str, Any] | None:
    """`web.routes.Preload` for this server's database: the first answers a run page's script would get
    from the API (``GET /runs/{id}``, its dataset's catalogue entry, ``GET .../metrics?max_points=2000``,
    ``GET .../events``), as the API gives them; None when this visitor may not read them."""
    from server.api.catalog import _static
    from server.api.deps import authenticate
    from server.api.runs import run_out
    from server.schemas import EventOut, SeriesOut
    from server.store import events, metrics

    if kind != "run":
        return None
    settings, database = request.app.state.settings, request.app.state.database
    try:
        authenticate(request, settings, database, None)
        with database.transaction(write=False) as session:
            run = session.get(Run, ident)
            if run is None:
                return None
            found = events.page(session=session, run_id=run.id, limit=PRELOADED_EVENTS + 1)
            series = metrics.series(session=session, run_id=run.id, max_points=PRELOADED_POINTS)
            return {
                "run": run_out(session, run).model_dump(mode="json"),
                "catalog": {"datasets": [d.model_dump(mode="json") for d in _static()[0] if d.name == run.dataset]},
                "metrics": {"series": {k: SeriesOut(steps=v.steps, values=v.values).model_dump() for k, v in series.items()}},
                "events": [EventOut.model_validate(e).model_dump(mode="json") for e in found] if len(found) <= PRELOADED_EVENTS else None,
            }
    except HTTPException:  # not signed in (or not allowed to read): the script asks, and leads to the login
        return None
    except SQLAlchemyError:  # the database is down: the page's script says so
        return None


def is_page(request: Request) -> bool:
    """Whether the request is for a page (or a file of the pages), not for the API."""
    path = request.url.path.removeprefix(request.scope.get("root_path", ""))
    return not path.startswith(API_PREFIX)


def not_found_page(request: Request) -> HTMLResponse:
    return error_page(request, 404, "Page not found", f"There is no page at {request.url.path}.")


def invalid_address_page(request: Request, problems: str) -> HTMLResponse:
    return error_page(request, 422, "Invalid address", f"{request.url.path} is not a valid address: {problems}.")
