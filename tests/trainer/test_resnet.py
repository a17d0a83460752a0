"""The paper's ResNets: published parameter counts, torchvision's weights, and their use as encoders."""

from __future__ import annotations

import warnings

import pytest
import torch

from trainer.backbones import build_backbone
from trainer.config import ModelConfig
from trainer.datasets import ModalitySpec
from trainer.encoders import RandomInitWarning
from trainer.resnet import load_trunk_weights, resnet


def parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("name", "published"), [("resnet18", 11_689_512), ("resnet50", 25_557_032)])
def test_resnets_with_an_imagenet_head_have_the_published_parameter_counts(name, published):
    # torchvision's resnet18 and resnet50 (He et al. 2016): 11.7M and 25.6M parameters.
    assert parameters(resnet(name, in_channels=3, num_classes=1000)) == published


def test_resnet10_and_resnet6_have_the_counts_of_their_blocks():
    stem = 3 * 64 * 49 + 2 * 64  # 7x7 convolution and its batch norm
    stage1 = 2 * (64 * 64 * 9 + 2 * 64)  # two 3x3 convolutions of 64 channels with batch norms
    def stage(c_in, c_out):  # 3x3 stride 2, 3x3, batch norms, and the 1x1 shortcut with its batch norm
        return c_in * c_out * 9 + c_out * c_out * 9 + 4 * c_out + c_in * c_out + 2 * c_out
    head = 1000 + 1000
    resnet10 = stem + stage1 + stage(64, 128) + stage(128, 256) + stage(256, 512) + 512 * 1000 + head - 1000
    resnet6 = stem + stage1 + stage(64, 128) + 128 * 1000 + head - 1000
    assert (resnet10, resnet6) == (5_418_792, 442_664)
    assert parameters(resnet("resnet10", num_classes=1000)) == resnet10
    assert parameters(resnet("resnet6", num_classes=1000)) == resnet6


@pytest.mark.parametrize(("name", "side", "width"), [("resnet6", 96, 128), ("resnet10", 28, 512), ("resnet18", 64, 512), ("resnet50", 32, 2048)])
def test_a_trunk_pools_any_input_size_to_its_width(name, side, width):
    trunk = resnet(name, in_channels=1)
    assert trunk(torch.randn(2, 1, side, side)).shape == (2, width)


def test_torchvision_named_weights_load_and_a_grey_input_sums_the_stems_rgb_filters(tmp_path):
    imagenet = resnet("resnet18", in_channels=3, num_classes=1000)
    torch.save(imagenet.state_dict(), tmp_path / "resnet18.pth")
    grey = resnet("resnet18", in_channels=1)
    load_trunk_weights(grey, torch.load(tmp_path / "resnet18.pth", weights_only=True))
    assert torch.equal(grey.conv1.weight, imagenet.conv1.weight.sum(dim=1, keepdim=True))
    assert torch.equal(grey.layer4[1].bn2.running_var, imagenet.layer4[1].bn2.running_var)


def test_weights_of_another_network_are_an_error_naming_the_tensors():
    with pytest.raises(ValueError, match=r"the weights do not fit this ResNet \(missing: layer1.1.bn1.bias"):
        load_trunk_weights(resnet("resnet18"), resnet("resnet6").state_dict())


def test_a_backbone_keeps_the_trunks_features_when_embed_dim_is_their_width():
    spec = ModalitySpec("image", (3, 32, 32))
    same = build_backbone("resnet18", spec, ModelConfig(embed_dim=512), None)
    other = build_backbone("resnet18", spec, ModelConfig(embed_dim=64), None)
    assert isinstance(same.project, torch.nn.Identity)
    assert other(torch.randn(2, 3, 32, 32)).shape == (2, 64)


def test_missing_weights_leave_the_encoder_random_with_a_warning(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build_backbone("resnet6", ModalitySpec("image", (3, 32, 32)), ModelConfig(), str(tmp_path / "absent.pth"))
    assert [w.category for w in caught] == [RandomInitWarning]
    assert "resnet6 weights" in str(caught[0].message) and "starts from random weights" in str(caught[0].message)


def test_local_weights_resolve_under_the_data_directory(tmp_path, monkeypatch):
    weights = resnet("resnet6", num_classes=1000)
    (tmp_path / "weights").mkdir()
    torch.save(weights.state_dict(), tmp_path / "weights" / "r6.pth")
    monkeypatch.setenv("MILES_DATA_DIR", str(tmp_path))
    encoder = build_backbone("resnet6", ModalitySpec("image", (3, 32, 32)), ModelConfig(embed_dim=128), "weights/r6.pth")
    assert torch.equal(encoder.trunk.layer2[0].conv1.weight, weights.layer2[0].conv1.weight)
