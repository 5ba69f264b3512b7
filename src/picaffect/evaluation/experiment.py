"""``picaffect experiment``: the thesis's chapter 8 and a cross-dataset test, end to end.

``thesis`` trains each model with the thesis recipe, then Emosepar with
augmentation, evaluates every run on train, test and validation, and writes
``report.md`` with tables 8.1, 8.2 and 8.3 beside the thesis's published figures.
It resumes: a run folder with a ``summary.json`` is finished and not trained again.

``cross-dataset`` leaves one source out at a time: it writes a re-split view of
the dataset (the held-out source becomes ``validation``, the others keep train and
test), trains on it, and evaluates on the held-out source.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from ..data.build import CACHE, MANIFEST
from ..data.dataset import load_manifest
from ..training.engine import TrainConfig, train
from .evaluate import _jsonable, evaluate
from .markdown import THESIS_8_1, THESIS_8_2, THESIS_8_3, fmt, table, triple

THESIS_MODELS = ("emosepar", "vgg16", "inception_v3", "xception")
SPLIT_ORDER = ("train", "test", "validation")


def _train_once(config: TrainConfig) -> None:
    """Train unless the run finished already; continue it if it was interrupted."""
    run = Path(config.out)
    if (run / "summary.json").is_file():
        print(f"{run}: finished earlier, not trained again", flush=True)
        return
    train(config, resume=(run / "last.pt").is_file())


def run_thesis(data: str | Path, out: str | Path, *, epochs: int = 30, models: tuple[str, ...] = THESIS_MODELS,
               limit: int | None = None, batch_size: int = 64, size: int | None = None, device: str = "auto",
               patience: int = 10) -> dict:
    out = Path(out)
    runs = {name: out / "runs" / name for name in models}
    if "emosepar" in models:
        runs["emosepar + augmentation"] = out / "runs" / "emosepar_augment"
    results = {}
    for label, run in runs.items():
        model = label.split(" ")[0]
        augment = "thesis" if label.endswith("augmentation") else "none"
        _train_once(TrainConfig(data=str(data), model=model, out=str(run), recipe="thesis", epochs=epochs,
                                batch_size=batch_size, augment=augment, size=size, limit=limit, device=device,
                                patience=patience))
        results[label] = evaluate(run, data, split=list(SPLIT_ORDER), out=run / "evaluation", device=device)
    (out / "results.json").write_text(json.dumps(_jsonable(results), indent=2) + "\n")
    (out / "report.md").write_text(thesis_markdown(results, epochs=epochs, limit=limit))
    return results


def thesis_markdown(results: dict, *, epochs: int, limit: int | None) -> str:
    out = ["# The thesis's experiment, rerun\n",
           f"Thesis recipe (SGD lr 1e-5, Nesterov, time decay 1e-6, batch 64, MSE on 1..9), at most {epochs} epochs"
           + (f", first {limit} rows of each split" if limit else "") + ". Each cell: ours / the thesis's. "
           "Baselines: RMSE of predicting the training mean, SAGR of predicting the commoner training sign.\n",
           "## Table 8.1: models by split (both dimensions pooled)\n"]
    header = ["model"] + [f"{s} {m}" for s in SPLIT_ORDER for m in ("RMSE", "CC", "SAGR")]
    rows = []
    for label, result in results.items():
        if label not in THESIS_8_1:
            continue
        cells = [label]
        for split in SPLIT_ORDER:
            ours = triple(result["splits"][split]["overall"])
            cells += [f"{o} / {t:.2f}" for o, t in zip(ours, THESIS_8_1[label][split])]
        rows.append(cells)
    any_result = next(iter(results.values()))
    base = [any_result["splits"][s]["overall"] for s in SPLIT_ORDER]
    rows.append(["*baseline*"] + sum([[fmt(b.get("rmse_mean_baseline")), "–", fmt(b.get("sagr_majority"))]
                                      for b in base], []))
    out.append(table(header, rows))

    if "emosepar + augmentation" in results:
        out.append("\n## Table 8.2: Emosepar with and without augmentation\n")
        header = ["model"] + [f"{s} {m}" for s in ("train", "validation") for m in ("RMSE", "CC", "SAGR")]
        rows = []
        for label in ("emosepar", "emosepar + augmentation"):
            cells = [label]
            for split in ("train", "validation"):
                ours = triple(results[label]["splits"][split]["overall"])
                cells += [f"{o} / {t:.2f}" for o, t in zip(ours, THESIS_8_2[label][split])]
            rows.append(cells)
        out.append(table(header, rows))

    if "emosepar" in results:
        out.append("\n## Table 8.3: Emosepar per dimension\n")
        header = ["dimension"] + [f"{s} {m}" for s in SPLIT_ORDER for m in ("RMSE", "CC", "SAGR")] + \
                 ["val. RMSE of mean", "val. SAGR of majority"]
        rows = []
        for dim in ("valence", "arousal"):
            cells = [dim]
            for split in SPLIT_ORDER:
                ours = triple(results["emosepar"]["splits"][split][dim])
                cells += [f"{o} / {t:.2f}" for o, t in zip(ours, THESIS_8_3[dim][split])]
            val = results["emosepar"]["splits"]["validation"][dim]
            rows.append(cells + [fmt(val.get("rmse_mean_baseline")), fmt(val.get("sagr_majority"))])
        out.append(table(header, rows))
    return "\n".join(out)


def leave_one_out_view(data: Path, held_out: str, out: Path) -> Path:
    """A dataset folder whose validation split is ``held_out`` and whose train/test come from the rest.

    The image cache is linked, not copied; only the manifest is rewritten.
    """
    manifest = load_manifest(data)
    ok = manifest["status"] == "ok"
    view = manifest.copy()
    others = ok & (view["source"] != held_out)
    view.loc[others & (view["split"] == "validation"), "split"] = "train"
    view.loc[ok & (view["source"] == held_out), "split"] = "validation"
    out.mkdir(parents=True, exist_ok=True)
    view.to_parquet(out / MANIFEST, index=False)
    link = out / CACHE
    if not link.exists():
        try:
            os.link(Path(data) / CACHE, link)
        except OSError:  # another file system: a symbolic link still avoids the copy
            link.symlink_to((Path(data) / CACHE).resolve())
    return out


def run_cross_dataset(data: str | Path, out: str | Path, *, model: str = "emosepar", recipe: str = "thesis",
                      epochs: int = 30, limit: int | None = None, batch_size: int = 64, size: int | None = None,
                      device: str = "auto", patience: int = 10) -> dict:
    data, out = Path(data), Path(out)
    manifest = load_manifest(data)
    sources = list(pd.unique(manifest.loc[manifest["status"] == "ok", "source"]))
    if len(sources) < 2:
        raise ValueError(f"{data} holds {len(sources)} source(s); leaving one out needs at least two")
    results = {}
    for source in sources:
        view = leave_one_out_view(data, source, out / "views" / source)
        run = out / "runs" / source
        _train_once(TrainConfig(data=str(view), model=model, out=str(run), recipe=recipe, epochs=epochs,
                                batch_size=batch_size, size=size, limit=limit, device=device, patience=patience))
        results[source] = evaluate(run, view, split="validation", out=run / "evaluation", device=device)
    (out / "results.json").write_text(json.dumps(_jsonable(results), indent=2) + "\n")
    rows = []
    for source, result in results.items():
        s = result["splits"]["validation"]
        rows.append([source, str(s["n"]), *triple(s["overall"]), fmt(s["valence"]["pcc"]), fmt(s["arousal"]["pcc"]),
                     fmt(s["overall"].get("rmse_mean_baseline")), fmt(s["overall"].get("sagr_majority"))])
    text = ("# Leave one source out\n\n"
            f"{model}, recipe {recipe}, at most {epochs} epochs. Each row: trained on the other sources, evaluated on "
            "every picture of this one. Baselines use the training sources' mean and commoner sign.\n\n"
            + table(["held-out source", "n", "RMSE", "CC", "SAGR", "valence r", "arousal r", "RMSE of mean",
                     "SAGR of majority"], rows))
    (out / "report.md").write_text(text)
    return results
