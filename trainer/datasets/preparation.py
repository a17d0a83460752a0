"""Preparing a dataset: every sample of a release processed once into a prepared folder.

A dataset module plans its samples (which goes to which split, with which label)
and says how to process one; `prepare` runs the plan, in worker processes, and
writes the folder `trainer.datasets.prepared` reads.

Preparing is resumable: samples are processed in chunks of `CHUNK` and each
finished chunk is kept under ``.prepare/`` until the arrays are assembled, so a
run stopped half way (Ctrl-C, a crash) continues where it stopped when started
again with the same settings. A folder is never mixed: preparing into a folder
that holds, or has half-prepared, another dataset or other settings is refused.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from trainer.datasets.base import (
    SPLITS,
    DatasetError,
    Kind,
    Task,
)
from trainer.datasets.prepared import (
    FORMAT,
    LABEL,
    MANIFEST,
    WORK,
    FileEntry,
    Manifest,
    ModalityEntry,
    read_manifest,
    sha256_of,
)

CHUNK = 256


@dataclass(frozen=True)
class StoredModality:
    """How one modality is stored: ``kind`` and per-sample ``shape`` as the model sees them, the array's
    ``dtype`` on disk, and ``scale`` applied before standardising (1/255 for 8-bit pixels)."""

    kind: Kind
    shape: tuple[int, ...]
    dtype: str
    scale: float = 1.0
    vocab_size: int | None = None

    @property
    def standardized(self) -> bool:
        return self.kind != "text"


@dataclass(frozen=True)
class Sample:
    """One sample of a plan: the release's name for it, its label (a class index, or the class indices of
    a multilabel sample) and what the processing function needs to read it."""

    id: str
    label: int | tuple[int, ...]
    item: Any


@dataclass
class Preparation:
    """Everything one dataset's prepare step produces: the samples of each split and how to process one.

    ``process`` must be a module-level function (it runs in worker processes) returning one array per
    modality, shaped and typed as ``modalities`` says.
    """

    dataset: str
    settings: dict[str, Any]
    task: Task
    classes: tuple[str, ...]
    modalities: dict[str, StoredModality]
    plan: dict[str, list[Sample]]
    process: Callable[[Any], dict[str, np.ndarray]]
    source: str
    notes: list[str] = field(default_factory=list)

    def digest(self) -> str:
        """A fingerprint of the plan: which samples go where, with which labels."""
        hasher = hashlib.sha256()
        for split in SPLITS:
            for sample in self.plan[split]:
                hasher.update(f"{split}\t{sample.id}\t{sample.label}\n".encode())
        return hasher.hexdigest()
def _write_json(path: Path, value: Any) -> None:
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_text(json.dumps(value, indent=1, sort_keys=True))
    os.replace(partial, path)


def _refuse_mixing(dest: Path, what: str, dataset: str, settings: dict[str, Any], theirs: dict[str, Any]) -> None:
    mine = {"dataset": dataset, "settings": settings}
    if theirs != mine:
        raise DatasetError(
            f"{dest} {what} {theirs.get('dataset')!r} with settings {json.dumps(theirs.get('settings'), sort_keys=True)}; "
            f"you asked for {dataset!r} with {json.dumps(settings, sort_keys=True)}. One folder holds one preparation: "
            "choose another --dest, or delete this folder first"
        )


def check_destination(dest: Path, dataset: str, settings: dict[str, Any]) -> Manifest | None:
    """The manifest when ``dest`` already holds exactly this preparation; None when it is free or holds an
    unfinished one of the same settings; a `DatasetError` when it holds anything else."""
    if (dest / MANIFEST).exists():
        manifest = read_manifest(dest)
        _refuse_mixing(dest, "already holds", dataset, settings, {"dataset": manifest.dataset, "settings": manifest.settings})
        return manifest
    state = dest / WORK / "settings.json"
    if state.exists():
        saved = json.loads(state.read_text())
        _refuse_mixing(dest, "holds an unfinished preparation of", dataset, settings,
                       {"dataset": saved.get("dataset"), "settings": saved.get("settings")})
    elif dest.exists() and any(p.name != WORK for p in dest.iterdir()):
        raise DatasetError(f"{dest} is not empty and holds no preparation; choose an empty or new folder for --dest")
    return None


@contextmanager
def _interrupts_between_chunks() -> Iterator[Callable[[], None]]:
    """Ctrl-C while chunks are processed takes effect once the chunk in progress is written: the
    yielded check raises KeyboardInterrupt then (a second Ctrl-C raises at once). Raised anywhere
    else, inside the process pool's own bookkeeping, it could leave the pool unable to shut down,
    and a worker process that was still starting died of it. Workers forked while this is installed
    inherit the handler, harmless there, until their initializer ignores SIGINT."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread gets signals
        yield lambda: None
        return
    asked = threading.Event()

    def interrupted(_signum: int, _frame: Any) -> None:
        if asked.is_set():
            raise KeyboardInterrupt
        asked.set()

    def stop_if_asked() -> None:
        if asked.is_set():
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        yield stop_if_asked
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def _executor(workers: int) -> Iterator[Executor | None]:
    if workers <= 1:
        yield None
        return
    # Ctrl-C in a terminal reaches the whole process group: the workers leave it to this process,
    # which stops after the chunk in progress (and says how to continue) instead of each printing a traceback.
    with ProcessPoolExecutor(workers, initializer=signal.signal, initargs=(signal.SIGINT, signal.SIG_IGN)) as pool:
        yield pool


def _chunks(samples: Sequence[Sample]) -> list[Sequence[Sample]]:
    return [samples[start : start + CHUNK] for start in range(0, len(samples), CHUNK)]


def _processed(preparation: Preparation, chunk: Sequence[Sample], pool: Executor | None) -> dict[str, np.ndarray]:
    items = [sample.item for sample in chunk]
    results = list(pool.map(preparation.process, items, chunksize=4) if pool else map(preparation.process, items))
    arrays = {}
    for name, spec in preparation.modalities.items():
        stacked = np.stack([result[name] for result in results])
        if stacked.shape[1:] != spec.shape or stacked.dtype != np.dtype(spec.dtype):
            raise DatasetError(
                f"{preparation.dataset}: processing made {name} of shape {stacked.shape[1:]} {stacked.dtype}, "
                f"expected {spec.shape} {spec.dtype} (sample {chunk[0].id})"
            )
        arrays[name] = stacked
    arrays[LABEL] = _labels(preparation, chunk)
    return arrays


def _labels(preparation: Preparation, chunk: Sequence[Sample]) -> np.ndarray:
    if preparation.task == "single_label":
        return np.array([sample.label for sample in chunk], dtype=np.int64)
    hot = np.zeros((len(chunk), len(preparation.classes)), dtype=np.float32)
    for row, sample in enumerate(chunk):
        hot[row, list(sample.label)] = 1.0
    return hot


def prepare(
    preparation: Preparation, dest: Path, *, workers: int = 1, progress: Callable[[int, int], None] | None = None,
) -> Manifest:
    """Write ``preparation`` into ``dest``, resuming an unfinished run of the same settings.

    ``progress(done, total)`` is called after every chunk (and once at the start with what was done
    before). Returns the manifest; when ``dest`` already holds this preparation, nothing is redone.
    """
    if check_destination(dest, preparation.dataset, preparation.settings) is None:
        (dest / WORK).mkdir(parents=True, exist_ok=True)
    with _exclusive(dest):
        # Checked again under the lock: another preparation may have finished in the meantime.
        existing = check_destination(dest, preparation.dataset, preparation.settings)
        return existing if existing is not None else _prepare(preparation, dest, workers, progress)


@contextmanager
def _exclusive(dest: Path) -> Iterator[None]:
    """Hold ``dest``'s lock: one preparation writes into a folder at a time."""
    lock = dest / WORK / "lock"
    if not lock.parent.is_dir():  # ``dest`` is complete: there is nothing to write
        yield
        return
    with lock.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DatasetError(
                f"another `miles data prepare` is writing into {dest}; wait for it to finish, or stop it first"
            ) from None
        yield


def _prepare(
    preparation: Preparation, dest: Path, workers: int, progress: Callable[[int, int], None] | None,
) -> Manifest:
    work = dest / WORK
    state = {"dataset": preparation.dataset, "settings": preparation.settings, "plan": preparation.digest()}
    saved_path = work / "settings.json"
    if saved_path.exists():
        saved = json.loads(saved_path.read_text())
        if saved.get("plan") != state["plan"]:
            raise DatasetError(
                f"the source changed since the unfinished preparation in {dest} began (other samples or labels); "
                f"delete {work} to start over"
            )
    else:
        _write_json(saved_path, state)
    total = sum(len(samples) for samples in preparation.plan.values())
    chunks = {split: _chunks(preparation.plan[split]) for split in SPLITS}
    done = sum(len(c) for split in SPLITS for i, c in enumerate(chunks[split]) if (work / split / f"{i:05d}.npz").exists())
    if progress:
        progress(done, total)
    with _interrupts_between_chunks() as stop_if_asked, _executor(workers) as pool:
        for split in SPLITS:
            (work / split).mkdir(exist_ok=True)
            for index, chunk in enumerate(chunks[split]):
                target = work / split / f"{index:05d}.npz"
                if target.exists():
                    continue
                arrays = _processed(preparation, chunk, pool)
                partial = target.with_name(f".{target.stem}.tmp.npz")
                np.savez(partial, **arrays)
                os.replace(partial, target)
                done += len(chunk)
                if progress:
                    progress(done, total)
                stop_if_asked()
    return _assemble(preparation, dest, chunks)


def _assemble(preparation: Preparation, dest: Path, chunks: dict[str, list[Sequence[Sample]]]) -> Manifest:
    """Concatenate the chunks into one array per modality and split, then write the manifest."""
    work = dest / WORK
    names = [*preparation.modalities, LABEL]
    for split in SPLITS:
        (dest / split).mkdir(exist_ok=True)
        n = len(preparation.plan[split])
        outputs = {}
        for name in names:
            if name == LABEL:
                shape, dtype = ((n,), np.int64) if preparation.task == "single_label" else ((n, len(preparation.classes)), np.float32)
            else:
                spec = preparation.modalities[name]
                shape, dtype = (n, *spec.shape), np.dtype(spec.dtype)
            outputs[name] = np.lib.format.open_memmap(dest / split / f".{name}.tmp.npy", mode="w+", dtype=dtype, shape=shape)
        start = 0
        for index in range(len(chunks[split])):
            with np.load(work / split / f"{index:05d}.npz") as archive:
                size = archive[LABEL].shape[0]
                for name in names:
                    outputs[name][start : start + size] = archive[name]
            start += size
        for array in outputs.values():
            array.flush()
        outputs.clear()  # unmaps the files before they are renamed into place
        for name in names:
            os.replace(dest / split / f".{name}.tmp.npy", dest / split / f"{name}.npy")
        _write_json(dest / split / "ids.json", [sample.id for sample in preparation.plan[split]])
    modalities = {}
    for name, spec in preparation.modalities.items():
        entry = ModalityEntry(kind=spec.kind, shape=list(spec.shape), dtype=spec.dtype, scale=spec.scale, vocab_size=spec.vocab_size)
        if spec.standardized:
            entry.mean, entry.std = channel_statistics(np.load(dest / "train" / f"{name}.npy", mmap_mode="r"), spec.scale)
        modalities[name] = entry
    files = {
        f"{split}/{name}": FileEntry(bytes=(dest / split / name).stat().st_size, sha256=sha256_of(dest / split / name))
        for split in SPLITS for name in [*(f"{n}.npy" for n in names), "ids.json"]
    }
    manifest = Manifest(
        dataset=preparation.dataset, format=FORMAT, settings=preparation.settings, task=preparation.task,
        classes=list(preparation.classes), modalities=modalities,
        splits={split: len(preparation.plan[split]) for split in SPLITS}, files=files, source=preparation.source,
        created=datetime.now(UTC).isoformat(timespec="seconds"), notes=preparation.notes,
    )
    _write_json(dest / MANIFEST, manifest.model_dump(mode="json"))
    shutil.rmtree(work)
    return manifest


def channel_statistics(array: np.ndarray, scale: float, rows: int = 512) -> tuple[list[float], list[float]]:
    """Mean and standard deviation of each channel (axis 1) of ``array * scale``, read ``rows`` at a time."""
    channels = array.shape[1] if array.ndim > 2 else 1
    total = np.zeros(channels)
    squares = np.zeros(channels)
    count = 0
    for start in range(0, array.shape[0], rows):
        block = np.asarray(array[start : start + rows], dtype=np.float64) * scale
        block = block.reshape(block.shape[0], channels, -1)
        total += block.sum(axis=(0, 2))
        squares += np.square(block).sum(axis=(0, 2))
        count += block.shape[0] * block.shape[2]
    mean = total / max(count, 1)
    std = np.sqrt(np.maximum(squares / max(count, 1) - mean**2, 0.0))
    std[std < 1e-6] = 1.0  # a constant channel stays at 0
    return mean.tolist(), std.tolist()

