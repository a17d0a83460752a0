"""The job queue: Celery's configuration, shared by the server (which sends) and the workers (which consume).

The server never imports the worker room: it sends the task ``miles.run_training``
by name (`CeleryDispatcher`), and the worker builds its Celery app from the same
`celery_config`, so that both sides always agree on broker, queues and options.

Two brokers:

- **Redis** when ``MILES_REDIS_URL`` is set (team mode).
- **A SQLite file**, ``<MILES_HOME>/broker.sqlite``, otherwise (local mode), through
  kombu's SQLAlchemy transport: no server to install, and ``miles server`` and
  ``miles worker`` still run as separate processes on one machine. That transport
  polls its table for new messages; `LocalTransport` only shortens kombu's one-second
  polling interval (it cannot be set through ``broker_transport_options``, which that
  transport hands to ``create_engine``). Delivered messages stay in the file, marked
  invisible, a few hundred bytes each.

Both use late acknowledgement: a message is acknowledged once its run has ended, so
a worker that dies mid-run loses nothing. Redelivery is harmless: a run is claimed
by a compare-and-set on its status, and a second delivery finds it taken and leaves it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery import Celery
from kombu import Queue
from kombu.exceptions import OperationalError as BrokerError
from kombu.transport import sqlalchemy as kombu_sqlalchemy

from server.dispatch import BrokerUnavailable
from server.settings import Settings

log = logging.getLogger("miles.queue")

TASK_NAME = "miles.run_training"
QUEUES = ("gpu", "cpu")
CONNECT_TIMEOUT = 1.0  # seconds a submission waits for the broker before answering 503
RETRY_EVERY = 5.0  # seconds between two tries to enqueue the runs a broker outage left behind
HOUR = 3600


class LocalTransport(kombu_sqlalchemy.Transport):
    """kombu's SQLAlchemy transport, polling every 0.1 s instead of every second: a run submitted to
    an idle local worker starts in about a tenth of a second (one short write transaction per poll)."""

    polling_interval = 0.1


def broker_url(settings: Settings) -> str:
    return settings.redis_url or f"sqlite:///{settings.home / 'broker.sqlite'}"


def display_broker(settings: Settings) -> str:
    """The broker's URL with any password masked, for messages and logs."""
    scheme, separator, rest = broker_url(settings).partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return f"{scheme}{separator}{rest}"


def visibility_timeout(settings: Settings) -> int:
    """Seconds Redis waits for an acknowledgement before handing a message to another worker: longer
    than any run may last (MILES_MAX_RUN_HOURS), so a healthy long run is never delivered twice. A run
    whose worker died is re-queued by the heartbeat sweep long before this."""
    return int(settings.max_run_hours * HOUR) + HOUR


def celery_config(settings: Settings, *, sender: bool) -> dict[str, Any]:
    """Celery's settings for this deployment; ``sender``: the server's side, which must fail fast."""
    options: dict[str, Any] = {}
    if settings.redis_url:
        options |= {"visibility_timeout": visibility_timeout(settings), "socket_connect_timeout": CONNECT_TIMEOUT}
    if sender:
        # No retry: a submission answers 503 within CONNECT_TIMEOUT instead of hanging.
        options["max_retries"] = 0
    return {
        "broker_url": broker_url(settings),
        "broker_transport": None if settings.redis_url else f"{__name__}:LocalTransport",
        "broker_transport_options": options,
        "broker_connection_timeout": CONNECT_TIMEOUT if sender else 4.0,
        "broker_connection_retry_on_startup": True,
        "task_ignore_result": True,  # results live in the database
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_queues": [Queue(name, routing_key=name) for name in QUEUES],
        "task_default_queue": "cpu",
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_prefetch_multiplier": 1,
        # A Redis blip must not abort a training: the run keeps its lease in the database, and a message
        # whose acknowledgement was lost is redelivered later only to find its run claimed or ended.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        # Remote control needs a fanout exchange, which the SQLite transport lacks.
        "worker_enable_remote_control": bool(settings.redis_url),
        "worker_hijack_root_logger": False,
    }


def celery_client(settings: Settings) -> Celery:
    app = Celery("miles", set_as_current=False)
    app.conf.update(celery_config(settings, sender=True))
    return app


class CeleryDispatcher:
    """Hands committed, queued runs to the workers by sending ``miles.run_training(run_id)``.

    When the broker cannot be reached, `enqueue` raises `BrokerUnavailable` (the API answers
    503; the run stays ``queued``) and keeps the run to try again every few seconds in the
    background, so that it starts on its own once the broker is back.
    """

    def __init__(self, settings: Settings) -> None:
        self.app = celery_client(settings)
        self.where = display_broker(settings)
        self._pending: dict[int, str] = {}
        self._lock = threading.Lock()
        self._retrier: threading.Thread | None = None

    def send(self, run_id: int, queue: str) -> None:
        """Send one message, or raise `BrokerUnavailable` saying what failed."""
        try:
            self.app.send_task(TASK_NAME, args=[run_id], queue=queue, retry=False)
        except (BrokerError, OSError) as error:
            raise BrokerUnavailable(f"the job queue at {self.where} cannot be reached ({error})") from error

    def enqueue(self, run_id: int, queue: str) -> None:
        try:
            self.send(run_id, queue)
        except BrokerUnavailable as error:
            self.defer({run_id: queue})
            raise BrokerUnavailable(
                f"{error}; the run will be enqueued once the queue is reachable again (or run `miles requeue`)"
            ) from error.__cause__

    def defer(self, runs: dict[int, str]) -> None:
        """Enqueue ``runs`` (id -> queue) later, from a background thread, once the broker answers."""
        with self._lock:
            self._pending.update(runs)
            if self._retrier is None or not self._retrier.is_alive():
                self._retrier = threading.Thread(target=self._retry, name="miles-enqueue-retry", daemon=True)
                self._retrier.start()

    @property
    def pending(self) -> dict[int, str]:
        with self._lock:
            return dict(self._pending)

    def _retry(self) -> None:
        while True:
            time.sleep(RETRY_EVERY)
            for run_id, queue in self.pending.items():
                try:
                    self.send(run_id, queue)
                except BrokerUnavailable:
                    break  # still down: try the rest next round
                with self._lock:
                    self._pending.pop(run_id, None)
                log.info("run %d enqueued on %s after the broker came back", run_id, queue)
            with self._lock:
                if not self._pending:
                    self._retrier = None
                    return
