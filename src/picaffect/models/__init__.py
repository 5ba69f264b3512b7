"""Model registry: ``create(name, **options)`` returns an ``nn.Module`` whose
output is (N, 2) = (valence, arousal).

One architecture per file; each module exposes a class and is imported only when
asked for, so that ``import picaffect`` stays quick.
"""
from __future__ import annotations

from importlib import import_module

import torch.nn as nn

_REGISTRY: dict[str, str] = {
    "emosepar": "emosepar:Emosepar",
    "vgg16": "vgg16:VGG16",
    "inception_v3": "inception_v3:InceptionV3",
    "xception": "xception:Xception",
    "efficientnet_lite0": "efficientnet_lite0:EfficientNetLite0",
}


def names() -> list[str]:
    return list(_REGISTRY)


def model_class(name: str) -> type[nn.Module]:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(_REGISTRY)}")
    module, cls = _REGISTRY[name].split(":")
    return getattr(import_module(f"{__name__}.{module}"), cls)


def create(name: str, **options) -> nn.Module:
    """Build a model by registry name; ``options`` go to its constructor."""
    return model_class(name)(**options)
