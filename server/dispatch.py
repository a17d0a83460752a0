"""The seam between submitting a run and running it: `Dispatcher`.

The API calls ``dispatcher.enqueue(run_id, queue)`` once the run's row is
committed. The worker room plugs Celery in here (``create_app(dispatcher=...)``);
a dispatcher that cannot reach its broker raises `BrokerUnavailable`, which the
API answers with 503 while the run stays ``queued``, to be enqueued again later.
"""

from __future__ import annotations

from typing import Protocol


class BrokerUnavailable(RuntimeError):
    """The queue could not be reached; the run is kept ``queued``. The message says what failed."""


class Dispatcher(Protocol):
    def enqueue(self, run_id: int, queue: str) -> None:
        """Hand the committed, queued run ``run_id`` to the workers of ``queue`` (``gpu`` or ``cpu``)."""
        ...


class KeepQueued:
    """The default until a worker is wired in: enqueues nothing, so a submitted run stays ``queued``
    in the database, where a worker (or a re-enqueue pass over queued runs) finds it."""

    def enqueue(self, run_id: int, queue: str) -> None:
        return None
