"""Several EfficientNet-Lite backbones at several sizes, read by one head (linear, or an RBF kernel ridge).

Issue 17's search (``results/accuracy/search.md``) found that no single frozen
backbone reaches the accuracy of an ensemble of ridge probes: Lite1 at 240 and
280 px and Lite2 at 300 px, each on the pooled features of every resolution stage,
beat the best single probe by about 0.02 valence r and 0.03 arousal r. A mean of
linear probes is itself linear in their concatenated features, so the ensemble is
one model: every member's ``forward_features`` (``features="stages"``), side by
side, and one ``RegressionHead`` over the concatenation, which the ridge recipe
fits as it fits any probe. It is an ordinary picaffect model: one checkpoint, one
ONNX graph, ``evaluate``, ``calibrate`` and ``predict`` read it like the others.
The shipped ``accurate`` reads the same features with an RBF kernel ridge instead
(``readout="rbf"``, ``kernel_head.py``), which the readout search found more accurate.

The picture comes in at the largest member size (the model's input size) and is
resized inside the network for the smaller members (bilinear, antialiased), so one
decoded picture feeds every member. The resize is written as two matrix products
with fixed matrices (antialiased bilinear resizing is separable and linear): the
same numbers as ``F.interpolate(..., antialias=True)``, which ONNX cannot export. Members of the same variant share one
backbone (its weights are stored once): Lite1 runs at 240 and at 280 px.

It costs what its members cost together, about six times the default (Lite0 at
224 px), which is why it ships as the second named model, ``accurate``, and the
fast default stays Lite0.
"""
from __future__ import annotations

from os import PathLike
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import UsageError
from ..core.names import check
from .efficientnet_lite import EfficientNetLite1, EfficientNetLite2, EfficientNetLite0, EfficientNetLite
from .kernel_head import KernelRidgeHead
from .layers import RegressionHead, RegressionModel

VARIANT_CLASSES: dict[str, type[EfficientNetLite]] = {
    "lite0": EfficientNetLite0, "lite1": EfficientNetLite1, "lite2": EfficientNetLite2}
# Issue 17's best three probes (chosen on the group-split validation rows).
DEFAULT_MEMBERS = "lite1@240,lite1@280,lite2@300"
READOUTS = ("linear", "rbf")


def parse_members(members: str) -> list[tuple[str, int]]:
    """``"lite1@240,lite2@300"`` -> [("lite1", 240), ("lite2", 300)], checked."""
    parsed = []
    for item in (m.strip() for m in members.split(",") if m.strip()):
        variant, _, size = item.partition("@")
        if variant not in VARIANT_CLASSES or not size.isdigit() or int(size) < 32:
            raise UsageError(f"ensemble member {item!r}: write VARIANT@SIZE with VARIANT one of "
                             f"{', '.join(VARIANT_CLASSES)} and SIZE a side of at least 32 px (e.g. lite1@240)")
        parsed.append((variant, int(size)))
    if not parsed:
        raise UsageError("an ensemble needs at least one member (e.g. members='lite1@240,lite2@300')")
    if len(set(parsed)) != len(parsed):
        raise UsageError(f"ensemble members repeat: {members}")
    return parsed


def resize_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in): row j holds the weights of antialiased bilinear resizing for output pixel j."""
    eye = torch.eye(n_in).view(1, 1, n_in, n_in)
    return F.interpolate(eye, size=(n_in, n_out), mode="bilinear", align_corners=False, antialias=True)[0, 0].T


class LiteEnsemble(RegressionModel):
    """EfficientNet-Lite backbones at their own sizes, their stage features concatenated, one linear head.

    Options (keyword-only, named as for every picaffect model):
      members: comma-separated ``VARIANT@SIZE`` (variants lite0, lite1, lite2);
        the input size of the model is the largest SIZE.
      num_outputs, dropout: the head's, as for every model (dropout 0: it is fitted by ridge).
      pretrained: ``"imagenet"`` (each backbone's shipped ImageNet weights) or None.
      readout: ``"linear"`` (a ``RegressionHead``) or ``"rbf"`` (a ``KernelRidgeHead`` of
        ``support`` training rows in ``components`` principal components): what the ridge
        recipe fitted, recorded in the checkpoint so that the head is rebuilt with its shapes.
    """

    def __init__(self, *, members: str = DEFAULT_MEMBERS, num_outputs: int = 2, dropout: float = 0.0,
                 pretrained: str | PathLike | None = "imagenet", readout: str = "linear", support: int = 0,
                 components: int = 256) -> None:
        super().__init__()
        if pretrained is not None and str(pretrained) != "imagenet":
            raise UsageError(f"lite_ensemble: pretrained must be 'imagenet' or None, not {str(pretrained)!r} (each "
                             f"member loads its own variant's weights; a trained ensemble is a checkpoint)")
        self.members = parse_members(members)
        self.size = max(size for _, size in self.members)
        backbones = {}
        for variant, _ in self.members:
            if variant not in backbones:
                backbones[variant] = VARIANT_CLASSES[variant](pretrained=pretrained, features="stages", freeze="all",
                                                              dropout=0.0)
        self.backbones = nn.ModuleDict(backbones)
        width = sum(self.backbones[v].head.width for v, _ in self.members)
        self.head: RegressionHead | KernelRidgeHead
        if check("ensemble readout", readout, READOUTS) == "rbf":
            if support < 1 or components < 1:
                raise UsageError(f"an rbf readout needs support >= 1 and components >= 1, not {support} and "
                                 f"{components} (they are the fitted head's shapes, written by the ridge recipe)")
            self.head = KernelRidgeHead(width, support, components, num_outputs)
        else:
            self.head = RegressionHead(width, num_outputs, dropout)
            nn.init.normal_(self.head.fc.weight, std=0.01)
            nn.init.zeros_(self.head.fc.bias)
        for _, size in self.members:  # fixed resizing matrices from the input size (not saved: rebuilt here)
            if size != self.size:
                self.register_buffer(f"resize_{size}", resize_matrix(self.size, size), persistent=False)

    def use_kernel_readout(self, head: KernelRidgeHead) -> None:
        """Replace the head by a fitted kernel readout (``training/kernel_probe.py``)."""
        if head.width != self.head.width:
            raise ValueError(f"a kernel head over {head.width} features cannot read this ensemble's {self.head.width}")
        self.head = head.to(next(self.parameters()).device)

    def checkpoint_arguments(self) -> dict[str, Any]:
        """The readout's kind and shapes, which rebuilding the model from a checkpoint needs."""
        if isinstance(self.head, KernelRidgeHead):
            return {"readout": "rbf", "support": self.head.support, "components": self.head.components}
        return {"readout": "linear"}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, width, 1, 1): every member's pooled stage features, in member order."""
        pooled = []
        for variant, size in self.members:
            pooled.append(self.backbones[variant].forward_features(self._resized(x, size)))
        return torch.cat(pooled, 1)

    def _resized(self, x: torch.Tensor, size: int) -> torch.Tensor:
        if x.shape[-2:] == (size, size):
            return x
        if x.shape[-2:] == (self.size, self.size):
            matrix = getattr(self, f"resize_{size}").to(x.dtype)
            return torch.matmul(torch.matmul(matrix, x), matrix.T)
        return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)

    @torch.no_grad()
    def fuse_for_inference(self) -> "LiteEnsemble":
        """Fold every member's batch norms into its convolutions (inference only afterwards)."""
        for backbone in self.backbones.values():
            backbone.fuse_for_inference()
        return self.eval()
