"""The encoders a modality can get, and which inputs each one fits.

This module is the catalogue only (no torch import), so that a submitted spec can
be checked and the form built without loading PyTorch; `trainer.backbones` builds
the paper's networks and `trainer.models` the small default ones.
"""

from __future__ import annotations

from typing import Literal

from trainer.datasets.base import ModalitySpec

EncoderName = Literal["auto", "mlp", "cnn", "resnet6", "resnet10", "resnet18", "resnet50", "bert"]

ENCODERS: dict[str, str] = {
    "auto": "An MLP for vectors, the small CNN for 2-D inputs, BERT for text.",
    "mlp": "A multilayer perceptron (model.hidden_dim, model.mlp_layers) for feature vectors.",
    "cnn": "A small ResNet-style CNN (model.cnn_width, model.cnn_depth) for 2-D inputs.",
    "resnet6": "ResNet-6 (two stages of one basic block): the paper's LUMA encoder.",
    "resnet10": "ResNet-10 (four stages of one basic block): the paper's S-MNIST encoder.",
    "resnet18": "ResNet-18 (He et al. 2016): the paper's CREMA-D encoder.",
    "resnet50": "ResNet-50 (bottleneck blocks): the paper's MM-IMDb poster encoder.",
    "bert": "BERT from Hugging Face transformers (the text extra): the paper's MM-IMDb plot encoder.",
}
RESNETS = ("resnet6", "resnet10", "resnet18", "resnet50")
# Pretrained sources that are not paths: torchvision's published ImageNet weights.
IMAGENET = "imagenet"
IMAGENET_RESNETS = ("resnet18", "resnet50")
# The encoders whose depth a setting of the model config gives: that setting, and its allowed range.
DEPTHS: dict[str, tuple[str, int, int]] = {"mlp": ("mlp_layers", 0, 8), "cnn": ("cnn_depth", 1, 6)}


class RandomInitWarning(UserWarning):
    """An encoder starts from random weights although pretrained ones were asked for or are usual."""


def resolved(name: str, spec: ModalitySpec) -> str:
    """``name`` with ``auto`` replaced by the default encoder of ``spec``'s inputs."""
    if name != "auto":
        return name
    if spec.kind == "text":
        return "bert"
    return "cnn" if spec.is_2d else "mlp"


def unfit(name: str, spec: ModalitySpec) -> str | None:
    """Why encoder ``name`` cannot take ``spec``'s inputs; None when it can."""
    name = resolved(name, spec)
    if name == "bert":
        return None if spec.kind == "text" else f"bert encodes token ids (text), not {spec.kind} inputs of shape {spec.shape}"
    if spec.kind == "text":
        return f"{name} cannot encode text (token ids); use bert"
    if name == "mlp":
        return None if len(spec.shape) == 1 else f"mlp takes vectors, not inputs of shape {spec.shape}; use cnn or a ResNet"
    return None if spec.is_2d else f"{name} takes 2-D inputs (channels x height x width), not shape {spec.shape}; use mlp"


def unfit_pretrained(name: str, source: str) -> str | None:
    """Why ``source`` cannot be pretrained weights of encoder ``name``; None when it may be (``auto`` is
    checked once the modality's inputs, and so its encoder, are known)."""
    if name in ("mlp", "cnn"):
        return f"pretrained weights apply to the ResNets and bert, not to {name}"
    if source == IMAGENET and name not in IMAGENET_RESNETS:
        return f"'imagenet' weights are published for {' and '.join(IMAGENET_RESNETS)} only; give a local file for {name}"
    return None


def unfit_depth(name: str, depth: int) -> str | None:
    """Why encoder ``name`` cannot be ``depth`` deep (``model.depths``); None when it can."""
    if name not in DEPTHS:
        return f"encoder {name} has no depth setting; model.depths applies to the {' and '.join(DEPTHS)} encoders"
    setting, low, high = DEPTHS[name]
    if not low <= depth <= high:
        return f"must satisfy {low} <= depth <= {high} for the {name} encoder (its model.{setting}; got {depth})"
    return None
