"""The smallest picture a network can take, found without weights or arithmetic.

A network of 'valid' convolutions and poolings (Emosepar, the thesis's Xception
and Inception v3) shrinks its input at every stage, and below some side the
last stage has nothing left to convolve: torch then stops deep inside the first
forward pass with "Calculated padded input size per channel: (1 x 1). Kernel
size: (3 x 3)". Building the network on torch's meta device (tensors with shapes
and no storage) and running it there checks every shape in milliseconds, so the
side is found before any work starts, for every architecture alike.
"""
from __future__ import annotations

from typing import Any

import torch

# The side up to which the search looks; a network that fails even there fails for another reason.
LARGEST = 2048


def fits(model: torch.nn.Module, side: int) -> bool:
    """Whether ``model`` (built on the meta device) takes a (1, 3, side, side) picture."""
    try:
        with torch.no_grad():
            model(torch.empty(1, 3, side, side, device="meta"))
    except (RuntimeError, ValueError, IndexError):  # torch's shape errors, however each operator words them
        return False
    return True


def smallest_input(architecture: str, options: dict[str, Any] | None = None, side: int | None = None) -> int | None:
    """The smallest square side ``architecture`` (with its constructor ``options``) takes.

    With ``side``: None when pictures of that side fit (one shape check), else the
    smallest side that does. None too when it cannot be told this way: a hub model
    (it brings its own input size) or a network that does not run on the meta device.
    """
    from . import create, resolve

    name, options = resolve(architecture, options)
    if name == "hub":
        return None
    with torch.device("meta"):
        model = create(name, **{**options, "pretrained": None}).eval()
    if side is not None and fits(model, side):
        return None
    if not fits(model, LARGEST):
        return None
    low, high = side or 0, LARGEST  # low does not fit (or is 0), high fits
    while high - low > 1:
        middle = (low + high) // 2
        if fits(model, middle):
            high = middle
        else:
            low = middle
    return high
