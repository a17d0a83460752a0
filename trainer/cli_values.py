"""How the command lines of the trainer (``miles train``, ``miles compare``, ``miles tune-lr``) read list and
NAME=VALUE options, and the options they share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from trainer.config import OPTIMIZERS
from trainer.spec import parse_assignment


def split_list(value: str | None) -> list[str] | None:
    """``"pix, fou"`` -> ``["pix", "fou"]``; None for an option not given."""
    return [part.strip() for part in value.split(",") if part.strip()] if value else None


def parse_param(text: str, option: str = "--param") -> tuple[str, Any]:
    """``NAME=VALUE``, the value read as JSON when it is JSON (``0.1``, ``true``, ``[1, 2]``), else as text."""
    try:
        return parse_assignment(text)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint=option) from None


def parse_depths(values: tuple[str, ...], option: str = "--depth") -> dict[str, int]:
    """``("pix=4",)`` -> ``{"pix": 4}``: the depth of each named modality's encoder (``model.depths``)."""
    depths: dict[str, int] = {}
    for text in values:
        modality, depth = parse_param(text, option)
        if not isinstance(depth, int) or isinstance(depth, bool):
            raise click.BadParameter(f"{text!r}: expected MODALITY=N, N a whole number of layers, e.g. pix=4", param_hint=option)
        depths[modality] = depth
    return depths


Command = TypeVar("Command", bound=Callable[..., Any])


def optimizer_options(command: Command) -> Command:
    """``--optimizer`` and ``--momentum``, the same on every command that trains."""
    command = click.option("--momentum", type=float, help="SGD's momentum (--optimizer sgd; default 0.9).")(command)
    return click.option(
        "--optimizer", type=click.Choice(OPTIMIZERS), default="adam", show_default=True,
        help="adam (the paper's) or sgd (with --momentum); MSLR runs take only rates tuned with their own.",
    )(command)
