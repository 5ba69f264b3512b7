"""A kernel readout: pooled features -> (valence, arousal) by RBF kernel ridge regression.

Issue 17's readout search (``results/accuracy/``, step ``readouts``) found that on the
frozen features of the ``accurate`` ensemble a linear ridge leaves accuracy behind: an
RBF kernel ridge on the leading principal components of the standardised features
ranks valence and arousal better (validation valence r 0.78 against 0.75) and transfers
better to a rated set it never saw. A kernel ridge is a fixed function of its training
rows, so it ships as buffers of a head: the projection to components (standardisation
folded in), the training rows in component space (the support), their dual
coefficients, the bandwidth and the intercepts. Scoring a picture is two matrix
products and an exponential, which ONNX exports as it does any layer.

The buffers are named ``kernel_*`` and stay float32 in the shipped fp16 checkpoints
(``keeps_full_precision``): dual coefficients of a lightly penalised kernel ridge are
large and cancel, which half precision would not survive.
"""
from __future__ import annotations

import torch
from torch import nn

PREFIX = "kernel_"


def keeps_full_precision(name: str) -> bool:
    """Whether a state-dict entry must not be halved when a checkpoint is stored in fp16."""
    return name.rsplit(".", 1)[-1].startswith(PREFIX)


class KernelRidgeHead(nn.Module):
    """Global average pooling, then ``k(z, support) @ dual + intercept`` with an RBF kernel in component space.

    ``z = (pooled - kernel_mean) @ kernel_projection``; ``k(z, s) = exp(-gamma |z - s|^2)``.
    Built empty with the shapes a checkpoint needs (``width``, ``support`` rows,
    ``components``); ``set_solution`` fills it from a fitted kernel ridge.
    """

    def __init__(self, width: int, support: int, components: int = 256, num_outputs: int = 2) -> None:
        super().__init__()
        self.width, self.support, self.components = width, support, components
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.register_buffer("kernel_mean", torch.zeros(width))
        self.register_buffer("kernel_projection", torch.zeros(width, components))
        self.register_buffer("kernel_support", torch.zeros(support, components))
        self.register_buffer("kernel_dual", torch.zeros(support, num_outputs))
        self.register_buffer("kernel_intercept", torch.zeros(num_outputs))
        self.register_buffer("kernel_gamma", torch.zeros(()))

    @torch.no_grad()
    def set_solution(self, *, mean, projection, support, dual, intercept, gamma: float) -> "KernelRidgeHead":
        """Copy a fitted kernel ridge in (array-likes of the buffers' shapes)."""
        for name, value in (("mean", mean), ("projection", projection), ("support", support), ("dual", dual),
                            ("intercept", intercept), ("gamma", gamma)):
            buffer = getattr(self, PREFIX + name)
            value = torch.as_tensor(value, dtype=torch.float32)
            if value.shape != buffer.shape:
                raise ValueError(f"kernel head {name}: shape {tuple(value.shape)}, expected {tuple(buffer.shape)}")
            buffer.copy_(value)
        return self

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = torch.flatten(self.pool(x), 1)
        return pooled if pre_logits else self.readout(pooled)

    def readout(self, pooled: torch.Tensor) -> torch.Tensor:
        """(N, width) pooled features -> (N, outputs), in float32 whatever the features' type."""
        z = (pooled.float() - self.kernel_mean) @ self.kernel_projection
        s = self.kernel_support
        distance = (z * z).sum(1, keepdim=True) + (s * s).sum(1)[None, :] - 2.0 * (z @ s.T)
        return torch.exp(-self.kernel_gamma * distance.clamp_min(0.0)) @ self.kernel_dual + self.kernel_intercept
