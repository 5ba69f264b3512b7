"""Training throughput: what each setting buys per model, and `picaffect train` against the thesis's stack.

Both parts run on one built dataset (its side, 150 px for the thesis's models), batch 64:

1. Settings, per model (Emosepar, VGG16, Inception v3, Xception), each model in a fresh
   process with the allocator setting the `picaffect` launcher uses for training: one
   training step (the thesis's SGD with Nesterov momentum, MSE loss, random batches from
   the image cache, batch preparation not timed) in
     - ``fp32_nchw``: the plain loop anyone writes first, the baseline;
     - ``fp32_channels_last``: the memory layout `picaffect train` uses;
     - ``bf16_channels_last``: bf16 autocast as well (`picaffect train --precision bf16`);
     - ``bf16_channels_last_compile``: and ``torch.compile`` (when it builds here; its
       first step, compilation included, is reported apart).
   Each configuration warms up (at least one step and ``--warmup`` seconds), then is
   timed for ``--seconds`` (at least 2 and at most ``--max-steps`` steps), and reports
   the batch over the median step time. A time budget, not a fixed step count: VGG16
   at 150 px takes tens of seconds a step on 2 cores, Emosepar about one.

2. End to end, Emosepar: `picaffect train --epochs 2 --limit 64*STEPS` (the second
   epoch's images/s from history.csv; the first warms up) in fp32 and in bf16 and, with
   ``--peer-python``, the thesis's own stack (Keras 3 on TensorFlow,
   ``../shared/peers/keras_emosepar.py``: same model, batch, size and optimiser),
   alternately in ``--rounds`` rounds so that a noise on the machine hits all alike;
   medians, and each against the Keras peer (issue 10's goal: 2x).

    .venv/bin/python benchmarks/bench_train.py --data runs/data/oasis+emotion6+bass-150px-thesis \
        [--peer-python .venv-peer/bin/python]
        [--models emosepar,vgg16] [--seconds 10] [--steps 12] [--rounds 2] [--json figures.json]

The peer's Python: ``make peer-venv`` (python3 -m venv .venv-peer && .venv-peer/bin/pip
install tensorflow-cpu keras). Build the dataset first: picaffect build
runs/data/oasis+emotion6+bass-150px-thesis $(python -m picaffect.data.rated_sets sources ../shared/data)
--size 150 --split thesis (``python -m benchmarks`` does it for you, in data/rated_sets.py's folder scheme).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
PEER = Path(__file__).resolve().parents[1].parent / "shared" / "peers" / "keras_emosepar.py"
MODELS = ("emosepar", "vgg16", "inception_v3", "xception")
# name -> (channels_last, bf16 autocast, torch.compile)
CONFIGS = {"fp32_nchw": (False, False, False), "fp32_channels_last": (True, False, False),
           "bf16_channels_last": (True, True, False), "bf16_channels_last_compile": (True, True, True)}


# -- part 1: settings, in a child process per model ---------------------------------------------------------------
def measure_setting(data: str, model_name: str, config: str, batch: int, warmup_s: float, seconds: float,
                    max_steps: int) -> dict:
    """Images/s of one configuration: median step time after a warm-up, over a time budget."""
    import numpy as np
    import torch

    from picaffect.data.cache import open_cache
    from picaffect.models import create

    channels_last, bf16, compiled = CONFIGS[config]
    images = open_cache(Path(data) / "images.npy")
    torch.manual_seed(0)
    model = create(model_name)
    model.train()
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=layout)
    net = torch.compile(model) if compiled else model
    opt = torch.optim.SGD(model.parameters(), lr=1e-5, momentum=0.9, nesterov=True)
    rng = np.random.default_rng(0)

    def one_step() -> float:
        idx = np.sort(rng.choice(len(images), batch, replace=len(images) < batch))
        x = torch.from_numpy(images[idx]).permute(0, 3, 1, 2).float().div(255).contiguous(memory_format=layout)
        y = torch.rand(batch, 2) * 8 + 1
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.mse_loss(net(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - start

    began = time.perf_counter()
    first = one_step()  # compiles, when compiling
    warmup_steps = 1
    while warmup_steps < 1 + compiled or time.perf_counter() - began < warmup_s:
        one_step()
        warmup_steps += 1
    times: list[float] = []
    timed_from = time.perf_counter()
    while len(times) < max_steps and (len(times) < 2 or time.perf_counter() - timed_from < seconds):
        times.append(one_step())
    return {"images_per_s": batch / statistics.median(times), "steps": len(times), "warmup_steps": warmup_steps,
            "first_step_s": first, "timed_s": sum(times)}


def settings_child(args: argparse.Namespace) -> None:
    """Every configuration of one model in this process; one JSON line on stdout."""
    out = {}
    for config in args.configs.split(","):
        try:
            out[config] = measure_setting(args.data, args.model, config, args.batch, args.warmup, args.seconds,
                                          args.max_steps)
        except Exception as e:  # torch.compile may not build on this machine: say so, and go on
            out[config] = {"error": f"{type(e).__name__}: {e}"[:400]}
        print(f"  {args.model:12s} {config:28s} " + (f"{out[config]['images_per_s']:7.1f} img/s "
              f"({out[config]['steps']} steps)" if "error" not in out[config] else out[config]["error"]),
              file=sys.stderr, flush=True)
    print(json.dumps(out))


def settings(args: argparse.Namespace) -> dict:
    """Part 1 for every model, each in a fresh process with the launcher's allocator setting."""
    from picaffect.core.runtime import allocator_env

    env = allocator_env() or dict(os.environ)
    result = {}
    for name in args.models.split(","):
        cmd = [sys.executable, __file__, "--child", "settings", "--data", args.data, "--model", name, "--configs",
               args.configs, "--batch", str(args.batch), "--warmup", str(args.warmup), "--seconds", str(args.seconds),
               "--max-steps", str(args.max_steps)]
        run = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, text=True, env=env)
        if run.returncode != 0:
            result[name] = {"error": f"the child process exited with status {run.returncode}"}
            continue
        result[name] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


# -- part 2: picaffect train against the Keras peer ---------------------------------------------------------------
def picaffect_loop(data: str, steps: int, model_name: str, precision: str = "fp32", batch: int = 64) -> float:
    """`picaffect train` for two epochs of ``steps`` batches; the second epoch's images/s."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [str(VENV_BIN / "picaffect"), "train", "--data", data, "--model", model_name, "--out", f"{tmp}/run",
               "--epochs", "2", "--limit", str(batch * steps), "--batch-size", str(batch), "--device", "cpu",
               "--precision", precision]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        with open(f"{tmp}/run/history.csv") as f:
            return float(list(csv.DictReader(f))[-1]["images_per_s"])


def keras_peer(python: str, steps: int, script: Path = PEER) -> dict:
    """The thesis's stack: Keras 3 + TensorFlow, Emosepar, batch 64, 150 px; its training and inference img/s."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("GLIBC_TUNABLES", None)  # the peer runs as its users run it
    out = subprocess.run([python, str(script), "--steps", str(steps)], check=True, capture_output=True, text=True,
                         env=env)
    line = [ln for ln in out.stdout.splitlines() if "train" in ln][-1]
    return {"train": float(line.split("train")[1].split("img/s")[0]),
            "inference": float(line.split("inference")[1].split("img/s")[0]), "line": line.strip()}


def peer_versions(python: str) -> dict:
    """The peer's Keras and TensorFlow versions, for the results file."""
    code = ("import json, keras, tensorflow as tf; "
            "print(json.dumps({'keras': keras.__version__, 'tensorflow': tf.__version__}))")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    return json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else {"error": out.stderr[-300:]}


def end_to_end(args: argparse.Namespace) -> dict:
    """fp32, bf16 and (given its Python) the Keras peer, alternately; medians and ratios."""
    names = ["fp32", "bf16"] + (["keras"] if args.peer_python else [])
    runs: dict[str, list[float]] = {name: [] for name in names}
    peer_inference: list[float] = []
    for r in range(args.rounds):
        for precision in ("fp32", "bf16"):
            runs[precision].append(picaffect_loop(args.data, args.steps, "emosepar", precision, args.batch))
        if args.peer_python:
            peer = keras_peer(args.peer_python, args.steps, args.peer_script)
            runs["keras"].append(peer["train"])
            peer_inference.append(peer["inference"])
        print(f"  round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in runs.items()), flush=True)
    median = {name: statistics.median(values) for name, values in runs.items()}
    # The peer script is fixed at batch 64 and 150 px: a ratio against it means something only at those.
    result = {"model": "emosepar", "steps": args.steps, "rounds": args.rounds, "runs": runs, "median": median,
              "like_for_like": args.batch == 64 and data_side(args.data) == 150, "peer": None, "over_peer": None}
    if args.peer_python:
        result["peer"] = {"python": args.peer_python, "script": str(args.peer_script),
                          "inference_median": statistics.median(peer_inference), **peer_versions(args.peer_python)}
        result["over_peer"] = {name: median[name] / median["keras"] for name in ("fp32", "bf16")}
    return result


def data_side(data: str) -> int:
    """The side of a built dataset's cached pictures (the side the models train at)."""
    from picaffect.data.cache import open_cache

    return int(open_cache(Path(data) / "images.npy").shape[1])


def report(figures: dict) -> None:
    print(f"Training, batch {figures['batch']}, {figures['size']} px, {os.cpu_count()} cores; settings: median step "
          f"after {figures['warmup_s']:.0f} s of warm-up, timed for {figures['seconds']:.0f} s (2 to "
          f"{figures['max_steps']} steps)")
    for model, configs in figures["settings"].items():
        if "error" in configs:
            print(f"  {model:12s}: {configs['error']}")
            continue
        base = configs.get("fp32_nchw", {}).get("images_per_s")
        for name, c in configs.items():
            if "error" in c:
                print(f"  {model:12s} {name:28s}: did not run ({c['error'][:100]})")
                continue
            ratio = f"  ({c['images_per_s'] / base:.2f}x fp32 NCHW)" if base and name != "fp32_nchw" else \
                ("   <- baseline" if name == "fp32_nchw" else "")
            extra = f", first step {c['first_step_s']:.1f} s (compiling)" if name.endswith("compile") else ""
            print(f"  {model:12s} {name:28s}: {c['images_per_s']:7.1f} img/s over {c['steps']} steps{extra}{ratio}")
    e2e = figures["end_to_end"]
    print(f"Emosepar, `picaffect train` end to end, {e2e['steps']} steps an epoch, {e2e['rounds']} rounds "
          f"(median img/s)")
    for name, m in e2e["median"].items():
        against = f"  ({e2e['over_peer'][name]:.2f}x the Keras peer)" if e2e["over_peer"] and name != "keras" else ""
        label = "keras+tensorflow" if name == "keras" else f"picaffect {name}"
        print(f"  {label:18s}: {m:6.1f} img/s{against}  runs: " + " ".join(f"{v:.1f}" for v in e2e["runs"][name]))
    if not e2e["peer"]:
        print("  (no --peer-python: the Keras peer was not measured)")
    elif not e2e["like_for_like"]:
        print("  (the peer runs at batch 64 and 150 px, this run did not: the ratios compare unlike runs)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="a built dataset (its side is the training side)")
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated, for part 1")
    p.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated, of " + ", ".join(CONFIGS))
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per configuration (at least a step)")
    p.add_argument("--seconds", type=float, default=10.0, help="seconds timed per configuration (at least 2 steps)")
    p.add_argument("--max-steps", type=int, default=40)
    p.add_argument("--steps", type=int, default=12, help="batches per epoch of the end-to-end runs")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--peer-python", default=None, help="a Python with tensorflow and keras: run the Keras peer")
    p.add_argument("--peer-script", type=Path, default=PEER)
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file (for python -m benchmarks)")
    p.add_argument("--child", choices=("settings",), help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    args = p.parse_args()
    unknown = set(args.configs.split(",")) - set(CONFIGS)
    if unknown:
        p.error(f"unknown configuration {', '.join(sorted(unknown))}; choose from {', '.join(CONFIGS)}")
    if args.child == "settings":
        settings_child(args)
        return
    figures = {"batch": args.batch, "size": data_side(args.data), "warmup_s": args.warmup, "seconds": args.seconds,
               "max_steps": args.max_steps, "settings": settings(args), "end_to_end": end_to_end(args)}
    report(figures)
    if args.json:
        from picaffect.core.atomic import write_bytes_atomically

        write_bytes_atomically(args.json, json.dumps(figures, indent=2).encode())


if __name__ == "__main__":
    main()
