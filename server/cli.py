"""The `miles` command line: the one place that may reach every room."""

from __future__ import annotations

import click

from server.commands import COMMANDS
from trainer.cli import train_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="miles-dashboard")
def main() -> None:
    """MILES experiment dashboard: train multimodal networks and watch modality balance live."""


main.add_command(train_command)
for command in COMMANDS:
    main.add_command(command)
