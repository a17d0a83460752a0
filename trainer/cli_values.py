"""How the command lines of the trainer (``miles train``, ``miles compare``) read list and NAME=VALUE options."""

from __future__ import annotations

from typing import Any

import click

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
