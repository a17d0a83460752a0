"""`DatabaseReporter`: where a run executed by a worker reports its epochs, events and summary.

- Each epoch's metrics go in ONE batched upsert (`store.metrics.ingest`), in the same
  transaction as the run's progress (epochs completed) and its heartbeat; once committed,
  a notice is published on Redis so that open streams send the epoch at once.
- Every write is conditional on the worker still holding the run's lease: a worker that
  was presumed lost and comes back raises `LeaseLost` instead of writing over the run's
  new owner.
- Events carry an idempotency key, ``<kind>@<epoch>`` (``#<n>`` for the n-th of a kind in
  one epoch), so that an epoch trained again after a resume never stores its events twice.
  ``run.started`` and ``run.resumed`` also carry the attempt, since each start is news.
- Points reported for an epoch the trainer has already passed (the test metrics of the
  last and of the best epoch, at the end) are held back and written with the next event,
  in its transaction and with its exact time: a live stream sends them with that event
  (see `server.store.feed`). Times are strictly increasing, so that only such points share
  an event's time.
- Values that are not finite numbers (a diverged loss) cannot be stored as JSON numbers:
  such metrics are left out and an event says which; in event data and the summary they
  become null (`trainer.reporting.json_safe`).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from server.db import Database, after_commit
from server.live import Publisher
from server.models import utcnow
from server.store import events, leases
from server.store import metrics as metric_store
from trainer.reporting import BaseReporter, json_safe

ATTEMPT_SCOPED = {"run.started", "run.resumed"}  # each (re)start of a run is an event of its own


class LeaseLost(RuntimeError):
    """The run was re-queued or ended while this worker trained it: this worker must leave it alone."""


class DatabaseReporter(BaseReporter):
    """Reports run ``run_id`` for ``worker`` (which holds its lease) into the database."""

    def __init__(
        self, *, database: Database, publisher: Publisher, run_id: int, worker: str, attempt: int,
        should_stop: Callable[[], bool],
    ) -> None:
        self.database = database
        self.publisher = publisher
        self.run_id = run_id
        self.worker = worker
        self.attempt = attempt
        self._should_stop = should_stop
        self.passed = 0  # the last epoch the trainer has finished, as its reports tell
        self.summary: dict[str, Any] = {}
        self._late: list[tuple[str, int, float]] = []
        self._occurrences: Counter[tuple[str, int]] = Counter()
        self._last_time: datetime | None = None

    def should_stop(self) -> bool:
        return self._should_stop()

    def _now(self) -> datetime:
        now = utcnow()
        if self._last_time is not None and now <= self._last_time:
            now = self._last_time + timedelta(microseconds=1)
        self._last_time = now
        return now

    def _hold(self, session: Session, epoch: int | None = None) -> None:
        if not leases.renew(session=session, run_id=self.run_id, worker=self.worker, epoch=epoch).held:
            raise LeaseLost(f"run {self.run_id} is no longer held by {self.worker}")

    def on_epoch(self, epoch: int, metrics: Mapping[str, float]) -> None:
        ended = time.time()
        finite = {key: float(value) for key, value in metrics.items() if math.isfinite(value)}
        dropped = sorted(set(metrics) - set(finite))
        if epoch <= self.passed:  # reported after the trainer moved on: goes with the next event
            self._late.extend((key, epoch, value) for key, value in finite.items())
            return
        now = self._now()
        with self.database.transaction() as session:
            self._hold(session, epoch)
            points = [metric_store.Point(key, epoch, value, now) for key, value in finite.items()]
            metric_store.ingest(session=session, run_id=self.run_id, points=points)
            if dropped:
                self._add_event(session, epoch, "metrics.not_finite", f"epoch {epoch}: {', '.join(dropped)} "
                                "not finite (nan or infinity); not stored", {"keys": dropped})
            after_commit(session, lambda: self.publisher.publish(self.run_id, "epoch", step=epoch, happened=ended))
        self.passed = epoch

    def on_event(self, epoch: int, kind: str, message: str, data: Mapping[str, Any]) -> None:
        self.passed = max(self.passed, epoch)
        with self.database.transaction() as session:
            self._hold(session)
            event_id = self._add_event(session, epoch, kind, message, json_safe(dict(data)))
            if event_id is not None:
                after_commit(session, lambda: self.publisher.publish(self.run_id, "event", step=epoch, event=event_id))

    def _add_event(self, session: Session, epoch: int, kind: str, message: str, data: dict[str, Any]) -> int | None:
        """Store one event (and the held-back points, bundled with it); its id, None when already stored."""
        self._occurrences[(kind, epoch)] += 1
        n = self._occurrences[(kind, epoch)]
        key = f"{kind}@{epoch}" + (f"#{n}" if n > 1 else "") + (f"/attempt{self.attempt}" if kind in ATTEMPT_SCOPED else "")
        now = self._now()
        ids = events.add(session=session, run_id=self.run_id, events=[
            events.NewEvent(step=epoch, kind=kind, message=message, data=data, key=key, time=now),
        ])
        if self._late:
            late = [metric_store.Point(key, step, value, now) for key, step, value in self._late]
            metric_store.ingest(session=session, run_id=self.run_id, points=late)
            self._late = []
        return ids[0] if ids else None

    def on_summary(self, summary: Mapping[str, Any]) -> None:
        self.summary = json_safe(dict(summary))
