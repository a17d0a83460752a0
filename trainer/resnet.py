"""The paper's ResNets in plain PyTorch: ResNet-6, -10, -18 and -50.

The layout and the parameter names follow torchvision's ``resnet18`` and
``resnet50`` (He et al., CVPR 2016): a 7x7 stride-2 stem with max pooling,
then stages of basic blocks (two 3x3 convolutions) or bottleneck blocks (1x1,
3x3, 1x1 with four times the width), each stage after the first halving the
resolution and doubling the width, then global average pooling. Because the
names match, torchvision's published ImageNet checkpoints load as they are.

- ResNet-18: basic blocks (2, 2, 2, 2); 11,689,512 parameters with an ImageNet
  head, as published.
- ResNet-50: bottleneck blocks (3, 4, 6, 3); 25,557,032 parameters with an
  ImageNet head, as published.
- ResNet-10: basic blocks (1, 1, 1, 1), the usual reading of the name
  (1 stem convolution + 4 blocks x 2 + the classifier = 10 layers).
- ResNet-6: basic blocks (1, 1), two stages of 64 and 128 channels
  **(project choice: the paper names it without defining it; 1 stem
  convolution + 2 blocks x 2 + the classifier = 6 layers)**.

The network takes any number of input channels (1 for spectrograms): when
pretrained weights meet a one-channel input, the stem's filters are summed
over their RGB channels, which keeps each filter's response to a grey image.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

# torchvision's ImageNet checkpoints (IMAGENET1K_V1), fetched only when a user asks for "imagenet".
DOWNLOAD_TIMEOUT = 60  # seconds without a byte before a download of weights gives up
IMAGENET_WEIGHTS = {
    "resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    "resnet50": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
}


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = _downsample(in_channels, width, stride)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (with the stride, as torchvision's "ResNet v1.5"), 1x1 expand by four."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(in_channels, out_channels, stride)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


def _downsample(in_channels: int, out_channels: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))


ARCHITECTURES: dict[str, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, ...]]] = {
    "resnet6": (BasicBlock, (1, 1)),
    "resnet10": (BasicBlock, (1, 1, 1, 1)),
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
}


class ResNet(nn.Module):
    """A ResNet trunk; with ``num_classes`` also its linear classifier ``fc`` (ImageNet: 1000)."""

    def __init__(
        self, block: type[BasicBlock] | type[Bottleneck], stages: Sequence[int], in_channels: int = 3,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        channels = 64
        for index, blocks in enumerate(stages):
            width = 64 * 2**index
            layer = []
            for position in range(blocks):
                stride = 2 if index > 0 and position == 0 else 1
                layer.append(block(channels, width, stride))
                channels = width * block.expansion
            self.add_module(f"layer{index + 1}", nn.Sequential(*layer))
        self.stages = len(stages)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.out_features = channels
        self.fc = nn.Linear(channels, num_classes) if num_classes else None
        for module in self.modules():  # torchvision's initialisation
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def features(self, x: Tensor) -> Tensor:
        """The pooled features, [batch, out_features]."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for index in range(self.stages):
            x = getattr(self, f"layer{index + 1}")(x)
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: Tensor) -> Tensor:
        pooled = self.features(x)
        return pooled if self.fc is None else self.fc(pooled)


def resnet(name: str, in_channels: int = 3, num_classes: int | None = None) -> ResNet:
    """``resnet("resnet18", in_channels=1)``: one of `ARCHITECTURES`, randomly initialised."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown ResNet {name!r}; available: {', '.join(ARCHITECTURES)}")
    block, stages = ARCHITECTURES[name]
    return ResNet(block, stages, in_channels, num_classes)


def read_weights(name: str, source: str) -> Mapping[str, Tensor]:
    """A state dict from a local file, or torchvision's ImageNet checkpoint of ``name`` when ``source``
    is ``"imagenet"`` (downloaded once into torch's cache; raises OSError when it cannot be had)."""
    if source == "imagenet":
        if name not in IMAGENET_WEIGHTS:
            raise ValueError(f"there are no published ImageNet weights for {name}; give a local file instead")
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT)  # torch.hub's urlopen has none: a silent network would hang the run
        try:
            return torch.hub.load_state_dict_from_url(IMAGENET_WEIGHTS[name], map_location="cpu", progress=False)
        except Exception as error:  # urllib's errors, a timeout, a partial download, a read-only cache
            raise OSError(f"cannot download the ImageNet weights of {name}: {error}") from error
        finally:
            socket.setdefaulttimeout(previous)
    path = Path(source).expanduser()
    if not path.is_file():
        raise OSError(f"no weights file at {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state


def load_trunk_weights(model: ResNet, state: Mapping[str, Tensor]) -> None:
    """Load a checkpoint's trunk into ``model`` (its classifier is left out), adapting the stem to the
    model's input channels. Raises ValueError naming the tensors that do not fit."""
    own = model.state_dict()
    trunk = {k: v for k, v in state.items() if not k.startswith("fc.")}
    stem = trunk.get("conv1.weight")
    if stem is not None and stem.shape[1] != own["conv1.weight"].shape[1]:
        if own["conv1.weight"].shape[1] != 1:
            raise ValueError(f"the weights' stem takes {stem.shape[1]} channels; this input has {own['conv1.weight'].shape[1]}")
        trunk["conv1.weight"] = stem.sum(dim=1, keepdim=True)
    missing = sorted(k for k in own if k not in trunk and not k.startswith("fc."))
    unexpected = sorted(k for k in trunk if k not in own)
    wrong = sorted(k for k in trunk if k in own and trunk[k].shape != own[k].shape)
    if missing or unexpected or wrong:
        parts = [f"{label}: {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''}"
                 for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys]
        raise ValueError("the weights do not fit this ResNet (" + "; ".join(parts) + ")")
    model.load_state_dict(trunk, strict=False)
