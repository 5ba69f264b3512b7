"""Two ways to run a network on pictures: torch (a checkpoint) or onnxruntime (an ONNX file).

Each backend has ``spec`` (a ``ModelSpec``) and ``run(images, tta)``: uint8 pictures
(N, 3, size, size), as numpy or torch, -> the network's raw outputs (N, 2) as a
float32 numpy array; ``spec.decode`` turns them into 1..9 ratings. A calibrated
model (``picaffect calibrate``) also has ``calibration``, and
``run_with_difficulty`` gives its error head's (N, 2) difficulty beside the
outputs (None for a model without an error head). Neither imports
torch at module level: the ONNX path (``Predictor`` with ``backend="onnx"``,
``picaffect predict`` with the shipped default) never loads torch at all.

``choose`` decides which backend ``auto`` means. Measured on the 2-core CPU
machine (results/bench/README.md): onnxruntime is faster than torch for
the shipped EfficientNet-Lite0 and for Emosepar, so ``auto`` takes ONNX whenever
an ONNX file is at hand (a ``.onnx`` model or the shipped ``default.onnx``) and
onnxruntime is installed, unless a CUDA device is asked for or present (torch
then runs on the GPU; onnxruntime here is the CPU build).
"""
from __future__ import annotations

import json
import os
from importlib import util
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import CheckpointError, UsageError
from ..core.names import BACKENDS
from . import onnx_cache
from .locate import shipped_onnx_path
from .intervals import DIFFICULTY_OUTPUT, Calibration, from_onnx_metadata
from .spec import ModelSpec

ONNX_FORMAT = "picaffect.onnx"
ONNX_VERSION = "1"
ONNX_INPUT, ONNX_OUTPUT = "pixels", "outputs"


def installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it."""
    return util.find_spec(module) is not None


def cpu_count() -> int:
    """The cores this process may use (its affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _cuda_present() -> bool:
    """A cheap guess, without importing torch: an NVIDIA device node and torch to drive it."""
    return Path("/dev/nvidiactl").exists() and installed("torch")


def onnx_file(ref: str | Path) -> Path | None:
    """The ONNX file a model reference names or ships with, if there is one."""
    path = Path(ref)
    if path.suffix.lower() == ".onnx" and path.is_file():
        return path
    if path.is_dir() and (path / "best.onnx").is_file():
        return path / "best.onnx"
    if not path.exists():
        return shipped_onnx_path(str(ref))
    return None


def choose(ref: str | Path, backend: str = "auto", device: str = "auto") -> str:
    """``"torch"`` or ``"onnx"`` for this model reference, backend wish and device; torch-free."""
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    is_onnx_file = Path(ref).suffix.lower() == ".onnx"
    if backend == "torch":
        if is_onnx_file:
            raise UsageError(f"{ref} is an ONNX file: it runs with the onnx backend only (leave out --backend)")
        _need_torch(ref)
        return "torch"
    if backend == "onnx" or is_onnx_file:
        if device == "cuda":
            raise UsageError("the onnx backend runs on the CPU; use --backend torch for --device cuda")
        if not installed("onnxruntime"):
            raise UsageError("the onnx backend needs onnxruntime: pip install onnxruntime")
        return "onnx"
    # auto
    wants_gpu = device == "cuda" or (device == "auto" and _cuda_present())
    if not wants_gpu and installed("onnxruntime") and onnx_file(ref) is not None:
        return "onnx"
    if not installed("torch") and installed("onnxruntime"):
        return "onnx"  # a torch checkpoint without torch: converting fails with a clear message below
    _need_torch(ref)
    return "torch"


def _need_torch(ref: str | Path) -> None:
    if not installed("torch"):
        raise CheckpointError(f"{ref}: a torch checkpoint needs torch to read: pip install 'picaffect[train]', or "
                              f"score an ONNX file made with `picaffect export {ref} model.onnx` on a machine "
                              f"that has torch")


class TorchBackend:
    """A torch network (eval mode, batch norms folded, channels-last) on one device."""
    name = "torch"

    def __init__(self, model, spec: ModelSpec, device: Any = "cpu", calibration: Calibration | None = None,
                 error_head: dict | None = None) -> None:
        import torch

        self.device = torch.device(device)
        model = model.eval()
        if hasattr(model, "fuse_for_inference"):  # batch norms folded into convolutions: same output, faster
            model = model.fuse_for_inference()
        self.model = model.to(self.device).to(memory_format=torch.channels_last)
        self.spec = spec
        self.calibration = calibration
        self.with_difficulty = None
        if error_head is not None:
            from .forward import WithDifficulty

            self.with_difficulty = WithDifficulty(self.model, error_head["weight"], error_head["bias"]).to(self.device)

    def run(self, images, tta: bool = False) -> np.ndarray:
        import torch

        from .forward import outputs, to_input

        if not isinstance(images, torch.Tensor):
            images = torch.from_numpy(np.asarray(images))
        return outputs(self.model, to_input(images, self.spec, self.device), tta).cpu().numpy()

    def release_memory(self) -> None:
        """Nothing to do: torch hands freed CPU tensors back to the C allocator at once."""

    def run_with_difficulty(self, images, tta: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """``run``'s outputs and the error head's difficulty (None without one), from one forward pass."""
        if self.with_difficulty is None:
            return self.run(images, tta), None
        import torch

        from .forward import outputs_and_difficulty, to_input

        if not isinstance(images, torch.Tensor):
            images = torch.from_numpy(np.asarray(images))
        y, d = outputs_and_difficulty(self.with_difficulty, to_input(images, self.spec, self.device), tta)
        return y.cpu().numpy(), d.cpu().numpy()


class OnnxBackend:
    """An ONNX file written by ``picaffect export`` (its metadata holds the spec), run by onnxruntime on the CPU."""
    name = "onnx"
    device = "cpu"
    model = None

    def __init__(self, source: str | Path | bytes, threads: int | None = None, name: str | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or cpu_count()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # Threads sleep between batches instead of spinning: half the start-up CPU, and the decoding threads
        # that run beside the network (Predictor.predict_stream) keep their cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        where = "ONNX model" if isinstance(source, bytes) else str(source)
        cached = None if isinstance(source, bytes) else onnx_cache.entry(Path(source), ort.__version__)
        self.session = _open_cached(cached, options) if cached is not None else None
        if self.session is None:
            self.session = _open(source, options, where, cached)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata = meta
        self.spec = spec_from_metadata(meta, where)
        self.model_name = name or meta.get("picaffect.model_name", "model")
        self.input_name = self.session.get_inputs()[0].name
        # Files from before calibration existed have one output and no calibration: they predict, without intervals.
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.calibration = from_onnx_metadata(meta, self.output_names, where)
        self.has_difficulty = DIFFICULTY_OUTPUT in self.output_names

    def run(self, images, tta: bool = False) -> np.ndarray:
        return self.run_with_difficulty(images, tta)[0]

    def run_with_difficulty(self, images, tta: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """The (N, 2) outputs and, from a calibrated file, its (N, 2) ``difficulty`` output (else None)."""
        x = np.asarray(images)
        size = self.spec.size
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2:] != (size, size):
            raise UsageError(f"the ONNX model takes pictures of shape (N, 3, {size}, {size}), not {x.shape}")
        # uint8 (a transposed view, usually) to scaled float32 in one pass over the pixels
        x = np.multiply(x, np.float32(self.spec.input_scale), out=np.empty(x.shape, np.float32), casting="unsafe")
        got = self.session.run(None, {self.input_name: x})
        if tta:
            mirrored = self.session.run(None, {self.input_name: np.ascontiguousarray(x[..., ::-1])})
            got = [(a + b) / 2 for a, b in zip(got, mirrored)]
        difficulty = got[self.output_names.index(DIFFICULTY_OUTPUT)] if self.has_difficulty else None
        return got[0].astype(np.float32, copy=False), difficulty

    def release_memory(self) -> None:
        """Give back what onnxruntime's memory arena grew to for the largest batch so far.

        The arena keeps it for the life of the session (500 MB after one batch of 32 at
        224 px, against 100 MB loaded); onnxruntime shrinks it only at the end of a run
        that asks to, so this runs one blank picture that asks. A server calls it when
        it goes idle; a batch after it grows the arena again.
        """
        import onnxruntime as ort

        options = ort.RunOptions()
        options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        size = self.spec.size
        self.session.run(None, {self.input_name: np.zeros((1, 3, size, size), np.float32)}, options)


def _open_cached(cached: Path, options) -> Any:
    """A session from the cached optimised graph (optimisation off: it is done), or None when there is none."""
    import onnxruntime as ort

    if not cached.is_file():
        return None
    level = options.graph_optimization_level
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        return ort.InferenceSession(str(cached), options, providers=["CPUExecutionProvider"])
    except Exception:  # a damaged entry is a missing one: the model file itself is opened instead
        cached.unlink(missing_ok=True)
        return None
    finally:
        options.graph_optimization_level = level


def _open(source: str | Path | bytes, options, where: str, cached: Path | None) -> Any:
    """A session from the model itself; with ``cached``, its optimised graph is also written there."""
    import onnxruntime as ort

    partial = None
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_name(f".{cached.name}.{os.getpid()}.partial")
            options.optimized_model_filepath = str(partial)
        except OSError:  # no writable cache: only slower starts
            partial = None
    model = source if isinstance(source, bytes) else str(source)
    try:
        try:
            session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception:
            if partial is None:
                raise
            partial.unlink(missing_ok=True)  # perhaps the cache could not be written: once more without it
            partial, options.optimized_model_filepath = None, ""
            session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own untyped errors for unreadable files
        raise CheckpointError(f"{where}: not a readable ONNX model ({str(e).splitlines()[0][:200]})") from None
    if partial is not None:
        try:
            os.replace(partial, cached)  # whole or not at all: another process may be opening it
        except OSError:
            partial.unlink(missing_ok=True)
    return session


def onnx_metadata(spec: ModelSpec, name: str, extra: dict[str, Any] | None = None) -> dict[str, str]:
    """The ``metadata_props`` that make an ONNX file enough to score pictures on its own."""
    from dataclasses import asdict

    return {
        "picaffect.format": ONNX_FORMAT, "picaffect.version": ONNX_VERSION,
        "picaffect.model_name": name, "picaffect.spec": json.dumps(asdict(spec)),
        "picaffect.architecture": spec.architecture, "picaffect.size": str(spec.size),
        "picaffect.input_scale": repr(float(spec.input_scale)),
        "picaffect.output_scale": repr(float(spec.output_scale)),
        "picaffect.output_offset": repr(float(spec.output_offset)),
        "picaffect.input": f"'{ONNX_INPUT}': float32 (N, 3, {spec.size}, {spec.size}), RGB pictures squashed to "
                           f"{spec.size}x{spec.size} (bilinear, antialiased), uint8 pixels times input_scale",
        "picaffect.output": f"'{ONNX_OUTPUT}': (N, 2) valence, arousal = output * output_scale + output_offset on "
                            f"the 1..9 SAM scale (clip to 1..9)",
        "picaffect.metadata": json.dumps(extra or {}, default=str),
    }


def spec_from_metadata(meta: dict[str, str], where: str = "ONNX model") -> ModelSpec:
    if meta.get("picaffect.format") != ONNX_FORMAT or "picaffect.spec" not in meta:
        raise CheckpointError(f"{where}: an ONNX file without picaffect metadata (input size, scaling, output "
                              f"mapping); write it with `picaffect export MODEL OUT.onnx`")
    if meta.get("picaffect.version") != ONNX_VERSION:
        raise CheckpointError(f"{where}: picaffect ONNX version {meta.get('picaffect.version')}; this picaffect "
                              f"reads version {ONNX_VERSION}: upgrade picaffect")
    return ModelSpec.from_dict(json.loads(meta["picaffect.spec"]))
