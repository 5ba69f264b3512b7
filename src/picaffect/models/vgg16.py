"""VGG16 (Simonyan & Zisserman 2014, configuration D) without its classifier.

The 13 3x3 convolutions with ReLU and five 2x2 max pools, laid out as torchvision's
``vgg16().features`` (conv weights at indices 0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24,
26, 28) so that torchvision's ImageNet weights load by name: 14,714,688 parameters,
as Keras's ``VGG16(include_top=False)``.

Deviation, as in the thesis: the three fully connected layers (4096, 4096, 1000) are
replaced by global average pooling -> Dense(2) for (valence, arousal); this also
frees the network from the 224x224 input size (150x150 gives a 4x4 last map).
"""
from __future__ import annotations

import torch.nn as nn

from .layers import ImageNetBackbone, Normalize, RegressionHead, keras_init_

# Configuration D: output channels of each conv, "M" for a 2x2 max pool.
CONFIG_D: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                             512, 512, 512, "M", 512, 512, 512, "M"]


class VGG16(ImageNetBackbone):
    imagenet_name = "vgg16"

    def __init__(self, *, num_outputs: int = 2, dropout: float = 0.0, pretrained: str | None = None) -> None:
        super().__init__()
        self.normalize = Normalize()  # identity unless ImageNet weights are loaded (first child: runs first)
        layers: list[nn.Module] = []
        channels = 3
        for v in CONFIG_D:
            if v == "M":
                layers.append(nn.MaxPool2d(2, stride=2))
            else:
                layers += [nn.Conv2d(channels, v, 3, padding=1), nn.ReLU(inplace=True)]
                channels = v
        self.features = nn.Sequential(*layers)
        self.head = RegressionHead(channels, num_outputs, dropout)
        keras_init_(self)
        self.load_pretrained(pretrained)
