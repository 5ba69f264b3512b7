"""Score many pictures with Ray Data: decoding tasks, a pool of model actors, Parquet shards.

    picaffect predict --engine ray photos/ --out scores/                 # a local Ray, started here
    picaffect predict --engine ray 'posts/**/*.jpg' --recursive --out scores/ --address auto
    picaffect predict --engine ray table.parquet --path-column file --out scores/

SOURCE is folders, files and globs (as ``picaffect predict``), or one Parquet/CSV
table with a path column (relative paths are read relative to the table's folder).
The job: the paths become a Ray dataset; ``map_batches`` decodes them in parallel
tasks (EXIF-rotated RGB squashed to the model's square, as everywhere else); a
pool of actors, each holding one model (ONNX by default), scores them; the rows
(path, valence, arousal, quadrant, error) go to ``OUT/*.parquet`` and the counts to
``OUT/_summary.json``. Every input is a row: an unreadable picture is a row with its
error. Actors that die are restarted and their batches retried.

The cluster: ``--address`` (``auto``, ``ray://HOST:10001``), else ``RAY_ADDRESS``,
else a local Ray started for the job (and stopped after it).
"""
from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..data.images import ImageProblem, load_square
from ..data.pictures import collect_pictures
from ..core.errors import UsageError
from ..inference import Predictor, quadrant
from ..inference.backends import OnnxBackend, choose, onnx_file

COLUMNS = ["path", "valence", "arousal", "quadrant", "error"]
# Beside the shards; the leading "_" keeps Parquet readers of the folder (pandas, pyarrow, Spark) off it.
SUMMARY = "_summary.json"
TABLE_ENDINGS = (".parquet", ".csv")


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise UsageError("--engine ray needs Ray Data: pip install 'picaffect[ray]'") from None
    return ray


def input_paths(sources: list[str], *, recursive: bool = False,
                path_column: str = "path") -> tuple[list[str], list[str]]:
    """The pictures to score and notes on what was passed over."""
    if len(sources) == 1 and Path(sources[0]).suffix.lower() in TABLE_ENDINGS and Path(sources[0]).is_file():
        table = Path(sources[0])
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq

        data = pq.read_table(table) if table.suffix.lower() == ".parquet" else pcsv.read_csv(table)
        if path_column not in data.column_names:
            raise UsageError(f"{table} has no column {path_column!r} (columns: {', '.join(data.column_names[:10])}); "
                             f"name it with --path-column")
        paths = [str(p) if p is None or Path(str(p)).is_absolute() else str(table.parent / str(p))
                 for p in data.column(path_column).to_pylist()]
        return paths, []
    pictures, notes = collect_pictures(sources, recursive=recursive)
    return [str(p) for p in pictures], notes


def _model_info(model: str, backend: str) -> tuple[str, int]:
    """The backend the actors will use, and the model's input side (read once, on the driver)."""
    kind = choose(model, backend, "cpu")
    return kind, Predictor.from_pretrained(model, device="cpu", backend=kind).size


def _decode(batch: dict[str, np.ndarray], size: int) -> dict[str, Any]:
    """Ray task: paths -> (n, size, size, 3) uint8 pixels and an error per row ('' when read)."""
    paths = [str(p) for p in batch["path"]]
    pixels = np.zeros((len(paths), size, size, 3), np.uint8)
    errors = []
    for i, path in enumerate(paths):
        try:
            pixels[i] = load_square(path, size)
            errors.append("")
        except (ImageProblem, OSError, ValueError) as e:
            errors.append(str(e) or type(e).__name__)
    return {"path": np.array(paths, dtype=object), "pixels": pixels, "error": np.array(errors, dtype=object)}


class Scorer:
    """Ray actor: one model, loaded once; scores decoded batches into output rows."""

    def __init__(self, model: str, backend: str, threads: int, tta: bool, crash_once: str | None = None) -> None:
        if backend == "onnx" and onnx_file(model) is not None:
            self.predictor = Predictor(OnnxBackend(onnx_file(model), threads=threads, name=model), name=model)
        else:
            if backend == "torch":
                import torch
                torch.set_num_threads(threads)
            self.predictor = Predictor.from_pretrained(model, device="cpu", backend=backend)
        self.tta = tta
        self.crash_once = crash_once  # tests: the first call dies, as a lost node would

    def __call__(self, batch: dict[str, np.ndarray]):
        import pyarrow as pa

        if self.crash_once and not os.path.exists(self.crash_once):
            Path(self.crash_once).write_text(str(os.getpid()))
            os._exit(1)
        errors = [str(e) for e in batch["error"]]
        good = [i for i, e in enumerate(errors) if not e]
        values = self.predictor.predict_arrays(batch["pixels"][good], self.tta) if good else np.empty((0, 2))
        valence: list[float | None] = [None] * len(errors)
        arousal: list[float | None] = [None] * len(errors)
        quadrants: list[str | None] = [None] * len(errors)
        for i, (v, a) in zip(good, values):
            valence[i], arousal[i] = round(float(v), 4), round(float(a), 4)
            quadrants[i] = quadrant(valence[i], arousal[i])
        return pa.table({"path": [str(p) for p in batch["path"]], "valence": pa.array(valence, pa.float64()),
                         "arousal": pa.array(arousal, pa.float64()), "quadrant": pa.array(quadrants, pa.string()),
                         "error": pa.array([e or None for e in errors], pa.string())})


def check_out(out: str | Path | None) -> Path:
    """The folder the Parquet shards and ``_summary.json`` go to, checked before Ray starts: a job needs one,
    and a name with an ending (``scores.csv``) is a file asked for where a folder is written."""
    if out is None:
        raise UsageError("--engine ray writes Parquet shards: give --out DIR/")
    out = Path(out)
    if out.suffix:
        raise UsageError(f"--engine ray: --out {out} should be a folder (shards and _summary.json go there)")
    return out


def score_with_ray(sources: list[str], out: str | Path, *, model: str = "default", address: str | None = None,
                   actors: int | None = None, batch_size: int = 32, tta: bool = False, recursive: bool = False,
                   path_column: str = "path", backend: str = "auto", num_cpus: int | None = None,
                   decode_batch: int = 16, crash_once: str | None = None) -> dict[str, Any]:
    """Run the job; returns (and writes to ``out/_summary.json``) the counts."""
    out = check_out(out)
    ray = _ray()
    if out.exists() and any(out.glob("*.parquet")):
        raise UsageError(f"--out {out} already holds Parquet shards; pick an empty folder")
    started = time.perf_counter()
    paths, notes = input_paths([str(s) for s in sources], recursive=recursive, path_column=path_column)
    if not paths:
        raise UsageError("no pictures to score")
    kind, size = _model_info(model, backend)
    address = address or os.environ.get("RAY_ADDRESS") or None
    own_cluster = not ray.is_initialized()
    if own_cluster:
        kwargs: dict[str, Any] = dict(address=address, include_dashboard=False, log_to_driver=False,
                                      configure_logging=False)
        if address is None:
            kwargs.update(num_cpus=num_cpus, object_store_memory=_object_store_bytes())
        ray.init(**kwargs)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*")  # retries have no named parameter yet
        try:
            cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
            actors = actors or max(1, cpus // 2)
            # Leave a quarter of the CPUs to the decoding tasks, so the pool never starves them.
            actor_cpus = min(1.0, 0.75 * cpus / actors)
            threads = max(1, cpus // actors)
            context = ray.data.DataContext.get_current()
            context.enable_progress_bars = False
            blocks = max(1, min(200, -(-len(paths) // batch_size)))  # enough blocks to keep every actor busy
            ds = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=blocks)
            ds = ds.map_batches(_decode, fn_kwargs={"size": size}, batch_size=decode_batch, batch_format="numpy",
                                num_cpus=0.25, max_retries=3)
            scorer = {"model": str(model), "backend": kind, "threads": threads, "tta": tta, "crash_once": crash_once}
            ds = ds.map_batches(Scorer, fn_constructor_kwargs=scorer,
                                batch_size=batch_size, batch_format="numpy",
                                compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=actor_cpus,
                                max_restarts=3, max_task_retries=3)
            out.mkdir(parents=True, exist_ok=True)
            ds.write_parquet(str(out))
        finally:
            if own_cluster:
                ray.shutdown()
    import pyarrow as pa
    import pyarrow.parquet as pq

    shards = sorted(out.glob("*.parquet"))
    errors = pa.concat_tables([pq.read_table(s, columns=["error"]) for s in shards]).column("error") \
        if shards else None
    rows_out = len(errors) if errors is not None else 0
    failed = rows_out - errors.null_count if errors is not None else 0
    seconds = time.perf_counter() - started
    summary = {"engine": "ray", "model": str(model), "backend": kind, "address": address or "local",
               "actors": actors, "inputs": len(paths), "rows": rows_out, "scored": rows_out - failed,
               "failed": failed, "notes": [str(n) for n in notes], "shards": len(shards), "seconds": round(seconds, 2),
               "images_per_s": round(len(paths) / seconds, 1) if seconds > 0 else None,
               "columns": COLUMNS, "scale": "1..9"}
    (out / SUMMARY).write_text(json.dumps(summary, indent=1) + "\n")
    if rows_out != len(paths):
        raise RuntimeError(f"Ray job wrote {rows_out} rows for {len(paths)} inputs (see {out / SUMMARY})")
    return summary


def _object_store_bytes() -> int:
    """A modest object store for a local Ray (the decoded pictures pass through it): 20 % of memory, 256 MB..2 GB."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 4 << 30
    return int(min(2 << 30, max(256 << 20, total // 5)))
