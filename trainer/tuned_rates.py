"""The learning rates `miles tune-lr` found, per dataset and modality, for the MSLR methods.

They live in one JSON file, ``$MILES_HOME/tuned_lrs.json`` (``~/.miles`` by default)::

    {"mfeat": {"pix": {"lr": 0.001, "val": 0.97, "epochs": 10, "optimizer": "adam", "table": {"0.0001": 0.91, ...}}}}

A run of ``mslr_*`` without ``params.lrs`` takes its rates from here when the file holds every modality
of the run, tuned with the run's optimizer (a record without one was tuned with Adam; a good rate for
Adam is no guide for SGD); the validated spec then records them, so the run is reproducible wherever it trains.
No torch import: the server validates specs with it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

FILE_NAME = "tuned_lrs.json"


def tuned_path() -> Path:
    return Path(os.environ.get("MILES_HOME") or "~/.miles").expanduser() / FILE_NAME


def read_tuned() -> dict[str, dict[str, dict[str, Any]]]:
    """Every recorded rate; an absent or unreadable file is no rates (a broken file is said by `tuned_rates`)."""
    path = tuned_path()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def tuned_rates(dataset: str, modalities: list[str], optimizer: str) -> dict[str, float] | None:
    """The best rate recorded for every modality of ``dataset`` with ``optimizer``, or None when one of them
    has none."""
    recorded = read_tuned().get(dataset, {})
    records = {m: recorded.get(m) if isinstance(recorded.get(m), dict) else {} for m in modalities}
    rates = {m: r.get("lr") if r.get("optimizer", "adam") == optimizer else None for m, r in records.items()}
    if any(not isinstance(rate, int | float) or not 0 < rate <= 1 for rate in rates.values()):
        return None
    return {m: float(rate) for m, rate in rates.items()}  # type: ignore[arg-type]


def record_tuned(dataset: str, modality: str, record: dict[str, Any]) -> Path:
    """Store ``record`` (with its ``lr``) as the tuned rate of ``modality`` on ``dataset``; returns the file."""
    path = tuned_path()
    data = read_tuned()
    data.setdefault(dataset, {})[modality] = record
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    partial.replace(path)
    return path
