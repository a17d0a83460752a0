"""The `miles` command line: the one place that may reach every room.

Every command is imported only when it runs: the server's pull in SQLAlchemy and Alembic,
the worker's Celery, ``train`` torch, and ``miles --help`` should answer at once. The list
of commands in the help is written from `COMMANDS`' summaries (each command's first
sentence, which a test keeps in step), without importing any of them.
"""

from __future__ import annotations

import importlib
import os
from typing import NamedTuple

import click


class LazyCommand(NamedTuple):
    target: str  # "module:attribute"
    summary: str  # the first sentence of the command's help


COMMANDS = {
    "compare": LazyCommand(
        "trainer.compare:compare_command", "Train every method x fusion x seed and write the paper's kind of table.",
    ),
    "data": LazyCommand(
        "trainer.data_cli:data_group",
        "Prepare the paper's datasets (CREMA-D, S-MNIST, LUMA, MM-IMDb) and check prepared folders.",
    ),
    "db": LazyCommand("server.commands:db_group", "Migrate the database (Alembic)."),
    "requeue": LazyCommand(
        "worker.cli:requeue_command",
        "Enqueue every queued run again, e.g. after the broker was down when they were submitted.",
    ),
    "server": LazyCommand("server.commands:server_command", "Serve the API (and the dashboard) with uvicorn."),
    "sweep": LazyCommand(
        "server.sweep_commands:sweep_group", "Hyperparameter sweeps: Optuna studies whose trials run on the workers.",
    ),
    "token": LazyCommand("server.commands:token_group", "Create, list and revoke API tokens."),
    "train": LazyCommand(
        "trainer.cli:train_command",
        "Train a multimodal network with MILES or a baseline, showing progress and a final table.",
    ),
    "tune-lr": LazyCommand(
        "trainer.tune_lr:tune_lr_command",
        "Find one modality's best learning rate alone (on validation) and record it for the MSLR methods.",
    ),
    "up": LazyCommand(
        "worker.up:up_command", "Start the dashboard and a worker on this machine: nothing else to install or run.",
    ),
    "worker": LazyCommand(
        "worker.cli:worker_command",
        "Run queued runs: one Celery worker process per GPU (--gpus 0,1), or CPU processes (--cpu).",
    ),
}


class Commands(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name].target.split(":")
        return getattr(importlib.import_module(module), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(map(len, COMMANDS))
        rows = [
            (name, click.Command(name, help=command.summary).get_short_help_str(limit))
            for name, command in sorted(COMMANDS.items())
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="miles-dashboard")
@click.pass_context
def main(ctx: click.Context) -> None:
    """MILES experiment dashboard: train multimodal networks and watch modality balance live."""
    if ctx.invoked_subcommand in ("train", "tune-lr"):
        share_data_root()


def share_data_root() -> None:
    """Let `miles train` find datasets where the workers do: MILES_DATA_DIR from the environment or
    ``.env``, else MILES_HOME/data. The trainer itself reads only the environment variable."""
    from server.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as error:
        raise click.ClickException(str(error)) from None
    os.environ["MILES_DATA_DIR"] = str(settings.data_root)
