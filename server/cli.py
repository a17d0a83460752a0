"""The `miles` command line: the one place that may reach every room."""

from __future__ import annotations

import importlib

import click

from server.commands import COMMANDS

# Imported only when used: the worker room (the server itself never imports `worker`), and
# torch behind `train`, which would add seconds to the start of every other command.
LAZY_COMMANDS = {
    "train": "trainer.cli:train_command",
    "compare": "trainer.compare:compare_command",
    "data": "trainer.data_cli:data_group",
    "worker": "worker.cli:worker_command",
    "requeue": "worker.cli:requeue_command",
    "up": "worker.up:up_command",
    "sweep": "server.sweep_commands:sweep_group",
}


class Commands(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_COMMANDS:
            module, attribute = LAZY_COMMANDS[name].split(":")
            return getattr(importlib.import_module(module), attribute)
        return super().get_command(ctx, name)


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="miles-dashboard")
def main() -> None:
    """MILES experiment dashboard: train multimodal networks and watch modality balance live."""


for command in COMMANDS:
    main.add_command(command)
