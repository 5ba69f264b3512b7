"""The shipped models remade from their make targets, and checked against the files in the package.

``check_shipped(name)`` (``make check-shipped MODEL=default|accurate``) does what
``make <name>-model`` does, in a temporary folder: ``retrain configs/<name>.yaml
--force``, then ``calibrate`` with the shipped file's own scheme and widths, on the
dataset the retrain built or reused (``runs/data/<sets>-<size>px-<split>``, shared with
the make targets). It then compares the rebuilt file with the shipped one:

- predictions on every validation row within ``TOLERANCE`` (0.01 on 1..9), and the
  shipped ONNX twin's predictions beside the shipped checkpoint's;
- the metadata (config, dataset SHA-256, version, evaluation, calibration) equal, numbers
  within ``TOLERANCE``, except what names a date or a path of the temporary folder
  (``IGNORED``); the commits are shown but may differ (a file is committed after it is made);
- the ONNX twin's metadata equal to the checkpoint's.

``record_predictions`` writes what ``tests/test_default_model.py`` checks the shipped
file against: its predictions of a few generated pictures (``synthetic_pictures``,
no licensed data) and the SHA-256 of the file that made them; ``make default-model``
writes it after the weights, so that the test follows the file it ships.
"""
from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..core.atomic import write_bytes_atomically
from ..core.errors import UsageError
from ..core.jsonsafe import jsonable
from ..inference.locate import shipped_onnx_path, shipped_path
from ..inference.provenance import read_provenance
from .provenance import sha256_of

TOLERANCE = 0.01
# Metadata that names a date or a path of the folder a file was made in: never compared.
IGNORED = ("file", "made_at", "made_by", "trained_from", "exported_by", "config.out", "config.export",
           "calibrated_by.command", "calibrated_by.made_at")
# Shown, not compared: the commit a file was made at precedes the commit that ships it.
INFORMATIONAL = ("commit", "calibrated_by.commit")
CHECKS_FOLDER = Path("results") / "shipped"


# -- comparing two model files ------------------------------------------------------------------------------------

def _leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every leaf of nested dicts and lists (``evaluation.validation.rmse_ci.0``)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{prefix}.{i}")
    else:
        yield prefix, value


def _close(a: Any, b: Any, tolerance: float) -> bool:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(a - b) <= tolerance
    return a == b


def compare_metadata(shipped: dict[str, Any], rebuilt: dict[str, Any], tolerance: float = TOLERANCE
                     ) -> dict[str, Any]:
    """Leaf by leaf: ``differences`` (path, shipped, rebuilt) outside ``IGNORED`` and ``INFORMATIONAL``, numbers
    within ``tolerance``; ``informational`` (path: [shipped, rebuilt]) where those differ; ``ok``."""
    def skipped(path: str, names: tuple[str, ...]) -> bool:
        return any(path == n or path.startswith(n + ".") for n in names)

    a, b = dict(_leaves(jsonable(shipped))), dict(_leaves(jsonable(rebuilt)))
    differences, informational = [], {}
    for path in sorted(set(a) | set(b)):
        if skipped(path, IGNORED):
            continue
        left, right = a.get(path, "(absent)"), b.get(path, "(absent)")
        if _close(left, right, tolerance):
            continue
        if skipped(path, INFORMATIONAL):
            informational[path] = [left, right]
        else:
            differences.append({"key": path, "shipped": left, "rebuilt": right})
    return {"ok": not differences, "differences": differences, "informational": informational,
            "ignored": list(IGNORED), "tolerance": tolerance}


def compare_predictions(first: np.ndarray, second: np.ndarray, tolerance: float = TOLERANCE) -> dict[str, Any]:
    """The largest difference between two (N, 2) prediction arrays, and the rows beyond ``tolerance``."""
    diff = np.abs(np.asarray(first, np.float64) - np.asarray(second, np.float64))
    worst = float(diff.max()) if diff.size else 0.0
    return {"rows": int(len(diff)), "max_abs_diff": round(worst, 6), "mean_abs_diff": round(float(diff.mean()), 6)
            if diff.size else 0.0, "rows_beyond": int((diff > tolerance).any(1).sum()) if diff.size else 0,
            "tolerance": tolerance, "ok": bool(len(diff) > 0 and worst <= tolerance)}


def _predictions(model: str | Path, data: Path, device: str) -> np.ndarray:
    """(N, 2) unclipped predictions of ``data``'s validation rows, as ``picaffect evaluate`` makes them (torch)."""
    from ..data.dataset import RatedImages
    from ..evaluation.evaluate import predict_dataset
    from ..inference import Predictor

    predictor = Predictor.from_pretrained(model, device=device, backend="torch")
    return np.asarray(predict_dataset(predictor, RatedImages(data, "validation")), np.float64)


def compare_files(shipped: Path, rebuilt: Path, data: Path, *, shipped_onnx: Path | None = None,
                  device: str = "cpu") -> dict[str, Any]:
    """Everything ``check_shipped`` compares, between two checkpoint files (and the shipped one's ONNX twin)."""
    reference = _predictions(shipped, data, device)
    result: dict[str, Any] = {
        "predictions": compare_predictions(reference, _predictions(rebuilt, data, device)),
        "metadata": compare_metadata(read_provenance(shipped), read_provenance(rebuilt)),
    }
    if shipped_onnx is not None:  # on generated pictures at the model's side: an ONNX graph takes that side only
        from ..inference.checkpoint import read

        pictures = synthetic_pictures(int(read(shipped)["spec"]["size"]))
        result["onnx_twin"] = {
            "predictions": compare_predictions(predictions_of(shipped, pictures),
                                               predictions_of(shipped_onnx, pictures, backend="onnx")),
            "metadata": compare_metadata(read_provenance(shipped), read_provenance(shipped_onnx))}
    parts = [result["predictions"], result["metadata"]]
    if "onnx_twin" in result:
        parts += [result["onnx_twin"]["predictions"], result["onnx_twin"]["metadata"]]
    result["ok"] = all(p["ok"] for p in parts)
    return result


# -- rebuilding ---------------------------------------------------------------------------------------------------

def rebuild(config_path: Path, work: Path, calibration: dict[str, Any], *, device: str = "cpu",
            name: str = "model") -> tuple[Path, Path]:
    """What ``make <name>-model`` does, inside ``work``: retrain (``--force``) from ``config_path`` with its
    ``out`` and ``export`` moved into ``work``, then calibrate with ``calibration``'s scheme and widths on the
    dataset the retrain built or reused; the rebuilt checkpoint (its ONNX twin beside it) and that dataset."""
    import yaml

    from .calibrate import calibrate
    from .retrain import retrain

    config = yaml.safe_load(config_path.read_text())
    config["out"], config["export"] = str(work / "run"), str(work / f"{name}.pt")
    work.mkdir(parents=True, exist_ok=True)
    moved = work / config_path.name
    moved.write_text(yaml.safe_dump(config, sort_keys=False))
    data = Path(retrain(moved, device=device, force=True)["dataset"])
    target = Path(config["export"])
    calibrate(target, data, target, onnx=target.with_suffix(".onnx"), device=device,
              adaptive=bool(calibration.get("adaptive")), scheme=str(calibration.get("scheme") or "pooled"))
    return target, data


def check_files(name: str, shipped: Path, config_path: Path, *, shipped_onnx: Path | None = None,
                work: Path | None = None, device: str = "cpu") -> dict[str, Any]:
    """Rebuild ``shipped`` from ``config_path`` in ``work`` (a temporary folder, removed after, by default) and
    compare; the record ``check_shipped`` writes."""
    meta = read_provenance(shipped)
    if not meta.get("calibration"):
        raise UsageError(f"{shipped}: not calibrated, so `make {name}-model` did not make it; nothing to compare")
    start = time.perf_counter()
    own = work is None
    work = Path(tempfile.mkdtemp(prefix=f"check-{name}-")) if own else Path(work)
    work.mkdir(parents=True, exist_ok=True)
    try:
        rebuilt, data = rebuild(config_path, work, meta["calibration"], device=device, name=name)
        result = compare_files(shipped, rebuilt, data, shipped_onnx=shipped_onnx, device=device)
        hashes = {"shipped_sha256": sha256_of(shipped), "rebuilt_sha256": sha256_of(rebuilt)}
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)
    return {"model": name, "shipped": str(shipped), "config": str(config_path), **hashes,
            "command": f"make check-shipped MODEL={name}", "made_at": time.strftime("%Y-%m-%d %H:%M"),
            "seconds": round(time.perf_counter() - start), **result}


def check_shipped(name: str, *, out: Path | None = None, work: Path | None = None,
                  device: str = "cpu") -> tuple[dict[str, Any], Path]:
    """Rebuild the shipped model ``name`` from ``configs/<name>.yaml`` (run from the repository root) and compare;
    write the record (``results/shipped/check-<name>.json`` unless ``out``); the record and where it went."""
    config = Path("configs") / f"{name}.yaml"
    if not config.is_file():
        raise UsageError(f"{config}: no such configuration (run from the repository root; models: default, accurate)")
    result = check_files(name, shipped_path(name), config, shipped_onnx=shipped_onnx_path(name), work=work,
                         device=device)
    return result, write_record(result, out or CHECKS_FOLDER / f"check-{name}.json")


def write_record(result: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_bytes_atomically(path, (json.dumps(jsonable(result), indent=2) + "\n").encode())


def check_table(result: dict[str, Any]) -> str:
    """The comparison as a markdown table, then each metadata difference."""
    from ..evaluation.markdown import markdown_table

    def verdict(ok: bool) -> str:
        return "same" if ok else "DIFFERS"

    p, m = result["predictions"], result["metadata"]
    rows = [["validation predictions, rebuilt vs shipped", f"{p['rows']} rows, largest difference "
             f"{p['max_abs_diff']:.4f} (tolerance {p['tolerance']})", verdict(p["ok"])],
            ["metadata, rebuilt vs shipped", f"{len(m['differences'])} differences beyond {m['tolerance']} (dates and "
             f"paths not compared)", verdict(m["ok"])]]
    twin = result.get("onnx_twin")
    if twin:
        rows += [["ONNX twin's predictions vs shipped checkpoint", f"8 generated pictures, largest difference "
                  f"{twin['predictions']['max_abs_diff']:.4f}", verdict(twin["predictions"]["ok"])],
                 ["ONNX twin's metadata vs shipped checkpoint", f"{len(twin['metadata']['differences'])} differences",
                  verdict(twin["metadata"]["ok"])]]
    for key, (a, b) in m["informational"].items():
        rows.append([f"{key} (shown, not compared)", f"shipped {a}, rebuilt {b}", "—"])
    text = f"{result['model']}: {result['shipped']} rebuilt from {result['config']}\n\n"
    text += markdown_table(["check", "what was compared", "result"], rows)
    for d in m["differences"][:20]:
        text += f"\n- {d['key']}: shipped {d['shipped']!r}, rebuilt {d['rebuilt']!r}"
    return text + f"\n\n{'PASS' if result['ok'] else 'FAIL'}: {result['model']}\n"


# -- the shipped file's own predictions, for tests/test_default_model.py ---------------------------------------

SYNTHETIC_COUNT = 8


def synthetic_pictures(side: int, n: int = SYNTHETIC_COUNT, seed: int = 0) -> np.ndarray:
    """``n`` (side, side, 3) uint8 pictures made from numbers alone (gradients, stripes, discs, noise in
    different colours): the same bytes on every machine, no licensed picture, no resizing."""
    g = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:side, 0:side]
    y, x = rows / max(side - 1, 1), cols / max(side - 1, 1)
    out = np.empty((n, side, side, 3), np.uint8)
    for i in range(n):
        colour = g.uniform(0, 1, 3)
        kind = i % 4
        if kind == 0:
            base = x[..., None] * colour + (1 - x[..., None]) * (1 - colour)
        elif kind == 1:
            base = ((((rows + cols) // (side // (4 + i))) % 2 == 0)[..., None] * colour) + 0.1  # whole numbers
        elif kind == 2:
            disc = ((x - 0.5) ** 2 + (y - 0.5) ** 2 < 0.1)[..., None]
            base = np.where(disc, colour, 1 - colour)
        else:
            base = np.clip(colour + g.normal(0, 0.15, (side, side, 3)), 0, 1)
        out[i] = np.clip(base * 255, 0, 255).astype(np.uint8)
    return out


def predictions_of(model: str | Path, pictures: np.ndarray, backend: str = "torch") -> np.ndarray:
    """(N, 2) unclipped ratings of (N, side, side, 3) pictures at the model's own side."""
    from ..inference import Predictor

    predictor = Predictor.from_pretrained(model, device="cpu", backend=backend)
    return predictor.score_images(np.ascontiguousarray(pictures.transpose(0, 3, 1, 2)))


def record_predictions(name: str, out: Path, *, model: Path | None = None, onnx: Path | None = None
                       ) -> dict[str, Any]:
    """Write ``out``: the predictions of the shipped model ``name`` (or the file ``model``) of
    ``synthetic_pictures`` at its side, with the SHA-256 of the file (and of its ONNX twin)."""
    from ..inference.checkpoint import read

    if model is None:
        model, onnx = shipped_path(name), onnx or shipped_onnx_path(name)
    side = int(read(model)["spec"]["size"])
    values = predictions_of(model, synthetic_pictures(side))
    record = {"model": name, "file": model.name, "sha256": sha256_of(model),
              "onnx_file": onnx.name if onnx else None, "onnx_sha256": sha256_of(onnx) if onnx else None,
              "pictures": {"generator": "picaffect.workflows.shipped.synthetic_pictures", "side": side,
                           "count": SYNTHETIC_COUNT, "seed": 0},
              "made_by": f"python scripts/record_predictions.py {name} (make {name}-model)",
              "predictions": [[round(float(v), 5) for v in row] for row in values]}
    write_record(record, out)
    return record
