"""How the command lines of the trainer (``miles train``, ``miles compare``) read list and NAME=VALUE options."""

from __future__ import annotations

import json
from typing import Any

import click


def split_list(value: str | None) -> list[str] | None:
    """``"pix, fou"`` -> ``["pix", "fou"]``; None for an option not given."""
    return [part.strip() for part in value.split(",") if part.strip()] if value else None


def parse_param(text: str, option: str = "--param") -> tuple[str, Any]:
    """``NAME=VALUE``, the value read as JSON when it is JSON (``0.1``, ``true``, ``[1, 2]``), else as text."""
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise click.BadParameter(f"{text!r}: expected NAME=VALUE", param_hint=option)
    try:
        return name, json.loads(raw)
    except json.JSONDecodeError:
        return name, raw
