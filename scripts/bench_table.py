"""The speed table of a `python -m benchmarks` results file (never copied by hand).

    .venv/bin/python scripts/bench_table.py                       # print the table of the latest results/bench/*.json
    .venv/bin/python scripts/bench_table.py --results results/bench/2026-12-01-030000.json

`make figures` (scripts/figures.py) writes this table into results/bench/README.md
(block ``bench``) and its predict and serve rows into README.md (block ``speed``). The
latest file is the newest full run (smoke runs and unfinished runs are skipped). Every
row carries its date, the load around it, the command that reproduces it, and its ratio
against the baseline or peer measured in the same run; a row measured while other
processes used ``max_load`` cores or more is marked *busy*.
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
MODEL_NAMES = {"emosepar": "Emosepar", "vgg16": "VGG16", "inception_v3": "Inception v3", "xception": "Xception",
               "default": "default"}
SETTING_NAMES = {"fp32_nchw": "fp32 NCHW", "fp32_channels_last": "channels_last", "bf16_channels_last": "bf16",
                 "bf16_channels_last_compile": "bf16 + compile"}


class TableError(Exception):
    """No usable results file."""


def latest(folder: Path) -> Path:
    """The newest finished full run in ``folder``."""
    runs = []
    for path in folder.glob("*.json"):
        try:
            results = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if not results.get("smoke") and results.get("finished"):
            runs.append((results["started"], path))
    if not runs:
        raise TableError(f"no finished full run in {folder}: run `make bench` first")
    return max(runs)[1]


def _f(x: float, digits: int = 1) -> str:
    return f"{x:.{digits}f}"


def _build(fig: dict) -> tuple[str, str, str]:
    one, all_, big = fig["one_worker"], fig["all_workers"], fig["four_times"]
    return (f"`picaffect build` of {', '.join(fig['sets'])} at {fig['size']} px ({all_['kept']} pictures)",
            f"{all_['images_per_s']:.0f} img/s with {fig['workers']} workers; peak {all_['peak_mb']:.0f} MB, "
            f"{big['peak_mb']:.0f} MB at 4x the pictures",
            f"1 worker {one['images_per_s']:.0f} img/s: {fig['speedup']:.2f}x")


def _train(fig: dict) -> list[tuple[str, str, str]]:
    e2e, rows = fig["end_to_end"], []
    m = e2e["median"]
    what = (f"Emosepar training, `picaffect train`, batch {fig['batch']}, {fig['size']} px "
            f"(median of {e2e['rounds']} rounds)")
    figure = f"bf16 {_f(m['bf16'])} img/s, fp32 {_f(m['fp32'])} img/s"
    if e2e.get("peer"):
        peer = e2e["peer"]
        against = (f"Keras {peer.get('keras', '?')} on TensorFlow {peer.get('tensorflow', '?')}, same run: "
                   f"{_f(m['keras'])} img/s; bf16 **{e2e['over_peer']['bf16']:.2f}x**, fp32 "
                   f"{e2e['over_peer']['fp32']:.2f}x" + ("" if e2e.get("like_for_like") else " (unlike sizes)"))
    else:
        against = "Keras peer not measured (no `--peer-python`)"
    rows.append((what, figure, against))
    for model, configs in fig["settings"].items():
        what = f"{MODEL_NAMES.get(model, model)} training step, batch {fig['batch']}, {fig['size']} px"
        if "error" in configs:
            rows.append((what, f"not measured: {configs['error']}", ""))
            continue
        base = configs.get("fp32_nchw", {}).get("images_per_s")
        parts, ratios = [], []
        for name, c in configs.items():
            label = SETTING_NAMES.get(name, name)
            if "error" in c:
                parts.append(f"{label} did not run ({c['error'][:80]})")
                continue
            parts.append(f"{label} {_f(c['images_per_s'])} img/s")
            if base and name != "fp32_nchw":
                ratios.append(f"{label} {c['images_per_s'] / base:.2f}x")
        rows.append((what, ", ".join(parts),
                     ("against fp32 NCHW: " + ", ".join(ratios)) if ratios else "no fp32 NCHW baseline"))
    return rows


def _inference(fig: dict) -> tuple[str, str, str]:
    models = fig["models"]
    sizes = sorted({m["size"] for m in models.values()})
    what = f"inference, batch {fig['batch']}, channels_last, " + " / ".join(f"{s} px" for s in sizes)
    def name(model: str, size: int) -> str:
        return MODEL_NAMES.get(model, model) + (f" ({size} px)" if len(sizes) > 1 else "")

    figure = ", ".join(f"{name(n, m['size'])} {_f(m['channels_last'])}" for n, m in models.items()) + " img/s"
    against = "NCHW, same run: " + ", ".join(f"{_f(m['nchw'])} ({m['channels_last'] / m['nchw']:.2f}x)"
                                             for m in models.values())
    return what, figure, against


def _predict(fig: dict) -> list[tuple[str, str, str]]:
    best, walls = fig["best"], fig["one_picture_wall_s"]
    return [(f"`Predictor.predict_stream`, {fig['pictures']} JPEGs, {fig['model']} model",
             f"onnx {_f(best['onnx'])} img/s", f"torch backend {_f(best['torch'])} img/s: onnx "
             f"**{fig['onnx_over_torch']:.2f}x**"),
            (f"`picaffect predict one.jpg` wall (start, imports, model load, one picture), median of {fig['walls']}",
             f"{walls['onnx']:.2f} s (onnx)", f"`--backend torch` {walls['torch']:.2f} s")]


def _serve(fig: dict) -> tuple[str, str, str]:
    baseline = (fig["in_process_before"] + fig["in_process_after"]) / 2
    p50 = "–" if fig["p50_ms"] is None else f"{fig['p50_ms'] / 1000:.2f} s"
    p99 = "–" if fig["p99_ms"] is None else f"{fig['p99_ms'] / 1000:.2f} s"
    return (f"`picaffect serve`, {fig['clients']} concurrent clients x {fig['requests']} requests of "
            f"{fig['per_request']} picture on loopback",
            f"{_f(fig['pictures_per_s'])} pictures/s; {fig['answered']} of {fig['sent']} answered; p50 {p50}, "
            f"p99 {p99}",
            f"in-process `predict_files` {_f(baseline)} img/s: {fig['service_over_in_process']:.0%}")


def _ray(fig: dict) -> tuple[str, str, str]:
    ray, local = fig["ray"], fig["local"]
    return (f"{fig['pictures']} synthetic 400x300 JPEGs, Ray Data on a local Ray (start-up included)",
            ", ".join(f"{k} actor{'s' if k != '1' else ''} {_f(v['images_per_s'])}" for k, v in ray.items())
            + " img/s",
            f"local engine {_f(local)} img/s (local / Ray: "
            + " / ".join(f"{local / v['images_per_s']:.2f}" for v in ray.values()) + ")")


RENDER = {"build": lambda f: [_build(f)], "train": _train, "inference": lambda f: [_inference(f)],
          "predict": _predict, "serve": lambda f: [_serve(f)], "ray": lambda f: [_ray(f)]}


def _when(entry: dict, results: dict) -> str:
    started = entry.get("started") or results["started"]
    when = datetime.fromisoformat(started).strftime("%Y-%m-%d %H:%M")
    load = entry.get("load_before")
    text = f"{when}, load {load:.2f}" if load is not None else when
    if entry.get("others_cpu") is not None:
        text += f", others {entry['others_cpu']:.2f} cores"
    if entry.get("quiet") is False:
        text = f"**busy** ({text})"
    return text


def rows(results: dict, names: tuple[str, ...] | None = None) -> list[list[str]]:
    """One table row per figure: what, figure, against (same run), when, command; only the benchmarks ``names``
    when given."""
    out = []
    for entry in results["benchmarks"]:
        if names is not None and entry["name"] not in names:
            continue
        when, command = _when(entry, results), f"`{entry['command']}`"
        if entry["status"] != "ok":
            out.append([entry["name"], f"not measured: {entry['reason']}", "", when, command])
            continue
        for what, figure, against in RENDER[entry["name"]](entry["figures"]):
            out.append([what, figure, against, when, command])
    return out


def table(results: dict, source: str) -> str:
    """The generated block: the table, then what the run was and what the absolute figures mean elsewhere."""
    m = results["machine"]
    libs = m.get("libraries", {})
    load = results.get("load_at_start")
    busy_start = load is not None and load >= results["max_load"]
    at_start = "load average unknown" if load is None else f"load average {load:.2f} at the start"
    lines = ["| what | figure | against, same run | measured | command |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows(results)]
    lines += [
        "",
        f"Measured by `{results['command']}` ({'**smoke run: the figures mean nothing**; ' if results['smoke'] else ''}"
        f"{at_start}{' (**busy**)' if busy_start else ''}) on "
        f"{m['cores']} cores ({m['cpu'] or 'CPU'}; {', '.join(m['cpu_flags']) or 'no listed vector flags'}), "
        f"{m['memory_gb']} GB, torch {libs.get('torch')}, onnxruntime {libs.get('onnxruntime')}; results in "
        f"`{source}`, this table by `make figures`. *Measured* gives the 1-minute load average "
        f"before each benchmark (the bench waits for it to settle under {results['max_load']} after the previous "
        f"one) and *others*: the cores that processes outside the bench used meanwhile (sampled from /proc by "
        f"process tree); **busy** marks a row where they used {results['max_load']} or more.",
        "",
        "The absolute figures are this machine's: on another CPU they scale roughly with the cores and the vector "
        "units (bf16 gains need AVX512-BF16 or AMX; without them fp32 is the faster choice), and on a GPU training "
        "and inference are another story. The ratios compare two things measured in the same run on the same "
        "machine, and carry over better. `make bench` measures yours (about 25 minutes on 2 cores).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, help="a results file (default: the latest full run in --folder)")
    p.add_argument("--folder", type=Path, default=ROOT / "results" / "bench")
    args = p.parse_args(argv)
    try:
        path = args.results or latest(args.folder)
    except TableError as e:
        print(e, file=sys.stderr)
        return 2
    try:
        source = str(path.resolve().relative_to(ROOT))
    except ValueError:
        source = str(path)
    print(table(json.loads(path.read_text()), source))
    return 0


if __name__ == "__main__":
    sys.exit(main())
