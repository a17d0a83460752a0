"""Dependencies of the handlers: settings, the request's database session, the run named in the path, the caller.

Those that only read the app's state are coroutines, and the others hand only their blocking part
to the thread pool: FastAPI runs every plain function in the thread pool, and under load each trip
there and back waits for a thread and then for the event loop to be scheduled (a 10-point ingest
made nine such trips).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import Message
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from server.api.admission import SAFE_METHODS, DatabaseSlot, turn
from server.api.local import same_origin
from server.db import Database
from server.dispatch import Dispatcher
from server.live import Notices
from server.models import Run
from server.settings import Settings
from server.store import runs, tokens
from trainer.spec import rebuild

ID_MAX = 2**31 - 1  # ids are 32-bit integers on PostgreSQL
COOKIE_NAME = "miles_token"


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_database(request: Request) -> Database:
    return request.app.state.database


async def get_dispatcher(request: Request) -> Dispatcher:
    return request.app.state.dispatcher


async def get_notices(request: Request) -> Notices:
    return request.app.state.notices


SettingsDep = Annotated[Settings, Depends(get_settings)]
NoticesDep = Annotated[Notices, Depends(get_notices)]
DatabaseDep = Annotated[Database, Depends(get_database)]
DispatcherDep = Annotated[Dispatcher, Depends(get_dispatcher)]


async def get_session(request: Request, database: DatabaseDep, _slot: DatabaseSlot) -> AsyncIterator[Session]:
    """One transaction per request, committed after the handler returns and before the response is sent
    (so a client that reads right after a write sees it); rolled back when the handler raises. It
    begins once the request has a slot (`server.api.admission`), at its first statement. A handler
    that commits itself (`server.db.commit`, in the thread where it wrote) spares a trip to the pool."""
    transaction = database.transaction(write=request.method not in SAFE_METHODS)
    session = transaction.__enter__()  # a new session, no I/O yet
    try:
        yield session
    except BaseException as error:  # FastAPI shields this exit from the request's cancellation
        if not await run_in_threadpool(transaction.__exit__, type(error), error, error.__traceback__):
            raise  # rolled back
    else:
        if session.in_transaction():
            await run_in_threadpool(transaction.__exit__, None, None, None)  # committed
        else:  # the handler committed in its own trip to the thread pool: closing does no I/O
            transaction.__exit__(None, None, None)


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
RunId = Annotated[int, Path(ge=1, le=ID_MAX, description="The run's id.")]


def get_run(run_id: RunId, session: SessionDep) -> Run:
    return runs.get(session=session, run_id=run_id)


RunDep = Annotated[Run, Depends(get_run)]


# -- bodies parsed from their bytes --------------------------------------------------------------

Model = TypeVar("Model", bound=BaseModel)


class JsonBody(Generic[Model]):
    """A request body of ``model`` parsed straight from its bytes (pydantic's ``model_validate_json``),
    refused with the errors FastAPI's own parsing gives, for a route where parsing is the cost: FastAPI
    decodes the JSON into Python objects and validates those after, about twice the work for the 1,000
    points of an ingest. ``model`` must not have a wrap validator (a `server.schemas.Body` has one: it
    makes pydantic build those objects anyway); its errors are rebuilt as a `Body`'s are.

    Use it as the route's first dependency and as the handler's parameter (FastAPI solves it once), and
    document it with ``openapi_extra=body.openapi``.
    """

    def __init__(self, model: type[Model]) -> None:
        self.model = model
        schema = _inlined(model.model_json_schema())
        self.openapi = {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}

    async def __call__(self, request: Request) -> Model:
        raw = await request.body()
        if not raw:
            raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
        if not _is_json(request.headers.get("content-type")):
            raise RequestValidationError([{
                "type": "model_attributes_type", "loc": ("body",), "input": raw,
                "msg": "Input should be a valid dictionary or object to extract fields from",
            }])
        try:
            try:
                return self.model.model_validate_json(raw)
            except ValidationError as refused:
                if not any(item["type"] == "json_invalid" for item in refused.errors()):
                    raise
                # Python's decoder takes what pydantic's refuses (an unpaired surrogate, which the
                # fields then name), and says where it stops on what neither takes.
                return self.model.model_validate(_decoded(raw, refused))
        except ValidationError as error:
            raise RequestValidationError(rebuild(error, self.model.__name__, prefix=("body",), model=self.model).errors()) from None


def _is_json(content_type: str | None) -> bool:
    """``application/json`` or ``application/*+json``, as FastAPI's strict content type accepts."""
    if not content_type:
        return False
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


def _decoded(raw: bytes, refused: ValidationError) -> Any:
    """``raw`` decoded by Python, or FastAPI's error for a body that is not JSON: with the character where
    Python's decoder stops, or pydantic's own words (``refused``) on what Python cannot decode either."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        where, message = ("body", error.pos), error.msg
    except ValueError:  # not UTF-8, or an integer of more digits than Python converts
        where, message = ("body",), (refused.errors()[0].get("ctx") or {}).get("error", "cannot be decoded")
    raise RequestValidationError([{"type": "json_invalid", "loc": where, "msg": "JSON decode error", "input": {},
                                   "ctx": {"error": message}}]) from None


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema with its ``$defs`` written where they are referred to (the schema of an
    ``openapi_extra`` body cannot refer to definitions FastAPI does not know)."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref", "")
            if reference.startswith("#/$defs/"):
                return resolve(definitions[reference.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(schema)


@dataclass(frozen=True)
class Caller:
    """Who is calling: the API token used and its role (None when auth is off or for a public read)."""

    token_id: int | None = None
    token_name: str | None = None
    role: str | None = None


bearer_scheme = HTTPBearer(auto_error=False, description="An API token from `miles token create NAME`.")


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"})


def authenticate(
    request: Request,
    settings: SettingsDep,
    database: DatabaseDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Caller:
    """The caller's token, from ``Authorization: Bearer`` or the login cookie; 401 saying what is wrong."""
    if not settings.auth_enabled:
        return Caller()
    reading = request.method in SAFE_METHODS
    header = request.headers.get("authorization")
    if header is not None and bearer is None:
        raise _unauthorized("the Authorization header must be 'Bearer <token>'")
    secret = bearer.credentials if bearer else request.cookies.get(COOKIE_NAME)
    if not secret:
        if reading and settings.public_reads:
            return Caller()
        raise _unauthorized(
            "this server requires an API token: send 'Authorization: Bearer <token>' "
            "(an administrator creates one with `miles token create NAME`)"
        )
    if bearer is None and not reading and not same_origin(request.headers):
        # The cookie rides along on requests from any page; a write must come from our own pages.
        raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-site request refused: its Origin is not this server")
    # Short transactions of its own, ended before the request's session begins: on SQLite a
    # write here while the request held the write lock would wait for itself.
    try:
        with database.transaction(write=False) as session:
            token = tokens.identify(session=session, secret=secret)
    except tokens.TokenRejected as error:
        raise _unauthorized(str(error)) from None
    if tokens.needs_touch(token):
        with database.transaction() as session:
            tokens.touch(session=session, token_id=token.id)
    return Caller(token_id=token.id, token_name=token.name, role=token.role)


async def caller_of(
    request: Request,
    settings: SettingsDep,
    database: DatabaseDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Caller:
    """`authenticate` as a dependency: in the thread pool only when there is a token to look up."""
    if not settings.auth_enabled:
        return Caller()
    return await run_in_threadpool(authenticate, request, settings, database, bearer)


CallerDep = Annotated[Caller, Depends(caller_of)]


# -- turns: writers of one contended row queue in the event loop (server.api.admission) ----------


async def ingest_turn(request: Request, run_id: RunId) -> AsyncIterator[None]:
    """The ingests of one run, one at a time (they hold its advisory lock in `server.store.metrics`)."""
    async with turn(request, ("ingest", run_id)):
        yield


async def submission_turn(request: Request, caller: CallerDep) -> AsyncIterator[None]:
    """The submissions of one token, one at a time (they hold its advisory lock in `server.store.runs`)."""
    async with turn(request, ("submit", caller.token_id)):
        yield


IngestTurn = Depends(ingest_turn, scope="function")
SubmissionTurn = Depends(submission_turn, scope="function")
