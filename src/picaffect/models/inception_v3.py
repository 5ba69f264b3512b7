"""Inception v3 (Szegedy et al. 2016, "Rethinking the Inception Architecture") without
its classifier.

The stem and the eleven Inception blocks Mixed_5b..Mixed_7c exactly as torchvision's
``inception_v3`` (and Keras's ``InceptionV3``), with torchvision's module names so that
its ImageNet weights load by name. Every convolution is a ``ConvBNAct`` (conv without
bias -> BN with eps 1e-3 -> ReLU).

Deviations, as in the thesis: no auxiliary classifier and no 1000-way classifier;
global average pooling -> optional dropout -> Dense(2) for (valence, arousal). Works
from 75x75 up (150x150 gives a 3x3 last map, 299x299 the native 8x8).

Parameter count: 21,785,568 trainable. Keras's ``InceptionV3(include_top=False)``
reports 21,768,352 trainable because its batch norms have no scale (gamma); ours
keep torchvision's gamma, 17,216 more values (fixed at 1 in the ported weights).
Pooling in the blocks is torchvision's ``avg_pool2d(3, 1, 1)``, which counts the
zero padding in the average (Keras does not); kept for weight compatibility.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import ConvBNAct, ImageNetBackbone, Normalize, RegressionHead, keras_init_


def _avg_pool(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1)


class InceptionA(nn.Module):
    """35x35 block (Mixed_5b..5d): 1x1, 5x5, double 3x3 and pool branches."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = ConvBNAct(in_channels, 64, 1)
        self.branch5x5_1 = ConvBNAct(in_channels, 48, 1)
        self.branch5x5_2 = ConvBNAct(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBNAct(in_channels, 64, 1)
        self.branch3x3dbl_2 = ConvBNAct(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBNAct(96, 96, 3, padding=1)
        self.branch_pool = ConvBNAct(in_channels, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_avg_pool(x)),
        ], 1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17 (Mixed_6a)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = ConvBNAct(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBNAct(in_channels, 64, 1)
        self.branch3x3dbl_2 = ConvBNAct(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBNAct(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], 1)


class InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (Mixed_6b..6e)."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = ConvBNAct(in_channels, 192, 1)
        self.branch7x7_1 = ConvBNAct(in_channels, c7, 1)
        self.branch7x7_2 = ConvBNAct(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = ConvBNAct(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = ConvBNAct(in_channels, c7, 1)
        self.branch7x7dbl_2 = ConvBNAct(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = ConvBNAct(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = ConvBNAct(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = ConvBNAct(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = ConvBNAct(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        b7dbl = self.branch7x7dbl_1(x)
        for conv in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            b7dbl = conv(b7dbl)
        return torch.cat([self.branch1x1(x), b7, b7dbl, self.branch_pool(_avg_pool(x))], 1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8 (Mixed_7a)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = ConvBNAct(in_channels, 192, 1)
        self.branch3x3_2 = ConvBNAct(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBNAct(in_channels, 192, 1)
        self.branch7x7x3_2 = ConvBNAct(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBNAct(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBNAct(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = x
        for conv in (self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = conv(b7)
        return torch.cat([
            self.branch3x3_2(self.branch3x3_1(x)),
            b7,
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], 1)


class InceptionE(nn.Module):
    """8x8 block with expanded 1x3 / 3x1 filter banks (Mixed_7b, 7c)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch1x1 = ConvBNAct(in_channels, 320, 1)
        self.branch3x3_1 = ConvBNAct(in_channels, 384, 1)
        self.branch3x3_2a = ConvBNAct(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBNAct(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBNAct(in_channels, 448, 1)
        self.branch3x3dbl_2 = ConvBNAct(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBNAct(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBNAct(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvBNAct(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        b3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        b3dbl = torch.cat([self.branch3x3dbl_3a(b3dbl), self.branch3x3dbl_3b(b3dbl)], 1)
        return torch.cat([self.branch1x1(x), b3, b3dbl, self.branch_pool(_avg_pool(x))], 1)


class InceptionV3(ImageNetBackbone):
    imagenet_name = "inception_v3"

    def __init__(self, *, num_outputs: int = 2, dropout: float = 0.0, pretrained: str | None = None) -> None:
        super().__init__()
        self.normalize = Normalize()  # identity unless ImageNet weights are loaded (first child: runs first)
        self.Conv2d_1a_3x3 = ConvBNAct(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBNAct(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBNAct(32, 64, 3, padding=1)
        self.maxpool1 = nn.MaxPool2d(3, stride=2)
        self.Conv2d_3b_1x1 = ConvBNAct(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBNAct(80, 192, 3)
        self.maxpool2 = nn.MaxPool2d(3, stride=2)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048)
        self.head = RegressionHead(2048, num_outputs, dropout)
        keras_init_(self)
        self.load_pretrained(pretrained)
