"""Do replicate runs make different errors? Each run alone, then the mean of their predictions.

Replicates of one setting (other seeds) that make the same errors gain nothing from being
averaged; this prints how much averaging (and mirror-image averaging at test time, ``--tta``)
moves each figure, on the splits named, so that a report can say whether an ensemble is worth it.

    .venv/bin/python scripts/seed_ensemble.py --data runs/data/oasis+emotion6+bass-224px-thesis \\
        runs/thesis/runs/emosepar-modern-augment-thesis-bf16-ema0.995-224px \\
        runs/thesis/runs/emosepar-modern-augment-thesis-bf16-ema0.995-224px-seed1
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from picaffect.core.metrics import summarize
from picaffect.data.dataset import RatedImages
from picaffect.evaluation.evaluate import predict_dataset  # as `picaffect evaluate` scores: unclipped, in order
from picaffect.inference import Predictor


def row(name: str, y: np.ndarray, yhat: np.ndarray, n_boot: int) -> str:
    m = summarize(y, yhat, n_boot=n_boot)
    lo, hi = m["valence"]["ci95"]["pcc"]
    return (f"| {name} | {m['valence']['pcc']:.3f} [{lo:.2f}, {hi:.2f}] | {m['arousal']['pcc']:.3f} "
            f"| {m['overall']['rmse']:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="training run folders of one dataset")
    parser.add_argument("--data", required=True, type=Path, help="the folder written by `picaffect build`")
    parser.add_argument("--splits", default="test,validation")
    parser.add_argument("--tta", action="store_true", help="also score mirror-image averaging")
    parser.add_argument("--n-boot", type=int, default=1000)
    args = parser.parse_args()
    predictors = [Predictor.from_pretrained(run, device="cpu") for run in args.runs]
    for split in args.splits.split(","):
        dataset = RatedImages(args.data, split)
        y = dataset.targets.numpy()
        print(f"\n{split} ({len(dataset)} pictures)\n\n| model | valence r [95 %] | arousal r | pooled RMSE |\n"
              "|---|---|---|---|")
        for tta in (False, True) if args.tta else (False,):
            suffix = ", mirrored" if tta else ""
            each = [predict_dataset(p, dataset, tta=tta) for p in predictors]
            for run, yhat in zip(args.runs, each):
                print(row(run.name + suffix, y, yhat, args.n_boot))
            if len(each) > 1:
                print(row(f"mean of {len(each)} runs{suffix}", y, np.mean(each, axis=0), args.n_boot))


if __name__ == "__main__":
    main()
