"""A model's evaluation record: the figures a model file carries about itself, from arrays of predictions.

Two blocks, new-source accuracy first, because a user's own pictures are in effect a
new source:

- ``leave_one_source_out``: each source predicted by the model's recipe refitted on
  the other sources' rows; one figure per source and their mean;
- ``validation``: the held-out validation rows, scored once by the shipped model,
  pooled and by source.

Each figure (``figures``) holds n, valence and arousal r, the RMSE pooled over both
dimensions and per dimension, and the bias (mean of prediction minus rating) per
dimension, with bootstrap 95 % intervals over pictures for r and the pooled RMSE.
The numbers and their intervals are ``core.metrics.summarize``'s (same resamples, same
seed), so a figure here equals what ``picaffect evaluate`` reports for the same
predictions. ``model_card``, ``picaffect info`` and ``GET /v1/model`` read these keys.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..core.jsonsafe import jsonable
from ..core.metrics import summarize

N_BOOT = 1000
SEED = 0
# The keys of a figure that are averaged over sources (the intervals and counts are not).
MEAN_KEYS = ("valence_r", "arousal_r", "rmse", "valence_rmse", "arousal_rmse", "valence_bias", "arousal_bias")


def figures(y: np.ndarray, yhat: np.ndarray, *, n_boot: int = N_BOOT, seed: int = SEED) -> dict[str, Any]:
    """One figure of (N, 2) ratings and predictions (valence, arousal): r, RMSE and bias with 95 % intervals."""
    y, yhat = np.asarray(y, np.float64).reshape(-1, 2), np.asarray(yhat, np.float64).reshape(-1, 2)
    s = summarize(y, yhat, n_boot=n_boot, seed=seed)
    bias = (yhat - y).mean(0) if len(y) else np.full(2, np.nan)
    return jsonable({
        "n": int(len(y)),
        "valence_r": s["valence"]["pcc"], "valence_r_ci": list(s["valence"]["ci95"]["pcc"]),
        "arousal_r": s["arousal"]["pcc"], "arousal_r_ci": list(s["arousal"]["ci95"]["pcc"]),
        "rmse": s["overall"]["rmse"], "rmse_ci": list(s["overall"]["ci95"]["rmse"]),
        "valence_rmse": s["valence"]["rmse"], "arousal_rmse": s["arousal"]["rmse"],
        "valence_bias": float(bias[0]), "arousal_bias": float(bias[1]),
    })


def mean_figures(blocks: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The mean over sources of each figure (no n, no intervals): every source weighs the same."""
    out = {}
    for key in MEAN_KEYS:
        values = [b[key] for b in blocks if b.get(key) is not None]
        out[key] = float(np.mean(values)) if len(values) == len(blocks) and values else None
    return out


def by_source(y: np.ndarray, yhat: np.ndarray, sources: Sequence[str], **kw: Any) -> dict[str, dict[str, Any]]:
    """A figure per source, in the order the sources first appear."""
    sources = np.asarray(sources).astype(str)
    return {s: figures(np.asarray(y)[sources == s], np.asarray(yhat)[sources == s], **kw)
            for s in dict.fromkeys(sources.tolist())}


def leave_one_source_out(y: np.ndarray, yhat: np.ndarray, sources: Sequence[str], protocol: str,
                         **kw: Any) -> dict[str, Any]:
    """The block of held-out-source predictions: ``protocol`` (one sentence), ``sources``, their ``mean``.

    There is no pooled figure: the sources are predicted by different fits, each with
    its own offset, so pooled r would mix them (each source's own figure is the one to read).
    """
    per_source = by_source(y, yhat, sources, **kw)
    return {"protocol": protocol, "sources": per_source, "mean": mean_figures(list(per_source.values()))}


def validation(y: np.ndarray, yhat: np.ndarray, sources: Sequence[str], protocol: str, **kw: Any) -> dict[str, Any]:
    """The block of the validation rows: ``protocol``, the pooled figure's keys, and ``by_source``."""
    return {"protocol": protocol, **figures(y, yhat, **kw), "by_source": by_source(y, yhat, sources, **kw)}


def evaluation_record(loso: dict[str, Any] | None, valid: dict[str, Any] | None) -> dict[str, Any]:
    """``{"leave_one_source_out": ..., "validation": ...}``, leave-one-source-out first; a block not measured
    is left out (``picaffect info`` names what a file lacks)."""
    record: dict[str, Any] = {}
    if loso is not None:
        record["leave_one_source_out"] = loso
    if valid is not None:
        record["validation"] = valid
    return record


# -- as tables for people (``picaffect info``) --------------------------------------------------------------------

def _with_ci(value: float | None, ci: list | None) -> str:
    from .markdown import fmt

    if ci is None or any(c is None for c in ci):
        return fmt(value)
    return f"{fmt(value)} [{fmt(ci[0])}, {fmt(ci[1])}]"


def _row(label: str, fig: dict[str, Any]) -> list[str]:
    from .markdown import fmt

    return [label, str(fig.get("n", "")), _with_ci(fig.get("valence_r"), fig.get("valence_r_ci")),
            _with_ci(fig.get("arousal_r"), fig.get("arousal_r_ci")), _with_ci(fig.get("rmse"), fig.get("rmse_ci")),
            fmt(fig.get("valence_bias")), fmt(fig.get("arousal_bias"))]


HEADER = ["valence r [95 % CI]", "arousal r [95 % CI]", "RMSE, both [95 % CI]", "valence bias", "arousal bias"]


def evaluation_markdown(evaluation: dict[str, Any]) -> str:
    """The evaluation record as text: leave one source out first (what new pictures should expect), then the
    validation rows; a block the record lacks is named as missing."""
    from .markdown import markdown_table

    parts = []
    loso = evaluation.get("leave_one_source_out")
    if loso:
        rows = [_row(s, f) for s, f in loso["sources"].items()] + [_row("mean of sources", loso["mean"])]
        parts.append("Leave one source out: what a new set of pictures should expect (each source predicted "
                     f"without its own rows; {loso['protocol']})\n\n" + markdown_table(["held out", "n", *HEADER], rows))
    else:
        parts.append("Leave one source out: not in this file\n")
    valid = evaluation.get("validation")
    if valid:
        rows = [_row("all", valid)] + [_row(s, f) for s, f in valid.get("by_source", {}).items()]
        parts.append(f"Validation rows ({valid['protocol']})\n\n" + markdown_table(["rows", "n", *HEADER], rows))
    else:
        parts.append("Validation rows: not in this file\n")
    return "\n".join(parts)
