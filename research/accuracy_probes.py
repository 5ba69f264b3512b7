"""Cheap accuracy experiments on frozen features: ridge probes, stages, mirror TTA, ensembles,
per-source label handling, leave-one-source-out. Seconds once the features are cached.

Inputs are files written by ``picaffect features`` for every row of a group-split dataset
with ``--model-option features=stages`` (the last 1,280 columns are then the head's
ordinary pooled features, i.e. ``features=last``):

    picaffect build out/jn224g --source oasis=../shared/data/oasis --source emotion6=../shared/data/emotion6 \
        --source bass=../shared/data/bass --size 224 --split group
    picaffect build out/jn260g ... --size 260 --split group
    picaffect features efficientnet_lite0 --data out/jn224g --model-option features=stages --out f/lite0.npz
    picaffect features efficientnet_lite0 --data out/jn224g --model-option features=stages --no-tta \
        --out f/lite0-notta.npz
    picaffect features efficientnet_lite2 --data out/jn260g --model-option features=stages --out f/lite2.npz
    python benchmarks/accuracy_probes.py lite0=f/lite0.npz lite2=f/lite2.npz --no-tta lite0=f/lite0-notta.npz \
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

from picaffect.core.metrics import calibration_slope, ccc, pcc, rmse
from picaffect.training.probe import group_folds

ALPHAS = np.logspace(-1, 5, 25)
SOURCES = ("oasis", "emotion6", "bass")
LAST = 1280


class Ridge:
    """Ridge on standardised features, every penalty from one SVD."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.mean, self.std = x.mean(0), x.std(0) + 1e-6
        self.ym = y.mean(0)
        self.u, self.s, self.vt = np.linalg.svd((x - self.mean) / self.std, full_matrices=False)
        self.uty = self.u.T @ (y - self.ym)

    def predict(self, x: np.ndarray, alpha: float) -> np.ndarray:
        w = self.vt.T @ ((self.s / (self.s ** 2 + alpha))[:, None] * self.uty)
        return ((x - self.mean) / self.std) @ w + self.ym


def per_dim(r: Ridge, alphas, x):
    return np.stack([r.predict(x, alphas[j])[:, j] for j in range(2)], 1)


def select_on(x_tr, y_tr, x_sel, y_sel):
    r = Ridge(x_tr, y_tr)
    preds = [r.predict(x_sel, a) for a in ALPHAS]
    return r, [ALPHAS[int(np.argmin([np.mean((p[:, j] - y_sel[:, j]) ** 2) for p in preds]))] for j in range(2)]


def cv_alphas(x, y, groups, k=5):
    folds = group_folds(groups, k)
    err = np.zeros((len(ALPHAS), 2))
    for f in range(k):
        r = Ridge(x[folds != f], y[folds != f])
        for i, a in enumerate(ALPHAS):
            err[i] += ((r.predict(x[folds == f], a) - y[folds == f]) ** 2).sum(0)
    return [ALPHAS[int(np.argmin(err[:, j]))] for j in range(2)]


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


def _nan_to_null(value):
    if isinstance(value, dict):
        return {k: _nan_to_null(v) for k, v in value.items()}
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


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
        preds[key] = per_dim(r, alphas, x[va])
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
        alphas = cv_alphas(x[trte], y[trte], grp[trte])
        key = f"{label} stages{tag(label)}, fit on train+test"
        preds[key] = per_dim(Ridge(x[trte], y[trte]), alphas, x[va])
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
            ps = [per_dim(Ridge(x[trn], y[trn]), cv_alphas(x[trn], y[trn], grp[trn]), x[tst]) for x in xs]
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
    args.out.write_text(json.dumps(_nan_to_null(result), indent=1, allow_nan=False) + "\n")
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
