"""``sets.png``: the chosen sets over the pool they came from.

The first panel is the valence-arousal plane (the pool grey, each set in its colour,
its mean marked X). Then one panel per matched column other than valence and arousal,
and for the ``differ`` column when it is another one: each set's values as points and
a box (median, quartiles) beside the pool's, so that a reader sees whether the sets
are matched over a range or squeezed into one band. Then one panel per balanced
column: each set's count of each level, stacked.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..core.atomic import replace_atomically
from ..core.scale import SAM
from .request import DIMENSIONS


MANY = 10  # with more sets, the sets are coloured along one colour map in one layer, without a legend entry each


def _plane(ax, pool: np.ndarray, sets: list[np.ndarray], colours: list) -> None:
    ax.scatter(pool[:, 0], pool[:, 1], s=4, color="lightgrey", label=f"pool ({len(pool)})")
    if len(sets) > MANY:
        chosen = np.concatenate(sets)
        which = np.repeat(np.arange(len(sets)), [len(v) for v in sets])
        ax.scatter(chosen[:, 0], chosen[:, 1], s=8, c=which, cmap="viridis", label=f"{len(sets)} sets (by colour)")
        means = np.array([v.mean(axis=0) for v in sets])
        ax.scatter(means[:, 0], means[:, 1], s=40, marker="X", c=np.arange(len(sets)), cmap="viridis",
                   edgecolor="black", linewidths=0.3)
    for k, values in enumerate(sets if len(sets) <= MANY else []):
        ax.scatter(values[:, 0], values[:, 1], s=14, alpha=0.85, color=colours[k], label=f"set {k + 1} ({len(values)})")
        mean = values.mean(axis=0)
        ax.scatter([mean[0]], [mean[1]], s=160, marker="X", color=colours[k], edgecolor="black")
    ax.axhline(SAM.midpoint, color="grey", lw=0.5)
    ax.axvline(SAM.midpoint, color="grey", lw=0.5)
    ax.set(xlim=(SAM.min, SAM.max), ylim=(SAM.min, SAM.max), xlabel="valence (1 unpleasant .. 9 pleasant)",
           ylabel="arousal (1 calm .. 9 excited)", title="valence and arousal (X: set means)")
    ax.legend(fontsize=7, markerscale=1.5)


def _column(ax, name: str, pool: np.ndarray, sets: list[np.ndarray], colours: list, title: str) -> None:
    if len(sets) > MANY:
        ax.boxplot([pool], positions=[0], showfliers=False, widths=max(len(sets) / 20, 0.5))
        which = np.repeat(np.arange(1, len(sets) + 1), [len(v) for v in sets])
        ax.scatter(which, np.concatenate(sets), s=6, c=which, cmap="viridis")
        ax.set(xlabel="set (0: pool)", ylabel=name, title=title)
        return
    data = [pool, *sets]
    labels = ["pool", *(f"set {k + 1}" for k in range(len(sets)))]
    ax.boxplot(data, showfliers=False, widths=0.5)
    rng = np.random.default_rng(0)
    for k, values in enumerate(data):
        shown = values if k else values[rng.permutation(len(values))[:2000]]
        ax.scatter(k + 1 + rng.uniform(-0.18, 0.18, len(shown)), shown, s=4 if k == 0 else 9,
                   color="lightgrey" if k == 0 else colours[k - 1], alpha=0.8, zorder=3)
    ax.set_xticks(range(1, len(data) + 1), labels, fontsize=8)
    ax.set(ylabel=name, title=title)


def _counts(ax, name: str, levels: list[str], per_set: list[list[int]], colours: list) -> None:
    per_set = np.asarray(per_set)
    bottom = np.zeros(len(per_set))
    cmap = [f"C{i % 10}" for i in range(len(levels))]
    for j, level in enumerate(levels):
        ax.bar(np.arange(1, len(per_set) + 1), per_set[:, j], bottom=bottom, color=cmap[j], label=level[:20])
        bottom += per_set[:, j]
    if len(per_set) <= MANY:
        ax.set_xticks(range(1, len(per_set) + 1), [f"set {k + 1}" for k in range(len(per_set))], fontsize=8)
    ax.set(ylabel="pictures", title=f"{name}: counts per set (balanced)")
    ax.legend(fontsize=7)


def selection_figure(result, path: Path) -> Path:
    """Draw ``result`` (a ``choose.Result``) to ``path``."""
    r = result.request
    table = result.pool.table
    members = result.selection.members
    colours = [f"C{k % 10}" for k in range(r.sets)]
    extra = [d for d, _ in r.match if d not in DIMENSIONS]
    if r.differ is not None and r.differ[0] not in DIMENSIONS:
        extra.insert(0, r.differ[0])
    panels = 1 + len(extra) + len(r.balance)
    ncols = min(3, panels)
    nrows = math.ceil(panels / ncols)
    fig = Figure(figsize=(5.6 * ncols, 5.0 * nrows))
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    plane = table[list(DIMENSIONS)].to_numpy(float)
    _plane(axes[0], plane, [plane[m] for m in members], colours)
    bounds = dict(r.match)
    for ax, name in zip(axes[1:], extra):
        values = table[name].to_numpy(float)
        if name in bounds:
            title = f"{name}: matched within ±{bounds[name]:g}" + (", SDs too" if name in r.match_sd else "")
        else:
            title = f"{name}: differs by at least {r.differ[1]:g} between consecutive sets"
        _column(ax, name, values, [values[m] for m in members], colours, title)
    for ax, name in zip(axes[1 + len(extra):], r.balance):
        c = result.statistics["counts"][name]
        _counts(ax, name, c["levels"], c["per_set"], colours)
    for ax in axes[panels:]:
        ax.set_visible(False)
    fig.suptitle(f"{r.sets} sets of {r.size}", fontsize=12)
    path = Path(path)
    return replace_atomically(path, lambda temp: fig.savefig(temp, dpi=110, bbox_inches="tight", format="png"))
