"""Multi-head joint fusion networks (MILES.md section 2).

One encoder per modality (by default an MLP for vectors, a small ResNet-style
CNN for 2-D inputs and BERT for text; ``model.encoders`` picks the paper's
ResNets or BERT, see `trainer.backbones`), a fusion of the encoded features followed by ONE linear layer
(the fused head), and one linear auxiliary head per modality.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from trainer.config import ModelConfig
from trainer.datasets import ModalitySpec
from trainer.encoders import DEPTHS, resolved, unfit, unfit_depth, unfit_pretrained

FUSION_GROUP = "fusion"


class MLPEncoder(nn.Module):
    def __init__(self, in_dim: int, config: ModelConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_dim
        for _ in range(config.mlp_layers):
            layers += [nn.Linear(width, config.hidden_dim), nn.ReLU()]
            width = config.hidden_dim
        layers += [nn.Dropout(config.dropout), nn.Linear(width, config.embed_dim), nn.ReLU()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a residual shortcut (ResNet's basic block)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ConvEncoder(nn.Module):
    """A small ResNet: a 3x3 stem, ``cnn_depth`` stages of one basic block, global pooling."""

    def __init__(self, in_channels: int, config: ModelConfig) -> None:
        super().__init__()
        width = config.cnn_width
        stages: list[nn.Module] = [
            nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        ]
        for stage in range(config.cnn_depth):
            out = config.cnn_width * 2**stage
            stages.append(BasicBlock(width, out, stride=1 if stage == 0 else 2))
            width = out
        self.features = nn.Sequential(*stages, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.project = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(width, config.embed_dim), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        return self.project(self.features(x))


def make_encoder(spec: ModalitySpec, config: ModelConfig, modality: str | None = None) -> nn.Module:
    """The encoder ``config.encoders`` names for ``modality`` (by default the one for its kind of input), as
    deep as ``config.depths`` says for it (by default ``mlp_layers`` or ``cnn_depth``)."""
    name = resolved(config.encoders.get(modality, "auto") if modality else "auto", spec)
    problem = unfit(name, spec)
    if problem:
        raise ValueError(f"modality {modality!r}: {problem}")
    pretrained = config.pretrained.get(modality) if modality else None
    if pretrained and unfit_pretrained(name, pretrained):
        raise ValueError(f"modality {modality!r}: {unfit_pretrained(name, pretrained)}")
    depth = config.depths.get(modality) if modality else None
    if depth is not None:
        problem = unfit_depth(name, depth)
        if problem:
            raise ValueError(f"model.depths.{modality}: {problem}")
        config = config.model_copy(update={DEPTHS[name][0]: depth})
    if name not in ("cnn", "mlp"):
        from trainer.backbones import build_backbone

        return build_backbone(name, spec, config, pretrained)
    if name == "cnn":
        return ConvEncoder(spec.shape[0], config)
    return MLPEncoder(spec.shape[0], config)


class Fusion(nn.Module):
    """Combines the modality features (in the model's modality order) into one vector.

    ``makes_logits``: the fusion projects to the logits itself (sum fusion), so the model's fused
    head is the identity.
    """

    out_dim: int
    makes_logits: bool = False

    def forward(self, features: list[Tensor]) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def logit_shares(self, features: list[Tensor], head: nn.Module) -> Tensor:
        """Each modality's additive share of the fused logits (OGM's ``out_m``), stacked in modality order:
        ``(modalities, batch, classes)``."""
        raise ValueError(f"{type(self).__name__} does not split the fused logits into one share per modality")


class ConcatFusion(Fusion):
    def __init__(self, dim: int, count: int, num_classes: int) -> None:
        super().__init__()
        self.dim = dim
        self.out_dim = dim * count

    def forward(self, features: list[Tensor]) -> Tensor:
        return torch.cat(features, dim=1)

    def logit_shares(self, features: list[Tensor], head: nn.Module) -> Tensor:
        """``W[:, cols_m] z_m + b / M``: the fused layer's columns that multiply ``z_m`` and an equal part of
        its bias (the OGM-GE code's ``fc_out.weight[:, :d]`` and ``bias / 2`` for two modalities), so the
        shares add up to the fused logits exactly. All modalities in one batched product (with the bias part,
        when there is a bias: ``baddbmm``'s ``beta``)."""
        assert isinstance(head, nn.Linear)
        weights = head.weight.view(head.out_features, len(features), self.dim).permute(1, 2, 0)  # (M, d, classes)
        if head.bias is None:
            return torch.bmm(torch.stack(features), weights)
        return torch.baddbmm(head.bias, torch.stack(features), weights, beta=1 / len(features))  # (M, batch, classes)


class SumFusion(Fusion):
    """Sum fusion as in the OGM-GE code (MILES.md section 8): ``sum_m (W_m z_m + b_m)``.

    One linear projection per modality, straight to the logits, and the projections' outputs are
    summed: these projections are the fused head, so each modality's share of the fused logits is its
    own projection (what OGM modulates by). Each projection keeps its own bias, as the OGM-GE code's
    ``fc_x`` and ``fc_y`` do; the biases add up to one bias, so the family of functions is the same as
    concatenation's, and what differs is the initialisation (each projection's fan-in is ``d``, not
    ``M * d``) and that the summed bias learns ``M`` times faster. Summing the features before one shared
    layer, as this project did before, is another architecture (the features share one projection).
    """

    makes_logits = True

    def __init__(self, dim: int, count: int, num_classes: int) -> None:
        super().__init__()
        self.projections = nn.ModuleList(nn.Linear(dim, num_classes) for _ in range(count))
        self.out_dim = num_classes

    def forward(self, features: list[Tensor]) -> Tensor:
        return self.logit_shares(features, nn.Identity()).sum(0)

    def logit_shares(self, features: list[Tensor], head: nn.Module) -> Tensor:
        """``W_m z_m + b_m``, the modality's own projection with its whole bias, so the shares add up to the
        fused logits (the OGM-GE code takes ``b_m / 2`` here, carried over from its concat case; we do not)."""
        return torch.stack([p(z) for p, z in zip(self.projections, features, strict=True)])


class FiLMFusion(Fusion):
    """FiLM (Perez et al. 2018) as in the OGM-GE code: ``gamma(z_1) * z_2 + beta(z_1)``.

    With more than two modalities the first modality modulates the sum of the others (project choice).
    """

    def __init__(self, dim: int, count: int, num_classes: int) -> None:
        super().__init__()
        self.film = nn.Linear(dim, 2 * dim)
        self.out_dim = dim

    def forward(self, features: list[Tensor]) -> Tensor:
        gamma, beta = self.film(features[0]).chunk(2, dim=1)
        return gamma * torch.stack(features[1:]).sum(0) + beta


class GatedFusion(Fusion):
    """Gated fusion as in the OGM-GE code: ``sigmoid(W_1 z_1) * (W_2 z_2)``.

    With more than two modalities the first modality's gate applies to the sum of the others' projections
    (project choice).
    """

    def __init__(self, dim: int, count: int, num_classes: int) -> None:
        super().__init__()
        self.projections = nn.ModuleList(nn.Linear(dim, dim) for _ in range(count))
        self.out_dim = dim

    def forward(self, features: list[Tensor]) -> Tensor:
        gate = torch.sigmoid(self.projections[0](features[0]))
        rest = torch.stack([p(z) for p, z in zip(self.projections[1:], features[1:], strict=True)]).sum(0)
        return gate * rest


FUSIONS: dict[str, type[Fusion]] = {
    "concat": ConcatFusion,
    "sum": SumFusion,
    "film": FiLMFusion,
    "gated": GatedFusion,
}


@dataclass
class Outputs:
    fused: Tensor  # logits of the fused head
    heads: dict[str, Tensor]  # logits of each modality's auxiliary head
    features: dict[str, Tensor]  # z_m


class MultiHeadFusionNet(nn.Module):
    """Encoders, fusion plus one linear fused head, and one linear head per modality."""

    def __init__(
        self, modalities: Mapping[str, ModalitySpec], fusion: str, num_classes: int, config: ModelConfig
    ) -> None:
        super().__init__()
        if FUSION_GROUP in modalities or "fused" in modalities:
            raise ValueError(f"'{FUSION_GROUP}' and 'fused' are reserved names; rename that modality")
        self.modalities = list(modalities)
        self.encoders = nn.ModuleDict({m: make_encoder(s, config, m) for m, s in modalities.items()})
        self.aux_heads = nn.ModuleDict({m: nn.Linear(config.embed_dim, num_classes) for m in modalities})
        # One modality alone (`unimodal`): its encoder and its head, nothing fused; the "fused" logits are the
        # head's, so that every head-keyed metric and the best-epoch choice read the same as in a fused run.
        self.single = len(self.modalities) == 1
        self.fusion: Fusion | None = None if self.single else FUSIONS[fusion](config.embed_dim, len(modalities), num_classes)
        # The fused head: one linear layer, unless the fusion's own projections are that layer (sum).
        self.head: nn.Module | None = (
            None if self.fusion is None
            else nn.Identity() if self.fusion.makes_logits else nn.Linear(self.fusion.out_dim, num_classes)
        )
        # joint (vanilla) trains the auxiliary heads on detached features: they measure each
        # encoder without shaping it.
        self.detach_aux = False

    def fuse(self, features: Mapping[str, Tensor]) -> Tensor:
        assert self.fusion is not None and self.head is not None, "one modality alone has nothing to fuse"
        return self.head(self.fusion([features[m] for m in self.modalities]))

    def forward(self, inputs: Mapping[str, Tensor]) -> Outputs:
        features = {m: self.encoders[m](inputs[m]) for m in self.modalities}
        heads = {
            m: self.aux_heads[m](z.detach() if self.detach_aux else z) for m, z in features.items()
        }
        fused = heads[self.modalities[0]] if self.single else self.fuse(features)
        return Outputs(fused, heads, features)

    def logit_shares(self, features: Mapping[str, Tensor]) -> Tensor:
        """Each modality's additive share of the fused logits, ``(modalities, batch, classes)`` in the order of
        ``self.modalities`` (concat and sum fusion; ValueError otherwise)."""
        return self.fusion.logit_shares([features[m] for m in self.modalities], self.head)

    def fuse_without(self, features: Mapping[str, Tensor], modality: str) -> Tensor:
        """Fused logits with ``z_modality`` replaced by zeros (utilization of >2 modalities)."""
        masked = dict(features)
        masked[modality] = torch.zeros_like(features[modality])
        return self.fuse(masked)

    def group_modules(self) -> dict[str, list[nn.Module]]:
        """The modules of each parameter group: a modality's encoder and auxiliary head; fusion and fused head
        (absent for one modality alone)."""
        groups: dict[str, list[nn.Module]] = {m: [self.encoders[m], self.aux_heads[m]] for m in self.modalities}
        if self.fusion is not None and self.head is not None:
            groups[FUSION_GROUP] = [self.fusion, self.head]
        return groups

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """One group per modality (encoder and auxiliary head) and one for fusion and fused head."""
        return {name: [p for module in modules for p in module.parameters()] for name, modules in self.group_modules().items()}
