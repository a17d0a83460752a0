"""``miles up``: the whole dashboard on this machine, in one command.

- Creates or migrates the database: a SQLite file under MILES_HOME (``~/.miles``) unless
  MILES_DATABASE_URL names another.
- Serves the API and the pages on 127.0.0.1 (uvicorn, in this process).
- Runs the embedded worker: `miles worker`'s supervisor and its worker processes, one on
  every GPU torch sees (``--gpus`` to choose, ``--gpus none`` for none) and one on the CPU
  (``--no-cpu`` to leave it out), fed by the local job queue, a SQLite file beside the
  database (no Redis, no other server to install; see docs/live.md). The CPU process is
  there by default even beside GPUs: nothing else would run the runs on device ``cpu``.
- ``--demo`` submits a first pair of runs, ``joint`` and ``miles`` on the built-in mfeat
  digits, so that the charts move at once; once only: a later ``--demo`` finds them in the
  ``demo`` experiment and shows them again (a deleted one is submitted anew).

Ctrl-C or SIGTERM stops everything it started: a run in progress goes back to the queue
and resumes from its checkpoint at the next start; the worker processes exit (they also
get SIGTERM if this process is killed); then the server.
"""

from __future__ import annotations

import socket
import threading
import time
import webbrowser
from typing import Any

import click

from server.commands import database, freeze_start_up_objects, listen, prepare_app, settings_or_exit
from server.settings import Settings
from worker.cli import gpu_count, parse_gpus, say
from worker.supervisor import Supervisor, plan

DEMO = {"dataset": "mfeat", "fusion": "concat", "epochs": 40, "batch_size": 32, "lr": 1e-3, "seed": 0}
DEMO_RUNS = (("demo: joint training", "joint", {}), ("demo: MILES", "miles", {"tau": 0.2, "mu": 0.5}))
DEMO_EXPERIMENT = "demo"


def serve(app: Any, settings: Settings, listening: socket.socket) -> tuple[Any, threading.Thread]:
    """uvicorn in a thread of this process (it leaves signal handling to the main thread), on ``listening``."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, name="miles-server", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise click.ClickException(f"the server on {settings.host}:{settings.port} stopped while starting")
        time.sleep(0.05)
    return server, thread


def submit_demo(settings: Settings, url: str) -> tuple[list[int], int]:
    """The demo pair, through the same API a notebook uses (with a short-lived token when auth is on):
    the ids of both runs, and how many of them were submitted now. A demo run already in the
    ``demo`` experiment (from an earlier ``miles up --demo``) is kept, not submitted again."""
    from server.store import tokens
    from trainer.client import MilesClient

    secret = None
    if settings.auth_enabled:
        with database(settings) as db, db.transaction() as session:
            token, secret = tokens.create(session=session, name=f"miles up --demo {time.time():.0f}")
    try:
        with MilesClient(url, token=secret) as client:
            earlier = {run["name"]: run["id"] for run in client.runs(experiment=DEMO_EXPERIMENT)}
            ids = [
                earlier.get(name) or client.submit(
                    DEMO | {"method": method, "params": params}, name=name, experiment=DEMO_EXPERIMENT,
                )["id"]
                for name, method, params in DEMO_RUNS
            ]
            return ids, sum(name not in earlier for name, _, _ in DEMO_RUNS)
    finally:
        if secret is not None:
            with database(settings) as db, db.transaction() as session:
                tokens.revoke(session=session, ref=str(token.id))


def devices(gpus: str | None, cpu: bool) -> tuple[list[int], bool]:
    """The GPUs (those listed, ``none``, or by default every GPU torch sees) and whether to run a CPU process."""
    if gpus is None:
        found = list(range(gpu_count()))
    else:
        found = [] if gpus.strip().lower() in ("", "none") else parse_gpus(gpus)
    if not found and not cpu:
        raise click.UsageError("no GPU and --no-cpu: nothing to train on; drop --no-cpu, or name GPUs with --gpus")
    return found, cpu


@click.command("up")
@click.option("--host", help="Address to serve on (MILES_HOST, default 127.0.0.1; another than loopback turns auth on).")
@click.option("--port", type=int, help="Port to serve on (MILES_PORT, default 8000).")
@click.option("--demo", is_flag=True, help="Submit a joint and a MILES run on mfeat so the charts move at once.")
@click.option("--open", "open_browser", is_flag=True, help="Open the dashboard in the web browser.")
@click.option("--gpus", metavar="0,1", help="GPUs to train on (default: every GPU torch sees; 'none' for none).")
@click.option("--cpu/--no-cpu", default=True, show_default=True,
              help="Also run a CPU worker process, for runs on device 'cpu' (nothing else runs them).")
def up_command(host: str | None, port: int | None, demo: bool, open_browser: bool, gpus: str | None, cpu: bool) -> None:
    """Start the dashboard and a worker on this machine: nothing else to install or run."""
    gpu_list, use_cpu = devices(gpus, cpu)
    settings = settings_or_exit(host=host, port=port)
    if gpu_list and "auto_queue" not in settings.model_fields_set:  # not set in the environment or .env
        settings = settings.model_copy(update={"auto_queue": "gpu"})  # runs on device 'auto' go to the GPUs
    listening = listen(settings)  # a busy port stops here, before MILES_HOME is written
    settings.home.mkdir(parents=True, exist_ok=True)
    app = prepare_app(settings, upgrade=True, log_level="warning")
    freeze_start_up_objects()
    server, thread = serve(app, settings, listening)
    url = f"http://{settings.host}:{settings.port}"
    try:
        if demo:
            ids, submitted = submit_demo(settings, url)
            links = ", ".join(f"{url}/runs/{i}" for i in ids)
            click.echo(f"demo runs submitted: {links}" if submitted == len(ids) else
                       f"demo runs, from an earlier --demo{f' ({submitted} submitted again)' if submitted else ''}: {links}")
        where = ", ".join([f"GPU {g}" for g in gpu_list] + (["CPU"] if use_cpu else []))
        click.echo(f"MILES dashboard: {url}   (worker on {where}; Ctrl-C stops everything)", err=False)
        if open_browser:
            webbrowser.open(url)
        Supervisor(settings, plan(gpu_list, use_cpu, 1), log_level="warning", grace=30, say=say).run()
    finally:
        server.should_exit = True
        thread.join(timeout=15)
    click.echo("stopped; runs in progress resume at the next start")
