"""End-to-end `picaffect predict` speed over a folder of JPEG photographs.

Baseline, same run: the plain first attempt (open each file with Pillow, resize to
224, one forward pass per picture, one thread of decoding). Then the Predictor as
`picaffect predict` uses it (draft-mode decoding on threads, batches of 32,
channels_last), and the `picaffect predict` command's wall time including its
start-up. Single-picture latency is the median of 20 calls of `Predictor.predict`.

    .venv/bin/python benchmarks/bench_predict.py [--photos ../shared/data/emotion6/images] [--n 256]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from picaffect import Predictor


def plain_first_attempt(model_ref: str, photos: list[Path]) -> float:
    """The loop anyone writes first, on the model as it was trained (no fusion, NCHW)."""
    from picaffect.inference import load_model, resolve_model

    model, spec = load_model(resolve_model(model_ref))
    size = spec.size
    start = time.perf_counter()
    with torch.no_grad():
        for path in photos:
            im = Image.open(path).convert("RGB").resize((size, size))
            x = torch.from_numpy(np.array(im)).permute(2, 0, 1).float().div(255).unsqueeze(0)
            model(x.contiguous())
    return len(photos) / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photos", type=Path,
                   default=Path(__file__).resolve().parents[1].parent / "shared" / "data" / "emotion6" / "images")
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--model", default="default")
    args = p.parse_args()
    photos = sorted(args.photos.rglob("*.jpg"))[: args.n]
    if not photos:
        sys.exit(f"no JPEG photographs under {args.photos}")
    predictor = Predictor.from_pretrained(args.model, device="cpu")
    print(f"{len(photos)} JPEG photographs from {args.photos}, model {args.model} at {predictor.size} px, "
          f"{os.cpu_count()} cores")

    plain = plain_first_attempt(args.model, photos[:64])
    print(f"  plain first attempt (PIL, batch 1)      : {plain:6.1f} img/s   <- baseline")
    list(predictor.predict_stream(photos[:32]))  # warm-up
    start = time.perf_counter()
    rows = list(predictor.predict_stream(photos))
    ours = len(rows) / (time.perf_counter() - start)
    print(f"  Predictor.predict_stream (in process)   : {ours:6.1f} img/s   ({ours / plain:.1f}x; goal >= 80)")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        for i, path in enumerate(photos):
            shutil.copyfile(path, folder / f"{i:05d}.jpg")
        cli = str(Path(sys.executable).parent / "picaffect")
        start = time.perf_counter()
        subprocess.run([cli, "predict", str(folder), "--model", args.model, "--out", f"{tmp}/out.csv",
                        "--device", "cpu"], check=True, capture_output=True)
        wall = time.perf_counter() - start
    print(f"  picaffect predict (command, with start) : {len(photos) / wall:6.1f} img/s   ({wall:.1f} s wall)")

    latencies = []
    for path in photos[:20]:
        start = time.perf_counter()
        predictor.predict(path)
        latencies.append(time.perf_counter() - start)
    print(f"  single-picture latency (median of 20)   : {1000 * float(np.median(latencies)):6.1f} ms")


if __name__ == "__main__":
    main()
