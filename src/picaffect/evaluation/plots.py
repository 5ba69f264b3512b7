"""Evaluation figures: predicted against true, and errors on the circumplex."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..scale import SAM


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_predicted_vs_true(y: np.ndarray, yhat: np.ndarray, path: Path) -> None:
    """One panel per dimension, with the identity line a perfect model would sit on."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8))
    for j, (ax, name) in enumerate(zip(axes, ("valence", "arousal"))):
        ax.scatter(y[:, j], yhat[:, j], s=8, alpha=0.5)
        ax.plot([SAM.min, SAM.max], [SAM.min, SAM.max], color="black", lw=1, label="identity")
        ax.set(xlim=(SAM.min, SAM.max), ylim=(SAM.min, SAM.max), xlabel=f"true {name}", ylabel=f"predicted {name}",
               title=f"{name} ({len(y)} pictures)", aspect="equal")
        ax.legend(loc="upper left")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_circumplex(y: np.ndarray, yhat: np.ndarray, path: Path) -> None:
    """Predictions on the valence-arousal plane, coloured by their distance from the truth."""
    plt = _pyplot()
    error = np.linalg.norm(yhat - y, axis=1)
    fig, ax = plt.subplots(figsize=(6.2, 5.4))
    points = ax.scatter(yhat[:, 0], yhat[:, 1], c=error, cmap="viridis", s=10, alpha=0.8)
    fig.colorbar(points, ax=ax, label="error (distance to the true rating, 1..9 units)")
    ax.axhline(SAM.midpoint, color="grey", lw=0.5)
    ax.axvline(SAM.midpoint, color="grey", lw=0.5)
    ax.set(xlim=(SAM.min, SAM.max), ylim=(SAM.min, SAM.max), xlabel="predicted valence", ylabel="predicted arousal",
           title="Predictions on the valence-arousal plane")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
