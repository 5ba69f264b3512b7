"""Xception (Chollet 2016, "Xception: Deep Learning with Depthwise Separable
Convolutions") without its classifier.

Entry flow (two plain convolutions, then three residual blocks of 128, 256 and 728
channels, each ending in a stride-2 max pool with a 1x1 stride-2 conv + BN shortcut),
middle flow (eight residual blocks of three 728-channel separable convolutions with an
identity shortcut) and exit flow (a 728 -> 1024 residual block, then separable
convolutions to 1536 and 2048 channels). Laid out and named as timm's
``legacy_xception`` (conv1, bn1, conv2, bn2, block1..block12 with ``rep``, ``skip``,
``skipbn``, then conv3, bn3, conv4, bn4) so that its ImageNet weights load by name.

Parameter count as Keras's ``Xception(include_top=False)``: 20,806,952 trainable plus
54,528 BN running statistics = 20,861,480.

Deviation, as in the thesis: the 1000-way classifier is replaced by global average
pooling -> optional dropout -> Dense(2) for (valence, arousal). Works from 71x71 up
(150x150 gives a 5x5 last map, 299x299 the native 10x10). BN uses Keras's eps 1e-3
(timm keeps torch's 1e-5; the ported weights were trained with 1e-3).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .layers import ImageNetBackbone, Normalize, RegressionHead, SeparableConv2d, batch_norm, keras_init_


class Block(nn.Module):
    """``reps`` x [ReLU -> SeparableConv 3x3 -> BN], an optional stride-2 max pool, and a
    shortcut (1x1 conv + BN where the shape changes, identity otherwise).

    ``grow_first`` puts the channel change in the first separable conv, otherwise in the
    last; ``start_with_relu=False`` drops the leading ReLU (block1 follows a ReLU already).
    """

    def __init__(self, in_channels: int, out_channels: int, reps: int, stride: int = 1,
                 start_with_relu: bool = True, grow_first: bool = True) -> None:
        super().__init__()
        if out_channels != in_channels or stride != 1:
            self.skip = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
            self.skipbn = batch_norm(out_channels)
        else:
            self.skip = None

        rep: list[nn.Module] = []
        for i in range(reps):
            if grow_first:
                inc, outc = (in_channels if i == 0 else out_channels), out_channels
            else:
                inc, outc = in_channels, (in_channels if i < reps - 1 else out_channels)
            # The first ReLU must not work in place: the shortcut still needs its input.
            rep += [nn.ReLU(inplace=i > 0), SeparableConv2d(inc, outc, 3, padding=1), batch_norm(outc)]
        if not start_with_relu:
            rep = rep[1:]
        if stride != 1:
            rep.append(nn.MaxPool2d(3, stride, padding=1))
        self.rep = nn.Sequential(*rep)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.skip is None else self.skipbn(self.skip(x))
        return self.rep(x) + shortcut


class Xception(ImageNetBackbone):
    imagenet_name = "xception"

    def __init__(self, *, num_outputs: int = 2, dropout: float = 0.0, pretrained: str | None = None) -> None:
        super().__init__()
        self.normalize = Normalize()  # identity unless ImageNet weights are loaded (first child: runs first)
        # Entry flow.
        self.conv1 = nn.Conv2d(3, 32, 3, stride=2, bias=False)
        self.bn1 = batch_norm(32)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(32, 64, 3, bias=False)
        self.bn2 = batch_norm(64)
        self.act2 = nn.ReLU(inplace=True)
        self.block1 = Block(64, 128, 2, stride=2, start_with_relu=False)
        self.block2 = Block(128, 256, 2, stride=2)
        self.block3 = Block(256, 728, 2, stride=2)
        # Middle flow.
        self.block4 = Block(728, 728, 3)
        self.block5 = Block(728, 728, 3)
        self.block6 = Block(728, 728, 3)
        self.block7 = Block(728, 728, 3)
        self.block8 = Block(728, 728, 3)
        self.block9 = Block(728, 728, 3)
        self.block10 = Block(728, 728, 3)
        self.block11 = Block(728, 728, 3)
        # Exit flow.
        self.block12 = Block(728, 1024, 2, stride=2, grow_first=False)
        self.conv3 = SeparableConv2d(1024, 1536, 3, padding=1)
        self.bn3 = batch_norm(1536)
        self.act3 = nn.ReLU(inplace=True)
        self.conv4 = SeparableConv2d(1536, 2048, 3, padding=1)
        self.bn4 = batch_norm(2048)
        self.act4 = nn.ReLU(inplace=True)
        self.head = RegressionHead(2048, num_outputs, dropout)
        keras_init_(self)
        self.load_pretrained(pretrained)
