"""Task metrics, hand-computed."""

from __future__ import annotations

import pytest
import torch

from trainer.metrics import HeadMeters, macro_f1


def test_accuracy_and_loss_accumulate_over_batches_for_every_head():
    meters = HeadMeters(["fused", "a"], "single_label", 3, torch.device("cpu"))
    right, wrong = torch.tensor([[2.0, 0, 0], [0, 0, 2.0]]), torch.tensor([[0, 2.0, 0], [0, 2.0, 0]])
    meters.update([right, wrong], torch.tensor([0, 2]), [torch.tensor(1.0), torch.tensor(3.0)])
    meters.update([torch.tensor([[0, 2.0, 0]]), torch.tensor([[0, 0, 2.0]])], torch.tensor([2]), [torch.tensor(4.0), torch.tensor(0.0)])
    results = meters.results()
    assert results["fused"] == pytest.approx((2 / 3, (1.0 * 2 + 4.0) / 3))
    assert results["a"] == pytest.approx((1 / 3, (3.0 * 2 + 0.0) / 3))


def test_macro_f1_is_the_mean_of_per_class_f1_with_zero_for_empty_classes():
    # class 0: TP 2 FP 1 FN 0 -> 4/5; class 1: TP 0 FP 0 FN 1 -> 0; class 2: nothing -> 0
    assert macro_f1(torch.tensor([2.0, 0, 0]), torch.tensor([1.0, 0, 0]), torch.tensor([0.0, 1, 0])) == pytest.approx(0.8 / 3)


def test_multilabel_meter_thresholds_logits_at_zero():
    meters = HeadMeters(["fused"], "multilabel", 2, torch.device("cpu"))
    logits = torch.tensor([[1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    labels = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    meters.update([logits], labels)
    # class 0: TP 2 -> F1 1; class 1: TP 1, FP 1 -> 2/3
    assert meters.results()["fused"][0] == pytest.approx((1 + 2 / 3) / 2)
