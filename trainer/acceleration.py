"""CUDA speed-ups of a run: mixed precision and the channels-last memory format, off on CPU.

- Mixed precision: forward passes and losses run under ``torch.autocast``, in
  bfloat16 where the GPU has it (no loss scaling needed) and in float16 with a
  ``GradScaler`` elsewhere. Gradients are unscaled before the strategy sees them,
  so gradient modulation (OGM) works on true gradients, and a step whose
  gradients overflowed is skipped by the scaler.
- Channels-last: the model's convolutions and every 2-D input batch use the
  NHWC layout that tensor cores prefer.
Both are requested by ``performance`` in the run's spec and only ever apply on CUDA.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import torch
from torch import Tensor, nn


class Acceleration:
    def __init__(self, device: torch.device, *, mixed_precision: bool, channels_last: bool) -> None:
        cuda = device.type == "cuda"
        self.mixed_precision = mixed_precision and cuda
        self.channels_last = channels_last and cuda
        self.dtype = torch.bfloat16 if self.mixed_precision and torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.mixed_precision and self.dtype == torch.float16)

    def describe(self) -> str:
        parts = [f"mixed precision ({str(self.dtype).removeprefix('torch.')})" if self.mixed_precision else "",
                 "channels-last" if self.channels_last else ""]
        return ", ".join(p for p in parts if p) or "full precision"

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def inputs(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The batch with its 2-D float inputs in channels-last layout (when on)."""
        if not self.channels_last:
            return dict(batch)
        return {
            m: x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 and x.is_floating_point() else x
            for m, x in batch.items()
        }

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        if not self.mixed_precision:
            yield
            return
        with torch.autocast(device_type="cuda", dtype=self.dtype):
            yield

    def backward(self, loss: Tensor, optimizer: torch.optim.Optimizer) -> None:
        """``loss.backward()``, scaled when float16 needs it, leaving true (unscaled) gradients."""
        self.scaler.scale(loss).backward()
        if self.scaler.is_enabled():
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict:
        return self.scaler.state_dict() if self.scaler.is_enabled() else {}

    def load_state_dict(self, state: dict) -> None:
        if state and self.scaler.is_enabled():
            self.scaler.load_state_dict(state)
