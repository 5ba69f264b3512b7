"""Readouts beyond one linear ridge on the frozen features `accurate` reads (issue 17, the search's step ``readouts``).

`accurate` is one ridge over the mirror-averaged stage features of Lite1 240, Lite1 280 and
Lite2 300. Three ways a readout might do better, each scored beside that ridge in the same run:

- **all four backbones**: the same ridge with Lite0 224's features added.
- **second stage**: arousal is U-shaped in valence in every rated set (extreme pictures excite);
  a linear ridge cannot express that. A least-squares line per dimension on the ridge's own
  predictions (valence, arousal) and the squared distance of predicted valence from 5, fitted on
  out-of-fold predictions of the train+test rows only.
- **kernel ridge** with an RBF kernel on the first 256 principal components of the standardised
  features (bandwidth and penalty by 5-fold group CV on train+test), and its mean with the ridge.

Every candidate is also scored leave-one-source-out (hyper-parameters by group CV inside the two
training sources) beside the reference of issue 17's goal, a ridge on frozen Lite0 224 last-stage
features. Choices are made on the validation rows and leave-one-source-out only.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from picaffect.training import kernel_probe
from picaffect.training.probe import fit_linear_readout, group_folds

from .accuracy_probes import LAST, SOURCES, by_source, figures

ACCURATE = ("lite1-240", "lite1-280", "lite2-300")
REFERENCE = "lite0-224"

# A readout: fit on (x, y, groups) and return a predictor of new rows.
Fit = Callable[[np.ndarray, np.ndarray, np.ndarray], Callable[[np.ndarray], np.ndarray]]


def fit_ridge(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The probe every shipped model uses (``fit_linear_readout``): ridge, penalty per dimension by 5-fold group
    CV, not recalibrated."""
    return fit_linear_readout(x, y, groups).predict


def u_terms(p: np.ndarray) -> np.ndarray:
    """A second stage's inputs: both predictions and predicted valence's squared distance from the scale's middle."""
    return np.column_stack([np.ones(len(p)), p[:, 0], p[:, 1], (p[:, 0] - 5.0) ** 2])


def fit_second_stage(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Ridge, then per dimension a least-squares line on ``u_terms`` of its out-of-fold predictions."""
    folds = group_folds(groups, 5)
    oof = np.zeros_like(y)
    for f in range(5):
        oof[folds == f] = fit_ridge(x[folds != f], y[folds != f], groups[folds != f])(x[folds == f])
    coefficients = np.linalg.lstsq(u_terms(oof), y, rcond=None)[0]
    first = fit_ridge(x, y, groups)
    return lambda new: u_terms(first(new)) @ coefficients


def fit_kernel_ridge(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The library's RBF readout (``training/kernel_probe.py``, what `accurate` ships): bandwidth and
    per-dimension penalty by 5-fold group CV, then refitted on every row."""
    fitted, alphas, _ = kernel_probe.fit_kernel_ridge(x, y, groups)
    return lambda new: fitted.predict(new, alphas)


RIDGE = "ridge, best 3 (accurate's readout, not recalibrated)"
KERNEL = "kernel ridge (RBF, 256 components), best 3"
CANDIDATES: dict[str, tuple[str, Fit]] = {
    # name: (feature set, readout)
    RIDGE: ("best 3", fit_ridge),
    "ridge, best 3 + lite0-224": ("all 4", fit_ridge),
    "second stage (U-shape) on the ridge, best 3": ("best 3", fit_second_stage),
    KERNEL: ("best 3", fit_kernel_ridge),
    "reference: ridge on frozen lite0-224 last stage": ("lite0 last", fit_ridge),
}
MEANS = {"mean of ridge and kernel ridge, best 3": (RIDGE, KERNEL)}  # averaged predictions of two candidates


def feature_sets(views_by_label: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The candidates' inputs from each backbone's mirror-averaged stage features."""
    best3 = np.concatenate([views_by_label[label] for label in ACCURATE], 1)
    return {"best 3": best3, "all 4": np.concatenate([best3, views_by_label[REFERENCE]], 1),
            "lite0 last": views_by_label[REFERENCE][:, -LAST:]}


def run_readouts(views_by_label: dict[str, np.ndarray], rows, state: dict, save: Callable[[], None],
                 log: Callable[[str], None]) -> None:
    """Score every candidate on the validation rows and leave-one-source-out, resuming from ``state``."""
    xs = feature_sets(views_by_label)
    y = rows.y
    val, lo = state.setdefault("readouts", {}).setdefault("validation", {}), state["readouts"].setdefault(
        "leave_one_source_out", {})
    preds: dict[tuple[str, str], np.ndarray] = {}  # (candidate, "validation" or held-out source): predictions

    def predictions(name: str, where: str) -> np.ndarray:
        if (name, where) not in preds:
            if name in MEANS:
                preds[name, where] = np.mean([predictions(member, where) for member in MEANS[name]], 0)
            else:
                inputs, fit = CANDIDATES[name]
                x = xs[inputs]
                trn, tst = (rows.trte, rows.va) if where == "validation" else (rows.src != where, rows.src == where)
                preds[name, where] = fit(x[trn], y[trn], rows.grp[trn])(x[tst])
        return preds[name, where]

    for name in [*CANDIDATES, *MEANS]:
        if name not in val:
            val[name] = by_source(y[rows.va], predictions(name, "validation"), rows.src[rows.va])
            p = val[name]["pooled"]
            log(f"readout {name}: V r {p['valence_r']:.3f} A r {p['arousal_r']:.3f} RMSE {p['rmse']:.3f} "
                f"slopes {p['valence_slope']:.2f}/{p['arousal_slope']:.2f}")
            save()
        if name not in lo:
            lo[name] = {s: figures(y[rows.src == s], predictions(name, s)) for s in SOURCES}
            log(f"readout {name}, leave one source out: "
                + ", ".join(f"{s} V r {lo[name][s]['valence_r']:.3f}" for s in SOURCES))
            save()


def readouts_table(state: dict) -> list[str]:
    """Markdown lines for search.md."""
    r = state.get("readouts")
    if not r:
        return []
    lines = ["", "## Readouts on the frozen features of `accurate` (step `readouts`)", "",
             "Validation rows pooled; leave-one-source-out valence r per held-out source.", "",
             "| readout | valence r | arousal r | RMSE | slope V / A | LOSO valence r: " + " / ".join(SOURCES) + " |",
             "|---|---|---|---|---|---|"]
    for name, v in r["validation"].items():
        p = v["pooled"]
        lo = r["leave_one_source_out"].get(name)
        loso = " / ".join(f"{lo[s]['valence_r']:.3f}" for s in SOURCES) if lo else "–"
        lines.append(f"| {name} | {p['valence_r']:.3f} | {p['arousal_r']:.3f} | {p['rmse']:.3f} | "
                     f"{p['valence_slope']:.2f} / {p['arousal_slope']:.2f} | {loso} |")
    return lines

