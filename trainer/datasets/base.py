"""What a dataset is to the trainer: named modalities, labels and three splits.

Loaders return NumPy arrays; the training loop turns them into tensors on the
run's device. Nothing here imports torch, so the catalogue stays light.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

Kind = Literal["vector", "image", "spectrogram", "text"]
Task = Literal["single_label", "multilabel"]
SPLITS = ("train", "val", "test")


class DatasetError(ValueError):
    """A dataset could not be found or read; the message says what was expected where."""


@dataclass(frozen=True)
class ModalitySpec:
    kind: Kind
    shape: tuple[int, ...]  # one sample: (D,) for vectors, (C, H, W) for 2-D inputs, (tokens,) for text
    vocab_size: int | None = None  # text: the size of the tokenizer's vocabulary the ids come from

    @property
    def is_2d(self) -> bool:
        return len(self.shape) == 3


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    description: str
    task: Task
    classes: tuple[str, ...]
    modalities: dict[str, ModalitySpec]
    default_modalities: tuple[str, ...]
    splits: dict[str, int] | None = None  # sizes, when known without reading files
    source: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass
class Split:
    """One split in memory: float32 inputs per modality and the labels."""

    inputs: dict[str, np.ndarray]
    labels: np.ndarray  # int64 [N] (single label) or float32 multi-hot [N, C]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def select(self, modalities: list[str]) -> Split:
        return Split({m: self.inputs[m] for m in modalities}, self.labels)


@dataclass(frozen=True)
class Standardization:
    """The per-feature mean and standard deviation one vector modality was standardised with,
    measured on the training split; kept in the checkpoints, so that whoever evaluates or
    resumes a run feeds its network inputs scaled the same way."""

    mean: np.ndarray  # [D]
    std: np.ndarray  # [D]; constant features have 1, so they stay at 0

    @classmethod
    def of(cls, train: np.ndarray) -> Standardization:
        std = train.std(axis=0)
        std[std < 1e-6] = 1.0
        return cls(train.mean(axis=0), std)

    def apply(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)

    def matches(self, other: Standardization | None) -> bool:
        return other is not None and np.array_equal(self.mean, other.mean) and np.array_equal(self.std, other.std)


@dataclass
class Dataset:
    info: DatasetInfo
    train: Split
    val: Split
    test: Split
    notes: list[str] = field(default_factory=list)
    # The modalities the loader standardised, with the statistics it used (none: data as given).
    standardization: dict[str, Standardization] = field(default_factory=dict)

    def split(self, name: str) -> Split:
        return {"train": self.train, "val": self.val, "test": self.test}[name]

    def select(self, modalities: list[str]) -> Dataset:
        """The same data restricted to ``modalities`` (in that order)."""
        missing = [m for m in modalities if m not in self.info.modalities]
        if missing:
            raise DatasetError(
                f"dataset {self.info.name!r} has no modality {', '.join(map(repr, missing))}; "
                f"available: {', '.join(self.info.modalities)}"
            )
        info = DatasetInfo(
            name=self.info.name,
            title=self.info.title,
            description=self.info.description,
            task=self.info.task,
            classes=self.info.classes,
            modalities={m: self.info.modalities[m] for m in modalities},
            default_modalities=tuple(modalities),
            splits={s: len(self.split(s)) for s in SPLITS},
            source=self.info.source,
        )
        return Dataset(
            info, *(self.split(s).select(modalities) for s in SPLITS), notes=self.notes,
            standardization={m: stats for m, stats in self.standardization.items() if m in modalities},
        )


def data_root() -> Path | None:
    """The directory named by ``MILES_DATA_DIR``, where datasets read from disk live."""
    value = os.environ.get("MILES_DATA_DIR")
    return Path(value).expanduser() if value else None


def resolve_data_path(data_path: str | None) -> Path:
    """An absolute ``data_path`` as is; a relative one under ``MILES_DATA_DIR`` (or the working directory)."""
    path = Path(data_path or ".").expanduser()
    if path.is_absolute():
        return path
    root = data_root()
    return (root / path) if root else path.resolve()


def standardize(splits: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Z-score every feature with the training split's statistics (constant features stay 0)."""
    stats = Standardization.of(splits["train"])
    return {name: stats.apply(x) for name, x in splits.items()}


def stratified_indices(
    labels: np.ndarray, fractions: tuple[float, float], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split indices per class into train / val / test with the given val and test fractions."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_val = round(len(members) * fractions[0])
        n_test = round(len(members) * fractions[1])
        parts[2].append(members[:n_test])
        parts[1].append(members[n_test : n_test + n_val])
        parts[0].append(members[n_test + n_val :])
    train, val, test = (np.sort(np.concatenate(p)) for p in parts)
    return train, val, test


def split_sizes(total: int, fractions: tuple[float, float]) -> tuple[int, int, int]:
    """Train, validation and test sizes of ``total`` samples for the given val and test fractions."""
    val, test = round(total * fractions[0]), round(total * fractions[1])
    return total - val - test, val, test


def exact_stratified_indices(
    labels: np.ndarray, sizes: tuple[int, int, int], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split indices into train / val / test of exactly ``sizes``, each class spread over the three in
    proportion to its size (largest remainders decide the odd samples)."""
    if sum(sizes) != len(labels):
        raise ValueError(f"split sizes {sizes} do not add up to the {len(labels)} samples")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    share = np.zeros((len(classes), 3), dtype=np.int64)
    for part in (1, 2):  # val and test; train takes the rest of each class
        wanted = counts * sizes[part] / len(labels)
        share[:, part] = np.floor(wanted)
        short = sizes[part] - int(share[:, part].sum())
        order = np.argsort(-(wanted - np.floor(wanted)), kind="stable")
        share[order[:short], part] += 1
    share[:, 0] = counts - share[:, 1] - share[:, 2]
    if (share[:, 0] < 0).any():
        raise ValueError(f"a class has too few samples for split sizes {sizes}")
    parts: list[list[np.ndarray]] = [[], [], []]
    for row, label in enumerate(classes):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_val, n_test = share[row, 1], share[row, 2]
        parts[2].append(members[:n_test])
        parts[1].append(members[n_test : n_test + n_val])
        parts[0].append(members[n_test + n_val :])
    train, val, test = (np.sort(np.concatenate(p)) for p in parts)
    return train, val, test
