"""One worker process of `miles worker`: a Celery worker consuming one queue, one run at a time.

    python -m worker.process --queue gpu --name gpu0 --parent <supervisor pid>

Started by the supervisor (`worker.supervisor`), never by hand. It runs Celery's
``solo`` pool: the run trains in this process's main thread, so a SIGTERM (warm
shutdown) reaches the task, which stops before its next batch and hands the run back
to the queue. Concurrency comes from running several of these processes, each with
its own device (``CUDA_VISIBLE_DEVICES``) and its own torch state.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import socket
import sys
from typing import Any

from celery import signals

from server.db import Database
from server.live import Publisher
from server.queue import QUEUES
from server.settings import Settings, load_settings
from server.store.workers import Registration
from trainer.system import Gpu, SystemProbe, machine_facts
from worker import tasks
from worker.app import create_worker_app
from worker.monitor import WorkerMonitor

log = logging.getLogger("miles.worker")
PR_SET_PDEATHSIG = 1
READY = "ready: consuming"  # logged once Celery consumes; tests and supervisors wait for it


def die_with_parent(parent: int) -> None:
    """Get SIGTERM (a warm shutdown: the run goes back to the queue) when the supervisor dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the line above took effect
        sys.exit(0)


def monitor_for(
    settings: Settings, database: Database, publisher: Publisher, *, queue: str, name: str, worker_id: str,
) -> WorkerMonitor:
    """The heartbeat and system sampling of this process, with the facts of the device it trains on."""
    import torch

    from trainer.device import cuda_uuid

    gpu = Gpu.open(uuid=cuda_uuid(), visible=os.environ.get("CUDA_VISIBLE_DEVICES")) if queue == "gpu" else None
    named = torch.cuda.get_device_name(0) if queue == "gpu" and gpu is None and torch.cuda.is_available() else None
    facts = machine_facts("cuda" if queue == "gpu" else "cpu", gpu, cuda=torch.version.cuda, cuda_name=named)
    registration = Registration(
        name=worker_id, host=facts.host, pid=os.getpid(), process=name, queue=queue, facts=facts.as_dict(),
    )
    return WorkerMonitor(
        database=database, publisher=publisher, registration=registration, probe=SystemProbe(gpu),
        timeout=settings.heartbeat_timeout, interval=settings.system_interval,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.process", description=__doc__)
    parser.add_argument("--queue", choices=QUEUES, required=True)
    parser.add_argument("--name", required=True, help="This process's name among the supervisor's (gpu0, cpu1, ...).")
    parser.add_argument("--parent", type=int, required=True, help="The supervisor's pid.")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    die_with_parent(args.parent)
    logging.basicConfig(
        level=args.log_level.upper(), format=f"%(asctime)s %(levelname)s [{args.name}] %(name)s: %(message)s",
    )
    settings = load_settings()
    # The trainer resolves relative data paths under MILES_DATA_DIR: the same root the server checked them against.
    os.environ["MILES_DATA_DIR"] = str(settings.data_root)
    worker_id = f"{socket.gethostname()}:{os.getpid()}"
    database, publisher = Database(settings.database_url), Publisher(settings.redis_url)
    monitor = monitor_for(settings, database, publisher, queue=args.queue, name=args.name, worker_id=worker_id)
    tasks.configure(tasks.WorkerContext(
        settings=settings, database=database, publisher=publisher, worker_id=worker_id, monitor=monitor,
    ))

    def shutting_down(**_: Any) -> None:
        tasks.SHUTDOWN.set()

    def ready(**_: Any) -> None:
        log.info("%s %s as %s (%s)", READY, args.queue, worker_id, os.environ.get("CUDA_VISIBLE_DEVICES", "all devices"))

    logging.getLogger("celery.app.trace").addFilter(tasks.QuietRejects())
    signals.worker_shutting_down.connect(shutting_down, weak=False)
    signals.worker_ready.connect(ready, weak=False)
    app = create_worker_app(settings)
    worker = app.Worker(
        hostname=f"{args.name}@{socket.gethostname()}", queues=[args.queue], pool="solo", concurrency=1,
        loglevel=args.log_level.upper(), quiet=args.log_level in ("warning", "error"),  # no banner in `miles up`
        # Our heartbeats live in the database; Celery's gossip, mingle and event heartbeats add a
        # second of start-up and need a fanout exchange the local transport lacks.
        without_mingle=True, without_gossip=True, without_heartbeat=True,
    )
    with monitor:  # registered while it consumes; a clean stop leaves the workers list
        worker.start()
    return worker.exitcode or 0


if __name__ == "__main__":
    sys.exit(main())
