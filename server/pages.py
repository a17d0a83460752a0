"""What the server tells the dashboard's pages (`web`): whether the run, experiment or sweep in a page's
address exists, and errors on page addresses as HTML pages rather than the API's JSON.

Only a visitor who may read runs is told whether one exists: with auth on and no valid token
(nor MILES_PUBLIC_READS), the page is sent as for any run, and its script leads to the login.
"""

from __future__ import annotations

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


def is_page(request: Request) -> bool:
    """Whether the request is for a page (or a file of the pages), not for the API."""
    path = request.url.path.removeprefix(request.scope.get("root_path", ""))
    return not path.startswith(API_PREFIX)


def not_found_page(request: Request) -> HTMLResponse:
    return error_page(request, 404, "Page not found", f"There is no page at {request.url.path}.")


def invalid_address_page(request: Request, problems: str) -> HTMLResponse:
    return error_page(request, 422, "Invalid address", f"{request.url.path} is not a valid address: {problems}.")
