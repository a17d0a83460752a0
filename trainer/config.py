"""`TrainConfig`: the one job spec used by the command line, the API and the worker."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from trainer.datasets import DATASETS
from trainer.methods import METHODS
from trainer.spec import SpecModel, field_error

DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")
Fusion = Literal["concat", "sum", "film", "gated"]
FUSIONS: dict[str, str] = {
    "concat": "Concatenate the modality features, then one linear layer.",
    "sum": "Add the modality features element-wise, then one linear layer.",
    "film": "FiLM: the first modality's features scale and shift the others' (as in OGM-GE), then one linear layer.",
    "gated": "Gating: a sigmoid of the first modality's projection gates the others' (as in OGM-GE), then one linear layer.",
}


class ModelConfig(SpecModel):
    """Encoder sizes. Vectors get an MLP, 2-D inputs a small ResNet-style CNN."""

    embed_dim: int = Field(128, ge=4, le=4096, description="Size of each modality's feature vector z_m.")
    hidden_dim: int = Field(256, ge=4, le=8192, description="Width of the MLP hidden layers (vector inputs).")
    mlp_layers: int = Field(1, ge=0, le=8, description="Hidden layers of the MLP encoder.")
    cnn_depth: int = Field(
        2, ge=1, le=6, description="Residual stages of the CNN encoder; each after the first halves the resolution and doubles the width."
    )
    cnn_width: int = Field(16, ge=4, le=256, description="Channels of the CNN's first stage.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout before each encoder's output.")


class TrainConfig(SpecModel):
    """Everything that defines a training run. Unknown fields and out-of-range values are rejected."""

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "dataset": "mfeat",
                    "modalities": ["pix", "fou"],
                    "fusion": "concat",
                    "method": "miles",
                    "params": {"tau": 0.2, "mu": 0.5},
                    "epochs": 30,
                    "batch_size": 64,
                    "lr": 0.001,
                    "seed": 0,
                }
            ]
        }
    }

    dataset: str = Field(description=f"Dataset name: one of {', '.join(DATASETS)}.")
    data_path: str | None = Field(
        None, description="Folder of the data, for datasets read from disk (folder; avdigits overrides MILES_DATA_DIR)."
    )
    dataset_params: dict[str, Any] = Field(default_factory=dict, description="Options of the dataset.")
    modalities: list[str] | None = Field(
        None, description="Modalities to train on, at least two; default: the dataset's default pair."
    )
    fusion: Fusion = Field("concat", description="How the modality features are fused before the fused head.")
    method: str = Field("miles", description=f"Training method: one of {', '.join(METHODS)}.")
    params: dict[str, Any] = Field(default_factory=dict, description="Hyperparameters of the method.")
    model: ModelConfig = Field(default_factory=ModelConfig)
    epochs: int = Field(30, ge=1, le=1000, description="Training epochs.")
    batch_size: int = Field(64, ge=1, le=4096, description="Samples per batch.")
    lr: float = Field(1e-3, gt=0, le=1, description="Global learning rate alpha of Adam.")
    weight_decay: float = Field(0.0, ge=0, le=1, description="Adam's L2 weight decay.")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of initialisation, shuffling and pairing.")
    evaluate_test: bool = Field(
        True, description="Evaluate the test split when training ends. A sweep's trials do not: a configuration "
        "is chosen on validation alone, and only the reruns of the best one are tested.",
    )
    device: str = Field(
        "auto",
        description="'auto' (CUDA when present), 'cpu', 'cuda' or 'cuda:N'.",
        json_schema_extra={"pattern": DEVICE_PATTERN.pattern},
    )

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if not DEVICE_PATTERN.fullmatch(value):
            raise ValueError(f"must be 'auto', 'cpu', 'cuda' or 'cuda:N' (got {value!r})")
        return value

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, value: str) -> str:
        if value not in DATASETS:
            raise ValueError(f"unknown dataset {value!r}; allowed: {', '.join(DATASETS)}")
        return value

    @field_validator("method")
    @classmethod
    def _known_method(cls, value: str) -> str:
        if value not in METHODS:
            raise ValueError(f"unknown method {value!r}; allowed: {', '.join(METHODS)}")
        return value

    @field_validator("dataset_params")
    @classmethod
    def _dataset_options(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        entry = DATASETS.get(info.data.get("dataset", ""))
        return entry.params.model_validate(value).model_dump() if entry else value

    @field_validator("params")
    @classmethod
    def _method_hyperparameters(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        spec = METHODS.get(info.data.get("method", ""))
        return spec.params.model_validate(value).model_dump() if spec else value

    @model_validator(mode="after")
    def _fit_the_dataset(self) -> TrainConfig:
        entry = DATASETS[self.dataset]
        if self.data_path is not None and not entry.reads_disk:
            readers = ", ".join(name for name, e in DATASETS.items() if e.reads_disk)
            raise field_error("TrainConfig", "data_path", self.data_path, f"dataset {self.dataset!r} is built in; data_path applies to {readers}")
        if self.dataset == "folder" and not self.data_path:
            raise field_error("TrainConfig", "data_path", None, "the folder dataset needs data_path: a directory with train.npz, val.npz and test.npz")
        info = entry.describe(entry.params.model_validate(self.dataset_params), self.data_path)
        if info is not None:
            if self.modalities is None:
                self.modalities = list(info.default_modalities)
            unknown = [m for m in self.modalities if m not in info.modalities]
            if unknown:
                raise field_error(
                    "TrainConfig", "modalities", self.modalities,
                    f"{', '.join(map(repr, unknown))} not in dataset {self.dataset!r}; available: {', '.join(info.modalities)}",
                )
        if self.modalities is not None:
            if len(self.modalities) < 2:
                raise field_error("TrainConfig", "modalities", self.modalities, "name at least two modalities")
            if len(set(self.modalities)) != len(self.modalities):
                raise field_error("TrainConfig", "modalities", self.modalities, "each modality may appear only once")
        return self

    def describe(self) -> str:
        """A short human title, e.g. ``miles on mfeat (pix+fou, concat)``."""
        pair = "+".join(self.modalities or ["all"])
        return f"{self.method} on {self.dataset} ({pair}, {self.fusion})"

