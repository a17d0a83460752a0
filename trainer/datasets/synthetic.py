"""Generated data with a known signal strength per modality, for fast tests.

For each modality m and class k a centroid ``c[m, k]`` is drawn uniformly on
the unit sphere of R^dim. A sample of class y has, in modality m,

    x_m = s_m * c[m, y] + eps,    eps ~ N(0, I / dim)

so the noise has an expected norm of 1 and ``s_m`` (``signals[m]``) is the
modality's signal-to-noise ratio: the distance of a class centroid from the
origin in units of the noise. Larger is easier; at 0 the modality carries no
information. Unequal signals give a controlled imbalance. Modalities listed in
``image_modalities`` are shaped as [1, side, side] images (dim must then be a
square) so that the CNN path can be tested quickly. The data depends only on
``data_seed``, never on the run's seed.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field, field_validator, model_validator

from trainer.datasets.base import Dataset, DatasetInfo, ModalitySpec, Split
from trainer.spec import SpecModel


class Params(SpecModel):
    signals: dict[str, float] = Field(
        default_factory=lambda: {"strong": 3.0, "weak": 1.0},
        description="Modality name -> signal-to-noise ratio s_m (0 to 100).",
    )
    dim: int = Field(16, ge=1, le=4096, description="Features per modality.")
    classes: int = Field(4, ge=2, le=1000, description="Number of classes.")
    train_size: int = Field(1000, ge=1, le=200_000)
    val_size: int = Field(250, ge=1, le=50_000)
    test_size: int = Field(250, ge=1, le=50_000)
    image_modalities: list[str] = Field(
        default_factory=list, description="Modalities generated as [1, side, side] images (dim must be a square)."
    )
    data_seed: int = Field(0, ge=0, description="Seed of the generated data (independent of the run's seed).")

    @field_validator("signals")
    @classmethod
    def _strengths(cls, signals: dict[str, float]) -> dict[str, float]:
        if not signals:
            raise ValueError("name at least one modality")
        for name, strength in signals.items():
            if not 0 <= strength <= 100:
                raise ValueError(f"{name}: must satisfy 0 <= signal <= 100 (got {strength})")
        return signals

    @model_validator(mode="after")
    def _consistent(self) -> Params:
        unknown = [m for m in self.image_modalities if m not in self.signals]
        if unknown:
            raise ValueError(f"image_modalities {unknown} are not in signals ({', '.join(self.signals)})")
        if self.image_modalities and math.isqrt(self.dim) ** 2 != self.dim:
            raise ValueError(f"image_modalities need a square dim (16, 64, ...), got {self.dim}")
        return self


def describe(params: Params, data_path: str | None) -> DatasetInfo:
    side = math.isqrt(params.dim)
    return DatasetInfo(
        name="synthetic",
        title="Synthetic (known signal per modality)",
        description="Gaussian classes with a chosen signal-to-noise ratio per modality: a controlled "
        "imbalance for quick experiments and tests.",
        task="single_label",
        classes=tuple(str(k) for k in range(params.classes)),
        modalities={
            m: ModalitySpec("image", (1, side, side)) if m in params.image_modalities else ModalitySpec("vector", (params.dim,))
            for m in params.signals
        },
        default_modalities=tuple(params.signals),
        splits={"train": params.train_size, "val": params.val_size, "test": params.test_size},
        source="generated",
    )


def load(params: Params, data_path: str | None, seed: int) -> Dataset:
    info = describe(params, data_path)
    rng = np.random.default_rng(params.data_seed)
    centroids = {}
    for m in params.signals:
        raw = rng.standard_normal((params.classes, params.dim))
        centroids[m] = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    splits = []
    for size in (params.train_size, params.val_size, params.test_size):
        labels = rng.integers(0, params.classes, size=size)
        inputs = {}
        for m, strength in params.signals.items():
            noise = rng.standard_normal((size, params.dim)) / math.sqrt(params.dim)
            x = (strength * centroids[m][labels] + noise).astype(np.float32)
            inputs[m] = x.reshape((size, *info.modalities[m].shape))
        splits.append(Split(inputs, labels.astype(np.int64)))
    return Dataset(info, *splits)
