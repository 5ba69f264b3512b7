"""What ``evaluate`` can score with: a training run folder, or a shipped model by name."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.dataset import RatedImages


class RunScorer:
    """The best checkpoint of a ``picaffect train`` run."""

    def __init__(self, run_dir: str | Path, device: str = "cpu") -> None:
        from ..training.engine import load_run
        from ..training.runtime import pick_device

        self.device = pick_device(device)
        self.model, self.recipe, self.size = load_run(run_dir, "best", device=str(self.device))

    def predict_dataset(self, dataset: RatedImages, batch_size: int = 64) -> np.ndarray:
        from ..training.engine import predict_loader

        return predict_loader(self.model, dataset, self.recipe, self.size, self.device, batch_size).numpy()


def load_scorer(ref: str | Path, device: str = "cpu"):
    """A run folder if ``ref`` is one; otherwise the name of a shipped model."""
    path = Path(ref)
    if path.is_dir():
        return RunScorer(path, device=device)
    raise FileNotFoundError(f"{ref} is neither a training run folder nor a shipped model name")
