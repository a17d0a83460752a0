"""The dataset registry: what each dataset holds, and how to load it.

Each dataset module provides ``Params`` (its options, validated like every
spec), ``describe(params, data_path)`` (its modalities, kinds, shapes,
classes and split sizes, without reading data; ``None`` when only its files
can tell) and ``load(params, data_path, seed)``. The paper's four tasks are
prepared from their public releases first (``miles data prepare``): their
modules also provide ``PrepareSettings`` and ``preparation(source, settings)``
(see `trainer.datasets.preparation` and `trainer.datasets.prepared`); their data_path is the prepared folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

from trainer.datasets import avdigits, cremad, folder, luma, mfeat, mmimdb, smnist, synthetic
from trainer.datasets.base import (
    SPLITS,
    Dataset,
    DatasetError,
    DatasetInfo,
    ModalitySpec,
    Split,
    Standardization,
)
from trainer.spec import SpecModel

__all__ = [
    "DATASETS", "SPLITS", "Dataset", "DatasetEntry", "DatasetError", "DatasetInfo", "ModalitySpec", "Split",
    "Standardization", "load_dataset",
]


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    module: ModuleType
    reads_disk: bool  # whether data_path means anything to it
    needs_path: bool = False  # whether it cannot load without data_path

    @property
    def preparable(self) -> bool:
        """Whether ``miles data prepare`` makes its data_path from a public release."""
        return hasattr(self.module, "preparation")

    @property
    def params(self) -> type[SpecModel]:
        return self.module.Params

    @property
    def info(self) -> DatasetInfo:
        """The catalogue's description (for generated or user data, with default options)."""
        return self.module.describe(self.params(), None) or self.module.INFO

    def describe(self, params: SpecModel, data_path: str | None) -> DatasetInfo | None:
        return self.module.describe(params, data_path)

    def load(self, params: SpecModel, data_path: str | None, seed: int) -> Dataset:
        return self.module.load(params, data_path, seed)


DATASETS: dict[str, DatasetEntry] = {
    entry.name: entry
    for entry in (
        DatasetEntry("mfeat", mfeat, reads_disk=False),
        DatasetEntry("avdigits", avdigits, reads_disk=True),
        DatasetEntry("synthetic", synthetic, reads_disk=False),
        DatasetEntry("folder", folder, reads_disk=True, needs_path=True),
        DatasetEntry("cremad", cremad, reads_disk=True, needs_path=True),
        DatasetEntry("smnist", smnist, reads_disk=True, needs_path=True),
        DatasetEntry("luma", luma, reads_disk=True, needs_path=True),
        DatasetEntry("mmimdb", mmimdb, reads_disk=True, needs_path=True),
    )
}


def load_dataset(config: Any) -> Dataset:
    """Load the data of a `TrainConfig`, restricted to its modalities."""
    entry = DATASETS[config.dataset]
    dataset = entry.load(entry.params.model_validate(config.dataset_params), config.data_path, config.seed)
    return dataset.select(list(config.modalities or dataset.info.default_modalities))
