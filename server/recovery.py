"""Recovering runs: those whose worker vanished, and those the broker never received.

- `sweep`: runs ``running`` without a heartbeat for MILES_HEARTBEAT_TIMEOUT are re-queued
  (and enqueued) to resume from their checkpoint, or failed as "worker lost" after
  MILES_MAX_ATTEMPTS starts (`store.leases.sweep`); workers lost for a day leave the
  registry (`store.workers.prune`). The `miles worker` supervisor sweeps
  every MILES_SWEEP_INTERVAL seconds, and the server once at start-up.
- `requeue`: enqueue every ``queued`` run again, for runs submitted while the broker was
  down (or a broker that lost its messages). Duplicates are harmless: a run is claimed
  once, and a second delivery leaves it. `miles requeue` runs it, and the server at start-up.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from server.db import Database
from server.dispatch import BrokerUnavailable, Dispatcher
from server.live import Publisher
from server.queue import CeleryDispatcher
from server.settings import Settings
from server.store import leases, workers

log = logging.getLogger("miles.recovery")


def sweep(settings: Settings, database: Database, dispatcher: Dispatcher, publisher: Publisher) -> leases.Swept:
    """Recover the runs whose worker was lost (the re-queued ones are enqueued at once); forget workers lost a day ago."""
    with database.transaction() as session:
        swept = leases.sweep(session=session, timeout=settings.heartbeat_timeout, max_attempts=settings.max_attempts)
        workers.prune(session=session)
    for status, run_ids in (("queued", list(swept.requeued)), ("cancelled", swept.cancelled), ("failed", swept.failed)):
        for run_id in run_ids:
            log.warning("run %d: its worker was lost; now %s", run_id, status)
            publisher.publish(run_id, "status", status=status)
    for run_id, queue in swept.requeued.items():
        try:
            dispatcher.enqueue(run_id, queue)
        except BrokerUnavailable as error:
            log.warning("run %d re-queued but not enqueued: %s", run_id, error)
    return swept


class PartlyEnqueued(BrokerUnavailable):
    """The broker failed part way through `requeue`: ``enqueued`` runs were sent, ``left`` (id -> queue) were not."""

    def __init__(self, message: str, *, enqueued: int, left: dict[int, str]) -> None:
        super().__init__(message)
        self.enqueued = enqueued
        self.left = left


def requeue(database: Database, dispatcher: CeleryDispatcher, *, skip: Collection[int] = ()) -> int:
    """Enqueue every queued run again (but those in ``skip``); how many. Raises `PartlyEnqueued` at the first failure."""
    with database.transaction(write=False) as session:
        queued = {run_id: queue for run_id, queue in leases.queued(session=session).items() if run_id not in skip}
    for count, (run_id, queue) in enumerate(queued.items()):
        try:
            dispatcher.send(run_id, queue)
        except BrokerUnavailable as error:
            left = dict(list(queued.items())[count:])
            raise PartlyEnqueued(
                f"{error} ({count} of {len(queued)} queued runs enqueued)", enqueued=count, left=left,
            ) from error
    return len(queued)


def at_server_start(settings: Settings, database: Database, dispatcher: CeleryDispatcher) -> None:
    """Sweep, then enqueue every queued run; if the broker is down, keep the rest for the dispatcher to retry."""
    publisher = Publisher(settings.redis_url)
    try:
        swept = sweep(settings, database, dispatcher, publisher)
        try:
            enqueued = requeue(database, dispatcher, skip=swept.requeued)  # the swept ones were just enqueued
        except PartlyEnqueued as error:
            log.warning("%s; the other %d will be enqueued once it is back", error, len(error.left))
            dispatcher.defer(error.left)
            enqueued = error.enqueued
        recovered = len(swept.requeued) + len(swept.failed) + len(swept.cancelled)
        if enqueued or recovered:
            log.info("start-up: %d queued runs enqueued, %d lost runs recovered", enqueued, recovered)
    finally:
        publisher.close()
