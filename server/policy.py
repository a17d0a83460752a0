"""What this server allows a submitted config to do, beyond what `TrainConfig` itself checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from server.schemas import checked_config
from server.settings import Settings
from server.store.errors import Invalid
from trainer.config import TrainConfig
from trainer.encoders import IMAGENET
from trainer.spec import FieldError, explain


def validate_config(data: dict[str, Any], *, field: str) -> TrainConfig:
    """``data`` as a `TrainConfig`; its problems as an `Invalid` whose fields start with ``field``."""
    try:
        return checked_config(TrainConfig.model_validate(data), field)
    except ValidationError as error:
        problems = explain(error)
        raise Invalid([
            FieldError(f"{field}.{p.field}" if p.field and p.field != field else field, p.message) for p in problems
        ]) from None


def check_config(config: TrainConfig, settings: Settings, *, field: str) -> None:
    """Refuse more epochs than MILES_MAX_EPOCHS, and a data_path or pretrained weights outside the data directory."""
    problems = []
    if config.epochs > settings.max_epochs:
        problems.append(FieldError(
            f"{field}.epochs", f"must be at most {settings.max_epochs} on this server (MILES_MAX_EPOCHS); got {config.epochs}"
        ))
    if config.data_path is not None and resolve_inside(settings.data_root, config.data_path) is None:
        problems.append(FieldError(
            f"{field}.data_path",
            f"{config.data_path!r} leads outside the server's data directory (MILES_DATA_DIR); give a path "
            "relative to it, without '..' or links that leave it",
        ))
    for modality, source in config.model.pretrained.items():
        if source != IMAGENET and resolve_inside(settings.data_root, source) is None:
            problems.append(FieldError(
                f"{field}.model.pretrained.{modality}",
                f"{source!r} leads outside the server's data directory (MILES_DATA_DIR); give weights relative to it, "
                "'imagenet', or a BERT name",
            ))
    if problems:
        raise Invalid(problems)


def resolve_inside(root: Path, path: str) -> Path | None:
    """``root/path`` resolved (links followed) when it stays inside ``root``; None when it leads out
    (``..``, an absolute path elsewhere, a link) or cannot be resolved."""
    base = root.resolve()
    try:
        resolved = (base / path).resolve()  # an absolute path replaces base
    except (OSError, RuntimeError, ValueError):  # a link loop, or a name the OS refuses
        return None
    return resolved if resolved.is_relative_to(base) else None
