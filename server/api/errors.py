"""Every error of the API is JSON, ``{"detail": sentence, "errors": [{"field", "message"}]}``, and none a
client causes is a 5xx. A page address that does not exist or is not valid gets an HTML page instead
(`server.pages`), with the same status."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server import pages
from server.dispatch import BrokerUnavailable
from server.schemas import PATTERN_HELP, ErrorOut
from server.store.errors import Conflict, Invalid, LimitReached, NotFound, StoreError
from trainer.spec import FieldError

log = logging.getLogger("miles.server")
LOCATIONS = ("body", "query", "path", "header", "cookie")

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": description}
    for code, description in (
        (400, "The body is not valid JSON, or a query parameter is malformed."),
        (401, "An API token is required, or the one sent is not valid."),
        (403, "The token's role does not allow this, or a cross-site write."),
        (404, "No such run, experiment, or route."),
        (409, "The request contradicts the current state (a taken name, a finished run)."),
        (413, "The request body is larger than MILES_MAX_REQUEST_BYTES."),
        (421, "A server without auth answers only to loopback host names (server.api.local)."),
        (422, "A field is invalid: `errors` names each field and what is allowed."),
        (429, "A limit of the server is reached (queued and running runs per token)."),
        (503, "The database or the job queue cannot be reached, or the server is busy; retry after `Retry-After` seconds."),
    )
}


class ErrorResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        # ASCII escapes: an error may quote what the client sent, unpaired surrogates included.
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode()


def error_response(status_code: int, detail: str, errors: Sequence[FieldError] = (), headers: dict[str, str] | None = None) -> ErrorResponse:
    body = {"detail": detail, "errors": [{"field": e.field, "message": e.message} for e in errors]}
    return ErrorResponse(body, status_code=status_code, headers=headers)


def describe(errors: Sequence[FieldError]) -> str:
    shown = "; ".join(map(str, errors[:3]))
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return f"invalid request: {shown}{more}"


def field_errors(raw: Sequence[dict[str, Any]]) -> list[FieldError]:
    """Pydantic's errors as `FieldError`s: dotted fields without the ``body.`` prefix, readable messages."""
    found = []
    for error in raw:
        loc = list(error.get("loc", ()))
        if error.get("type") == "json_invalid":
            loc = ["body"]  # FastAPI puts the character position here
        if loc and loc[0] in LOCATIONS:
            where = loc.pop(0)
            if not loc:
                loc = [where]
        found.append(FieldError(".".join(str(part) for part in loc), _message(error)))
    return found


def _message(error: dict[str, Any]) -> str:
    kind, context = error.get("type", ""), error.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "json_invalid":
        position = error.get("loc", ())[1:]  # none when the decoder's own words say where
        where = f" (at character {position[0]})" if position else ""
        return f"is not valid JSON: {context.get('error', 'cannot be parsed')}{where}"
    if kind in ("model_attributes_type", "model_type", "dict_type") and tuple(error.get("loc", ())) == ("body",):
        return "must be a JSON object, sent with Content-Type: application/json"
    if kind == "string_pattern_mismatch":
        return PATTERN_HELP.get(context.get("pattern", ""), error["msg"])
    if kind == "string_unicode":
        return "is not valid Unicode text (it holds an unpaired surrogate)"
    return str(error.get("msg", "is invalid")).removeprefix("Value error, ")


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, error: RequestValidationError) -> Response:
        errors = field_errors(error.errors())
        if pages.is_page(request):
            return pages.invalid_address_page(request, "; ".join(map(str, errors)))
        if any(e.get("type") == "json_invalid" for e in error.errors()):
            return error_response(status.HTTP_400_BAD_REQUEST, "the request body is not valid JSON", errors)
        return error_response(status.HTTP_422_UNPROCESSABLE_CONTENT, describe(errors), errors)

    @app.exception_handler(StoreError)
    async def _refused(_request: Request, error: StoreError) -> ErrorResponse:
        if isinstance(error, Invalid):
            return error_response(status.HTTP_422_UNPROCESSABLE_CONTENT, describe(error.errors), error.errors)
        code = {NotFound: 404, Conflict: 409, LimitReached: 429}.get(type(error), 400)
        return error_response(code, str(error))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, error: HTTPException) -> Response:
        if error.status_code == 404 and pages.is_page(request):
            return pages.not_found_page(request)
        detail = error.detail
        if error.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.method} {request.url.path}; see /docs for the API"
        elif error.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
        return error_response(error.status_code, str(detail), headers=error.headers)

    @app.exception_handler(BrokerUnavailable)
    async def _no_broker(_request: Request, error: BrokerUnavailable) -> ErrorResponse:
        return error_response(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"the run was saved as queued but could not be enqueued: {error}",
            headers={"Retry-After": "10"},
        )

    @app.exception_handler(PoolTimeout)
    async def _no_connection(_request: Request, error: PoolTimeout) -> ErrorResponse:
        log.warning("no database connection free in time: %s", error)
        return error_response(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the server is busy: no database connection was free in time; retry shortly",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(OperationalError)
    async def _database_down(_request: Request, error: DBAPIError) -> ErrorResponse:
        log.warning("database unavailable: %s", error.orig)
        return error_response(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the database cannot be reached or is busy; retry shortly",
            headers={"Retry-After": "5"},
        )


class LastResort:
    """Answer 500 to an unexpected error and log its traceback, once.

    Not an exception handler for ``Exception``: Starlette runs that one in its outermost
    middleware, which re-raises after answering so that the server logs the error too, and
    uvicorn then printed every traceback a second time. Installed as the outermost of the app's
    own middleware, this catches the error first and does not re-raise it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            if not started:  # else the response is cut short: the client sees the connection close
                response = error_response(
                    status.HTTP_500_INTERNAL_SERVER_ERROR, "internal error; the server log has the details",
                )
                await response(scope, receive, send)


class BodyLimit:
    """Answer 413 to a request whose body exceeds ``max_bytes``, without reading more of it than that."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> HTTPException:
        return HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"the request body is larger than this server accepts ({self.max_bytes:,} bytes, "
            "MILES_MAX_REQUEST_BYTES); send metrics in smaller batches",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            error = self._too_large()
            await error_response(error.status_code, error.detail)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            # A body sent without Content-Length (chunked) is counted as it arrives; the
            # HTTPException passes through FastAPI's body parsing to the handler above.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large()
            return message

        await self.app(scope, counting_receive, send)
