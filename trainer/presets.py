"""Named presets: each of the paper's four tasks with its encoders and training settings.

``miles train --preset cremad --data-path DIR`` (or ``{"preset": "cremad", ...}`` in a
run's config) starts from the preset's fields; every field given beside it wins,
nested objects key by key (``--encoder audio=resnet6`` changes the audio encoder
only). A field given as null takes the preset's value. Changing the method drops
the preset's MILES hyperparameters.

From the paper (MILES.md sections 2 and 7): the datasets, their encoders (ResNet-18
x 2 on CREMA-D, ResNet-10 x 2 on S-MNIST, ResNet-6 x 2 on LUMA, BERT-base and
ResNet-50 on MM-IMDb), the epochs of the first three tasks (200, 50, 60), Adam,
MILES with tau 0.2 and mu 0.5, and the metric (accuracy; F1 for MM-IMDb). The paper
does not state the batch sizes, learning rates, MM-IMDb's epochs or the feature
size; those are **project choices**: batch 64 and learning rate 1e-3 for the
ResNet tasks (the OGM-GE code base's CREMA-D setting), batch 32 and 5e-5 for
MM-IMDb (a rate BERT fine-tuning tolerates), 20 epochs there, and ``embed_dim``
equal to the encoders' own width where both encoders share it. This module
imports neither torch nor the config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MILES = {"method": "miles", "params": {"tau": 0.2, "mu": 0.5}}


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    description: str
    metric: str
    config: dict[str, Any]


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "cremad", "CREMA-D as in the paper",
            "Audio spectrogram and one face frame, ResNet-18 for each, 200 epochs of Adam with MILES.",
            "accuracy",
            {"dataset": "cremad", "fusion": "concat", **MILES, "epochs": 200, "batch_size": 64, "lr": 1e-3,
             "model": {"embed_dim": 512, "encoders": {"audio": "resnet18", "visual": "resnet18"}}},
        ),
        Preset(
            "smnist", "S-MNIST as in the paper",
            "Written and spoken digits, ResNet-10 for each, 50 epochs of Adam with MILES.",
            "accuracy",
            {"dataset": "smnist", "fusion": "concat", **MILES, "epochs": 50, "batch_size": 64, "lr": 1e-3,
             "model": {"embed_dim": 512, "encoders": {"image": "resnet10", "audio": "resnet10"}}},
        ),
        Preset(
            "luma", "LUMA as in the paper",
            "Spoken class names and CIFAR images of 22 classes, ResNet-6 for each, 60 epochs of Adam with MILES.",
            "accuracy",
            {"dataset": "luma", "fusion": "concat", **MILES, "epochs": 60, "batch_size": 64, "lr": 1e-3,
             "model": {"embed_dim": 128, "encoders": {"audio": "resnet6", "image": "resnet6"}}},
        ),
        Preset(
            "mmimdb", "MM-IMDb as in the paper",
            "Plot and poster, 23 genres (F1): pretrained BERT-base and ImageNet ResNet-50, Adam with MILES.",
            "F1 (macro)",
            {"dataset": "mmimdb", "fusion": "concat", **MILES, "epochs": 20, "batch_size": 32, "lr": 5e-5,
             "model": {"embed_dim": 768, "encoders": {"text": "bert", "image": "resnet50"},
                       "pretrained": {"text": "bert-base-uncased", "image": "imagenet"}}},
        ),
    )
}


def _merged(base: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in given.items():
        if value is None and key in base:
            continue
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = _merged(base[key], value)
        else:
            merged[key] = value
    return merged


def with_preset(preset: Preset, given: dict[str, Any]) -> dict[str, Any]:
    """``given`` (a run's config) on top of ``preset``'s fields."""
    base = dict(preset.config)
    if given.get("method") not in (None, base["method"]):
        base.pop("params")  # the preset's hyperparameters are MILES's
    return _merged(base, given)
