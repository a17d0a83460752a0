"""`TrainConfig`: the one job spec used by the command line, the API and the worker."""

from __future__ import annotations

import re
from typing import Any, Literal, get_args

from pydantic import Field, ValidationInfo, field_validator, model_validator

from trainer.datasets import DATASETS
from trainer.encoders import (
    DEPTHS,
    ENCODERS,
    EncoderName,
    resolved,
    unfit,
    unfit_depth,
    unfit_pretrained,
)
from trainer.methods import METHODS, ParamsMismatch
from trainer.presets import PRESETS, with_preset
from trainer.spec import SpecModel, field_error

DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")
Fusion = Literal["concat", "sum", "film", "gated"]
Optimizer = Literal["adam", "sgd"]
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)
SGD_MOMENTUM = 0.9
FUSIONS: dict[str, str] = {
    "concat": "Concatenate the modality features, then one linear layer.",
    "sum": "One linear projection of each modality's features to the logits, summed (as in OGM-GE).",
    "film": "FiLM: the first modality's features scale and shift the others' (as in OGM-GE), then one linear layer.",
    "gated": "Gating: a sigmoid of the first modality's projection gates the others' (as in OGM-GE), then one linear layer.",
}


class ModelConfig(SpecModel):
    """Encoders: by default an MLP for vectors and a small ResNet-style CNN for 2-D inputs (their sizes
    below); ``encoders`` gives a modality one of the paper's ResNets or BERT instead."""

    embed_dim: int = Field(128, ge=4, le=4096, description="Size of each modality's feature vector z_m.")
    hidden_dim: int = Field(256, ge=4, le=8192, description="Width of the MLP hidden layers (vector inputs).")
    mlp_layers: int = Field(1, ge=DEPTHS["mlp"][1], le=DEPTHS["mlp"][2], description="Hidden layers of the MLP encoder.")
    cnn_depth: int = Field(
        2, ge=DEPTHS["cnn"][1], le=DEPTHS["cnn"][2],
        description="Residual stages of the CNN encoder; each after the first halves the resolution and doubles the width.",
    )
    cnn_width: int = Field(16, ge=4, le=256, description="Channels of the CNN's first stage.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout before each encoder's output.")
    encoders: dict[str, EncoderName] = Field(
        default_factory=dict,
        description="Encoder per modality, e.g. {\"audio\": \"resnet18\"}; unnamed modalities get 'auto'. "
        + " ".join(f"{name}: {text}" for name, text in ENCODERS.items()),
    )
    depths: dict[str, int] = Field(
        default_factory=dict,
        description="Depth per modality, instead of mlp_layers for an MLP encoder or cnn_depth for the CNN, e.g. "
        "{\"pix\": 4}: one modality's encoder made deeper than the others'.",
        # Left out of the spec when empty, so that every spec written before this field existed reads the same.
        exclude_if=lambda depths: not depths,
    )
    pretrained: dict[str, str] = Field(
        default_factory=dict,
        description="Pretrained weights per modality: a local file or folder (relative to the data directory), "
        "'imagenet' (ResNet-18 and -50, downloaded) or a BERT name such as 'bert-base-uncased'; an empty value "
        "drops a preset's. Without them an encoder starts from random weights.",
    )

    @field_validator("pretrained")
    @classmethod
    def _drop_empty(cls, value: dict[str, str]) -> dict[str, str]:
        return {modality: source for modality, source in value.items() if source.strip()}

    @model_validator(mode="after")
    def _pretrained_fits(self) -> ModelConfig:
        for modality, source in self.pretrained.items():
            problem = unfit_pretrained(self.encoders.get(modality, "auto"), source)
            if problem:
                raise field_error("ModelConfig", f"pretrained.{modality}", source, problem)
        return self

    @model_validator(mode="after")
    def _depths_fit(self) -> ModelConfig:
        """A depth for an encoder named here (``auto`` is checked once the modality's inputs are known)."""
        for modality, depth in self.depths.items():
            name = self.encoders.get(modality, "auto")
            problem = None if name == "auto" else unfit_depth(name, depth)
            if problem:
                raise field_error("ModelConfig", f"depths.{modality}", depth, problem)
        return self


class PerformanceConfig(SpecModel):
    """How a run uses its machine: nothing here changes what is learned beyond floating-point rounding."""

    mixed_precision: bool = Field(
        True, description="On CUDA: autocast to bfloat16 (float16 with loss scaling on GPUs without bfloat16). Off on CPU.",
    )
    channels_last: bool = Field(
        True, description="On CUDA: the channels-last memory format for 2-D inputs and convolutions. Off on CPU.",
    )
    data_loading: Literal["auto", "memory", "stream"] = Field(
        "auto",
        description="Prepared datasets: 'memory' holds each split in memory; 'stream' reads batches from the prepared "
        "folder through a DataLoader with worker processes and pinned memory; 'auto' streams when the data would "
        "take more than 2 GiB in memory.",
    )
    loader_workers: int = Field(2, ge=0, le=64, description="DataLoader worker processes when streaming (0: read in the training process).")


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

    preset: str | None = Field(
        None, description=f"A named preset ({', '.join(PRESETS)}): the paper's settings for its task. Every field "
        "given beside it wins (nested objects key by key).",
    )
    dataset: str = Field(description=f"Dataset name: one of {', '.join(DATASETS)}.")
    data_path: str | None = Field(
        None, description="Folder of the data, for datasets read from disk: your own folder, a folder prepared with "
        "`miles data prepare` (cremad, smnist, luma, mmimdb), or avdigits' files (instead of MILES_DATA_DIR). "
        "Relative paths are under the data directory.",
    )
    dataset_params: dict[str, Any] = Field(default_factory=dict, description="Options of the dataset.")
    modalities: list[str] | None = Field(
        None, description="Modalities to train on, at least two; default: the dataset's default pair."
    )
    fusion: Fusion = Field("concat", description="How the modality features are fused before the fused head.")
    method: str = Field("miles", description=f"Training method: one of {', '.join(METHODS)}.")
    params: dict[str, Any] = Field(default_factory=dict, description="Hyperparameters of the method.")
    model: ModelConfig = Field(default_factory=ModelConfig)
    performance: PerformanceConfig = Field(default_factory=PerformanceConfig)
    epochs: int = Field(30, ge=1, le=1000, description="Training epochs.")
    batch_size: int = Field(64, ge=1, le=4096, description="Samples per batch.")
    optimizer: Optimizer = Field(
        "adam", description="adam: Adam (beta1 0.9, beta2 0.999), as in the paper. sgd: SGD with `momentum`, the "
        "optimizer of OGM-GE and of most balancing methods' own papers. Every method scales the rates of the "
        "optimizer's parameter groups, whichever it is.",
        # Left out of the spec for Adam (with momentum), so that every spec written before these fields existed reads the same.
        exclude_if=lambda optimizer: optimizer == "adam",
    )
    momentum: float | None = Field(
        None, ge=0, lt=1, description=f"SGD's momentum (default {SGD_MOMENTUM} with optimizer sgd; Adam has none).",
        exclude_if=lambda momentum: momentum is None,
    )
    lr: float = Field(1e-3, gt=0, le=1, description="Global learning rate alpha of the optimizer.")
    weight_decay: float = Field(0.0, ge=0, le=1, description="L2 weight decay of the optimizer.")
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

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("preset") is None:
            return data
        preset = PRESETS.get(data["preset"]) if isinstance(data["preset"], str) else None
        if preset is None:
            raise field_error("TrainConfig", "preset", data["preset"], f"unknown preset {data['preset']!r}; allowed: {', '.join(PRESETS)}")
        return with_preset(preset, data)

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
    def _momentum_is_sgds(self) -> TrainConfig:
        if self.optimizer == "sgd" and self.momentum is None:
            self.momentum = SGD_MOMENTUM
        elif self.optimizer != "sgd" and self.momentum is not None:
            raise field_error(
                "TrainConfig", "momentum", self.momentum, f"only SGD has a momentum; with optimizer {self.optimizer!r} leave it out",
            )
        return self

    @model_validator(mode="after")
    def _method_fits_the_fusion(self) -> TrainConfig:
        allowed = METHODS[self.method].fusions
        if allowed is not None and self.fusion not in allowed:
            raise field_error(
                "TrainConfig", "fusion", self.fusion,
                f"method {self.method!r} needs each modality's share of the fused logits, which {self.fusion!r} "
                f"fusion does not define; allowed: {', '.join(allowed)}",
            )
        return self

    @model_validator(mode="after")
    def _fit_the_dataset(self) -> TrainConfig:
        entry = DATASETS[self.dataset]
        if self.data_path is not None and not entry.reads_disk:
            readers = ", ".join(name for name, e in DATASETS.items() if e.reads_disk)
            raise field_error("TrainConfig", "data_path", self.data_path, f"dataset {self.dataset!r} is built in; data_path applies to {readers}")
        if entry.needs_path and not self.data_path:
            what = (f"the folder `miles data prepare {self.dataset}` wrote" if entry.preparable
                    else "a directory with train.npz, val.npz and test.npz")
            raise field_error("TrainConfig", "data_path", None, f"the {self.dataset} dataset needs data_path: {what}")
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
            self._encoders_fit(info.modalities)
        if self.modalities is not None:
            if METHODS[self.method].single_modality and len(self.modalities) != 1:
                raise field_error(
                    "TrainConfig", "modalities", self.modalities, f"method {self.method!r} trains one modality alone: name exactly one",
                )
            if not METHODS[self.method].single_modality and len(self.modalities) < 2:
                raise field_error("TrainConfig", "modalities", self.modalities, "name at least two modalities")
            if len(set(self.modalities)) != len(self.modalities):
                raise field_error("TrainConfig", "modalities", self.modalities, "each modality may appear only once")
            try:
                self.params = METHODS[self.method].params_for_run(self.params, self.dataset, self.modalities, self.optimizer)
            except ParamsMismatch as error:
                raise field_error("TrainConfig", f"params.{error.field}", self.params.get(error.field), str(error)) from None
        return self

    def _encoders_fit(self, modalities: dict[str, Any]) -> None:
        for section in ("encoders", "pretrained"):
            unknown = [m for m in getattr(self.model, section) if m not in modalities]
            if unknown:
                raise field_error(
                    "TrainConfig", f"model.{section}", getattr(self.model, section),
                    f"{', '.join(map(repr, unknown))} not in dataset {self.dataset!r}; available: {', '.join(modalities)}",
                )
        for modality, name in self.model.encoders.items():
            problem = unfit(name, modalities[modality])
            if problem:
                raise field_error("TrainConfig", f"model.encoders.{modality}", name, problem)
        for modality, source in self.model.pretrained.items():
            problem = unfit_pretrained(resolved(self.model.encoders.get(modality, "auto"), modalities[modality]), source)
            if problem:
                raise field_error("TrainConfig", f"model.pretrained.{modality}", source, problem)
        for modality, depth in self.model.depths.items():
            if modality not in modalities:
                problem = f"{modality!r} not in dataset {self.dataset!r}; available: {', '.join(modalities)}"
            else:
                problem = unfit_depth(resolved(self.model.encoders.get(modality, "auto"), modalities[modality]), depth)
            if problem:
                raise field_error("TrainConfig", f"model.depths.{modality}", depth, problem)

    def describe(self) -> str:
        """A short human title, e.g. ``miles on mfeat (pix+fou, concat)``."""
        pair = "+".join(self.modalities or ["all"])
        return f"{self.method} on {self.dataset} ({pair}, {self.fusion})"

