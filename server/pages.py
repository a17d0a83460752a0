"""What the server tells the dashboard's pages (`web`): whether the run, experiment or sweep in a page's
address exists, what the script of a run page or of the compare page would ask the API for first
(`preload`), and errors on page addresses as HTML pages rather than the API's JSON.

(The API's modules are imported where they are used: they import this one, through `server.api.errors`.)

Only a visitor who may read runs is told whether one exists: with auth on and no valid token
(nor MILES_PUBLIC_READS), the page is sent as for any run, and its script leads to the login.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from server.models import Experiment, Run, Sweep
from server.schemas import EventOut, SeriesOut
from server.store import events, metrics, runs
from web.routes import Kind, Preloaded, error_page

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
# What the compare page's script (compare.js) asks for first: the runs with every chartable metric's
# latest value, at most 500 (the limit of a page of runs), and of each run its default metric and its
# utilization gap at 1,000 points a series.
COMPARED_LATEST = "metric/*,loss/*,util/*,lr/*"
COMPARED_MAX_RUNS = 500
COMPARED_KEYS = ("metric/val/fused", "util/delta")
COMPARED_POINTS = 1000


def preload(request: Request, page: Preloaded, ids: list[int]) -> dict[str, Any] | None:
    """`web.routes.Preload` for this server's database: the first answers the page's script would get from
    the API, as the API gives them; None when this visitor may not read them.

    A run page: ``GET /runs/{id}``, its dataset's catalogue entry, ``GET .../metrics?max_points=2000``
    and ``GET .../events``. The compare page: ``GET /runs?id=...&limit=500&latest=...``,
    ``GET /results?id=...`` and, for each run, ``GET /runs/{id}/metrics?keys=metric/val/fused,util/delta&max_points=1000``
    (by run id), with the ``ids`` they are for.
    """
    from server.api.deps import authenticate

    settings, database = request.app.state.settings, request.app.state.database
    try:
        authenticate(request, settings, database, None)
        with database.transaction(write=False) as session:
            return _run_page(session, ids[0]) if page == "run" else _compare_page(session, ids)
    except HTTPException:  # not signed in (or not allowed to read): the script asks, and leads to the login
        return None
    except SQLAlchemyError:  # the database is down: the page's script says so
        return None


def _series(session: Session, run_id: int, **options: Any) -> dict[str, Any]:
    """``GET /runs/{id}/metrics`` as the API answers it."""
    found = metrics.series(session=session, run_id=run_id, **options)
    return {"series": {key: SeriesOut(steps=s.steps, values=s.values).model_dump() for key, s in found.items()}}


def _run_page(session: Session, run_id: int) -> dict[str, Any] | None:
    from server.api.catalog import _static
    from server.api.runs import run_out

    run = session.get(Run, run_id)
    if run is None:
        return None
    found = events.page(session=session, run_id=run.id, limit=PRELOADED_EVENTS + 1)
    return {
        "run": run_out(session, run).model_dump(mode="json"),
        "catalog": {"datasets": [d.model_dump(mode="json") for d in _static()[0] if d.name == run.dataset]},
        "metrics": _series(session, run.id, max_points=PRELOADED_POINTS),
        "events": [EventOut.model_validate(e).model_dump(mode="json") for e in found] if len(found) <= PRELOADED_EVENTS else None,
    }


def _compare_page(session: Session, ids: list[int]) -> dict[str, Any] | None:
    from server.api.metrics import parse_keys
    from server.api.results import get_results
    from server.api.runs import page_out

    if len(ids) > COMPARED_MAX_RUNS:
        return None  # the API refuses as many: the script asks, and says so
    found = runs.page(session=session, filters=runs.RunFilters(ids=ids), limit=COMPARED_MAX_RUNS)
    return {
        "ids": ids,
        "runs": page_out(session, found, parse_keys(COMPARED_LATEST, "latest")).model_dump(mode="json"),
        "results": get_results(session=session, id_=ids).model_dump(mode="json"),
        "metrics": {
            str(run.id): _series(session, run.id, keys=list(COMPARED_KEYS), max_points=COMPARED_POINTS) for run in found.items
        },
    }


def is_page(request: Request) -> bool:
    """Whether the request is for a page (or a file of the pages), not for the API."""
    path = request.url.path.removeprefix(request.scope.get("root_path", ""))
    return not path.startswith(API_PREFIX)


def not_found_page(request: Request) -> HTMLResponse:
    return error_page(request, 404, "Page not found", f"There is no page at {request.url.path}.")


def invalid_address_page(request: Request, problems: str) -> HTMLResponse:
    return error_page(request, 422, "Invalid address", f"{request.url.path} is not a valid address: {problems}.")
