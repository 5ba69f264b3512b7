"""Emosepar training throughput: `picaffect train`'s own loop against a plain PyTorch loop.

Both run in fresh processes on the same built dataset, batch 64, 150x150:

- baseline: the plain loop anyone would write first (NCHW, glibc's allocator as it
  comes, random batches from the same cache);
- picaffect: `picaffect train --epochs 2 --limit 64*STEPS` started through the
  `picaffect` launcher (channels_last, allocator tuning, its own data loading);
  the figure is the second epoch's images/s from history.csv (the first warms up).

    .venv/bin/python benchmarks/bench_train.py --data out/jn [--steps 12]

With ``--peer-python`` it instead measures, alternately in ``--rounds`` rounds (so
that a noisy shared machine hits all three alike), `picaffect train` in fp32, in
bf16 autocast (``--precision bf16``), and the thesis's own stack (Keras 3 on
TensorFlow, ``../shared/peers/keras_emosepar.py``, same batch, size and optimiser),
and prints each against the Keras peer (issue 10's goal: 2x):

    python3 -m venv ../peer && ../peer/bin/pip install tensorflow-cpu
    .venv/bin/python benchmarks/bench_train.py --data out/jn --peer-python ../peer/bin/python --rounds 2

Build the dataset first: picaffect build out/jn --source oasis=... (150 px).
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VENV_BIN = Path(sys.executable).parent


def plain_loop(data: str, steps: int, model_name: str) -> float:
    """The baseline: a textbook loop; returns images/s over the steps after two warm-up steps."""
    import numpy as np
    import torch

    from picaffect.data.cache import open_cache
    from picaffect.models import create

    images = open_cache(Path(data) / "images.npy")
    model = create(model_name)
    opt = torch.optim.SGD(model.parameters(), lr=1e-5, momentum=0.9, nesterov=True)
    rng = np.random.default_rng(0)
    times = []
    for step in range(steps + 2):
        idx = np.sort(rng.choice(len(images), 64, replace=False))
        x = torch.from_numpy(images[idx]).permute(0, 3, 1, 2).float().div(255).contiguous()
        y = torch.rand(64, 2) * 8 + 1
        t = time.perf_counter()
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return 64 / float(np.median(times[2:]))


def picaffect_loop(data: str, steps: int, model_name: str, precision: str = "fp32") -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [str(VENV_BIN / "picaffect"), "train", "--data", data, "--model", model_name, "--out", f"{tmp}/run",
               "--epochs", "2", "--limit", str(64 * steps), "--batch-size", "64", "--device", "cpu",
               "--precision", precision]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        with open(f"{tmp}/run/history.csv") as f:
            return float(list(csv.DictReader(f))[-1]["images_per_s"])


PEER = Path(__file__).resolve().parents[1].parent / "shared" / "peers" / "keras_emosepar.py"


def keras_peer(python: str, steps: int) -> float:
    """The thesis's stack: Keras 3 + TensorFlow, Emosepar, batch 64, 150 px; its training img/s."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    out = subprocess.run([python, str(PEER), "--steps", str(steps)], check=True, capture_output=True, text=True,
                         env=env)
    line = [ln for ln in out.stdout.splitlines() if "train" in ln][-1]
    return float(line.split("train")[1].split("img/s")[0])


def against_peer(data: str, steps: int, python: str, rounds: int) -> None:
    """fp32, bf16 and the Keras peer, alternately; medians and ratios."""
    import statistics

    rates: dict[str, list[float]] = {"picaffect fp32": [], "picaffect bf16": [], "keras+tensorflow": []}
    for r in range(rounds):
        rates["picaffect fp32"].append(picaffect_loop(data, steps, "emosepar", "fp32"))
        rates["picaffect bf16"].append(picaffect_loop(data, steps, "emosepar", "bf16"))
        rates["keras+tensorflow"].append(keras_peer(python, steps))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in rates.items()), flush=True)
    peer = statistics.median(rates["keras+tensorflow"])
    print(f"Emosepar training, batch 64, 150 px, {os.cpu_count()} cores, {steps} steps, {rounds} rounds (median img/s)")
    for name, values in rates.items():
        m = statistics.median(values)
        print(f"  {name:18s}: {m:6.1f} img/s  ({m / peer:.2f}x the Keras peer)  runs: "
              + " ".join(f"{v:.1f}" for v in values))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--model", default="emosepar")
    p.add_argument("--peer-python", default=None, help="a Python with tensorflow: measure against the Keras peer")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--child", choices=("plain",), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.peer_python:
        against_peer(args.data, args.steps, args.peer_python, args.rounds)
        return
    if args.child == "plain":
        print(plain_loop(args.data, args.steps, args.model))
        return

    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    env["PICAFFECT_NO_ALLOCATOR_TUNING"] = "1"
    out = subprocess.run([sys.executable, __file__, "--data", args.data, "--steps", str(args.steps), "--model",
                          args.model, "--child", "plain"], check=True, capture_output=True, text=True, env=env)
    plain = float(out.stdout.strip().splitlines()[-1])
    ours = picaffect_loop(args.data, args.steps, args.model)
    print(f"{args.model} training, batch 64, {os.cpu_count()} cores, {args.steps} steps")
    print(f"  plain PyTorch loop (NCHW, stock allocator): {plain:6.1f} img/s   <- baseline")
    print(f"  picaffect train                           : {ours:6.1f} img/s   ({ours / plain:.2f}x; goal >= 60 img/s)")


if __name__ == "__main__":
    main()
