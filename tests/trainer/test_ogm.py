"""OGM and OGM-GE (Peng et al., CVPR 2022): the scores, Eq. 10's coefficient and which modality it
slows, GE's noise scale, the window, and the refusal of fusions without per-modality shares."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from trainer.config import TrainConfig
from trainer.methods import OgmParams
from trainer.spec import explain
from trainer.strategies.ogm import (
    GE_EPSILON,
    enhance_,
    gradient_spreads,
    modality_scores,
    modulation_coefficients,
)

# Two samples, labels 0 and 1. Audio's share (first) puts softmax 0.8 and 0.6 on the true classes, image's 0.5 and 0.5.
LABELS = torch.tensor([0, 1])
SHARES = torch.stack([torch.log(torch.tensor([[0.8, 0.2], [0.4, 0.6]])), torch.zeros(2, 2)])


def test_a_modality_scores_the_softmax_of_its_share_at_the_true_classes():
    assert modality_scores(SHARES, LABELS).tolist() == pytest.approx([1.4, 1.0])


def test_the_dominant_modality_is_slowed_by_one_minus_tanh_alpha_rho_and_the_other_kept():
    ratios, k = modulation_coefficients(modality_scores(SHARES, LABELS), alpha=0.8)
    assert ratios[0].item() == pytest.approx(1.4)  # rho = 1.4 / 1.0
    assert k.tolist() == pytest.approx([1 - math.tanh(0.8 * 1.4), 1.0])  # 0.1923 for audio, image kept


def test_a_tie_modulates_neither_modality():
    _, k = modulation_coefficients(torch.tensor([2.0, 2.0]), alpha=0.8)
    assert k.tolist() == [1.0, 1.0]


def test_more_than_two_modalities_compare_each_with_the_weakest():
    ratios, k = modulation_coefficients(torch.tensor([3.0, 1.5, 1.0]), alpha=0.5)
    assert ratios.tolist() == [3.0, 1.5, 1.0]
    assert k.tolist() == pytest.approx([1 - math.tanh(1.5), 1 - math.tanh(0.75), 1.0])


def test_a_multilabel_score_is_the_mean_probability_of_the_true_values():
    labels = torch.tensor([[1.0, 0.0]])
    logits = torch.logit(torch.tensor([[[0.9, 0.3]]]))
    assert modality_scores(logits, labels).item() == pytest.approx((0.9 + 0.7) / 2)


def test_ge_noise_has_the_unscaled_gradients_standard_deviation():
    torch.manual_seed(0)
    grad = torch.randn(400, 500) * 3.0
    before, spread = grad.clone(), grad.std().item()
    enhance_(grad, torch.tensor(0.25))
    noise = grad - 0.25 * before
    assert noise.mean().item() == pytest.approx(0.0, abs=0.02)
    assert noise.std().item() == pytest.approx(spread + GE_EPSILON, rel=0.01)  # about 3, not 0.75


def test_ge_noise_on_a_single_element_is_the_epsilon_only():
    torch.manual_seed(0)
    grad = torch.tensor([2.0])
    enhance_(grad, torch.tensor(1.0))
    assert abs(grad.item() - 2.0) < 1e-6


def test_the_spreads_are_each_gradients_standard_deviation_and_epsilon_alone_for_one_element():
    torch.manual_seed(0)
    grads = [torch.randn(30, 7) * 5 + 2, torch.randn(3), torch.tensor([4.0])]
    spreads = gradient_spreads(grads)
    assert [s.item() for s in spreads[:2]] == pytest.approx([g.std().item() + GE_EPSILON for g in grads[:2]], rel=1e-6)
    assert spreads[2].item() == pytest.approx(GE_EPSILON)


def test_one_draw_gives_each_gradient_noise_of_its_own_spread_and_its_own_coefficient():
    torch.manual_seed(0)
    grads = [torch.randn(300, 200) * 0.5, torch.randn(50_001) * 4.0, torch.randn(7, 3, 999) * 0.01]
    before = [g.clone() for g in grads]
    spreads = [g.std().item() + GE_EPSILON for g in grads]
    coefficients = [torch.tensor(0.25), torch.tensor(1.0), torch.tensor(0.5)]
    enhance_(grads, coefficients)
    for grad, old, k, spread in zip(grads, before, coefficients, spreads, strict=True):
        noise = grad - k * old
        assert noise.mean().item() == pytest.approx(0.0, abs=0.05 * spread)
        assert noise.std().item() == pytest.approx(spread, rel=0.02)


def test_one_draw_repeats_the_per_gradient_draws_on_the_cpu_for_sizes_in_sixteens():
    grads = [torch.randn(64, 48), torch.randn(64), torch.randn(32, 64)]
    k = torch.tensor(0.3)
    torch.manual_seed(1)
    expected = [g * k + torch.randn_like(g) * (g.std() + GE_EPSILON) for g in grads]
    torch.manual_seed(1)
    enhance_(grads, k)
    for grad, want in zip(grads, expected, strict=True):
        assert torch.allclose(grad, want, rtol=1e-5, atol=1e-7)


def test_the_window_must_end_after_it_starts():
    with pytest.raises(ValidationError) as caught:
        OgmParams(start_epoch=10, end_epoch=5)
    assert "start_epoch" in explain(caught.value)[0].message


@pytest.mark.parametrize("method", ["ogm", "ogm_ge"])
@pytest.mark.parametrize("fusion", ["film", "gated"])
def test_fusions_without_per_modality_shares_are_refused_before_training(method, fusion):
    with pytest.raises(ValidationError) as caught:
        TrainConfig(dataset="mfeat", method=method, fusion=fusion)
    errors = {e.field: e.message for e in explain(caught.value)}
    assert "allowed: concat, sum" in errors["fusion"]


def test_defaults_are_the_reference_codes():
    assert TrainConfig(dataset="mfeat", method="ogm", fusion="sum").params == {"alpha": 0.8, "start_epoch": 1, "end_epoch": 50}


def _model_after_backward(fusion: str):
    from trainer.config import ModelConfig
    from trainer.datasets import ModalitySpec
    from trainer.models import MultiHeadFusionNet

    torch.manual_seed(0)
    specs = {"strong": ModalitySpec("vector", (4,)), "weak": ModalitySpec("vector", (4,))}
    model = MultiHeadFusionNet(specs, fusion, 3, ModelConfig(embed_dim=8, hidden_dim=8))
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    x = torch.nn.functional.one_hot(labels, 4).float() * 5  # the label, readable by "strong" only
    outputs = model({"strong": x, "weak": torch.randn(6, 4)})
    torch.nn.functional.cross_entropy(outputs.fused, labels).backward()
    return model, outputs, labels


@pytest.mark.parametrize("fusion", ["concat", "sum"])
def test_the_strategy_scales_every_gradient_of_the_dominant_encoder_only(fusion):
    from trainer.strategies.ogm import OgmStrategy

    model, outputs, labels = _model_after_backward(fusion)
    before = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    shares = model.logit_shares({m: z.detach() for m, z in outputs.features.items()})
    ratios, coefficients = modulation_coefficients(modality_scores(shares, labels), alpha=0.8)
    k = dict(zip(("strong", "weak"), coefficients, strict=True))
    dominant = "strong" if ratios[0] > 1 else "weak"
    other = "weak" if dominant == "strong" else "strong"
    strategy = OgmStrategy(OgmParams(), ["strong", "weak"], 1e-3)
    strategy.before_epoch(1, None)
    strategy.after_backward(model, outputs, labels)
    for name, p in model.named_parameters():
        if name not in before:
            continue
        if name.startswith(f"encoders.{dominant}."):
            assert torch.allclose(p.grad, before[name] * k[dominant]), name
        else:
            assert torch.equal(p.grad, before[name]), name
    assert k[dominant].item() < 1 and k[other].item() == 1.0
    strategy.on_epoch_end(None)
    assert strategy.epoch_metrics()[f"ogm/coef/{dominant}"] == pytest.approx(k[dominant].item())


def test_outside_the_window_gradients_are_left_alone():
    from trainer.strategies.ogm import OgmGeStrategy

    model, outputs, labels = _model_after_backward("concat")
    before = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    strategy = OgmGeStrategy(OgmParams(start_epoch=2, end_epoch=3), ["strong", "weak"], 1e-3)
    strategy.before_epoch(1, None)
    strategy.after_backward(model, outputs, labels)
    assert all(torch.equal(p.grad, before[n]) for n, p in model.named_parameters() if n in before)
    [event] = strategy.on_epoch_end(None)
    assert event.kind == "ogm.modulation" and not event.data["in_window"]
    assert strategy.epoch_metrics() == {"ogm/coef/strong": 1.0, "ogm/coef/weak": 1.0}


@pytest.mark.parametrize("method", ["ogm", "ogm_ge"])
@pytest.mark.parametrize("fusion", ["concat", "sum"])
def test_a_run_reports_the_mean_coefficients_and_an_event_per_epoch(method, fusion):
    from tests.trainer.test_loop import synthetic
    from trainer.loop import train
    from trainer.reporting import MemoryReporter

    reporter = MemoryReporter()
    train(synthetic(method=method, fusion=fusion, epochs=3, params={"end_epoch": 2}), reporter)
    events = [e for e in reporter.events if e["kind"] == "ogm.modulation"]
    assert [e["data"]["in_window"] for e in events] == [True, True, False]
    epochs = reporter.by_epoch()
    for epoch, event in zip((1, 2, 3), events, strict=True):
        assert {m: epochs[epoch][f"ogm/coef/{m}"] for m in ("strong", "weak")} == pytest.approx(event["data"]["coefficients"])
    # by epoch 2 the strong modality leads on this data, so it is the one slowed most
    assert epochs[2]["ogm/coef/strong"] < epochs[2]["ogm/coef/weak"] <= 1.0
    assert epochs[3]["ogm/coef/strong"] == epochs[3]["ogm/coef/weak"] == 1.0
