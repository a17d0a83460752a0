"""Live notices of a run: the worker publishes one after each commit, open streams wake up on them.

Channel ``miles:run:<id>`` on Redis (team mode). Each notice is JSON::

    {"run": 12, "type": "epoch" | "event" | "status", "step": 3, "event": 41, "status": "running",
     "time": <unix seconds when it happened: the epoch's end>, "sent": <unix seconds when published>}

(``step``, ``event`` and ``status`` only where they apply.) A notice wakes the streams of its
run; they then read from the database what they have not sent yet, by their cursor
(`server.api.stream`). The database stays the one ordered source: a notice lost while Redis
restarts, or one that overtakes another, costs at most a short delay, never a gap or a
duplicate. Without Redis (local mode) streams poll the database every half second instead.
"""

from __future__ import annotations

import asyncio
import json
import logging
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

    async def close(self) -> None: ...


class _Sleep:
    def __init__(self, interval: float) -> None:
        self.interval = interval

    async def wait(self) -> bool:
        await asyncio.sleep(self.interval)
        return False


class PollingNotices:
    """Local mode: no notices; a watch simply sleeps between two reads of the database."""

    @asynccontextmanager
    async def watch(self, run_id: int) -> AsyncIterator[Watch]:
        yield _Sleep(POLL_INTERVAL)

    async def close(self) -> None:
        return None


class _Wake:
    def __init__(self, event: asyncio.Event) -> None:
        self.event = event

    async def wait(self) -> bool:
        try:
            await asyncio.wait_for(self.event.wait(), FALLBACK_INTERVAL)
        except TimeoutError:
            return False
        finally:
            self.event.clear()
        return True


class RedisNotices:
    """Team mode: one Redis connection per server process, subscribed to every run's channel,
    waking the streams of the run each notice names."""

    SUBSCRIBE_WAIT = 1.0  # seconds a new stream waits for the subscription before reading anyway

    def __init__(self, redis_url: str) -> None:
        self.url = redis_url
        self._streams: dict[int, set[asyncio.Event]] = defaultdict(set)
        self._listener: asyncio.Task[None] | None = None
        self._subscribed: asyncio.Event | None = None

    @asynccontextmanager
    async def watch(self, run_id: int) -> AsyncIterator[Watch]:
        event = asyncio.Event()
        self._streams[run_id].add(event)
        try:
            await self._ensure_listening()
            yield _Wake(event)
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
        if self._listener is not None:
            self._listener.cancel()
            with suppress(asyncio.CancelledError, Exception):  # closing: whatever ended the listener is past
                await self._listener
            self._listener = None


def notices_for(settings: Settings) -> Notices:
    return RedisNotices(settings.redis_url) if settings.redis_url else PollingNotices()
