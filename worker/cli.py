"""``miles worker`` (run queued runs) and ``miles requeue`` (enqueue queued runs again)."""

from __future__ import annotations

import logging

import click

from server import recovery
from server.commands import database, ready_database, settings_or_exit
from server.dispatch import BrokerUnavailable
from server.queue import CeleryDispatcher, display_broker
from worker.gpus import GpuProbeFailed, cuda_device_count
from worker.supervisor import Supervisor, plan


def parse_gpus(value: str | None) -> list[int]:
    if not value:
        return []
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if not all(part.isdigit() for part in parts) or len(set(parts)) != len(parts):
        raise click.BadParameter(f"{value!r}: give distinct GPU indices separated by commas, e.g. 0,1", param_hint="--gpus")
    gpus = [int(part) for part in parts]
    count = gpu_count()
    missing = [gpu for gpu in gpus if gpu >= count]
    if missing:
        have = f"GPUs 0 to {count - 1}" if count else "no CUDA device"
        raise click.BadParameter(f"GPU {missing[0]} does not exist: this machine has {have}", param_hint="--gpus")
    return gpus


def gpu_count() -> int:
    """How many GPUs torch sees here (asked of a child process: this one never imports torch)."""
    try:
        return cuda_device_count()
    except GpuProbeFailed as error:
        raise click.ClickException(str(error)) from None


def say(line: str) -> None:
    click.echo(line, err=True)


@click.command("worker")
@click.option("--gpus", metavar="0,1", help="Run one worker process per GPU listed, each seeing only its own (queue gpu). "
              "Indices as torch numbers them: within CUDA_VISIBLE_DEVICES when that is set.")
@click.option("--cpu", is_flag=True, help="Run worker processes for the cpu queue (runs with device cpu, and auto by default).")
@click.option("--concurrency", "-c", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Processes per GPU, and CPU processes with --cpu; each trains one run at a time.")
@click.option("--grace", type=click.FloatRange(0), default=60.0, show_default=True,
              help="Seconds a stopping worker waits for its runs to go back to the queue before killing them.")
@click.option("--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"]))
def worker_command(gpus: str | None, cpu: bool, concurrency: int, grace: float, log_level: str) -> None:
    """Run queued runs: one Celery worker process per GPU (--gpus 0,1), or CPU processes (--cpu).

    Ctrl-C or SIGTERM stops every process; a run in progress stops before its next batch and
    goes back to the queue, to resume from its last checkpoint on the next worker.
    """
    devices = parse_gpus(gpus)
    if not devices and not cpu:
        raise click.UsageError("say which queue to work on: --cpu, --gpus 0,1, or both")
    settings = settings_or_exit()
    with ready_database(settings):
        pass  # at the revision this code needs, or exits saying how to get there
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s [supervisor] %(name)s: %(message)s")
    specs = plan(devices, cpu, concurrency)
    click.echo(
        f"miles worker: {len(specs)} process(es) ({', '.join(s.name for s in specs)}), broker {display_broker(settings)}",
        err=True,
    )
    raise SystemExit(Supervisor(settings, specs, log_level=log_level, grace=grace, say=say).run())


@click.command("requeue")
def requeue_command() -> None:
    """Enqueue every queued run again, e.g. after the broker was down when they were submitted.

    A run enqueued twice still runs once: the first worker claims it, the second delivery leaves it.
    """
    settings = settings_or_exit()
    dispatcher = CeleryDispatcher(settings)
    with database(settings) as db:
        try:
            count = recovery.requeue(db, dispatcher)
        except BrokerUnavailable as error:
            raise click.ClickException(str(error)) from None
    click.echo(f"{count} queued run(s) enqueued on {display_broker(settings)}")
