"""The workers' Celery app, built from the same settings and configuration as the server's sender."""

from __future__ import annotations

from celery import Celery

from server.queue import TASK_NAME, celery_config
from server.settings import Settings
from worker import tasks


def create_worker_app(settings: Settings) -> Celery:
    """The Celery app of a worker process, with ``miles.run_training`` registered.

    Late acknowledgement, rejection on worker loss, a prefetch of one and the visibility
    timeout come from `server.queue.celery_config`, so sender and workers cannot disagree.
    """
    app = Celery("miles-worker")
    app.conf.update(celery_config(settings, sender=False))
    app.task(name=TASK_NAME)(tasks.run_training)
    return app
