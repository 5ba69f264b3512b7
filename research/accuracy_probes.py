"""Cheap accuracy experiments on frozen features: ridge probes, stages, mirror TTA, ensembles,
per-source label handling, leave-one-source-out. Seconds once the features are cached.

Inputs are files written by ``picaffect features`` for every row of a group-split dataset
with ``--model-option features=stages`` (the last 1,280 columns are then the head's
ordinary pooled features, i.e. ``features=last``):

    D=runs/data/oasis+emotion6+bass    # data/rated_sets.py's folder scheme: D-224px-group, D-260px-group
    picaffect build $D-224px-group $(python -m picaffect.data.rated_sets sources ../shared/data) --size 224 \
        --split group
    picaffect build $D-260px-group ... --size 260 --split group
    picaffect features efficientnet_lite0 --data $D-224px-group --model-option features=stages --out f/lite0.npz
    picaffect features efficientnet_lite0 --data $D-224px-group --model-option features=stages --no-tta \
        --out f/lite0-notta.npz
    picaffect features efficientnet_lite2 --data $D-260px-group --model-option features=stages --out f/lite2.npz
    python -m research.accuracy_probes lite0=f/lite0.npz lite2=f/lite2.npz --no-tta lite0=f/lite0-notta.npz \
        --out results/accuracy/probes.json

Protocol. Group split (2,337 train / 779 test / 347 validation rows; validation: OASIS 69,
Emotion6 207, BASS 71). Ridge regression on standardised features, its penalty chosen per
dimension among 25 values from 0.1 to 1e5 on the test rows (as ``picaffect train --recipe
ridge`` does), scored on the validation rows; "train+test" fits refit on both with the
penalty from 5-fold group cross-validation. Leave-one-source-out trains on every row of the
other two sources (penalty by 5-fold group CV inside them) and scores the held-out one.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from picaffect.core.jsonsafe import jsonable
from picaffect.core.metrics import calibration_slope, ccc, pcc, rmse
from picaffect.data.rated_sets import RATED_SETS as SOURCES
from picaffect.training.probe import ALPHAS, Ridge, fit_linear_readout

LAST = 1280


def predict(ridge: Ridge, alphas, x: np.ndarray) -> np.ndarray:
    """``ridge``'s predictions of ``x``, with a penalty per output dimension."""
    w, b = ridge.weights(np.asarray(alphas, dtype=float))
    return x @ w + b


def select_on(x_tr, y_tr, x_sel, y_sel) -> tuple[Ridge, list[float]]:
    """Ridge fitted on the training rows, a penalty per dimension chosen on the selection rows (as the thesis
    watched its test split)."""
    ridge = Ridge(x_tr, y_tr)
    errors = np.array([((predict(ridge, [a, a], x_sel) - y_sel) ** 2).mean(0) for a in ALPHAS])
    return ridge, [float(ALPHAS[j]) for j in errors.argmin(0)]


def cv_readout(x, y, groups) -> tuple[np.ndarray, list[float]]:
    """The shipped models' readout (``fit_linear_readout``: penalty by 5-fold group CV, refitted on every row,
    not recalibrated) as a predictor of new rows, and its penalties."""
    readout = fit_linear_readout(x, y, groups)
    return readout.predict, readout.info["alpha"]


def figures(y, p) -> dict:
    out = {"n": int(len(y)), "rmse": rmse(y, p)}
    for j, dim in enumerate(("valence", "arousal")):
        out.update({f"{dim}_r": pcc(y[:, j], p[:, j]), f"{dim}_rmse": rmse(y[:, j], p[:, j]),
                    f"{dim}_ccc": ccc(y[:, j], p[:, j]), f"{dim}_slope": calibration_slope(y[:, j], p[:, j])})
    return out


def by_source(y, p, src) -> dict:
    return {"pooled": figures(y, p), **{s: figures(y[src == s], p[src == s]) for s in SOURCES if (src == s).any()}}


def centre_by_source(y, src):
    """Per-source label handling: remove each source's mean rating, keep the pooled mean."""
    out = y.copy()
    for s in np.unique(src):
        out[src == s] += y.mean(0) - y[src == s].mean(0)
    return out


def load(path: str) -> dict:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("features", nargs="+", metavar="LABEL=FILE", help="picaffect features files (stages, mirror TTA)")
    ap.add_argument("--no-tta", action="append", default=[], metavar="LABEL=FILE", help="the same without TTA")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    sets = dict(a.split("=", 1) for a in args.features)
    data = {k: load(v) for k, v in sets.items()}
    plain = {k: load(v) for k, v in (a.split("=", 1) for a in args.no_tta)}
    first = next(iter(data.values()))
    for d in [*data.values(), *plain.values()]:
        assert (d["id"] == first["id"]).all() and (d["split"] == first["split"]).all(), "rows differ between files"
    y = first["ratings"].astype(np.float64)
    split, src, grp = first["split"], first["source"], first["group"]
    tr, te, va = split == "train", split == "test", split == "validation"
    trte = tr | te
    val, loso, preds = {}, {}, {}
    val["training mean"] = by_source(y[va], np.broadcast_to(y[tr].mean(0), y[va].shape), src[va])

    def probe(key, x, y_train=None):
        r, alphas = select_on(x[tr], y[tr] if y_train is None else y_train, x[te], y[te])
        preds[key] = predict(r, alphas, x[va])
        val[key] = {**by_source(y[va], preds[key], src[va]), "alphas": [float(a) for a in alphas]}

    def tag(label: str) -> str:  # " +mirror" where the file's features are mirror-averaged
        return " +mirror" if json.loads(str(data[label]["meta"])).get("tta", True) else ""

    for label, d in data.items():
        x = d["features"].astype(np.float64)
        if label in plain:
            probe(f"{label} last", plain[label]["features"][:, -LAST:].astype(np.float64))
            probe(f"{label} stages", plain[label]["features"].astype(np.float64))
        probe(f"{label} last{tag(label)}", x[:, -LAST:])
        probe(f"{label} stages{tag(label)}", x)
        probe(f"{label} stages{tag(label)}, ratings centred per source", x, centre_by_source(y[tr], src[tr]))
        fitted, alphas = cv_readout(x[trte], y[trte], grp[trte])
        key = f"{label} stages{tag(label)}, fit on train+test"
        preds[key] = fitted(x[va])
        val[key] = {**by_source(y[va], preds[key], src[va]), "alphas": [float(a) for a in alphas]}
    labels = list(data)
    if len(labels) > 1:
        for suffix in ("stages{}", "stages{}, fit on train+test"):
            key = f"ensemble (mean) of {' + '.join(labels)}, {suffix.format('')}"
            preds[key] = np.mean([preds[f"{lab} {suffix.format(tag(lab))}"] for lab in labels], 0)
            val[key] = by_source(y[va], preds[key], src[va])
        probe(f"concatenated {' + '.join(labels)}, stages",
              np.concatenate([data[lab]["features"] for lab in labels], 1).astype(np.float64))

    def loso_run(xs: list[np.ndarray]) -> dict:
        out = {}
        for s in SOURCES:
            trn, tst = src != s, src == s
            ps = [cv_readout(x[trn], y[trn], grp[trn])[0](x[tst]) for x in xs]
            out[s] = figures(y[tst], np.mean(ps, 0))
        return out

    for label, d in data.items():
        x = d["features"].astype(np.float64)
        loso[f"{label} last{tag(label)}"] = loso_run([x[:, -LAST:]])
        loso[f"{label} stages{tag(label)}"] = loso_run([x])
    if len(labels) > 1:
        loso[f"ensemble (mean) of {' + '.join(labels)}, stages"] = loso_run(
            [data[lab]["features"].astype(np.float64) for lab in labels])
    result = {"inputs": sets, "no_tta_inputs": dict(a.split("=", 1) for a in args.no_tta), "validation": val,
              "leave_one_source_out": loso}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(jsonable(result), indent=1, allow_nan=False) + "\n")
    print(f"{'group split, validation rows (pooled)':78s} {'V r':>6s} {'A r':>6s} {'RMSE':>6s} {'slope V/A':>10s}")
    for k, v in val.items():
        p = v["pooled"]
        print(f"{k:78s} {p['valence_r']:6.3f} {p['arousal_r']:6.3f} {p['rmse']:6.3f} "
              f"{p['valence_slope']:5.2f}/{p['arousal_slope']:.2f}")
    print("\nleave one source out, r valence / arousal")
    for k, v in loso.items():
        print(f"{k:60s} " + "  ".join(f"{s} {f['valence_r']:.3f}/{f['arousal_r']:.3f}" for s, f in v.items()))


if __name__ == "__main__":
    main()
