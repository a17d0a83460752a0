"""``GET /api/v1/runs/{id}/stream``: a run's epochs, events and status as they happen (server-sent events).

The contract, which the dashboard's run page and any other client code against:

Events (``event:`` name, ``data:`` JSON):

- ``status`` ``{"status", "epoch", "epochs", "error", "error_detail", "summary", "worker", "machine",
  "started_at", "finished_at"}``: first on connecting, then whenever one of them changes
  (``epoch``, the epochs completed, changes every epoch).
- ``epoch`` ``{"step": s, "metrics": {key: value}}``: the points of one step, one message per
  step, in step order, each as soon as it is stored. A later message may carry more keys, or
  new values, of an earlier step (the test metrics of the last and of the best epoch, at the
  end; what a logged run posts later for a step already sent): merge by (key, step).
- ``system`` ``{"step": s, "metrics": {key: value}}``: the system metrics (``sys/...`` keys) of one
  sample, whose step ``s`` is seconds since the run started (not an epoch), in step order.
- ``run_event`` ``{"id", "step", "time", "kind", "message", "data"}``: the run's events, in id order.
- ``end`` ``{"status"}``: the run has ended and everything was sent; the server closes the
  stream. Close the ``EventSource`` then (it would reconnect and get ``status`` and ``end``
  again). ``status`` is ``"deleted"`` when the run was deleted.
- ``reconnect`` ``{}``: the stream's lifetime (MILES_STREAM_LIFETIME) is over or the server is
  shutting down; it closes, and an ``EventSource`` reconnects by itself after ``retry``.
- ``revoked`` ``{"detail"}``: the API token the stream was opened with has been revoked (it is
  checked at every read, so within a few seconds); the server closes the stream. Close the
  ``EventSource`` and sign in again: reconnecting would get 401.

Every message has an ``id``: ``"<step>:<event>"`` says that every point of the steps up to
``<step>`` (-1: none yet) and every event up to id ``<event>`` was sent. The few points sent
with an event rather than in step order (see `server.store.feed`) carry
``"<step>:<event>:<n>"``: n of them were sent after event ``<event>``. For a logged run,
``"~<write>"`` follows: the updates of every write up to ``<write>`` were sent
(`server.store.feed.updated_after`; ``"~<write>.<step>"``: of write ``<write>``, those up
to step ``<step>``). Once system metrics were sent, ``"/<second>"`` follows: those of every
second up to ``<second>`` were sent. Treat ids as opaque.

Resuming without a gap or a duplicate: a reconnecting ``EventSource`` sends the last id as
``Last-Event-ID``, and the stream continues after it. A page that first loaded the history
(``GET .../metrics``, ``GET .../events``) connects with ``?since_step=<last step loaded>&
after_event=<last event id loaded>`` (and ``since_system=<last second of sys/ points loaded>``,
``after_write=<the write number of the history>``); ``Last-Event-ID``, when present, wins.

Comments (``: ping``) keep idle connections open every 15 s; ``retry`` is 2 s. A stream
reads what it has not sent from the database by its cursor, waking on the run's notices
(`server.live`: Redis in team mode, in-process in local mode), and in local mode every half
second without one (a worker process publishes none there).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from server.api.deps import ID_MAX, CallerDep, DatabaseDep, RunId, SettingsDep
from server.db import Database
from server.live import Notices, Watch
from server.models import FINAL_STATUSES, Run, RunEvent
from server.store import events, feed, runs, tokens
from server.store.errors import Invalid, NotFound
from server.store.metrics import MAX_STEP

router = APIRouter(prefix="/runs/{run_id}", tags=["runs"])

RETRY_MS = 2000
PING_SECONDS = 15
STEPS_PER_READ = 500  # a long backlog is sent a few hundred steps at a time
EVENTS_PER_READ = 500
_CURSOR = re.compile(r"^(-1|\d{1,16}):(\d{1,10})(?::(\d{1,6}))?(?:~(\d{1,16})(?:\.(\d{1,16}))?)?(?:/(\d{1,16}))?$")


@dataclass
class Cursor:
    step: int = -1  # every point of the steps up to this one was sent
    event: int = 0  # every event up to this id was sent
    bundled: int = 0  # points bundled with the next event already sent
    system: int = -1  # the system metrics of every second up to this one were sent
    write: int | None = None  # a logged run: the updates of every write up to this one were sent (None: unknown)
    write_step: int | None = None  # ... and those of the next write up to this step

    def __str__(self) -> str:
        written = "" if self.write is None else f"~{self.write}" + ("" if self.write_step is None else f".{self.write_step}")
        return (
            f"{self.step}:{self.event}" + (f":{self.bundled}" if self.bundled else "") + written
            + (f"/{self.system}" if self.system >= 0 else "")
        )


def parse_cursor(
    last_event_id: str | None, since_step: int | None, after_event: int | None, since_system: int | None = None,
    after_write: int | None = None,
) -> Cursor:
    if last_event_id:
        match = _CURSOR.match(last_event_id.strip())
        if match is None:
            raise Invalid.field("Last-Event-ID", f"{last_event_id[:60]!r} is not an id this stream sent (step:event)")
        cursor = Cursor(
            int(match[1]), int(match[2]), int(match[3] or 0), int(match[6]) if match[6] else -1,
            int(match[4]) if match[4] else None, int(match[5]) if match[5] else None,
        )
        # Checked here, before the stream opens: past these bounds the database would refuse the query mid-stream.
        if max(cursor.step, cursor.system, cursor.write or 0, cursor.write_step or 0) > MAX_STEP or cursor.event > ID_MAX:
            raise Invalid.field("Last-Event-ID", (
                f"{last_event_id[:60]!r} is not an id this stream sent: its step is at most {MAX_STEP} and its "
                f"event at most {ID_MAX}"
            ))
        return cursor
    return Cursor(
        -1 if since_step is None else since_step, after_event or 0, system=-1 if since_system is None else since_system,
        write=after_write,
    )


def status_of(run: Run) -> dict[str, Any]:
    return {
        "status": run.status, "epoch": run.epoch, "epochs": run.epochs, "error": run.error,
        "error_detail": run.error_detail, "summary": run.summary, "worker": run.worker, "machine": run.machine,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def event_of(event: RunEvent) -> dict[str, Any]:
    return {"id": event.id, "step": event.step, "time": event.time.isoformat(), "kind": event.kind,
            "message": event.message, "data": event.data}


@dataclass
class Read:
    """One consistent look at what the stream has not sent yet."""

    status: dict[str, Any]
    steps: list[feed.StepPoints]
    events: list[dict[str, Any]]
    bundles: dict[int, list[feed.StepPoints]] = field(default_factory=dict)
    system: list[feed.StepPoints] = field(default_factory=list)
    updates: list[feed.Update] = field(default_factory=list)
    write: int | None = None  # a logged run: its last write number
    complete: bool = True  # False: more backlog than one read returns

    @property
    def final(self) -> bool:
        return self.status["status"] in FINAL_STATUSES


class TokenRevoked(Exception):
    """The API token a stream was opened with has been revoked since."""


class RunStream:
    """The messages of one connection to the stream of run ``run_id``, opened with the token ``token_id``
    (None: auth is off, or a public read)."""

    def __init__(
        self, database: Database, notices: Notices, run_id: int, cursor: Cursor, *, lifetime: float,
        token_id: int | None = None,
    ) -> None:
        self.database = database
        self.notices = notices
        self.run_id = run_id
        self.cursor = cursor
        self.deadline = time.monotonic() + lifetime
        self.token_id = token_id
        self.sent_status: dict[str, Any] | None = None

    def read(self) -> Read | None:
        """What is new since the cursor, from one snapshot of the database; None when the run is gone.
        Raises `TokenRevoked` once the stream's token is revoked."""
        with self.database.transaction(write=False) as session:
            if self.database.dialect == "postgresql":  # one snapshot for all the reads below
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            if self.token_id is not None and not tokens.is_active(session=session, token_id=self.token_id):
                raise TokenRevoked(self.token_id)
            try:
                run = runs.get(session=session, run_id=self.run_id)
            except NotFound:
                return None
            updates: list[feed.Update] = []
            write = None
            if not run.execute:
                updates, write = feed.updated_after(
                    session=session, run_id=self.run_id, write=self.cursor.write, write_step=self.cursor.write_step,
                    through_step=self.cursor.step,
                )
            steps = feed.steps_after(
                session=session, run_id=self.run_id, after=self.cursor.step, max_steps=STEPS_PER_READ, bundles=run.execute,
            )
            found = events.page(session=session, run_id=self.run_id, after_id=self.cursor.event, limit=EVENTS_PER_READ)
            system = feed.system_after(session=session, run_id=self.run_id, after=self.cursor.system, max_steps=STEPS_PER_READ)
            return Read(
                status=status_of(run), steps=steps, events=[event_of(e) for e in found],
                bundles=feed.bundled(session=session, run_id=self.run_id, events=found) if run.execute else {},
                system=system, updates=updates, write=write,
                complete=len(steps) < STEPS_PER_READ and len(found) < EVENTS_PER_READ and len(system) < STEPS_PER_READ,
            )

    def _message(self, event: str, data: dict[str, Any]) -> ServerSentEvent:
        retry = RETRY_MS if self.sent_status is None else None
        return ServerSentEvent(
            data=json.dumps(data, separators=(",", ":"), allow_nan=False), event=event, id=str(self.cursor), retry=retry,
        )

    def _status(self, status: dict[str, Any]) -> ServerSentEvent:
        message = self._message("status", status)
        self.sent_status = status
        return message

    def _epoch(self, points: feed.StepPoints) -> ServerSentEvent:
        return self._message("epoch", {"step": points.step, "metrics": points.metrics})

    def messages_of(self, read: Read) -> list[ServerSentEvent]:
        """The messages for ``read``, advancing the cursor as each is produced."""
        out: list[ServerSentEvent] = []
        if read.status != self.sent_status and (self.sent_status is None or not read.final):
            out.append(self._status(read.status))
        for n, update in enumerate(read.updates):
            last_of_write = n + 1 == len(read.updates) or read.updates[n + 1].write != update.write
            self.cursor.write, self.cursor.write_step = update.write, None if last_of_write else update.points.step
            out.append(self._epoch(update.points))
        if read.write is not None:
            self.cursor.write, self.cursor.write_step = read.write, None
        for points in read.steps:
            self.cursor.step = points.step
            out.append(self._epoch(points))
        for points in read.system:
            self.cursor.system = points.step
            out.append(self._message("system", {"step": points.step, "metrics": points.metrics}))
        for event in read.events:
            for points in read.bundles.get(event["id"], [])[self.cursor.bundled:]:
                self.cursor.bundled += 1
                out.append(self._epoch(points))
            self.cursor.event, self.cursor.bundled = event["id"], 0
            out.append(self._message("run_event", event))
        if read.final and read.complete:
            if read.status != self.sent_status:
                out.append(self._status(read.status))
            out.append(self._message("end", {"status": read.status["status"]}))
        return out

    async def messages(self, shutdown: anyio.Event) -> AsyncIterator[ServerSentEvent]:
        """Every message until the run ends (``end``), or the lifetime is over or ``shutdown`` is set (``reconnect``)."""
        async with self.notices.watch(self.run_id) as watch:  # listening before the first read: no race
            while True:
                try:
                    read = await run_in_threadpool(self.read)
                except TokenRevoked:
                    yield self._message("revoked", {"detail": "the API token of this stream was revoked; sign in again"})
                    return
                if read is None:
                    yield self._message("end", {"status": "deleted"})
                    return
                for message in self.messages_of(read):
                    yield message
                if read.final and read.complete:
                    return
                if read.complete:
                    await self._pause(watch, shutdown)
                if shutdown.is_set() or time.monotonic() >= self.deadline:
                    yield self._message("reconnect", {})
                    return

    async def _pause(self, watch: Watch, shutdown: anyio.Event) -> None:
        """Until a notice about the run, the polling interval, the end of the stream's lifetime, or shutdown."""
        waits = [asyncio.ensure_future(watch.wait()), asyncio.ensure_future(shutdown.wait())]
        try:
            await asyncio.wait(waits, timeout=max(0.0, self.deadline - time.monotonic()), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()


@router.get(
    "/stream", summary="The run's epochs, events and status, live (server-sent events)",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "A stream of status, epoch, run_event, "
                     "end and reconnect messages; see the module documentation of server.api.stream."}},
)
async def stream_run(
    run_id: RunId,
    request: Request,
    database: DatabaseDep,
    settings: SettingsDep,
    caller: CallerDep,
    last_event_id: Annotated[str | None, Header(max_length=100, description="The id of the last message received.")] = None,
    since_step: Annotated[int | None, Query(ge=-1, le=MAX_STEP, description="Points of the steps after this one.")] = None,
    after_event: Annotated[int | None, Query(ge=0, le=ID_MAX, description="Events after this id.")] = None,
    since_system: Annotated[int | None, Query(
        ge=-1, le=MAX_STEP, description="System metrics (sys/ keys) of the seconds after this one.",
    )] = None,
    after_write: Annotated[int | None, Query(
        ge=0, le=MAX_STEP, description="A logged run: the points written after this write (the history's) to steps already loaded.",
    )] = None,
) -> EventSourceResponse:
    """Server-sent events: ``status``, ``epoch``, ``run_event``, then ``end`` (or ``reconnect``). Resume with
    ``Last-Event-ID``, or after loading the history with ``since_step`` and ``after_event``."""
    cursor = parse_cursor(last_event_id, since_step, after_event, since_system, after_write)

    def exists() -> None:
        with database.transaction(write=False) as session:
            runs.get(session=session, run_id=run_id)  # 404 before the stream opens

    await run_in_threadpool(exists)
    shutdown = anyio.Event()
    stream = RunStream(
        database, request.app.state.notices, run_id, cursor, lifetime=settings.stream_lifetime, token_id=caller.token_id,
    )
    return EventSourceResponse(
        stream.messages(shutdown), ping=PING_SECONDS, send_timeout=30, shutdown_event=shutdown, shutdown_grace_period=1.0,
        headers={"Cache-Control": "no-store"},
    )
