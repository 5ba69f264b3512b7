"""The accuracy search for the shipped model (issue 17), as one resumable script.

    python -m research.accuracy_search --data ../shared/data --work runs/search --out results/accuracy

Every step skips what an earlier sitting finished, so the same command resumes:

1. ``build``: the project's rated sets (``data/rated_sets.py``: OASIS, Emotion6, BASS), group
   split, seed 0, once per input side, in ``runs/data/`` (the folder scheme every script shares;
   the same rows and splits at every side: checked).
2. ``features``: frozen EfficientNet-Lite0/1/2 at their native side and one size up, every
   resolution stage pooled (``features=stages``; the last 1,280 columns are the ordinary
   ``features=last``), by ``picaffect features`` (``workflows/features.py``): of each picture
   (``WORK/features/LABEL.npz``) and mirror-averaged (``LABEL+mirror.npz``).
3. ``probes``: ridge on standardised features for every backbone and side x {last stage,
   every stage} x {no TTA, mirror TTA} x {penalty chosen on the test rows and fitted on
   train, penalty by 5-fold group CV on train+test and refitted there}; averaged and stacked
   ensembles (stacking weights from out-of-fold predictions of train+test rows only);
   leave-one-source-out for each, the frozen-Lite0 ridge beside them in the same run.
4. ``readouts`` (``accuracy_readouts.py``): non-linear and second-stage readouts of the
   features `accurate` reads, beside its ridge, on the validation rows and leave-one-source-out.
5. ``finetune``: ``picaffect retrain``'s stages (``run_stages``: ridge probe, then the whole network
   at a lower learning rate for the backbone than for the head) for each configuration in
   ``FINETUNES`` whose backbone the probes ranked, each scored with and without mirror TTA
   and averaged with the probes.

Choices are made on the group-split validation rows and on leave-one-source-out only. Each
candidate's figures land in ``OUT/search.json`` (atomically, as it finishes) and the table
in ``OUT/search.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from picaffect.core.atomic import write_bytes_atomically
from picaffect.core.jsonsafe import jsonable
from picaffect.data.rated_sets import dataset_folder
from picaffect.training.probe import Ridge, group_folds

from .accuracy_probes import LAST, SOURCES, by_source, cv_readout, figures, predict, select_on
from .accuracy_readouts import ACCURATE, REFERENCE, readouts_table, run_readouts

BACKBONES = [("efficientnet_lite0", 224), ("efficientnet_lite0", 256), ("efficientnet_lite1", 240),
             ("efficientnet_lite1", 280), ("efficientnet_lite2", 260), ("efficientnet_lite2", 300)]

# Fine-tuning runs, in order. Each starts from a ridge probe on the same backbone and features
# (linear probe, then fine-tune); the head learns at ``lr``, the backbone at lr x backbone_lr_scale.
# bf16 autocast: about 1.7x faster on CPUs with AVX512-BF16; weights, optimiser and evaluation stay fp32.
FINETUNES = {
    "lite0-224-stages-ft": {"model": "efficientnet_lite0", "size": 224},
    "lite1-240-stages-ft": {"model": "efficientnet_lite1", "size": 240},
    "lite2-260-stages-ft": {"model": "efficientnet_lite2", "size": 260},
}
FINETUNE_STAGE = {"recipe": "modern", "lr": 5.0e-4, "backbone_lr_scale": 0.2, "weight_decay": 0.05, "epochs": 12,
                  "batch_size": 32, "augment": "light", "patience": 4, "precision": "bf16"}


# ----- bookkeeping ----------------------------------------------------------------------------------------------

def load_state(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {"validation": {}, "leave_one_source_out": {},
                                                                   "features": {}, "finetune": {}}


def save_json(path: Path, value) -> None:
    """Atomic: a reader never sees half a file."""
    write_bytes_atomically(path, (json.dumps(jsonable(value), indent=1, allow_nan=False) + "\n").encode())


def load_avg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} [load {load_avg()}] {message}", flush=True)


# ----- 1. build -------------------------------------------------------------------------------------------------

def build_at(data: Path, size: int) -> Path:
    """The rated sets at ``size`` px, group split, seed 0, in the shared folder scheme (reused when built)."""
    from picaffect.data.build import SourceSpec, build

    out = dataset_folder(size, "group")
    if not (out / "report.json").is_file():
        log(f"build {out}")
        build(out, [SourceSpec(s, data / s, s) for s in SOURCES], size=size, split="group", seed=0, plots=False,
              progress=False)
    return out


# ----- 2. features ----------------------------------------------------------------------------------------------

def extract(model_name: str, size: int, dataset_dir: Path, folder: Path, label: str) -> dict:
    """``picaffect features`` of every row with ``features=stages``: of each picture (``LABEL.npz``) and
    mirror-averaged (``LABEL+mirror.npz``), each file written whole or not at all."""
    from picaffect.workflows.features import extract_features

    seconds = 0.0
    for path, tta in ((folder / f"{label}.npz", False), (folder / f"{label}+mirror.npz", True)):
        if path.is_file():
            continue
        partial = folder / f".{label}.partial-{os.getpid()}.npz"  # extract_features wants a name ending in .npz
        try:
            meta = extract_features(model_name, dataset_dir, partial, options={"features": "stages"}, size=size,
                                    tta=tta, device="cpu")
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        seconds += meta["seconds"]
    rows = meta["rows"]
    # three passes through the network a row: the picture, then the picture and its mirror
    return {"rows": rows, "seconds": round(seconds, 1), "images_per_s": round(3 * rows / seconds, 1),
            "load": load_avg()}


def extracted_both(folder: Path, label: str) -> bool:
    return all((folder / f"{label}{mirror}.npz").is_file() for mirror in ("", "+mirror"))


def load_features(folder: Path, label: str) -> dict:
    """Both feature files of a backbone as one: ``plain`` and ``both`` (mirror-averaged) beside the rows."""
    with np.load(folder / f"{label}.npz") as f, np.load(folder / f"{label}+mirror.npz") as m:
        if not ((f["id"] == m["id"]).all() and (f["split"] == m["split"]).all()):
            raise SystemExit(f"{folder}/{label}: the two feature files hold other rows; delete them and rerun")
        return {"plain": f["features"], "both": m["features"], "ratings": f["ratings"], "id": f["id"],
                "source": f["source"], "split": f["split"], "group": f["group"]}


# ----- 3. probes ------------------------------------------------------------------------------------------------

class Rows:
    """The split masks and labels shared by every feature file (checked to be the same rows)."""

    def __init__(self, first: dict) -> None:
        self.id, self.split, self.src, self.grp = first["id"], first["split"], first["source"], first["group"]
        self.y = first["ratings"].astype(np.float64)
        self.tr, self.te, self.va = self.split == "train", self.split == "test", self.split == "validation"
        self.trte = self.tr | self.te

    def check(self, other: dict, name: str) -> None:
        if not ((other["id"] == self.id).all() and (other["split"] == self.split).all()):
            raise SystemExit(f"{name}: rows or splits differ from the first feature file; rebuild with the same seed")


def views(f: dict) -> dict[str, np.ndarray]:
    """The four feature views of one backbone: {last, stages} x {no TTA, mirror TTA}."""
    both, plain = f["both"].astype(np.float64), f["plain"].astype(np.float64)
    return {"last": plain[:, -LAST:], "last +mirror": both[:, -LAST:], "stages": plain, "stages +mirror": both}


def oof_predictions(x: np.ndarray, rows: Rows, alphas, k: int = 5) -> np.ndarray:
    """Out-of-fold ridge predictions on the train+test rows (group folds), for stacking."""
    idx = np.flatnonzero(rows.trte)
    folds = group_folds(rows.grp[idx], k)
    out = np.zeros((len(idx), 2))
    for f in range(k):
        fit, hold = idx[folds != f], idx[folds == f]
        out[folds == f] = predict(Ridge(x[fit], rows.y[fit]), alphas, x[hold])
    return out


def loso(xs: list[np.ndarray], rows: Rows) -> dict:
    """Train on all rows of two sources (penalty by group CV there), score the third; mean over ``xs``."""
    out = {}
    for s in SOURCES:
        trn, tst = rows.src != s, rows.src == s
        ps = [cv_readout(x[trn], rows.y[trn], rows.grp[trn])[0](x[tst]) for x in xs]
        out[s] = figures(rows.y[tst], np.mean(ps, 0))
    return out


def run_probes(folder: Path, labels: list[str], state: dict, state_path: Path, preds_path: Path) -> dict:
    """Every probe candidate; returns the validation predictions by candidate (also saved to ``preds_path``)."""
    files = {label: load_features(folder, label) for label in labels}
    rows = Rows(next(iter(files.values())))
    for label, f in files.items():
        rows.check(f, label)
    preds = dict(np.load(preds_path)) if preds_path.is_file() else {}
    oof: dict[str, np.ndarray] = {}
    val, lo = state["validation"], state["leave_one_source_out"]
    y = rows.y
    if "training mean" not in val:
        val["training mean"] = by_source(y[rows.va], np.broadcast_to(y[rows.tr].mean(0), y[rows.va].shape),
                                         rows.src[rows.va])
    for label, f in files.items():
        for view, x in views(f).items():
            key = f"{label} {view}, penalty on test rows"
            if key not in val:
                r, alphas = select_on(x[rows.tr], y[rows.tr], x[rows.te], y[rows.te])
                preds[key] = predict(r, alphas, x[rows.va])
                val[key] = {**by_source(y[rows.va], preds[key], rows.src[rows.va]), "alphas": list(alphas)}
            key = f"{label} {view}, CV on train+test"
            if key in val:
                alphas = val[key]["alphas"]
            else:
                fitted, alphas = cv_readout(x[rows.trte], y[rows.trte], rows.grp[rows.trte])
                preds[key] = fitted(x[rows.va])
                val[key] = {**by_source(y[rows.va], preds[key], rows.src[rows.va]), "alphas": list(alphas)}
                log(f"probe {key}: V r {val[key]['pooled']['valence_r']:.3f} A r {val[key]['pooled']['arousal_r']:.3f}"
                    f" RMSE {val[key]['pooled']['rmse']:.3f}")
            if view.endswith("+mirror"):
                oof[key] = oof_predictions(x, rows, alphas)
                if key not in lo:
                    lo[key] = loso([x], rows)
                    save_json(state_path, state)
        save_json(state_path, state)
        np.savez(preds_path, **preds)
    # Ensembles of the mirror-TTA, every-stage, CV probes: all backbones, and the best three by validation RMSE.
    members = [f"{label} stages +mirror, CV on train+test" for label in files]
    ranked = sorted(members, key=lambda k: val[k]["pooled"]["rmse"])
    for name, chosen in (("all", members), ("best 3", ranked[:3])):
        if len(chosen) < 2:
            continue
        key = f"ensemble (mean) of {name}: " + " + ".join(k.split(" stages")[0] for k in chosen)
        preds[key] = np.mean([preds[k] for k in chosen], 0)
        val[key] = by_source(y[rows.va], preds[key], rows.src[rows.va])
        key = f"ensemble (stacked) of {name}: " + " + ".join(k.split(" stages")[0] for k in chosen)
        w = stack_weights(np.stack([oof[k] for k in chosen]), y[rows.trte])
        preds[key] = np.einsum("mnd,md->nd", np.stack([preds[k] for k in chosen]), w)
        val[key] = {**by_source(y[rows.va], preds[key], rows.src[rows.va]), "weights": w.tolist()}
        lkey = f"ensemble (mean) of {name}: " + " + ".join(k.split(" stages")[0] for k in chosen)
        if lkey not in lo:
            xs = [views(files[k.split(" stages")[0]])["stages +mirror"] for k in chosen]
            lo[lkey] = loso(xs, rows)
        save_json(state_path, state)
    np.savez(preds_path, **preds)
    return preds


def stack_weights(oof: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(members, 2) non-negative weights summing to 1 per dimension, fitted on out-of-fold predictions."""
    from scipy.optimize import nnls

    m = oof.shape[0]
    w = np.zeros((m, 2))
    for d in range(2):
        a = np.vstack([oof[:, :, d].T, 10.0 * np.ones((1, m))])  # soft constraint: the weights sum to 1
        b = np.concatenate([y[:, d], [10.0]])
        w[:, d] = nnls(a, b)[0]
        w[:, d] /= w[:, d].sum()
    return w


# ----- 4. fine-tuning -------------------------------------------------------------------------------------------

def finetune(name: str, setting: dict, data_dir: Path, work: Path, state: dict, state_path: Path,
             preds_path: Path) -> None:
    """Ridge probe then fine-tune (``run_stages``, resumable), then validation figures with and without mirror TTA."""
    from picaffect.data.dataset import RatedImages
    from picaffect.evaluation.evaluate import predict_dataset
    from picaffect.inference import Predictor
    from picaffect.training.config import TrainConfig
    from picaffect.workflows.stages import run_stages

    run = work / name
    common = {"model": setting["model"], "size": setting["size"], "model_options": {"features": "stages"}}
    log(f"{name}: ridge probe, then fine-tune {FINETUNE_STAGE}")
    stages = [{"name": "probe", "recipe": "ridge", **common},
              {"name": "finetune", "init": "probe", **common, **FINETUNE_STAGE}]
    fine = run_stages(stages, data_dir, run, TrainConfig(data=str(data_dir), out=str(run), device="cpu",
                                                         **common))["finetune"]
    summary = json.loads((fine / "summary.json").read_text())
    predictor = Predictor.from_pretrained(fine, device="cpu")
    dataset = RatedImages(data_dir, "validation")
    preds = dict(np.load(preds_path)) if preds_path.is_file() else {}
    y, src = dataset.targets.numpy().astype(np.float64), dataset.rows["source"].to_numpy().astype(str)
    val = state["validation"]
    for tta in (False, True):
        key = f"{name}{' +mirror' if tta else ''}"
        preds[key] = np.clip(predict_dataset(predictor, dataset, tta=tta).astype(np.float64), 1, 9)
        val[key] = {**by_source(y, preds[key], src), "epochs": summary.get("epochs_run"),
                    "stopped": summary.get("stopped"), "seconds": summary.get("seconds"), "recipe": FINETUNE_STAGE}
        log(f"{key}: V r {val[key]['pooled']['valence_r']:.3f} A r {val[key]['pooled']['arousal_r']:.3f} "
            f"RMSE {val[key]['pooled']['rmse']:.3f}")
    # Averaged with the best probe of the same backbone and side (equal weights: nothing fitted on validation).
    label = f"{setting['model'].replace('efficientnet_', '')}-{setting['size']}"
    probe_key = f"{label} stages +mirror, CV on train+test"
    if probe_key in preds:
        key = f"ensemble (mean) of {name} +mirror and {probe_key}"
        preds[key] = (preds[f"{name} +mirror"] + preds[probe_key]) / 2
        val[key] = by_source(y, preds[key], src)
    state["finetune"][name] = {"summary": summary, "stage": FINETUNE_STAGE, **common}
    save_json(state_path, state)
    np.savez(preds_path, **preds)


# ----- report ---------------------------------------------------------------------------------------------------

def write_table(state: dict, out: Path, command: str) -> None:
    lines = ["# Accuracy search: every candidate (issue 17)", "",
             f"Written by `{command}` (resumable; figures of finished candidates only).", "",
             "Group-split validation rows, pooled over OASIS, Emotion6 and BASS (n = 347): Pearson r, RMSE on 1..9, "
             "Lin's CCC and the calibration slope (rating on prediction; 1 = calibrated).", "",
             "| candidate | valence r | arousal r | RMSE | CCC V / A | slope V / A |", "|---|---|---|---|---|---|"]
    val = state["validation"]
    for key in sorted(val, key=lambda k: val[k]["pooled"]["rmse"]):
        p = val[key]["pooled"]
        f = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
        g = lambda v: "–" if v is None else f"{v:.2f}"  # noqa: E731
        lines.append(f"| {key} | {f(p.get('valence_r'))} | {f(p.get('arousal_r'))} | {f(p['rmse'])} | "
                     f"{g(p.get('valence_ccc'))} / {g(p.get('arousal_ccc'))} | "
                     f"{g(p.get('valence_slope'))} / {g(p.get('arousal_slope'))} |")
    lines += ["", "## Leave one source out (train on the other two sets), valence r / arousal r", "",
              "| candidate | " + " | ".join(SOURCES) + " |", "|---|" + "---|" * len(SOURCES)]
    for key, v in state["leave_one_source_out"].items():
        lines.append(f"| {key} | " + " | ".join(f"{v[s]['valence_r']:.3f} / {v[s]['arousal_r']:.3f}" for s in SOURCES)
                     + " |")
    lines += readouts_table(state)
    lines += ["", "## Feature passes (every row: the picture, then mirror-averaged)", "", "| backbone | rows | seconds | images/s | load |",
              "|---|---|---|---|---|"]
    for key, v in state["features"].items():
        lines.append(f"| {key} | {v['rows']} | {v['seconds']} | {v['images_per_s']} | {v['load']} |")
    write_bytes_atomically(out, ("\n".join(lines) + "\n").encode())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"), help="folder holding oasis/ emotion6/ bass/")
    ap.add_argument("--work", type=Path, default=Path("runs/search"),
                    help="features and runs (large); the datasets go to runs/data/")
    ap.add_argument("--out", type=Path, default=Path("results/accuracy"), help="figures (small, committed)")
    ap.add_argument("--steps", default="build,features,probes,readouts,finetune",
                    help="comma-separated steps to run (default: all, in order)")
    ap.add_argument("--finetune", default=",".join(FINETUNES), help="which FINETUNES to run, in order")
    ap.add_argument("--backbones", help="comma-separated labels (lite1-240, ...) to build and extract; default: all; "
                    "the readouts step needs " + ", ".join((REFERENCE, *ACCURATE)))
    args = ap.parse_args()
    from picaffect.core.runtime import tune_allocator
    tune_allocator()  # glibc keeps freed memory: about 2x CPU speed (picaffect/core/runtime.py says why)
    steps = set(args.steps.split(","))
    for d in (args.work, args.work / "features", args.out):
        d.mkdir(parents=True, exist_ok=True)
    state_path, preds_path = args.out / "search.json", args.work / "validation_predictions.npz"
    state = load_state(state_path)
    command = "python -m research.accuracy_search " + " ".join(sys.argv[1:])
    label_of = lambda name, size: f"{name.replace('efficientnet_', '')}-{size}"  # noqa: E731
    backbones = [(m, s) for m, s in BACKBONES if args.backbones is None or label_of(m, s) in args.backbones.split(",")]
    datasets = {size: build_at(args.data, size) for size in sorted({s for _, s in backbones})} \
        if steps & {"build", "features", "finetune"} else {}
    folder = args.work / "features"
    extracted = []  # labels whose two feature files are written
    for model_name, size in backbones:
        label = label_of(model_name, size)
        if "features" in steps and not extracted_both(folder, label):
            log(f"features {label}")
            state["features"][label] = extract(model_name, size, datasets[size], folder, label)
            log(f"features {label}: {state['features'][label]}")
            save_json(state_path, state)
        if extracted_both(folder, label):
            extracted.append(label)
    if "probes" in steps and extracted:
        run_probes(folder, extracted, state, state_path, preds_path)
        write_table(state, args.out / "search.md", command)
    if "readouts" in steps:
        needed = (REFERENCE, *ACCURATE)
        missing = [label for label in needed if label not in extracted]
        if missing:
            raise SystemExit(f"readouts need the features of {', '.join(missing)}: run the features step first")
        files = {label: load_features(folder, label) for label in needed}
        rows = Rows(files[REFERENCE])
        for label, f in files.items():
            rows.check(f, label)
        run_readouts({label: views(f)["stages +mirror"] for label, f in files.items()}, rows, state,
                     lambda: save_json(state_path, state), log)
        write_table(state, args.out / "search.md", command)
    if "finetune" in steps:
        for name in filter(None, args.finetune.split(",")):
            finetune(name, FINETUNES[name], datasets[FINETUNES[name]["size"]], args.work, state, state_path,
                     preds_path)
            write_table(state, args.out / "search.md", command)
    write_table(state, args.out / "search.md", command)
    log("done")


if __name__ == "__main__":
    main()
