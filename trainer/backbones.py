"""The paper's encoders as modality encoders: a ResNet or BERT trunk, then the feature size ``z_m``.

A trunk's pooled features (512 for ResNet-18 and -10, 128 for ResNet-6, 2,048 for
ResNet-50, 768 for BERT-base) become ``z_m`` as they are when ``model.embed_dim``
equals their size, as in the OGM-GE code base; otherwise one linear layer and a ReLU
map them to ``embed_dim``, so that every fusion sees features of one size.

Pretrained weights (``model.pretrained.<modality>``) are a local file or folder
(relative paths resolve under ``MILES_DATA_DIR``, like ``data_path``), ``imagenet``
for torchvision's ResNet-18 and -50 checkpoints, or a BERT name for `transformers` to
download. Weights that cannot be had leave the trunk randomly initialised with a
`RandomInitWarning`; weights that do not fit the network are an error.
"""

from __future__ import annotations

import warnings

from torch import Tensor, nn

from trainer.config import ModelConfig
from trainer.datasets.base import ModalitySpec, resolve_data_path
from trainer.encoders import IMAGENET, RandomInitWarning
from trainer.resnet import load_trunk_weights, read_weights, resnet


class Backbone(nn.Module):
    def __init__(self, trunk: nn.Module, out_features: int, config: ModelConfig) -> None:
        super().__init__()
        self.trunk = trunk
        layers: list[nn.Module] = [nn.Dropout(config.dropout)] if config.dropout else []
        if out_features != config.embed_dim:
            layers += [nn.Linear(out_features, config.embed_dim), nn.ReLU()]
        self.project = nn.Sequential(*layers) if layers else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.project(self.trunk(x))


def local_or_name(source: str) -> str:
    """A local path as an absolute path when it exists (relative to MILES_DATA_DIR); else ``source``
    unchanged (a hub name, or a path that will be reported missing)."""
    path = resolve_data_path(source)
    return str(path) if path.exists() else source


def build_backbone(name: str, spec: ModalitySpec, config: ModelConfig, pretrained: str | None) -> Backbone:
    """Encoder ``name`` (a ResNet or ``bert``) for inputs of ``spec``, with ``pretrained`` weights if any."""
    if name == "bert":
        from trainer.text import text_encoder

        trunk = text_encoder(local_or_name(pretrained) if pretrained else None, spec.shape[0], spec.vocab_size)
        return Backbone(trunk, trunk.out_features, config)
    network = resnet(name, in_channels=spec.shape[0])
    if pretrained:
        source = pretrained if pretrained == IMAGENET else local_or_name(pretrained)
        try:
            state = read_weights(name, source)
        except OSError as error:
            warnings.warn(RandomInitWarning(f"{name} weights {pretrained!r} could not be had ({error}); it starts from random weights"), stacklevel=2)
        else:
            load_trunk_weights(network, state)
    return Backbone(network, network.out_features, config)
