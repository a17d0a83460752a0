"""How many requests work in the database at once, and whose turn it is to write a contended row.

Why this exists: a request's transaction spans several trips through the thread pool
(the dependencies, the handler, the validation of its response, the commit), and
between two trips it holds its connection, and its locks, without a thread. Under a
burst the thread pool filled with requests blocked in the database (waiting for the
pool's connections, or for the advisory lock of `server.store.runs` and
`server.store.metrics`) while the request holding that lock waited for a thread to
finish in: every database request stalled for the pool's 30 s timeout, then some got 500.

So requests wait here, in the event loop, holding neither a thread nor a connection:

- `Admission.slot`: at most ``slots`` requests hold a database session at once (a
  download that streams from the database holds its slot while it streams), fewer
  than the pool has connections and the thread pool has threads, so that every one
  of them can finish. The others queue, first come first served, for up to ``wait``
  seconds, then get 503 with ``Retry-After``.
- `Admission.turn`: requests that would queue on one lock inside the database (the
  ingests of one run, the submissions of one token, every write of a SQLite file)
  take turns before they take a slot: a burst into one run occupies one slot, and
  unrelated requests pass it by.

The locks inside the database stay: they order writers across processes (several
servers, the workers). This only keeps one process's requests from waiting on them
with resources that the holder needs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Hashable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated
from weakref import WeakKeyDictionary

from fastapi import Depends, HTTPException, Request, status

RETRY_AFTER_SECONDS = 2
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class _Queues:
    """The semaphore and the per-key locks of one event loop (asyncio's primitives belong to one loop)."""

    slots: asyncio.Semaphore
    turns: dict[Hashable, asyncio.Lock] = field(default_factory=dict)
    waiting: dict[Hashable, int] = field(default_factory=dict)


class Admission:
    """The queue in front of the database of one app (see the module's documentation)."""

    def __init__(self, *, slots: int, wait: float) -> None:
        self.slots = slots
        self.wait = wait
        self._loops: WeakKeyDictionary[asyncio.AbstractEventLoop, _Queues] = WeakKeyDictionary()

    def _queues(self) -> _Queues:
        loop = asyncio.get_running_loop()
        queues = self._loops.get(loop)
        if queues is None:
            queues = self._loops[loop] = _Queues(asyncio.Semaphore(self.slots))
        return queues

    def _busy(self, what: str) -> HTTPException:
        return HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"the server is busy: this request waited {self.wait:g} s for {what}; retry in a few seconds",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    @asynccontextmanager
    async def slot(self, deadline: float) -> AsyncIterator[None]:
        """Hold one of the slots; 503 when none frees up before ``deadline`` (``time.monotonic()``)."""
        slots = self._queues().slots
        try:
            await asyncio.wait_for(slots.acquire(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise self._busy("the database (other requests were ahead of it)") from None
        try:
            yield
        finally:
            slots.release()

    @asynccontextmanager
    async def turn(self, key: Hashable, deadline: float) -> AsyncIterator[None]:
        """Wait for the requests of ``key`` ahead of this one to finish; 503 when they do not before ``deadline``."""
        queues = self._queues()
        lock = queues.turns.setdefault(key, asyncio.Lock())
        queues.waiting[key] = queues.waiting.get(key, 0) + 1
        try:
            try:
                await asyncio.wait_for(lock.acquire(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise self._busy("the writes of the same run or token ahead of it") from None
            try:
                yield
            finally:
                lock.release()
        finally:
            queues.waiting[key] -= 1
            if not queues.waiting[key]:  # nobody else holds or waits for it: forget the lock
                del queues.waiting[key], queues.turns[key]


def admission_of(request: Request) -> Admission:
    return request.app.state.admission


def deadline_of(request: Request) -> float:
    """When this request stops waiting: ``wait`` seconds after it first queued, whatever it queued for."""
    if not hasattr(request.state, "admission_deadline"):
        request.state.admission_deadline = time.monotonic() + admission_of(request).wait
    return request.state.admission_deadline


def turn(request: Request, key: Hashable) -> AbstractAsyncContextManager[None]:
    """`Admission.turn` for ``request``: use in a dependency of the handlers that write ``key``."""
    return admission_of(request).turn(key, deadline_of(request))


async def database_slot(request: Request) -> AsyncIterator[None]:
    """A slot for the request's database session, held until the session has committed (see `deps.get_session`).

    Writes to a SQLite file take turns first: SQLite lets one writer in at a time, and the
    others would wait for its lock inside a slot."""
    admission = admission_of(request)
    async with AsyncExitStack() as held:
        if request.method not in SAFE_METHODS and request.app.state.database.dialect == "sqlite":
            await held.enter_async_context(turn(request, "sqlite writer"))
        await held.enter_async_context(admission.slot(deadline_of(request)))
        yield


DatabaseSlot = Annotated[None, Depends(database_slot, scope="function")]
# For a response that reads the database while it streams (an export): held until it has been sent.
StreamingSlot = Annotated[None, Depends(database_slot, scope="request")]
