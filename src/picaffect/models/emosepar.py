"""Emosepar: the thesis's own small network (Noguera 2018, appendix figure 3).

A stem convolution followed by three blocks of two separable convolutions, in the
spirit of Xception and of Arriaga et al.'s mini-Xception, all with 'valid' padding:

    Conv2D(32, 3x3, no bias) -> BN -> ReLU -> MaxPool(3, stride 2)
    3 x [SepConv(F, 3x3, bias) -> BN -> ReLU -> SepConv(F, 3x3, bias) -> BN],
        F = 128, 256, 512, MaxPool(3, stride 2) between the blocks
    GlobalAveragePooling -> Dropout(0.5) -> Dense(2)

At 150x150 the spatial sizes are 148, 73, 71, 69, 34, 32, 30, 14, 12, 10.
531,138 trainable parameters and 3,648 BN running statistics (534,786 in Keras's count).
No deviation from the thesis: the block ends on BN without ReLU, as in the figure.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..core.errors import WeightsError
from .layers import RegressionHead, RegressionModel, SeparableConv2d, batch_norm, keras_init_
from .weights import load_weights


class Emosepar(RegressionModel):
    """The thesis's network; ``pretrained`` may name a state dict of an earlier Emosepar
    (there are no ImageNet weights for it)."""

    def __init__(self, *, num_outputs: int = 2, dropout: float = 0.5, pretrained: str | None = None) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(3, 32, 3, bias=False), batch_norm(32), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2),
        ]
        channels = 32
        for i, width in enumerate((128, 256, 512)):
            if i > 0:
                layers.append(nn.MaxPool2d(3, stride=2))
            layers += [
                SeparableConv2d(channels, width, 3, bias=True), batch_norm(width), nn.ReLU(inplace=True),
                SeparableConv2d(width, width, 3, bias=True), batch_norm(width),
            ]
            channels = width
        self.body = nn.Sequential(*layers)
        self.head = RegressionHead(channels, num_outputs, dropout)
        keras_init_(self)
        if pretrained is not None:
            if str(pretrained) == "imagenet":
                raise WeightsError("Emosepar has no ImageNet weights: it is trained from scratch (pretrained=None)")
            load_weights(self, pretrained)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
