"""Inference throughput of the thesis's models and the shipped default, NCHW against channels_last.

    python benchmarks/bench_inference.py [--models emosepar,vgg16,default] [--steps 5] [--batch 64]
        [--json figures.json]

For each model: eval mode, no_grad, random input at ``--size`` (the shipped default,
``default``, at its own input side, 224); a warm-up step, then the median of
``--steps`` timed steps per memory layout, printed as images per second.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from picaffect import models

DEFAULT_MODELS = ["emosepar", "vgg16", "inception_v3", "xception", "default"]


def network(name: str, size: int) -> tuple[torch.nn.Module, int]:
    """A registry architecture (random weights, ``size``) or the shipped ``default`` at its own side."""
    if name == "default":
        from picaffect.inference.checkpoint import load_model
        from picaffect.inference.locate import resolve_model

        model, spec = load_model(resolve_model("default"))
        return model, spec.size
    return models.create(name), size


def images_per_second(model: torch.nn.Module, x: torch.Tensor, steps: int, warmup: int) -> float:
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    times = []
    with torch.no_grad():
        for i in range(warmup + steps):
            sync()
            start = time.perf_counter()
            model(x)
            sync()
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return x.shape[0] / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated registry names")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per layout (median reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=150)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file (for python -m benchmarks)")
    args = parser.parse_args()

    device = torch.device(args.device)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"batch {args.batch}, {args.size}x{args.size}, median of {args.steps} steps")
    print(f"{'model':<18}{'NCHW img/s':>12}{'channels_last img/s':>22}{'speed-up':>10}")
    figures = {"device": str(device), "batch": args.batch, "steps": args.steps, "models": {}}
    for name in args.models.split(","):
        model, size = network(name, args.size)
        model = model.eval().to(device)
        x = torch.rand(args.batch, 3, size, size, device=device)
        nchw = images_per_second(model, x, args.steps, args.warmup)
        model = model.to(memory_format=torch.channels_last)
        cl = images_per_second(model, x.contiguous(memory_format=torch.channels_last), args.steps, args.warmup)
        print(f"{name + (f' ({size} px)' if size != args.size else ''):<18}{nchw:>12.1f}{cl:>22.1f}"
              f"{cl / nchw:>9.2f}x", flush=True)
        figures["models"][name] = {"size": size, "nchw": nchw, "channels_last": cl}
    if args.json:
        from picaffect.core.atomic import write_bytes_atomically

        write_bytes_atomically(args.json, json.dumps(figures, indent=2).encode())


if __name__ == "__main__":
    main()
