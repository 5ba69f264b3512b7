"""Any image backbone of the Hugging Face hub, through ``transformers`` (the ``hub`` extra).

``picaffect train --model hub:ORG/NAME --recipe ridge ...`` fits a ridge probe on the
pooled features of ``ORG/NAME`` (``hub:/a/local/folder`` works too: anything
``from_pretrained`` reads). For users who are online; the first use downloads the
weights into the Hugging Face cache (``HF_HOME``, by default ``~/.cache/huggingface``).

What is taken from the hub:
  * the network: ``AutoModel``; for two-tower models (CLIP, SigLIP, ...) only the
    vision tower (``CLIPVisionModel``, ``SiglipVisionModel``: the class that
    ``AutoModel`` maps the ``vision_config`` to);
  * its preprocessing: ``AutoImageProcessor``'s input side (``crop_size``, else
    ``size``) and per-channel mean and std. Pictures are squashed to that side (as
    every picaffect model is fed) rather than resized and centre-cropped, so that
    no part of a picture is cut off; the pixels are scaled by 1/255 and normalised
    inside the model with the processor's mean and std.

The pooled feature vector (what the ridge probe fits and the head maps to valence
and arousal) is the model's ``pooler_output`` where it has one (CLIP and DINOv2: the
class token after the last layer norm; SigLIP: its attention-pooling head; ConvNeXt:
the layer-normed spatial mean), else the mean of ``last_hidden_state`` over tokens or
positions; ``pooling="mean"`` always takes that mean.

A checkpoint records what rebuilding needs with no download: the model's
``config`` (``to_dict()``) and the preprocessing numbers are constructor arguments
(``spec.arguments``), and the weights are in the checkpoint; ``pretrained=None``
with a ``config`` builds the network from it offline.

Models that did best on affect ratings of pictures (Conwell et al., PNAS 2025,
OASIS, frozen features + ridge over about 180 models): CLIP ViT-L/14
(``openai/clip-vit-large-patch14``: r about 0.91 valence, 0.87 arousal), other
CLIP / language-aligned models next, then ImageNet-21k ConvNeXt-L
(``facebook/convnext-large-224-22k-1k``: 0.825 / 0.798). Self-supervised DINOv2
(``facebook/dinov2-base``) and SigLIP (``google/siglip-base-patch16-224``) work the
same way.
"""
from __future__ import annotations

from os import PathLike
from typing import Any

import torch
import torch.nn as nn

from ..core.errors import UsageError, WeightsError
from .layers import Normalize, RegressionHead, RegressionModel

POOLINGS = ("auto", "mean")
IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
DEFAULT_SIZE = 224


def _transformers():
    try:
        import transformers
    except ImportError as e:
        raise UsageError("hub models need the transformers package: pip install 'picaffect[hub]'") from e
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    return transformers


def _vision_config(config):
    """The vision tower's config of a two-tower model (CLIP, SigLIP, ...), else the config itself."""
    return getattr(config, "vision_config", None) or config


def _model_class(config):
    transformers = _transformers()
    try:
        return transformers.AutoModel._model_mapping[type(config)]
    except KeyError:
        raise UsageError(f"transformers has no AutoModel for a {type(config).__name__}") from None


def _config_from_dict(d: dict[str, Any]):
    transformers = _transformers()
    d = dict(d)
    model_type = d.pop("model_type", None)
    if not model_type:
        raise UsageError("a hub model's stored config has no model_type")
    return transformers.AutoConfig.for_model(model_type, **d)


def _preprocessing(name_or_path: str, config) -> dict[str, Any]:
    """{"size": side, "mean": [3], "std": [3]} from the model's image processor (or sensible defaults)."""
    transformers = _transformers()
    try:
        processor = transformers.AutoImageProcessor.from_pretrained(name_or_path)
    except (OSError, ValueError, KeyError):
        processor = None
    size = None
    if processor is not None:
        for attr in ("crop_size", "size"):
            value = getattr(processor, attr, None)
            if isinstance(value, dict):
                value = value.get("height") or value.get("shortest_edge")
            if isinstance(value, int) and value > 0:
                size = value
                break
    size = size or getattr(config, "image_size", None) or DEFAULT_SIZE
    mean = list(getattr(processor, "image_mean", None) or IMAGENET_MEAN_STD[0])
    std = list(getattr(processor, "image_std", None) or IMAGENET_MEAN_STD[1])
    return {"size": int(size), "mean": [float(v) for v in mean], "std": [float(v) for v in std]}


class HubBackbone(RegressionModel):
    """A Hugging Face image model (a vision tower) under our regression head.

    Options (keyword-only, named as for every picaffect model):
      name_or_path: a hub id (``ORG/NAME``) or a local folder written by ``save_pretrained``.
      num_outputs, dropout: the head's width and dropout.
      pretrained: ``"hub"`` (the default; ``"imagenet"`` means the same) loads the
        hub's weights with ``from_pretrained``; None builds the network from
        ``config`` (or from the hub's config) with random weights, which is what
        reading a checkpoint does before loading its own weights; a path loads a
        state dict saved from this model.
      config: the network's config as a dict (``to_dict()``); taken from the hub when None.
      preprocessing: {"size", "mean", "std"}; taken from the hub's image processor when None.
      pooling: "auto" (``pooler_output`` where there is one) or "mean" (mean of the last hidden states).
      freeze: "none" or "all" (only the head trains).
    """

    def __init__(self, *, name_or_path: str, num_outputs: int = 2, dropout: float = 0.0,
                 pretrained: str | PathLike | None = "hub", config: dict[str, Any] | None = None,
                 preprocessing: dict[str, Any] | None = None, pooling: str = "auto", freeze: str = "none") -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise UsageError(f"pooling must be one of {', '.join(POOLINGS)}; got {pooling!r}")
        if freeze not in ("none", "all"):
            raise UsageError(f"freeze must be 'none' or 'all' for hub models; got {freeze!r}")
        transformers = _transformers()
        self.name_or_path = str(name_or_path)
        self.pooling = pooling
        from_hub = pretrained is not None and str(pretrained) in ("hub", "imagenet")
        try:
            if config is not None:
                hub_config = _config_from_dict(config)
            else:
                hub_config = _vision_config(transformers.AutoConfig.from_pretrained(self.name_or_path))
            cls = _model_class(hub_config)
            if from_hub:
                # e.g. CLIPVisionModel.from_pretrained on a whole CLIP checkpoint keeps the vision tower.
                self.backbone = cls.from_pretrained(self.name_or_path, config=hub_config)
            else:
                self.backbone = cls(hub_config)
        except OSError as e:
            raise WeightsError(f"hub model {self.name_or_path}: {str(e).splitlines()[0]}") from None
        self.config_dict = self.backbone.config.to_dict()
        self.preprocessing = dict(preprocessing or _preprocessing(self.name_or_path, hub_config))
        self.input_size = int(self.preprocessing["size"])
        self.normalize = Normalize(tuple(self.preprocessing["mean"]), tuple(self.preprocessing["std"]))
        self.width = self._probe_width()
        self.head = RegressionHead(self.width, num_outputs, dropout)
        nn.init.normal_(self.head.fc.weight, std=0.01)
        nn.init.zeros_(self.head.fc.bias)
        if pretrained is not None and not from_hub:
            from .weights import load_weights
            load_weights(self, pretrained)
        self.freeze = freeze
        if freeze == "all":
            self.backbone.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> "HubBackbone":
        super().train(mode)
        if getattr(self, "freeze", "none") == "all":
            self.backbone.eval()
        return self

    def checkpoint_arguments(self) -> dict[str, Any]:
        """What a checkpoint must record to rebuild this network offline."""
        return {"name_or_path": self.name_or_path, "config": self.config_dict, "preprocessing": self.preprocessing}

    @torch.no_grad()
    def _probe_width(self) -> int:
        was = self.training
        self.eval()
        width = self._pool(torch.zeros(1, 3, self.input_size, self.input_size)).shape[1]
        self.train(was)
        return int(width)

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        out = self.backbone(pixel_values=self.normalize(x).contiguous())
        pooled = getattr(out, "pooler_output", None) if self.pooling == "auto" else None
        if pooled is None:
            hidden = out.last_hidden_state
            pooled = hidden.mean(1) if hidden.dim() == 3 else hidden.mean((2, 3))  # tokens, or a (N, C, H, W) map
        return pooled.flatten(1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled features as an (N, width, 1, 1) map (the head's pooling leaves them as they are)."""
        return self._pool(x)[:, :, None, None]
