"""Training recipes: an optimiser and a learning-rate schedule, nothing else.

``thesis`` (section 7.2): SGD lr 1e-5, momentum 0.9, Nesterov, and Keras's
time-based decay ``lr_t = lr / (1 + decay * iterations)`` with decay 1e-6 (the
listing's value; the text says 1e-7). Trained on raw 1..9 targets.

``modern``: AdamW with weight decay, linear warm-up then cosine decay to zero.
Trained on targets centred on 5 and divided by 4 (the thesis's future work 9.2.1).

How targets map to outputs is not part of a recipe: the trainer stores it in the
checkpoint as numbers (``inference.checkpoint.ModelSpec``), so a checkpoint never
depends on what a recipe says today. The ``ridge`` choice of ``picaffect train``
is not a recipe at all but a closed-form fit (``probe.fit_ridge_probe``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..core.names import check

GRADIENT_RECIPES = ("thesis", "modern")


@dataclass(frozen=True)
class Recipe:
    name: str
    lr: float
    weight_decay: float = 0.0
    momentum: float = 0.9
    time_decay: float = 0.0       # Keras-style decay per iteration (thesis)
    warmup_share: float = 0.0     # share of all steps spent warming up (modern)
    bn_momentum: float | None = None  # torch-convention BN momentum; None keeps the model's (Keras's 0.01)

    def optimizer(self, params) -> torch.optim.Optimizer:
        if self.name == "thesis":
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, nesterov=True,
                                   weight_decay=self.weight_decay)
        return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)

    def schedule(self, optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
        """A per-step multiplier of the base learning rate."""
        if self.name == "thesis":
            decay = self.time_decay
            return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1.0 + decay * step))
        warmup = max(1, int(self.warmup_share * total_steps))

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def make_recipe(name: str, lr: float | None = None, weight_decay: float | None = None) -> Recipe:
    """A gradient recipe by name, with optional overrides of its learning rate and weight decay."""
    check("recipe with gradient steps", name, GRADIENT_RECIPES)
    if name == "thesis":
        return Recipe("thesis", lr=lr or 1e-5, time_decay=1e-6, weight_decay=weight_decay or 0.0)
    # AdamW at 1e-3 moves the weights far within Keras's 100-batch BN window: follow them with torch's 0.1.
    return Recipe("modern", lr=lr or 1e-3, weight_decay=0.05 if weight_decay is None else weight_decay,
                  warmup_share=0.05, bn_momentum=0.1)
