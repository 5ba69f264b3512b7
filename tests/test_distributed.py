"""torchrun: two CPU processes with gloo train like one, keep identical replicas, and resume.

The fixture (nearly flat-coloured pictures, so batch norms divide by tiny spreads)
is chaotic at large learning rates: at lr 1e-3 one process with 1 thread and with
2 threads already drift apart by 4 % in loss within 4 SGD steps. At the thesis's
lr 1e-5 float rounding stays small, and 1 and 2 processes agree within 1e-4.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from picaffect.inference import read
from picaffect.training.config import TrainConfig
from picaffect.training.engine import train

pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason="this torch has no gloo backend")

OPTIONS = dict(model="emosepar", recipe="thesis", lr=1e-5, batch_size=16, size=80, device="cpu",
               model_options={"dropout": 0.0})


def torchrun(data: Path, out: Path, epochs: int, *extra: str) -> subprocess.CompletedProcess:
    args = ["--data", str(data), "--model", "emosepar", "--out", str(out), "--epochs", str(epochs),
            "--recipe", "thesis", "--lr", "1e-5", "--batch-size", "16", "--size", "80", "--device", "cpu",
            "--model-option", "dropout=0", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PICAFFECT_NO_ALLOCATOR_TUNING": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "picaffect", "train", *args], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done


def history(run: Path) -> list[dict[str, float]]:
    with open(run / "history.csv") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def test_two_gloo_processes_train_like_one_and_resume(learnable_dataset, tmp_path):
    one = tmp_path / "one"
    torch.set_num_threads(1)
    try:
        train(TrainConfig(data=str(learnable_dataset), out=str(one), epochs=2, **OPTIONS), progress=False)
    finally:
        torch.set_num_threads(max(1, os.cpu_count() or 1))

    two = tmp_path / "two"
    done = torchrun(learnable_dataset, two, 1)
    assert done.stdout.count("epoch 1/1") == 1, "rank 0 alone logs"
    summary = json.loads((two / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["rank_weight_spread"] == 0.0  # the replicas are identical
    torchrun(learnable_dataset, two, 2, "--resume")  # continue to the second epoch from last.pt
    summary = json.loads((two / "summary.json").read_text())
    assert summary["rank_weight_spread"] == 0.0 and summary["steps"] == 2 * summary["train_rows"] // 16

    a, b = history(one), history(two)
    assert [r["step"] for r in a] == [r["step"] for r in b] == [4.0, 8.0]
    for ra, rb in zip(a, b):
        for key in ("train_loss", "lr"):
            assert rb[key] == pytest.approx(ra[key], rel=1e-4), key
        # Test figures use the BN running statistics; with Emosepar's Keras-style BN (1 / t start) two
        # processes and one differ by up to 0.12 % here (measured; an open item, see the README's torchrun notes).
        for key in ("test_loss", "test_rmse"):
            assert rb[key] == pytest.approx(ra[key], rel=2e-3), key
    wa, wb = read(one / "last.pt")["weights"], read(two / "last.pt")["weights"]
    # Convolution biases right before a batch norm have a zero gradient up to rounding: they drift by noise
    # (about 1e-4 here), so weights are compared absolutely as well as relatively.
    for k in wa:
        if wa[k].is_floating_point():
            assert torch.allclose(wa[k], wb[k], rtol=1e-3, atol=3e-4), (k, float((wa[k] - wb[k]).abs().max()))
    assert len(read(two / "last.pt")["training"]["rng_by_rank"]) == 2
