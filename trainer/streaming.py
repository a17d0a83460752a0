"""Batches read from a prepared folder while training, for datasets that do not fit in memory.

A `StreamingBatches` serves the same batches, in the same order, as the in-memory
`trainer.loop.Batches` (one ``torch.randperm`` of the run's shuffle generator per
epoch), but each batch is read from the split's memory-mapped arrays and decoded
(scaled and standardised) by `DataLoader` worker processes, then copied to the
device from pinned memory without blocking. Workers live for one pass over the
split (they are started again next epoch), so a stopped run leaves none behind.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from trainer.datasets.prepared import StoredSplit

EVAL_BATCH = 512


class _BatchRows(TorchDataset):
    """Item ``rows`` (an index array) is that whole batch: decoded inputs and labels as tensors."""

    def __init__(self, split: StoredSplit) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, rows: np.ndarray) -> tuple[dict[str, Tensor], Tensor]:
        inputs = {m: torch.from_numpy(np.ascontiguousarray(x)) for m, x in self.split.rows(rows).items()}
        return inputs, torch.from_numpy(np.asarray(self.split.labels[rows]))

    def __getstate__(self) -> dict[str, Any]:
        # A worker started by spawn (not fork) maps the files again instead of receiving their contents.
        split = self.split
        return {"paths": split.paths, "labels": split.labels, "codecs": split.codecs}

    def __setstate__(self, state: dict[str, Any]) -> None:
        inputs = {m: np.load(path, mmap_mode="r") for m, path in state["paths"].items()}
        self.split = StoredSplit(inputs, state["labels"], state["codecs"], state["paths"])


class StreamingBatches:
    """One split read from disk in batches; the interface of `trainer.loop.Batches`."""

    def __init__(self, split: StoredSplit, device: torch.device, workers: int) -> None:
        self.rows = _BatchRows(split)
        self.size = len(split)
        self.device = device
        self.workers = workers
        self.pin = device.type == "cuda"

    def __iter__(self) -> Iterator[tuple[dict[str, Tensor], Tensor]]:
        return self.ordered(EVAL_BATCH)

    def ordered(self, batch_size: int, order: Tensor | None = None) -> Iterator[tuple[dict[str, Tensor], Tensor]]:
        indices = np.arange(self.size) if order is None else order.cpu().numpy()
        batches: Sequence[np.ndarray] = [indices[start : start + batch_size] for start in range(0, len(indices), batch_size)]
        workers = min(self.workers, len(batches))
        loader = DataLoader(
            self.rows, sampler=batches, batch_size=None, num_workers=workers, pin_memory=self.pin,
            prefetch_factor=4 if workers else None,
        )
        iterator = iter(loader)
        try:
            for inputs, labels in iterator:
                yield ({m: x.to(self.device, non_blocking=self.pin) for m, x in inputs.items()},
                       labels.to(self.device, non_blocking=self.pin))
        finally:
            del iterator  # stops the workers now, also when the caller stopped early

    def shuffled(self, batch_size: int, generator: torch.Generator) -> Iterator[tuple[dict[str, Tensor], Tensor]]:
        return self.ordered(batch_size, torch.randperm(self.size, generator=generator))
