"""Inference throughput of the thesis's models, NCHW against channels_last.

    python benchmarks/bench_inference.py [--models emosepar,vgg16] [--steps 5] [--batch 64]

For each model: eval mode, no_grad, 150x150 random input; a warm-up step, then the
median of ``--steps`` timed steps per memory layout, printed as images per second.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from picaffect import models

DEFAULT_MODELS = ["emosepar", "vgg16", "inception_v3", "xception"]


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
    args = parser.parse_args()

    device = torch.device(args.device)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"batch {args.batch}, {args.size}x{args.size}, median of {args.steps} steps")
    print(f"{'model':<14}{'NCHW img/s':>12}{'channels_last img/s':>22}{'speed-up':>10}")
    for name in args.models.split(","):
        model = models.create(name).eval().to(device)
        x = torch.rand(args.batch, 3, args.size, args.size, device=device)
        nchw = images_per_second(model, x, args.steps, args.warmup)
        model = model.to(memory_format=torch.channels_last)
        cl = images_per_second(model, x.contiguous(memory_format=torch.channels_last), args.steps, args.warmup)
        print(f"{name:<14}{nchw:>12.1f}{cl:>22.1f}{cl / nchw:>9.2f}x", flush=True)


if __name__ == "__main__":
    main()
