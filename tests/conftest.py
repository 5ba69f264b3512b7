"""Shared test helpers: where the real rated sets live, and small image writers."""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _onnx_cache_in_a_temporary_folder(tmp_path_factory):
    """The tests' optimised ONNX graphs go to a folder of their own, not the user's ~/.cache (children inherit it)."""
    saved = os.environ.get("PICAFFECT_CACHE_DIR")
    os.environ["PICAFFECT_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if saved is None:
        del os.environ["PICAFFECT_CACHE_DIR"]
    else:
        os.environ["PICAFFECT_CACHE_DIR"] = saved


def shared_data() -> Path:
    """``../shared/data`` beside the project, or ``$PICAFFECT_DATA``."""
    return Path(os.environ.get("PICAFFECT_DATA", ROOT.parent / "shared" / "data"))


def require_sets(*names: str) -> Path:
    """Skip the calling test, with the reason, unless the named real sets are present."""
    root = shared_data()
    missing = [n for n in names if not (root / n).is_dir()]
    if missing:
        pytest.skip(f"real rated sets {', '.join(missing)} not found under {root} (set PICAFFECT_DATA)")
    return root


def write_image(path: Path, size=(40, 30), color=(200, 30, 30), mode: str = "RGB", fmt: str | None = None) -> Path:
    """A flat-coloured picture; enough for readers and the build to chew on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path, format=fmt)
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def write_learnable_set(root: Path, n: int = 96, size: int = 24, seed: int = 0) -> Path:
    """A rated set whose ratings follow the pictures: brightness sets valence, redness arousal.

    Written as a generic CSV on 1..9, so that the build, training and evaluation can
    be exercised end to end on something a network can actually learn in a few steps.
    """
    gen = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    lines = ["file,valence,arousal,group"]
    for i in range(n):
        brightness, red = gen.uniform(0, 1, 2)
        pixels = np.empty((size, size, 3), dtype=np.uint8)
        pixels[...] = (int(255 * red), int(200 * brightness), int(200 * brightness))
        pixels = np.clip(pixels.astype(int) + gen.integers(-10, 10, pixels.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(root / f"p{i}.png")
        lines.append(f"p{i}.png,{1 + 8 * brightness:.3f},{1 + 8 * red:.3f},g{i // 2}")
    (root / "ratings.csv").write_text("\n".join(lines) + "\n")
    return root / "ratings.csv"


def build_learnable_dataset(out: Path, n: int = 96, size: int = 24, split: str = "thesis") -> Path:
    from picaffect.data.build import SourceSpec, build

    ratings = write_learnable_set(out.parent / f"{out.name}-source", n=n, size=size)
    spec = SourceSpec("csv", ratings, "synthetic", {"path": "file", "valence": "valence", "arousal": "arousal",
                                                    "scale": "1,9", "group": "group"})
    build(out, [spec], size=size, split=split, progress=False, plots=False)
    return out


def build_three_sources(root: Path, n: int = 48) -> Path:
    """A built dataset of three learnable sources (alpha, beta, gamma; brightness sets valence, redness arousal),
    ``n`` pictures each, in ``root / "data"``: what leave-one-source-out code needs."""
    from picaffect.data.build import SourceSpec, build

    specs = []
    for k, name in enumerate(("alpha", "beta", "gamma")):
        ratings = write_learnable_set(root / f"{name}-files", n=n, size=24, seed=k)
        specs.append(SourceSpec("csv", ratings, name, {"path": "file", "valence": "valence", "arousal": "arousal",
                                                       "scale": "1,9", "group": "group"}))
    build(root / "data", specs, size=24, split="thesis", progress=False, plots=False)
    return root / "data"


@pytest.fixture(scope="module")
def three_sources(tmp_path_factory) -> Path:
    """``build_three_sources`` with 48 pictures a source, built once per test module (calibration writes beside it)."""
    return build_three_sources(tmp_path_factory.mktemp("three"), n=48)


def write_tiny_emosepar(path: Path, metadata: dict | None = None) -> Path:
    """A small Emosepar with random weights read at 80 px (its smallest comfortable input), its BatchNorm running
    statistics made to look trained so that features differ between pictures; ``metadata`` goes into the file."""
    import torch

    from picaffect import models
    from picaffect.inference import ModelSpec, model_record, save_atomic

    torch.manual_seed(0)
    model = models.create("emosepar").eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    spec = ModelSpec(architecture="emosepar", size=80, output_scale=4.0, output_offset=5.0)
    return save_atomic(model_record(model, spec, metadata=metadata), path)


@pytest.fixture(scope="module")
def tiny_emosepar(tmp_path_factory) -> Path:
    """``write_tiny_emosepar`` with the metadata ``retrain`` writes (config, dataset, version, commit, maker) and
    nothing ``calibrate`` adds: the model the calibration, provenance and interval tests start from."""
    metadata = {"config": {"stages": [{"name": "probe"}]}, "dataset_sha256": "ab" * 32, "version": "0.1.0",
                "commit": "c0ffee", "made_by": "picaffect retrain tiny.yaml"}
    return write_tiny_emosepar(tmp_path_factory.mktemp("ckpt") / "tiny.pt", metadata)


@pytest.fixture(scope="session")
def learnable_dataset(tmp_path_factory) -> Path:
    return build_learnable_dataset(tmp_path_factory.mktemp("data") / "learnable")


@pytest.fixture(scope="session")
def emosepar_run(learnable_dataset, tmp_path_factory) -> Path:
    """One small Emosepar run on the learnable set, trained once for every test that scores with a run."""
    from picaffect.training.engine import TrainConfig, train

    out = tmp_path_factory.mktemp("runs") / "emosepar"
    train(TrainConfig(data=str(learnable_dataset), model="emosepar", out=str(out), recipe="modern", epochs=2,
                      batch_size=16, size=80, lr=3e-3, device="cpu"), progress=False)
    return out


def sklearn_photo(name: str, side: int):
    """A scikit-learn sample photo as an ImageNet model sees it: shorter side to ``side``, centre
    crop, (1, 3, side, side) float in [0, 1]. Skips when scikit-learn is absent."""
    import numpy as np
    import torch
    from PIL import Image

    datasets = pytest.importorskip("sklearn.datasets")
    img = Image.fromarray(datasets.load_sample_image(name))
    w, h = img.size
    s = side / min(w, h)
    img = img.resize((round(w * s), round(h * s)), Image.BILINEAR)
    w, h = img.size
    left, top = (w - side) // 2, (h - side) // 2
    img = img.crop((left, top, left + side, top + side))
    return torch.from_numpy(np.array(img)).permute(2, 0, 1).float().div(255).unsqueeze(0)


class SlowPredictor:
    """The Predictor's public face with a model that takes its time, recording each batch it scores;
    ``extra`` keys go into every row (new keys of a predictor's rows must reach the answers)."""

    def __init__(self, predictor, delay: float, extra: dict | None = None) -> None:
        self.spec, self.name, self.delay, self.batches = predictor.spec, predictor.name, delay, []
        self.extra = extra or {}

    def rows_for_arrays(self, arrays, tta=False):
        self.batches.append(len(arrays))
        time.sleep(self.delay)
        return [{"valence": 5.0, "arousal": 5.0, "quadrant": "pleasant-activated", "error": None, **self.extra}
                for _ in arrays]
