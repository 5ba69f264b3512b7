"""Writing into a model file where it came from: config, data, code, and the figures it earns.

``retrain`` calls ``making_metadata`` (the configuration, the SHA-256 of the built
dataset's manifest, the picaffect version, the git commit of the source tree) and
``validation_block`` on the validation predictions its evaluation wrote;
``calibrate`` calls ``calibrated_metadata``, which adds the evaluation record
(``evaluation/record.py``): the leave-one-source-out figures from the very held-out
predictions the calibration is made of (never computed twice), and the validation
rows scored once by the file being written. What reads it back:
``inference/provenance.py``.
"""
from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..core.jsonsafe import jsonable
from ..evaluation import record as figures
from ..inference.intervals import Calibration
from ..inference.provenance import calibration_summary

MANIFEST = "manifest.parquet"
VALIDATION_PROTOCOL = ("the validation rows of the built dataset (groups of near-duplicate pictures never straddle "
                       "splits), used for no choice and scored once by this file")
PREDICTIONS_PROTOCOL = ("each source predicted by a model retrained without it (held-out predictions given to "
                        "picaffect calibrate)")


def sha256_of(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read a megabyte at a time (model files run to tens of megabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dataset_sha256(data: str | Path) -> str | None:
    """SHA-256 of a built dataset's manifest (every row read, its rating, status, split and picture path), or None.

    Of the manifest's rows written out as CSV, not of the Parquet file's bytes: each build stamps its
    manifest with a random build id (which pairs it with its picture cache), so the bytes of two builds of the
    same pictures always differ, while this digest is the same for them and changes with any row.
    """
    path = Path(data) / MANIFEST
    if not path.is_file():
        return None
    import pandas as pd

    rows = pd.read_parquet(path).to_csv(index=False, lineterminator="\n")
    return hashlib.sha256(rows.encode("utf-8")).hexdigest()


def source_commit(root: Path | None = None) -> str:
    """``git rev-parse HEAD`` of the source tree picaffect runs from, with ``-dirty`` when tracked files differ
    from it; ``unknown`` outside a checkout (an installed wheel) or without git."""
    if root is None:
        import picaffect

        package = Path(picaffect.__file__).resolve().parent
        root = package.parents[1]
        if (root / "src" / "picaffect").resolve() != package:  # an installed copy, not a checkout's src/
            return "unknown"
    if not (root / ".git").exists():
        return "unknown"
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=30)
        status = subprocess.run(["git", "--no-optional-locks", "-C", str(root), "status", "--porcelain",
                                 "--untracked-files=no"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if head.returncode != 0 or status.returncode != 0 or not head.stdout.strip():
        return "unknown"
    return head.stdout.strip() + ("-dirty" if status.stdout.strip() else "")


def making_metadata(config: dict[str, Any] | None, data: str | Path, made_by: str) -> dict[str, Any]:
    """What ``retrain`` writes into the file it exports: how it was made, from what, by which code."""
    return {"config": config, "dataset_sha256": dataset_sha256(data), "version": __version__,
            "commit": source_commit(), "made_by": made_by, "made_at": time.strftime("%Y-%m-%d %H:%M")}


def validation_block(y: np.ndarray, yhat: np.ndarray, sources: np.ndarray) -> dict[str, Any] | None:
    """The validation figures (pooled and by source), or None without validation rows."""
    if len(y) == 0:
        return None
    return figures.validation(y, yhat, sources, VALIDATION_PROTOCOL)


def validation_predictions(record: dict[str, Any], data: str | Path, *, device: str = "auto",
                           batch_size: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ratings, predictions, sources) of ``data``'s validation rows, scored by the model of ``record`` as
    ``picaffect evaluate`` scores them (torch, no mirror, unclipped)."""
    from ..core.runtime import pick_device
    from ..data.dataset import RatedImages
    from ..evaluation.evaluate import predict_dataset
    from ..inference import Predictor
    from ..inference.checkpoint import build_model

    dataset = RatedImages(data, "validation")
    rows = dataset.rows.reset_index(drop=True)
    y = rows[["valence", "arousal"]].to_numpy(float)
    sources = rows["source"].astype(str).to_numpy()
    if len(rows) == 0:
        return y, y.copy(), sources
    model, spec = build_model(record)
    yhat = predict_dataset(Predictor(model, spec, device=pick_device(device)), dataset, batch_size)
    return y, np.asarray(yhat, np.float64), sources


def loso_protocol(protocol: dict[str, Any]) -> str:
    """One sentence for the leave-one-source-out block, from the calibration's protocol."""
    if protocol.get("name") == "refit-head":
        return ("each source predicted by the shipped recipe refitted on the other sources' rows: "
                + str(protocol.get("description", "the model's readout on its frozen features")))
    return PREDICTIONS_PROTOCOL


def calibrated_metadata(record: dict[str, Any], data: str | Path, y: np.ndarray, yhat: np.ndarray,
                        sources: np.ndarray, protocol: dict[str, Any], calibration: Calibration, command: str, *,
                        device: str = "auto", batch_size: int = 64) -> dict[str, Any]:
    """The metadata of a file ``calibrate`` writes: the file's own, plus its evaluation record, the calibration's
    summary and who calibrated it (command, version, commit, the calibration dataset's SHA-256).

    ``y``, ``yhat``, ``sources``: the held-out predictions the calibration was made of (each source predicted
    without its own rows), which become the leave-one-source-out figures.
    """
    metadata = dict(record.get("metadata") or {})
    vy, vhat, vsources = validation_predictions(record, data, device=device, batch_size=batch_size)
    loso = figures.leave_one_source_out(y, yhat, sources, loso_protocol(protocol))
    metadata["evaluation"] = figures.evaluation_record(loso, validation_block(vy, vhat, vsources))
    metadata["calibration"] = calibration_summary(calibration)
    metadata["calibrated_by"] = {"command": command, "version": __version__, "commit": source_commit(),
                                 "dataset_sha256": dataset_sha256(data), "made_at": time.strftime("%Y-%m-%d %H:%M")}
    return jsonable(metadata)
