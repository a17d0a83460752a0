"""A worker process's heartbeat in the registry, and the system metrics of the run it trains.

One background thread per worker process (`WorkerMonitor`), never the training loop:

- it registers the process when it starts and beats every `beat_interval` seconds
  (a quarter of MILES_HEARTBEAT_TIMEOUT, at most 5 s), saying whether it is busy and
  with which run; a clean stop removes the process from the registry;
- every MILES_SYSTEM_INTERVAL seconds it reads the process and its GPU
  (`trainer.system.SystemProbe`): the reading joins the worker's recent utilization,
  and while a run trains, its ``sys/...`` points are written to the run (step: whole
  seconds since the run started) and a ``system`` notice wakes its live streams. A
  run is sampled one second after it starts, then every interval.

A sample costs the thread a few system calls and one short transaction; the training
loop only adds its batch sizes to a counter (`trainer.loop.Training.samples_seen`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

from sqlalchemy.exc import SQLAlchemyError

from server.db import Database, after_commit
from server.live import Publisher
from server.models import utcnow
from server.store import leases, workers
from server.store import metrics as metric_store
from trainer.system import CPU, GPU_UTIL, SystemProbe, seconds_since

log = logging.getLogger("miles.worker")

FIRST_SAMPLE_AFTER = 1.0  # seconds into a run: long enough for the CPU share to be the run's own


def beat_interval(timeout: float) -> float:
    """Seconds between two heartbeats: four fit in the timeout, so one late beat does not make a worker lost."""
    return max(0.25, min(5.0, timeout / 4))


@dataclass(frozen=True)
class Watched:
    run_id: int
    started_at: datetime


class WorkerMonitor:
    """Registers ``registration``, beats, and samples ``probe`` for the run being trained (a context manager)."""

    def __init__(
        self, *, database: Database, publisher: Publisher, registration: workers.Registration, probe: SystemProbe,
        timeout: float, interval: float,
    ) -> None:
        self.database = database
        self.publisher = publisher
        self.registration = registration
        self.name = registration.name
        self.probe = probe
        self.timeout = timeout
        self.interval = interval
        self._run: Watched | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._done = threading.Event()
        self._next_sample = time.monotonic() + interval
        self._thread = threading.Thread(target=self._keep, name="miles-worker-monitor", daemon=True)

    def __enter__(self) -> WorkerMonitor:
        with self.database.transaction() as session:
            workers.prune(session=session)
            workers.register(session=session, worker=self.registration, timeout=self.timeout)
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._done.set()
        self._wake.set()
        self._thread.join()
        try:
            with self.database.transaction() as session:
                workers.unregister(session=session, name=self.name)
        except SQLAlchemyError as error:  # it will show as lost, then be pruned
            log.warning("could not remove %s from the workers list: %s", self.name, error)

    # -- called by the task, in the training thread ----------------------------------------------

    def watch(self, run_id: int, started_at: datetime) -> None:
        """Sample the system for ``run_id`` (which started at ``started_at``) until `unwatch`."""
        with self._lock:
            self._run = Watched(run_id, started_at)
            self._next_sample = time.monotonic() + min(FIRST_SAMPLE_AFTER, self.interval or FIRST_SAMPLE_AFTER)
        self._wake.set()

    def count_samples(self, count: Callable[[], int]) -> None:
        """Report the run's throughput from this counter of training samples (the trainer's)."""
        with self._lock:
            self.probe.count_samples(count)

    def unwatch(self) -> None:
        """The run ended or left this worker: idle again (the next beat, at once, says so)."""
        with self._lock:
            self._run = None
            self.probe.count_samples(None)
        self._wake.set()

    # -- the thread --------------------------------------------------------------------------------

    def _keep(self) -> None:
        beat_every = beat_interval(self.timeout)
        next_beat = 0.0
        beaten: int | None = None  # the run the last beat reported
        while not self._done.is_set():
            now = time.monotonic()
            with self._lock:
                watched, sample_due = self._run, self.interval > 0 and now >= self._next_sample
                if sample_due:
                    self._next_sample = now + self.interval
            current = watched.run_id if watched else None
            reading = self._sample(watched) if sample_due else None
            if now >= next_beat or reading is not None or current != beaten:
                if self._beat(current, reading):
                    beaten = current
                next_beat = now + beat_every  # a failed beat is tried again at the next one, not at once
            with self._lock:
                wait = min(next_beat, self._next_sample if self.interval > 0 else next_beat) - time.monotonic()
            self._wake.wait(max(0.0, wait))
            self._wake.clear()

    def _beat(self, run_id: int | None, reading: tuple[float, float, float | None] | None) -> bool:
        try:
            with self.database.transaction() as session:
                if not workers.beat(session=session, name=self.name, timeout=self.timeout, run_id=run_id, reading=reading):
                    log.warning("%s was missing from the workers list (pruned while silent); registering again", self.name)
                    workers.register(session=session, worker=self.registration, timeout=self.timeout)
                    workers.assign(session=session, name=self.name, run_id=run_id)
            return True
        except SQLAlchemyError as error:  # a blip: the next beat tries again, well within the timeout
            log.warning("%s: heartbeat not written (%s)", self.name, error)
            return False

    def _sample(self, watched: Watched | None) -> tuple[float, float, float | None] | None:
        try:
            values = self.probe.sample()
        except Exception as error:  # a reading that fails must not stop the heartbeat
            log.warning("system metrics could not be read: %s", error)
            return None
        if watched is not None:
            self._record(watched, values)
        return (round(time.time(), 1), round(values[CPU], 1), round(values[GPU_UTIL], 1) if GPU_UTIL in values else None)

    def _record(self, watched: Watched, values: dict[str, float]) -> None:
        now = utcnow()
        step = seconds_since(watched.started_at, now)
        points = [metric_store.Point(key, step, float(value), now) for key, value in values.items()]
        try:
            with self.database.transaction() as session:
                if not leases.check(session=session, run_id=watched.run_id, worker=self.name).held:
                    return  # re-queued or ended meanwhile: its new worker samples it now
                metric_store.ingest(session=session, run_id=watched.run_id, points=points)
                after_commit(session, lambda: self.publisher.publish(watched.run_id, "system", step=step))
        except SQLAlchemyError as error:
            log.warning("run %d: system metrics not written (%s)", watched.run_id, error)
