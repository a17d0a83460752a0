"""Multi-head joint fusion networks: shapes, parameter groups and what the auxiliary heads may shape."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trainer.config import ModelConfig
from trainer.datasets import ModalitySpec
from trainer.models import FUSION_GROUP, MultiHeadFusionNet

SPECS = {"audio": ModalitySpec("spectrogram", (1, 12, 12)), "text": ModalitySpec("vector", (7,)), "extra": ModalitySpec("vector", (3,))}
CONFIG = ModelConfig(embed_dim=8, hidden_dim=16, cnn_width=4, cnn_depth=2)


def inputs(names, n=5):
    return {m: torch.randn(n, *SPECS[m].shape) for m in names}


@pytest.mark.parametrize("fusion", ["concat", "sum", "film", "gated"])
@pytest.mark.parametrize("names", [["audio", "text"], ["text", "audio", "extra"]])
def test_every_fusion_gives_fused_and_per_head_logits(fusion, names):
    model = MultiHeadFusionNet({m: SPECS[m] for m in names}, fusion, num_classes=4, config=CONFIG)
    out = model(inputs(names))
    assert out.fused.shape == (5, 4)
    assert {m: t.shape for m, t in out.heads.items()} == {m: (5, 4) for m in names}
    assert model.fuse_without(out.features, names[0]).shape == (5, 4)


def test_parameter_groups_partition_the_model():
    model = MultiHeadFusionNet({m: SPECS[m] for m in ("audio", "text")}, "gated", 4, CONFIG)
    groups = model.parameter_groups()
    assert list(groups) == ["audio", "text", FUSION_GROUP]
    grouped = [id(p) for params in groups.values() for p in params]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())
    assert len(set(grouped)) == len(grouped)
    assert {id(p) for p in model.aux_heads["audio"].parameters()} <= {id(p) for p in groups["audio"]}
    assert {id(p) for p in model.head.parameters()} <= {id(p) for p in groups[FUSION_GROUP]}


@pytest.mark.parametrize(("detach", "reaches_encoder"), [(True, False), (False, True)])
def test_auxiliary_losses_shape_the_encoders_only_when_not_detached(detach, reaches_encoder):
    model = MultiHeadFusionNet({m: SPECS[m] for m in ("audio", "text")}, "concat", 4, CONFIG)
    model.detach_aux = detach
    out = model(inputs(["audio", "text"]))
    F.cross_entropy(out.heads["text"], torch.zeros(5, dtype=torch.long)).backward()
    encoder_grads = [p.grad for p in model.encoders["text"].parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in encoder_grads) == reaches_encoder
    assert all(p.grad is not None for p in model.aux_heads["text"].parameters())


def test_masking_a_modality_zeroes_its_features_only():
    model = MultiHeadFusionNet({m: SPECS[m] for m in ("audio", "text")}, "concat", 4, CONFIG)
    out = model(inputs(["audio", "text"]))
    zeroed = {"audio": torch.zeros_like(out.features["audio"]), "text": out.features["text"]}
    assert torch.equal(model.fuse_without(out.features, "audio"), model.fuse(zeroed))


def test_reserved_modality_names_are_refused():
    with pytest.raises(ValueError, match="reserved"):
        MultiHeadFusionNet({"fusion": SPECS["text"], "text": SPECS["text"]}, "concat", 4, CONFIG)
