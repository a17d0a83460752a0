"""Checkpoints: the state needed to resume a run exactly, and the best weights.

``<dir>/last.pt`` is rewritten after every epoch (model, optimizer, strategy,
random generators, best-so-far); ``<dir>/best.pt`` holds the weights of the
best validation epoch. Both hold ``standardization``, the statistics the inputs
were standardised with (``{modality: {"mean": tensor, "std": tensor}}``, empty when
the data was used as given): a network is only right on inputs scaled the same way.
Writes go to a temporary file first and are renamed, so a process killed mid-write
never leaves a torn checkpoint.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainer.datasets import Standardization

LAST = "last.pt"
BEST = "best.pt"
FORMAT = 1
# Fields that may differ between a run and its resumption (performance: how the machine is used;
# evaluate_test only acts once training ends).
RESUMABLE_CHANGES = {"epochs", "device", "performance", "evaluate_test"}


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or belongs to a different run."""


def save(directory: Path, name: str, state: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    partial = directory / f".{name}.{os.getpid()}.tmp"
    torch.save({"format": FORMAT, **state}, partial)
    os.replace(partial, target)
    return target


def load(path: Path, device: torch.device) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
        raise CheckpointError(f"cannot read checkpoint {path}: {error}") from None
    if state.get("format") != FORMAT:
        raise CheckpointError(f"{path} has checkpoint format {state.get('format')}, expected {FORMAT}")
    return state


def trained_seconds(directory: Path) -> float:
    """The training time ``directory``'s last checkpoint records (every epoch trained so far, across
    resumptions); 0 without a readable one. The weights are mapped, not read into memory."""
    path = directory / LAST
    if not path.exists():
        return 0.0
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError):
        return 0.0  # resuming will say what is wrong with it
    return float(state.get("elapsed", 0.0)) if state.get("format") == FORMAT else 0.0


def check_compatible(saved: dict[str, Any], current: dict[str, Any], path: Path) -> None:
    """Refuse to resume with a spec that differs in anything but ``epochs``, ``device`` and ``performance``."""
    differing = sorted(
        key for key in saved.keys() | current.keys()
        if key not in RESUMABLE_CHANGES and saved.get(key) != current.get(key)
    )
    if differing:
        raise CheckpointError(
            f"{path} was written by a run with a different {', '.join(differing)}; "
            "only epochs, device and performance may change when resuming"
        )


def standardization_state(stats: dict[str, Standardization]) -> dict[str, dict[str, torch.Tensor]]:
    """``stats`` as tensors, which a checkpoint loaded with ``weights_only`` may hold."""
    return {m: {"mean": torch.from_numpy(np.asarray(s.mean)), "std": torch.from_numpy(np.asarray(s.std))}
            for m, s in stats.items()}


def read_standardization(state: dict[str, Any]) -> dict[str, Standardization]:
    """The statistics a checkpoint records; none for one written before they were recorded (its
    run trained on the data as given)."""
    return {m: Standardization(s["mean"].cpu().numpy(), s["std"].cpu().numpy())
            for m, s in state.get("standardization", {}).items()}
