"""Ray Data against the local engine on the same pictures: images/s and Ray's overhead.

Generates N synthetic photo-like JPEGs (gradients plus noise, 400x300; never
data-set pictures), then scores them with the shipped default (ONNX) three ways:
the local engine (`Predictor.predict_files`, as `picaffect predict` runs it) and
`picaffect predict --engine ray` with 1 and 2 actors on a local Ray started by
the job (its start-up included, as a user pays it). On one 2-core machine Ray
cannot be faster; the figure to read is the overhead ratio, local / Ray.

    .venv/bin/python benchmarks/bench_ray.py [--n 2000] [--cpus 2]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def synthetic_jpegs(folder: Path, n: int) -> list[Path]:
    gen = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        tint = gen.uniform(0.2, 1.0, 3)
        base = np.linspace(0, 255, 400)[None, :, None] * tint + np.linspace(0, 60, 300)[:, None, None]
        pixels = np.clip(base + gen.normal(0, 20, (300, 400, 3)), 0, 255).astype(np.uint8)
        paths.append(folder / f"{i:05d}.jpg")
        Image.fromarray(pixels).save(paths[-1], quality=88)
    return paths


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--cpus", type=int, default=os.cpu_count() or 2, help="CPUs of the local Ray")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file (for python -m benchmarks)")
    args = p.parse_args()
    from picaffect.batch.ray_job import score_with_ray
    from picaffect.inference import Predictor

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "pictures"
        synthetic_jpegs(folder, args.n)
        print(f"{args.n} synthetic 400x300 JPEGs, model default (ONNX), {os.cpu_count()} cores, "
              f"load {os.getloadavg()[0]:.1f}")
        start = time.perf_counter()
        run = Predictor.from_pretrained("default").predict_files([folder])
        local = len(run.rows) / (time.perf_counter() - start)
        print(f"  local engine (predict_files)   : {local:6.1f} img/s")
        figures = {"pictures": args.n, "local": local, "ray": {}}
        for actors in (1, 2):
            summary = score_with_ray([str(folder)], Path(tmp) / f"ray{actors}", actors=actors, num_cpus=args.cpus)
            assert summary["rows"] == args.n
            rate = summary["images_per_s"]
            print(f"  Ray Data, {actors} actor{'s' if actors > 1 else ' '}         : {rate:6.1f} img/s  "
                  f"(local / Ray = {local / rate:.2f}; {summary['seconds']:.1f} s with Ray's start-up)")
            figures["ray"][str(actors)] = {"images_per_s": rate, "seconds": summary["seconds"]}
    if args.json:
        import json

        from picaffect.core.atomic import write_bytes_atomically

        write_bytes_atomically(args.json, json.dumps(figures, indent=2).encode())


if __name__ == "__main__":
    main()
