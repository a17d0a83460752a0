"""Prepared datasets: the folder ``miles data prepare`` writes once and the trainer reads many times.

A public release (WAV files, videos, posters, JSON) is decoded, resized and
turned into spectrograms once (`trainer.datasets.preparation`); training then
reads fixed-size arrays, mapped from disk. Layout of a prepared folder::

    manifest.json            what the folder holds (below); written last
    train/<modality>.npy     [N, *shape] in the stored dtype (uint8 pixels, float32 spectrograms, int64 tokens)
    train/label.npy          int64 [N], or float32 multi-hot [N, C] for a multilabel task
    train/ids.json           the release's name of each sample (clip, movie id, ...)
    val/...  test/...

``manifest.json`` records the dataset, the preprocessing settings, the task and
classes, each modality's kind, shape and dtype with the training split's
per-channel mean and deviation (inputs are standardised with them when read),
the split sizes, and the size and SHA-256 of every file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from trainer.datasets.base import (
    SPLITS,
    Dataset,
    DatasetError,
    DatasetInfo,
    Kind,
    ModalitySpec,
    Split,
    Task,
    resolve_data_path,
)
from trainer.spec import SpecModel

FORMAT = 1
MANIFEST = "manifest.json"
WORK = ".prepare"
LABEL = "label"



class ModalityEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind
    shape: list[int]
    dtype: str
    scale: float = 1.0
    mean: list[float] | None = None
    std: list[float] | None = None
    vocab_size: int | None = None


class FileEntry(BaseModel):
    bytes: int
    sha256: str


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str
    format: int
    settings: dict[str, Any]
    task: Task
    classes: list[str]
    modalities: dict[str, ModalityEntry]
    splits: dict[str, int]
    files: dict[str, FileEntry]
    source: str
    created: str
    notes: list[str] = []


def read_manifest(root: Path) -> Manifest:
    path = root / MANIFEST
    if not path.is_file():
        raise DatasetError(f"{root} is not a prepared dataset: it has no {MANIFEST} (run `miles data prepare` first)")
    try:
        manifest = Manifest.model_validate(json.loads(path.read_text()))
    except (json.JSONDecodeError, ValidationError) as error:
        raise DatasetError(f"{path} cannot be read: {error}") from None
    if manifest.format != FORMAT:
        raise DatasetError(f"{path} has format {manifest.format}; this version reads format {FORMAT}: prepare it again")
    return manifest


def sha256_of(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def verify(root: Path) -> list[str]:
    """The files of a prepared folder whose size or checksum differs from its manifest (empty: intact)."""
    manifest = read_manifest(root)
    problems = []
    for name, entry in manifest.files.items():
        path = root / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif path.stat().st_size != entry.bytes:
            problems.append(f"{name}: {path.stat().st_size} bytes, the manifest says {entry.bytes}")
        elif sha256_of(path) != entry.sha256:
            problems.append(f"{name}: its SHA-256 differs from the manifest's")
    return problems


@dataclass(frozen=True)
class Codec:
    """Turns stored values into model inputs: ``(stored * scale - mean[c]) / std[c]`` per channel c."""

    scale: float
    mean: np.ndarray | None  # [C], or None to keep the stored values (token ids)
    std: np.ndarray | None

    def decode(self, stored: np.ndarray) -> np.ndarray:
        if self.mean is None or self.std is None:
            return np.asarray(stored)
        shape = (1, -1) + (1,) * (stored.ndim - 2)
        values = np.asarray(stored, dtype=np.float32) * np.float32(self.scale)
        return ((values - self.mean.reshape(shape)) / self.std.reshape(shape)).astype(np.float32)

    def itemsize(self) -> int:
        return 8 if self.mean is None else 4


@dataclass
class StoredSplit(Split):
    """A split of a prepared folder: its inputs are arrays mapped from disk, in their stored dtype."""

    codecs: dict[str, Codec] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)

    def select(self, modalities: list[str]) -> StoredSplit:
        return StoredSplit(
            {m: self.inputs[m] for m in modalities}, self.labels,
            {m: self.codecs[m] for m in modalities}, {m: self.paths[m] for m in modalities},
        )

    def rows(self, index: np.ndarray | slice) -> dict[str, np.ndarray]:
        """The model inputs of the rows ``index``, decoded."""
        return {m: self.codecs[m].decode(x[index]) for m, x in self.inputs.items()}

    def decoded_bytes(self) -> int:
        return sum(
            int(np.prod(x.shape)) * self.codecs[m].itemsize() for m, x in self.inputs.items()
        )

    def in_memory(self, rows: int = 1024) -> Split:
        """Every row decoded into memory (a plain `Split`)."""
        parts: dict[str, list[np.ndarray]] = {m: [] for m in self.inputs}
        for start in range(0, len(self), rows):
            for m, values in self.rows(slice(start, start + rows)).items():
                parts[m].append(values)
        return Split({m: np.concatenate(p) for m, p in parts.items()}, self.labels)


class PreparedParams(SpecModel):
    """No options: the preprocessing was fixed when the folder was prepared."""


def reader(info: DatasetInfo) -> tuple[Callable[..., DatasetInfo], Callable[..., Dataset]]:
    """A prepared dataset's ``describe`` and ``load`` for the registry (see `trainer.datasets`)."""

    def describe(params: SpecModel, data_path: str | None) -> DatasetInfo:
        return info

    def load(params: SpecModel, data_path: str | None, seed: int) -> Dataset:
        return load_prepared(info, data_path)

    return describe, load


def load_prepared(info: DatasetInfo, data_path: str | None) -> Dataset:
    """The prepared folder at ``data_path`` (relative paths under MILES_DATA_DIR) as a `Dataset` of
    `StoredSplit`s, after checking that it holds ``info.name`` and that its files are complete."""
    if not data_path:
        raise DatasetError(
            f"the {info.name} dataset needs data_path: the folder `miles data prepare {info.name}` wrote"
        )
    root = resolve_data_path(data_path)
    if not root.is_dir():
        raise DatasetError(f"data_path {data_path!r} is not a directory ({root}); prepare it with `miles data prepare {info.name}`")
    manifest = read_manifest(root)
    if manifest.dataset != info.name:
        raise DatasetError(f"{root} holds a prepared {manifest.dataset!r} dataset, not {info.name!r}")
    missing = [name for name, entry in manifest.files.items()
               if not (root / name).is_file() or (root / name).stat().st_size != entry.bytes]
    if missing:
        raise DatasetError(f"{root} is incomplete: {', '.join(missing)} missing or of the wrong size; prepare it again")
    splits = {}
    for split in SPLITS:
        paths = {m: root / split / f"{m}.npy" for m in manifest.modalities}
        inputs = {m: np.load(path, mmap_mode="r") for m, path in paths.items()}
        labels = np.load(root / split / f"{LABEL}.npy")
        codecs = {
            m: Codec(entry.scale, None if entry.mean is None else np.array(entry.mean, dtype=np.float32),
                     None if entry.std is None else np.array(entry.std, dtype=np.float32))
            for m, entry in manifest.modalities.items()
        }
        splits[split] = StoredSplit(inputs, labels, codecs, paths)
    loaded = DatasetInfo(
        name=info.name, title=info.title, description=info.description, task=manifest.task,
        classes=tuple(manifest.classes),
        modalities={m: ModalitySpec(e.kind, tuple(e.shape), e.vocab_size) for m, e in manifest.modalities.items()},
        default_modalities=tuple(m for m in info.default_modalities if m in manifest.modalities),
        splits=dict(manifest.splits), source=f"{info.source}; prepared in {root}",
    )
    return Dataset(loaded, splits["train"], splits["val"], splits["test"], notes=list(manifest.notes))
