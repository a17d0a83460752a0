"""Keeping a claimed run's lease alive, and telling the trainer when to stop.

A background thread renews the lease (the run's heartbeat) every `BEAT_EVERY` seconds and,
in between, reads every `CHECK_EVERY` seconds whether someone asked the run to stop, so
that a cancel reaches the trainer within half a second (the trainer then stops before
its next batch). `Lease.should_stop` is the trainer's cancel check; it only reads flags,
since it runs before every batch.
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType
from typing import Literal

from sqlalchemy.exc import SQLAlchemyError

from server.db import Database
from server.store import leases

log = logging.getLogger("miles.worker")

BEAT_EVERY = 2.0
CHECK_EVERY = 0.5
StopReason = Literal["cancelled", "lost", "shutdown", "deadline"]


class Lease:
    """The worker's hold on run ``run_id`` while it trains (a context manager running the thread)."""

    def __init__(
        self, database: Database, run_id: int, worker: str, *, shutdown: threading.Event, max_seconds: float,
    ) -> None:
        self.database = database
        self.run_id = run_id
        self.worker = worker
        self.shutdown = shutdown
        self.deadline = time.monotonic() + max_seconds
        self.reason: StopReason | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._keep, name=f"miles-lease-{run_id}", daemon=True)

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._done.set()
        self._thread.join()

    def should_stop(self) -> bool:
        if self.reason is None and self.shutdown.is_set():
            self.reason = "shutdown"
        if self.reason is None and time.monotonic() > self.deadline:
            self.reason = "deadline"
        return self.reason is not None

    def _keep(self) -> None:
        last_beat = time.monotonic()
        while not self._done.wait(CHECK_EVERY):
            beat = time.monotonic() - last_beat >= BEAT_EVERY
            try:
                with self.database.transaction(write=beat) as session:
                    if beat:
                        state = leases.renew(session=session, run_id=self.run_id, worker=self.worker)
                    else:
                        state = leases.check(session=session, run_id=self.run_id, worker=self.worker)
            except SQLAlchemyError as error:
                # A database blip is not a reason to stop training; if it lasts, the sweep re-queues the run.
                log.warning("run %d: cannot reach the database to renew its lease (%s)", self.run_id, error)
                continue
            if beat:
                last_beat = time.monotonic()
            if not state.held:
                self.reason = "lost"
                log.warning("run %d is no longer held by %s (re-queued or ended elsewhere); stopping", self.run_id, self.worker)
                return
            if state.cancel_requested and self.reason is None:
                self.reason = "cancelled"
