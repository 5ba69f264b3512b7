"""Every figure picaffect draws, in one place.

Figures are built as ``matplotlib.figure.Figure`` objects and saved directly:
no pyplot state and no backend switch, so calling picaffect from a notebook never
changes the notebook's own plotting, and nothing needs a display.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .atomic import replace_atomically
from .scale import SAM

QUADRANT_LABELS = ((2.2, 8.6, "unpleasant, activated"), (7.8, 8.6, "pleasant, activated"),
                   (2.2, 1.4, "unpleasant, calm"), (7.8, 1.4, "pleasant, calm"))


def _save(fig: Figure, path: Path, dpi: int = 110) -> Path:
    """Save whole or not at all: a reader never opens half a figure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = path.suffix.lstrip(".").lower() or "png"
    return replace_atomically(path, lambda temp: fig.savefig(temp, dpi=dpi, bbox_inches="tight", format=fmt))


def _circumplex_axes(ax: Axes, xlabel: str = "valence (1 unpleasant .. 9 pleasant)",
                     ylabel: str = "arousal (1 calm .. 9 excited)") -> None:
    """The valence-arousal plane on 1..9 with its midpoint lines."""
    ax.axhline(SAM.midpoint, color="grey", lw=0.5)
    ax.axvline(SAM.midpoint, color="grey", lw=0.5)
    ax.set(xlim=(SAM.min, SAM.max), ylim=(SAM.min, SAM.max), xlabel=xlabel, ylabel=ylabel)


def loss_curves(history: Sequence[dict], path: Path, title: str = "Training and test loss") -> Path:
    """The thesis's figure 1: train and test loss per epoch."""
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    epochs = [r["epoch"] for r in history]
    ax.plot(epochs, [r["train_loss"] for r in history], marker="o", label="train")
    ax.plot(epochs, [r["test_loss"] for r in history], marker="o", label="test")
    ax.set(xlabel="epoch", ylabel="loss (MSE, on the trained target scale)", title=title)
    ax.legend()
    return _save(fig, path)


def predicted_vs_true(y: np.ndarray, yhat: np.ndarray, path: Path) -> Path:
    """One panel per dimension, with the identity line a perfect model would sit on."""
    fig = Figure(figsize=(10, 4.8))
    axes = fig.subplots(1, 2)
    for j, (ax, name) in enumerate(zip(axes, ("valence", "arousal"))):
        ax.scatter(y[:, j], yhat[:, j], s=8, alpha=0.5)
        ax.plot([SAM.min, SAM.max], [SAM.min, SAM.max], color="black", lw=1, label="identity")
        ax.set(xlim=(SAM.min, SAM.max), ylim=(SAM.min, SAM.max), xlabel=f"true {name}", ylabel=f"predicted {name}",
               title=f"{name} ({len(y)} pictures)", aspect="equal")
        ax.legend(loc="upper left")
    return _save(fig, path)


def prediction_errors(y: np.ndarray, yhat: np.ndarray, path: Path) -> Path:
    """Predictions on the valence-arousal plane, coloured by their distance from the truth."""
    fig = Figure(figsize=(6.2, 5.4))
    ax = fig.subplots()
    error = np.linalg.norm(yhat - y, axis=1)
    points = ax.scatter(yhat[:, 0], yhat[:, 1], c=error, cmap="viridis", s=10, alpha=0.8)
    fig.colorbar(points, ax=ax, label="error (distance to the true rating, 1..9 units)")
    _circumplex_axes(ax, "predicted valence", "predicted arousal")
    ax.set_title("Predictions on the valence-arousal plane")
    return _save(fig, path)


def labelled_circumplex(rows: Sequence[dict], path: Path,
                        title: str = "picaffect: predicted feelings for the pictures") -> Path:
    """Scored pictures on the valence-arousal plane, labelled by file name (the demo's figure)."""
    fig = Figure(figsize=(7, 6.2))
    ax = fig.subplots()
    for r in rows:
        if r.get("error"):
            continue
        if r.get("valence_low") is not None:  # a calibrated model: the prediction intervals as error bars
            ax.errorbar(r["valence"], r["arousal"], xerr=[[r["valence"] - r["valence_low"]],
                                                          [r["valence_high"] - r["valence"]]],
                        yerr=[[r["arousal"] - r["arousal_low"]], [r["arousal_high"] - r["arousal"]]],
                        fmt="none", ecolor="grey", alpha=0.35, lw=1)
        ax.scatter(r["valence"], r["arousal"], s=30)
        label = Path(str(r.get("path") or "")).stem.split("_", 1)[-1]
        ax.annotate(label, (r["valence"], r["arousal"]), fontsize=8, xytext=(4, 3), textcoords="offset points")
    for x, y, text in QUADRANT_LABELS:
        ax.text(x, y, text, ha="center", color="grey", fontsize=8)
    _circumplex_axes(ax)
    ax.set_title(title)
    return _save(fig, path, dpi=120)


def ratings_by_source(valence: np.ndarray, arousal: np.ndarray, sources: np.ndarray, path: Path) -> Path:
    """The thesis's figure 6.1: every rated picture on the plane, one colour per source."""
    fig = Figure(figsize=(6.5, 6))
    ax = fig.subplots()
    for name in dict.fromkeys(sources):  # first-seen order
        mask = sources == name
        ax.scatter(valence[mask], arousal[mask], s=6, alpha=0.5, label=f"{name} ({int(mask.sum())})")
    _circumplex_axes(ax)
    ax.set_title("Valence and arousal by source")
    ax.legend(markerscale=3, fontsize=8)
    return _save(fig, path, dpi=120)


def rating_histograms(valence: np.ndarray, arousal: np.ndarray, path: Path) -> Path:
    """The thesis's figure 6.2: how the ratings spread over 1..9."""
    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, name, values, colour in ((axes[0], "valence", valence, "tab:blue"),
                                     (axes[1], "arousal", arousal, "tab:orange")):
        ax.hist(values, bins=32, range=(SAM.min, SAM.max), color=colour)
        ax.set(xlabel=f"{name} (1..9)", title=f"{name} ({len(values)} pictures)")
    axes[0].set_ylabel("pictures")
    return _save(fig, path, dpi=120)


def selected_sets(pool: np.ndarray, sets: Sequence[np.ndarray], path: Path, title: str = "Selected sets") -> Path:
    """Chosen stimulus sets on the valence-arousal plane over the pool they came from, each set's mean marked."""
    fig = Figure(figsize=(6.8, 6.2))
    ax = fig.subplots()
    ax.scatter(pool[:, 0], pool[:, 1], s=4, color="lightgrey", label=f"pool ({len(pool)})")
    for k, values in enumerate(sets, 1):
        points = ax.scatter(values[:, 0], values[:, 1], s=14, alpha=0.85, label=f"set {k} ({len(values)})")
        mean = values.mean(axis=0)
        ax.scatter([mean[0]], [mean[1]], s=160, marker="X", color=points.get_facecolor()[0], edgecolor="black")
    _circumplex_axes(ax)
    ax.set_title(title + " (X: set means)")
    ax.legend(fontsize=8, markerscale=1.5)
    return _save(fig, path, dpi=120)
