"""Building blocks shared by the models.

The thesis trained its networks with Keras, so the defaults here mirror Keras:
batch normalisation with eps 1e-3 and momentum 0.99 (0.01 in torch's convention,
where momentum weighs the new batch), and Glorot-uniform kernels with zero biases.

One deliberate difference (issue 10): the running statistics that evaluation
uses start as a plain average of the batches seen, and only become Keras's
0.99 moving average once 100 batches have been seen (``KerasBatchNorm2d``).
Keras starts them at mean 0 / variance 1 and needs ~500 steps to forget that
start; the thesis had 188 steps an epoch, our three sets give 37, and Emosepar's
pre-BN variances are 0.001-0.01 (Keras's Glorot bound for depthwise kernels is
tiny), so an evaluation in the first ten or so epochs divided by a variance 5-20x
too large in each of seven layers and every output came out the same. The
gradient path is untouched: in training mode the layer normalises by the batch's
own statistics exactly as Keras does.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.errors import WeightsError
from .weights import INPUT_NORMALIZATION, load_weights

BN_EPS = 1e-3        # Keras / TensorFlow BatchNormalization default
BN_MOMENTUM = 0.01   # Keras momentum 0.99 = torch momentum 0.01


class KerasBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` with Keras's constants and running statistics that are never biased by their start.

    The update weight of batch ``t`` is ``max(momentum, 1 / t)``: a cumulative average
    for the first ``1 / momentum`` batches (so the statistics are those of the batches
    seen, not of an arbitrary initial 0 / 1), then the exponential average Keras uses.
    This is the bias correction Adam applies to its moments, for the same reason.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and self.track_running_stats) or self.momentum is None:
            return super().forward(x)
        self.num_batches_tracked.add_(1)
        weight = max(float(self.momentum), 1.0 / float(self.num_batches_tracked))
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, True, weight, self.eps)


def batch_norm(channels: int) -> nn.BatchNorm2d:
    """Batch norm with Keras's defaults and unbiased running statistics (``KerasBatchNorm2d``)."""
    return KerasBatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def pretrained_batch_norm(channels: int) -> nn.BatchNorm2d:
    """Plain ``BatchNorm2d`` with TensorFlow's constants, for networks that start from
    pretrained running statistics (EfficientNet-Lite): those must not be averaged away."""
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def set_bn_momentum(module: nn.Module, momentum: float | None) -> None:
    """Give every ``KerasBatchNorm2d`` in ``module`` this torch-convention momentum (None: leave them as built).

    A recipe that moves the weights fast (AdamW at 1e-3) needs running statistics that
    follow them faster than a 100-batch window; the value is not saved in checkpoints
    and plays no part at inference. Plain ``BatchNorm2d`` layers (EfficientNet's, which
    start from ImageNet statistics) keep theirs.
    """
    if momentum is None:
        return
    for m in module.modules():
        if isinstance(m, KerasBatchNorm2d):
            m.momentum = momentum


class SeparableConv2d(nn.Module):
    """Depthwise ``kernel`` x ``kernel`` convolution (one filter per input channel,
    no bias) followed by a pointwise 1x1 convolution, like Keras ``SeparableConv2D``
    with ``depth_multiplier=1``.

    The attribute names (``conv1`` for the depthwise part, ``pointwise``) follow
    timm's legacy Xception so that its weights load by name.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, padding: int = 0, bias: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, in_channels, kernel_size, stride, padding,
                               groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.conv1(x))


class ConvBNAct(nn.Module):
    """Convolution without bias -> batch norm -> ReLU; torchvision's ``BasicConv2d``
    (the names ``conv`` and ``bn`` match it, so Inception v3 weights load by name)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int = 1, padding: int | tuple[int, int] = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = batch_norm(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x)))


class RegressionHead(nn.Module):
    """Global average pooling -> optional dropout -> Linear(width, num_outputs).

    The thesis's head for every model: the two outputs are valence and arousal,
    with no activation (linear regression outputs). ``pre_logits`` stops after the
    pooling, which is what a linear probe fits its ridge regression on.
    """

    def __init__(self, width: int, num_outputs: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        self.width = width
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(width, num_outputs)

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = torch.flatten(self.pool(x), 1)
        return pooled if pre_logits else self.readout(pooled)

    def readout(self, pooled: torch.Tensor) -> torch.Tensor:
        """(N, width) pooled features -> (N, outputs): what every head has, whatever maps the features."""
        return self.fc(self.dropout(pooled))


class RegressionModel(nn.Module):
    """What every picaffect model is (timm's split): ``forward_features`` gives the
    last feature map, ``forward_head`` pools it and maps it to (valence, arousal).

    Subclasses define ``forward_features`` and a ``head`` (a ``RegressionHead``).
    Every constructor is keyword-only with the same names: ``num_outputs``,
    ``dropout``, ``pretrained`` (None, ``"imagenet"`` or a state-dict path).
    """

    head: RegressionHead

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@torch.no_grad()
def keras_init_(module: nn.Module) -> nn.Module:
    """Initialise like Keras: Glorot-uniform kernels, zero biases, BN gamma 1 beta 0.

    For a depthwise kernel Keras's fans are (9 * in, 9) and torch's (9, 9 * in): the
    sum, and so the Glorot bound, is the same.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return module


class Normalize(nn.Module):
    """Per-channel ``(x - mean) / std`` on [0, 1] inputs.

    The statistics are buffers saved with the model, so a checkpoint fine-tuned from
    ImageNet weights keeps the input scaling those weights expect. The default
    (mean 0, std 1) leaves the input as it is, for networks trained from scratch.
    """

    def __init__(self, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    @torch.no_grad()
    def set(self, mean, std) -> None:
        self.mean.copy_(torch.tensor(mean).view_as(self.mean))
        self.std.copy_(torch.tensor(std).view_as(self.std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class ImageNetBackbone(RegressionModel):
    """A published ImageNet architecture (torchvision / timm layout) under our regression head.

    Subclasses register ``normalize`` first, then the network's own modules in
    order, then ``head``; ``forward_features`` runs the modules in that order,
    which keeps each architecture file a plain list of its layers whose names
    match the other library's state dict.
    """

    imagenet_name: str = ""

    def load_pretrained(self, pretrained: str | None) -> None:
        """Load a local torchvision / timm ImageNet state dict and the input scaling it expects.

        No ImageNet weights for these architectures ship with picaffect or can be
        fetched offline, so ``"imagenet"`` asks for a path instead.
        """
        if pretrained is None:
            return
        if str(pretrained) == "imagenet":
            raise WeightsError(f"no ImageNet weights ship for {self.imagenet_name}: pass the path of a torchvision/"
                               f"timm state dict saved with torch.save(model.state_dict(), path)")
        load_weights(self, pretrained)
        self.normalize.set(*INPUT_NORMALIZATION[self.imagenet_name])

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for name, module in self.named_children():
            if name != "head":
                x = module(x)
        return x


@torch.no_grad()
def fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Fold an inference-mode BN into the convolution before it (``conv`` is changed in place).

    ``bn(conv(x)) == conv'(x)`` with the running statistics: one pass over each
    activation fewer, about a quarter of EfficientNet-Lite0's CPU inference time.
    """
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    conv.weight.mul_(scale.view(-1, 1, 1, 1))
    shift = bn.bias - bn.running_mean * scale
    if conv.bias is None:
        conv.bias = nn.Parameter(shift)
    else:
        conv.bias.copy_(conv.bias * scale + shift)
