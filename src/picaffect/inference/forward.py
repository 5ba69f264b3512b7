"""One batched forward pass, with one numerics policy, for every scorer.

``predict``, ``evaluate``, the per-epoch test scoring of training and the ridge
probe's feature extraction all come through here, so a model scores the same
pictures with the same numbers wherever it is used: float32 on every device (no
autocast at inference), channels-last memory, and the optional mirror
test-time augmentation (the mean over the picture and its left-right mirror).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .checkpoint import ModelSpec


def to_input(images: torch.Tensor, spec: ModelSpec, device: torch.device) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> the network's float input: scaled pixels, ``spec.size`` square, channels-last."""
    x = images.to(device, non_blocking=True).float().mul_(spec.input_scale)
    if x.shape[-1] != spec.size or x.shape[-2] != spec.size:
        x = F.interpolate(x, size=(spec.size, spec.size), mode="bilinear", antialias=True, align_corners=False)
    return x.contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def outputs(model: torch.nn.Module, x: torch.Tensor, tta: bool = False) -> torch.Tensor:
    """The network's raw outputs in float32, averaged with the mirror image when ``tta``."""
    y = model(x).float()
    if tta:
        y = (y + model(x.flip(-1)).float()) / 2
    return y


@torch.no_grad()
def ratings(model: torch.nn.Module, images: torch.Tensor, spec: ModelSpec, device: torch.device,
            tta: bool = False) -> torch.Tensor:
    """uint8 pictures (N, 3, H, W) -> (N, 2) (valence, arousal) on 1..9, unclipped, on the CPU."""
    return spec.decode(outputs(model, to_input(images, spec, device), tta)).cpu()


@torch.no_grad()
def pooled_features(model: torch.nn.Module, images: torch.Tensor, spec: ModelSpec, device: torch.device,
                    tta: bool = True) -> torch.Tensor:
    """(N, width) pooled features before the head's linear layer (what a linear probe fits on)."""
    x = to_input(images, spec, device)
    f = model.forward_head(model.forward_features(x), pre_logits=True).float()
    if tta:
        f = (f + model.forward_head(model.forward_features(x.flip(-1)), pre_logits=True).float()) / 2
    return f.cpu()


class WithDifficulty(torch.nn.Module):
    """A picaffect network plus its calibration's error head: pictures -> (outputs (N, 2), difficulty (N, 2)).

    The difficulty is exp(pooled features @ weight.T + bias) (``intervals.py``), on the
    same pooled features the network's own head reads, so it costs one small
    matrix product: the fast default path keeps its speed. The ONNX export traces this
    module, which gives the file its second output, ``difficulty``.
    """

    def __init__(self, model: torch.nn.Module, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("weight", weight.detach().float().clone())
        self.register_buffer("bias", bias.detach().float().clone())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.model.forward_head(self.model.forward_features(x), pre_logits=True)
        outputs = self.model.head.readout(pooled)
        return outputs, torch.exp(torch.nn.functional.linear(pooled.float(), self.weight, self.bias))


@torch.no_grad()
def outputs_and_difficulty(model: WithDifficulty, x: torch.Tensor, tta: bool = False
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """``outputs`` with the error head's difficulty beside it, both averaged with the mirror image when ``tta``."""
    y, d = model(x)
    y, d = y.float(), d.float()
    if tta:
        y2, d2 = model(x.flip(-1))
        y, d = (y + y2.float()) / 2, (d + d2.float()) / 2
    return y, d
