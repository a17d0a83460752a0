"""Live notices of a run: whoever commits a change publishes one, open streams wake up on them.

Channel ``miles:run:<id>`` on Redis (team mode). Each notice is JSON::

    {"run": 12, "type": "epoch" | "event" | "status", "step": 3, "event": 41, "status": "running",
     "time": <unix seconds when it happened: the epoch's end>, "sent": <unix seconds when published>}

(``step``, ``event`` and ``status`` only where they apply.) A notice wakes the streams of its
run; they then read from the database what they have not sent yet, by their cursor
(`server.api.stream`). The database stays the one ordered source: a notice lost while Redis
restarts, or one that overtakes another, costs at most a short delay, never a gap or a
duplicate.

Who publishes: the worker after each epoch's commit (`Publisher`), and the server after the
commit of an ingest (`POST /runs/{id}/metrics`, `POST /runs/{id}/events`) through
`Notices.notify`: on Redis in team mode, so that the streams of every server process wake;
in-process in local mode (`LocalNotices`), where the server is the only process with
streams. Local mode has no channel from a worker process, so its streams also read the
database every half second.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any, Protocol

import redis
import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.retry import Retry

from server.settings import Settings

log = logging.getLogger("miles.live")

PREFIX = "miles:run:"
POLL_INTERVAL = 0.5  # seconds between two database reads of a stream without Redis
FALLBACK_INTERVAL = 2.0  # with Redis, a stream also reads after this long without a notice
PUBLISH_TIMEOUT = 0.5  # seconds a worker waits for Redis before giving up on one notice
QUIET_AFTER_FAILURE = 10.0  # seconds a worker stops trying to publish after Redis failed


def channel(run_id: int) -> str:
    return f"{PREFIX}{run_id}"


class Publisher:
    """Publishes notices from synchronous code (the worker); does nothing without Redis.

    Publishing is best effort: the notice only shortens the wait of open streams, so a
    Redis that is down costs training at most one short timeout every few seconds.
    """

    def __init__(self, redis_url: str | None) -> None:
        self._client = (
            redis.Redis.from_url(
                redis_url, socket_connect_timeout=PUBLISH_TIMEOUT, socket_timeout=PUBLISH_TIMEOUT,
                retry=Retry(NoBackoff(), 0),
            )
            if redis_url
            else None
        )
        self._quiet_until = 0.0

    def publish(self, run_id: int, kind: str, *, happened: float | None = None, **fields: Any) -> None:
        """Publish a notice of ``kind`` (``epoch``, ``event``, ``status``) about ``run_id``."""
        if self._client is None or time.monotonic() < self._quiet_until:
            return
        now = time.time()
        notice = {"run": run_id, "type": kind, **fields, "time": happened or now, "sent": now}
        try:
            self._client.publish(channel(run_id), json.dumps(notice))
        except redis.RedisError as error:
            self._quiet_until = time.monotonic() + QUIET_AFTER_FAILURE
            log.warning("cannot publish live notices to Redis (%s); streams fall back to polling", error)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


class Watch(Protocol):
    async def wait(self) -> bool:
        """Return after a notice about the run (True) or after the polling interval (False)."""
        ...


class Notices(Protocol):
    def watch(self, run_id: int) -> Any:
        """An async context manager giving a `Watch` of ``run_id``, listening from its entry on."""
        ...

    def notify(self, run_id: int, kind: str, **fields: Any) -> None:
        """Tell the streams of ``run_id`` that a change of ``kind`` was committed. From any thread,
        after the commit; best effort (a lost notice costs a stream its polling interval)."""
        ...

    async def close(self) -> None: ...


class _Wake:
    def __init__(self, event: asyncio.Event, interval: float) -> None:
        self.event = event
        self.interval = interval

    async def wait(self) -> bool:
        try:
            await asyncio.wait_for(self.event.wait(), self.interval)
        except TimeoutError:
            return False
        finally:
            self.event.clear()
        return True


class LocalNotices:
    """Local mode: the server's own commits wake its streams at once; a watch also returns after
    `POLL_INTERVAL`, for what a worker process commits (it has no way to reach the server)."""

    def __init__(self) -> None:
        self._streams: dict[int, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = defaultdict(set)
        self._lock = threading.Lock()  # notify runs in the threads of the thread pool, after their commit

    @asynccontextmanager
    async def watch(self, run_id: int) -> AsyncIterator[Watch]:
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._streams[run_id].add(entry)
        try:
            yield _Wake(entry[1], POLL_INTERVAL)
        finally:
            with self._lock:
                self._streams[run_id].discard(entry)
                if not self._streams[run_id]:
                    del self._streams[run_id]

    def notify(self, run_id: int, kind: str, **fields: Any) -> None:
        with self._lock:
            waiting = list(self._streams.get(run_id, ()))
        for loop, event in waiting:
            with suppress(RuntimeError):  # that loop has closed: its stream is gone
                loop.call_soon_threadsafe(event.set)

    async def close(self) -> None:
        return None


class RedisNotices:
    """Team mode: one Redis connection per server process, subscribed to every run's channel,
    waking the streams of the run each notice names."""

    SUBSCRIBE_WAIT = 1.0  # seconds a new stream waits for the subscription before reading anyway

    def __init__(self, redis_url: str) -> None:
        self.url = redis_url
        self._publisher = Publisher(redis_url)
        self._streams: dict[int, set[asyncio.Event]] = defaultdict(set)
        self._listener: asyncio.Task[None] | None = None
        self._subscribed: asyncio.Event | None = None

    @asynccontextmanager
    async def watch(self, run_id: int) -> AsyncIterator[Watch]:
        event = asyncio.Event()
        self._streams[run_id].add(event)
        try:
            await self._ensure_listening()
            yield _Wake(event, FALLBACK_INTERVAL)
        finally:
            self._streams[run_id].discard(event)
            if not self._streams[run_id]:
                del self._streams[run_id]

    async def _ensure_listening(self) -> None:
        if self._listener is None or self._listener.done():
            self._subscribed = asyncio.Event()
            self._listener = asyncio.get_running_loop().create_task(self._listen(self._subscribed))
        assert self._subscribed is not None
        # Subscribed before the stream reads its backlog, so that nothing committed after that
        # read goes unnoticed. If Redis is down the stream reads anyway, on FALLBACK_INTERVAL.
        with suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), self.SUBSCRIBE_WAIT)

    def notify(self, run_id: int, kind: str, **fields: Any) -> None:
        """Published on Redis, which wakes the streams of every server process, this one's included."""
        self._publisher.publish(run_id, kind, **fields)

    def _wake(self, run_ids: Any) -> None:
        for run_id in run_ids:
            for event in self._streams.get(run_id, ()):
                event.set()

    async def _listen(self, subscribed: asyncio.Event) -> None:
        backoff = 0.5
        while True:
            client = aioredis.Redis.from_url(self.url, socket_connect_timeout=1, health_check_interval=30)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.psubscribe(f"{PREFIX}*")
                    subscribed.set()
                    backoff = 0.5
                    self._wake(list(self._streams))  # notices may have been missed while disconnected
                    async for message in pubsub.listen():
                        run_id = message["channel"].decode().removeprefix(PREFIX)
                        if message["type"] == "pmessage" and run_id.isdigit():
                            self._wake([int(run_id)])
            except (redis.RedisError, OSError) as error:
                subscribed.clear()
                log.warning("live notices from Redis interrupted (%s); retrying in %.1f s", error, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                await client.aclose()

    async def close(self) -> None:
        self._publisher.close()
        if self._listener is not None:
            self._listener.cancel()
            with suppress(asyncio.CancelledError, Exception):  # closing: whatever ended the listener is past
                await self._listener
            self._listener = None


def notices_for(settings: Settings) -> Notices:
    return RedisNotices(settings.redis_url) if settings.redis_url else LocalNotices()
