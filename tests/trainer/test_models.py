"""Multi-head joint fusion networks: shapes, parameter groups and what the auxiliary heads may shape."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trainer.config import ModelConfig
from trainer.datasets import ModalitySpec
from trainer.models import FUSION_GROUP, BasicBlock, MultiHeadFusionNet

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


def test_sum_fusion_sums_one_projection_per_modality_to_the_logits():
    model = MultiHeadFusionNet({m: SPECS[m] for m in ("text", "extra")}, "sum", 2, CONFIG.model_copy(update={"embed_dim": 2}))
    text, extra = model.fusion.projections
    with torch.no_grad():
        text.weight.copy_(torch.tensor([[1.0, 2.0], [0.0, -1.0]]))
        text.bias.copy_(torch.tensor([0.5, 0.0]))
        extra.weight.copy_(torch.tensor([[3.0, 0.0], [1.0, 1.0]]))
        extra.bias.copy_(torch.tensor([0.0, -2.0]))
    features = {"text": torch.tensor([[1.0, 1.0]]), "extra": torch.tensor([[2.0, -1.0]])}
    # text: [1 + 2 + 0.5, -1 + 0] = [3.5, -1]; extra: [6 + 0, 2 - 1 - 2] = [6, -1]; fused: [9.5, -2]
    assert torch.equal(model.fuse(features), torch.tensor([[9.5, -2.0]]))
    text_share, extra_share = model.logit_shares(features)
    assert torch.equal(text_share, torch.tensor([[3.5, -1.0]]))
    assert torch.equal(extra_share, torch.tensor([[6.0, -1.0]]))
    assert isinstance(model.head, torch.nn.Identity)
    assert {id(p) for p in model.fusion.parameters()} <= {id(p) for p in model.parameter_groups()[FUSION_GROUP]}


def test_concat_shares_are_the_head_columns_on_each_modality_plus_an_equal_part_of_the_bias():
    model = MultiHeadFusionNet({m: SPECS[m] for m in ("text", "extra")}, "concat", 2, CONFIG.model_copy(update={"embed_dim": 2}))
    with torch.no_grad():
        model.head.weight.copy_(torch.tensor([[1.0, 2.0, 3.0, 0.0], [0.0, -1.0, 1.0, 1.0]]))
        model.head.bias.copy_(torch.tensor([1.0, -2.0]))
    features = {"text": torch.tensor([[1.0, 1.0]]), "extra": torch.tensor([[2.0, -1.0]])}
    text_share, extra_share = model.logit_shares(features)
    assert torch.equal(text_share, torch.tensor([[3.5, -2.0]]))  # [1 + 2, -1] + [0.5, -1]
    assert torch.equal(extra_share, torch.tensor([[6.5, 0.0]]))  # [6, 2 - 1] + [0.5, -1]
    assert torch.equal(text_share + extra_share, model.fuse(features))


@pytest.mark.parametrize("fusion", ["film", "gated"])
def test_film_and_gated_fusion_have_no_per_modality_share(fusion):
    model = MultiHeadFusionNet({m: SPECS[m] for m in ("text", "extra")}, fusion, 2, CONFIG)
    out = model(inputs(["text", "extra"]))
    with pytest.raises(ValueError, match="does not split the fused logits"):
        model.logit_shares(out.features)


@pytest.mark.parametrize("fusion", ["concat", "sum"])
def test_the_shares_of_three_modalities_add_up_to_the_fused_logits(fusion):
    names = ["text", "audio", "extra"]
    model = MultiHeadFusionNet({m: SPECS[m] for m in names}, fusion, 4, CONFIG)
    out = model(inputs(names))
    shares = model.logit_shares(out.features)
    assert shares.shape == (3, 5, 4)
    assert torch.allclose(shares.sum(0), out.fused, atol=1e-6)
    zeroed = dict(out.features, audio=torch.zeros_like(out.features["audio"]))  # the audio share is audio's alone
    assert torch.allclose(model.logit_shares(zeroed)[[0, 2]], shares[[0, 2]], atol=1e-6)


@pytest.mark.parametrize("depth", [0, 3, 6])
def test_a_modality_given_a_depth_has_that_many_hidden_layers_and_the_others_keep_mlp_layers(depth):
    config = CONFIG.model_copy(update={"mlp_layers": 1, "depths": {"text": depth}})
    model = MultiHeadFusionNet({m: SPECS[m] for m in ("text", "extra")}, "concat", 4, config)
    # An MLP encoder of k hidden layers is k + 1 linear layers: the hidden ones and the projection to z_m.
    linears = {m: [layer for layer in model.encoders[m].net if isinstance(layer, torch.nn.Linear)] for m in ("text", "extra")}
    assert len(linears["text"]) == depth + 1 and len(linears["extra"]) == 2
    assert [layer.out_features for layer in linears["text"]] == [16] * depth + [8]


def test_a_cnn_given_a_depth_has_that_many_residual_stages():
    config = CONFIG.model_copy(update={"depths": {"audio": 3}})
    model = MultiHeadFusionNet({m: SPECS[m] for m in ("audio", "text")}, "concat", 4, config)
    stages = [m for m in model.encoders["audio"].features if isinstance(m, BasicBlock)]
    assert [stage.conv1.out_channels for stage in stages] == [4, 8, 16]
    assert model(inputs(["audio", "text"])).fused.shape == (5, 4)


def test_a_depth_for_an_encoder_without_one_is_refused_when_the_model_is_built():
    config = CONFIG.model_copy(update={"depths": {"text": 2}, "encoders": {"text": "bert"}})
    with pytest.raises(ValueError, match="model.depths.text: encoder bert has no depth setting"):
        MultiHeadFusionNet({"text": ModalitySpec("text", (16,)), "extra": SPECS["extra"]}, "concat", 4, config)
