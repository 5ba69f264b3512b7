"""The choice of the shipped models, made on the training and test rows only (docs/protocol.md).

A figure a scientist cites must not come from the rows the model was chosen on. So
every choice that makes ``default`` and ``accurate`` (backbones and members, stage or
last-stage features, linear or RBF readout, the recalibration line) is made here, by
leaving one source out *inside the training and test rows*: for each of the three rated
sets, the candidate's recipe (with its own inner group cross-validation for penalties
and bandwidth, exactly as ``picaffect retrain`` fits it) is fitted on the training and
test rows of the other two sets and scores that set's training and test rows. A user's
new pictures are a new source, so that is the figure the choice should maximise. The
validation rows are dropped as the features are read and never seen here; the make
targets score them once per shipped model, after the choice.

Criterion: the mean over held-out sources of (valence r + arousal r) / 2. Readouts are
compared on it; for a linear readout, the recalibration line (which changes the spread
of the predictions, not their ranking) is kept when it lowers the mean held-out RMSE.
``default`` must stay fast: one EfficientNet-Lite0 pass at 224 px, so its candidates
are Lite0's readouts. ``accurate`` is chosen by greedy forward selection of members
(at most ``MAX_MEMBERS``; a member joins only when it raises the criterion by at least
``MIN_GAIN``), for each readout.

Inputs are the ``picaffect features`` files that ``scripts/choice_features.sh`` writes
(mirror-averaged stage features of every picture); the output is a JSON record, which
``make figures`` renders into ``results/choice/README.md``.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..core.atomic import write_bytes_atomically
from ..core.metrics import pcc, rmse
from ..data.rated_sets import RATED_SETS
from ..training import kernel_probe
from ..training.probe import fit_linear_readout

SOURCES = RATED_SETS
MEMBERS = ("lite0@224", "lite1@240", "lite1@280", "lite2@260", "lite2@300")
DEFAULT_FEATURES = "default-lite0@224"
LAST_STAGE = 1280        # the last 1,280 columns of Lite0's stage features are its ordinary pooled features
MAX_MEMBERS = 3          # `accurate` may cost at most about three Lite passes a picture
MIN_GAIN = 0.005         # a member joins only when the criterion rises by at least this much
PROTOCOL = ("Each candidate recipe is fitted on the training and test rows of two rated sets (its penalties and "
            "bandwidth by its own 5-fold group cross-validation, as `picaffect retrain` fits it) and scores the "
            "training and test rows of the third; the validation rows are never read. Criterion: the mean over "
            "the three held-out sets of (valence r + arousal r) / 2.")

Predictor = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Rows:
    """The training and test rows of the three sets: features per block, ratings, sources, groups."""
    blocks: dict[str, np.ndarray]
    ratings: np.ndarray
    source: np.ndarray
    group: np.ndarray

    def features(self, names: tuple[str, ...], last_stage: bool = False) -> np.ndarray:
        x = np.concatenate([self.blocks[n] for n in names], 1)
        return x[:, -LAST_STAGE:] if last_stage else x


def read_rows(folder: Path) -> Rows:
    """Every feature file of ``folder``, checked to hold the same pictures in the same order; validation rows dropped."""
    blocks, first = {}, None
    for name in (DEFAULT_FEATURES, *MEMBERS):
        path = folder / f"{name}.npz"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing; run scripts/choice_features.sh first")
        with np.load(path) as f:
            ids, split = f["id"], f["split"]
            if first is None:
                keep = split != "validation"
                first = {"id": ids, "ratings": f["ratings"][keep].astype(np.float64), "source": f["source"][keep],
                         "group": f["group"][keep], "keep": keep}
            elif not np.array_equal(ids, first["id"]):
                raise ValueError(f"{path}: its pictures differ from {DEFAULT_FEATURES}.npz's (build both from one dataset)")
            blocks[name] = f["features"][first["keep"]].astype(np.float64)
    return Rows(blocks, first["ratings"], first["source"], first["group"])


def fit_readout(readout: str, x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> Predictor:
    """The shipped recipe of ``readout`` fitted on these rows: ``linear``, ``linear+recal`` or ``rbf``."""
    if readout == "rbf":
        fitted, alphas, _ = kernel_probe.fit_kernel_ridge(x, y, groups)
        return lambda new: fitted.predict(new, alphas)
    return fit_linear_readout(x, y, groups, recalibrate=readout == "linear+recal").predict


def figures(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    out: dict[str, float] = {"n": int(len(y)), "rmse": rmse(y, p)}
    for j, dim in enumerate(("valence", "arousal")):
        out[f"{dim}_r"] = pcc(y[:, j], p[:, j])
        out[f"{dim}_rmse"] = rmse(y[:, j], p[:, j])
        out[f"{dim}_bias"] = float(np.mean(p[:, j] - y[:, j]))
    return out


def leave_one_source_out(rows: Rows, x: np.ndarray, readout: str) -> dict:
    """Each source's training and test rows predicted by the recipe fitted on the other two sources' rows."""
    per_source = {}
    for source in SOURCES:
        fit, held = rows.source != source, rows.source == source
        predict = fit_readout(readout, x[fit], rows.ratings[fit], rows.group[fit])
        per_source[source] = figures(rows.ratings[held], predict(x[held]))
    keys = [k for k in per_source[SOURCES[0]] if k != "n"]
    mean = {k: float(np.mean([per_source[s][k] for s in SOURCES])) for k in keys}
    mean["score"] = (mean["valence_r"] + mean["arousal_r"]) / 2
    return {"sources": per_source, "mean": mean}


class Chooser:
    """Scores candidates once each (cached by name) and keeps every score for the record."""

    def __init__(self, rows: Rows, log: Callable[[str], None] = print) -> None:
        self.rows, self.log, self.scored = rows, log, {}

    def score(self, name: str, blocks: tuple[str, ...], readout: str, last_stage: bool = False) -> dict:
        if name not in self.scored:
            start = time.perf_counter()
            result = leave_one_source_out(self.rows, self.rows.features(blocks, last_stage), readout)
            self.scored[name] = {"name": name, "blocks": list(blocks), "features": "last" if last_stage else "stages",
                                 "readout": readout, "seconds": round(time.perf_counter() - start, 1), **result}
            m = result["mean"]
            self.log(f"{name}: score {m['score']:.4f} (valence r {m['valence_r']:.3f}, arousal r "
                     f"{m['arousal_r']:.3f}, RMSE {m['rmse']:.3f}) in {self.scored[name]['seconds']} s")
        return self.scored[name]


def _with_recalibration(chooser: Chooser, best: dict) -> dict:
    """A linear winner and its recalibrated twin have the same r; the twin wins on a lower mean held-out RMSE."""
    if best["readout"] != "linear":
        return best
    twin = chooser.score(best["name"] + " + recal", tuple(best["blocks"]), "linear+recal", best["features"] == "last")
    return twin if twin["mean"]["rmse"] < best["mean"]["rmse"] else best


def choose_default(chooser: Chooser) -> dict:
    """Lite0 at 224 px (one pass: the fast model): stage or last-stage features, linear or RBF readout."""
    candidates = [chooser.score("lite0@224 stages, linear", (DEFAULT_FEATURES,), "linear"),
                  chooser.score("lite0@224 last stage, linear", (DEFAULT_FEATURES,), "linear", last_stage=True),
                  chooser.score("lite0@224 stages, rbf", (DEFAULT_FEATURES,), "rbf")]
    return _with_recalibration(chooser, max(candidates, key=lambda c: c["mean"]["score"]))


def greedy_members(chooser: Chooser, readout: str) -> dict:
    """Forward selection of ensemble members for ``readout``, by the criterion, up to ``MAX_MEMBERS``."""
    chosen: tuple[str, ...] = ()
    best = None
    while len(chosen) < MAX_MEMBERS:
        trials = [chooser.score(f"{'+'.join(sorted(chosen + (m,)))}, {readout}", tuple(sorted(chosen + (m,))), readout)
                  for m in MEMBERS if m not in chosen]
        top = max(trials, key=lambda c: c["mean"]["score"])
        if best is not None and top["mean"]["score"] < best["mean"]["score"] + MIN_GAIN:
            break
        best, chosen = top, tuple(top["blocks"])
    return best


def choose_accurate(chooser: Chooser) -> dict:
    finalists = [greedy_members(chooser, readout) for readout in ("linear", "rbf")]
    return _with_recalibration(chooser, max(finalists, key=lambda c: c["mean"]["score"]))


def shipped_config(choice: dict) -> dict:
    """The ``stages`` entry of a retrain config that makes the chosen recipe (what configs/*.yaml must say)."""
    blocks = choice["blocks"]
    stage = {"name": "probe", "recipe": "ridge", "ridge_fit": "train+test"}
    if blocks == [DEFAULT_FEATURES] and choice["readout"] != "rbf":
        stage.update(model="efficientnet_lite0", model_options={"features": choice["features"]})
    else:
        members = ",".join("lite0@224" if b == DEFAULT_FEATURES else b for b in blocks)
        stage.update(model="lite_ensemble", model_options={"members": members})
    if choice["readout"] == "rbf":
        stage["ridge_readout"] = "rbf"
    if choice["readout"] == "linear+recal":
        stage["ridge_recalibrate"] = True
    size = max(int(b.split("@")[1]) for b in blocks)
    return {"build_size": size, "stages": [stage]}


def choose(features: Path, out: Path, log: Callable[[str], None] = print) -> dict:
    """Run the whole choice and write ``out/choice.json`` (``make figures`` renders it); returns the record."""
    start = time.perf_counter()
    rows = read_rows(features)
    counts = ", ".join(f"{s} {int((rows.source == s).sum())}" for s in SOURCES)
    log(f"{len(rows.ratings)} training and test rows ({counts}); validation rows not read")
    chooser = Chooser(rows, log)
    default = choose_default(chooser)
    # the recipes shipped before this protocol, scored the same way for comparison
    chooser.score("lite0@224 stages, linear + recal", (DEFAULT_FEATURES,), "linear+recal")
    chooser.score("lite1@240+lite1@280+lite2@300, rbf", ("lite1@240", "lite1@280", "lite2@300"), "rbf")
    accurate = choose_accurate(chooser)
    record = {"protocol": PROTOCOL, "criterion": "mean over held-out sets of (valence r + arousal r) / 2",
              "rows": {s: int((rows.source == s).sum()) for s in SOURCES}, "max_members": MAX_MEMBERS,
              "min_gain": MIN_GAIN, "previous": {"default": "lite0@224 stages, linear + recal",
                                                 "accurate": "lite1@240+lite1@280+lite2@300, rbf"},
              "chosen": {"default": {"candidate": default["name"], **shipped_config(default)},
                         "accurate": {"candidate": accurate["name"], **shipped_config(accurate)}},
              "candidates": list(chooser.scored.values()), "seconds": round(time.perf_counter() - start, 1)}
    out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(out / "choice.json", (json.dumps(record, indent=2) + "\n").encode())
    return record


def candidates_table(record: dict) -> str:
    """The record as Markdown (``make figures`` puts it in results/choice/README.md): every candidate with its
    held-out figures, the chosen two and the previous two marked, and the configurations the choice implies."""
    chosen = {v["candidate"]: k for k, v in record["chosen"].items()}
    previous = {v: k for k, v in record["previous"].items()}
    lines = ["Rows: " + ", ".join(f"{s} {n}" for s, n in record["rows"].items()) + " (training and test rows only).",
             "", "| candidate | score | valence r (OASIS / Emotion6 / BASS held out) | arousal r (same) | mean RMSE | |",
             "|---|---|---|---|---|---|"]
    for c in sorted(record["candidates"], key=lambda c: -c["mean"]["score"]):
        s = c["sources"]
        marks = [f"**chosen: {chosen[c['name']]}**"] if c["name"] in chosen else []
        marks += [f"shipped before as {previous[c['name']]}"] if c["name"] in previous else []
        valence, arousal = (" / ".join(f"{s[k][dim + '_r']:.2f}" for k in SOURCES) for dim in ("valence", "arousal"))
        lines.append(f"| {c['name']} | {c['mean']['score']:.3f} | {valence} | {arousal} | {c['mean']['rmse']:.3f} | "
                     f"{'; '.join(marks)} |")
    lines += ["", "The retrain configurations this implies:", ""]
    for model, choice in record["chosen"].items():
        lines.append(f"- `{model}`: {choice['candidate']}; build at {choice['build_size']} px; stage "
                     f"`{json.dumps(choice['stages'][0])}`")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m picaffect.workflows.choice", description=__doc__.splitlines()[0])
    ap.add_argument("--features", type=Path, default=Path("runs/choice/features"),
                    help="folder written by scripts/choice_features.sh")
    ap.add_argument("--out", type=Path, default=Path("results/choice"))
    args = ap.parse_args(argv)
    record = choose(args.features, args.out, log=lambda line: print(line, flush=True))
    for model, choice in record["chosen"].items():
        print(f"{model}: {choice['candidate']}")


if __name__ == "__main__":
    main()
