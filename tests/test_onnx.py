"""ONNX export, the onnxruntime backend, and the torch-free predict path."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from picaffect.app.cli import needs_allocator, main
from picaffect.app.demo import sample_photographs
from picaffect.core.errors import CheckpointError, UsageError
from picaffect.inference import ModelSpec, OnnxBackend, Predictor, shipped_onnx_path
from picaffect.inference.backends import choose

from conftest import write_tiny_emosepar

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[Path]:
    found = sample_photographs(tmp_path_factory.mktemp("photos"))
    if not found:
        pytest.skip("no sample photographs (install scikit-learn / scikit-image)")
    return found


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A small Emosepar checkpoint with random weights and non-trivial running statistics."""
    return write_tiny_emosepar(tmp_path_factory.mktemp("ckpt") / "tiny.pt", {"note": "test"})


def arrays(predictor: Predictor, photos: list[Path]) -> np.ndarray:
    return np.stack([predictor.prepare(p) for p in photos]).transpose(0, 3, 1, 2)


def test_shipped_onnx_matches_torch_on_the_demo_photographs(photos):
    """The shipped default.onnx and default.pt give the same ratings within 1e-4 (and with mirror TTA)."""
    assert shipped_onnx_path("default") is not None, "run `make default-onnx`"
    torch_p = Predictor.from_pretrained("default", device="cpu", backend="torch")
    onnx_p = Predictor.from_pretrained("default", device="cpu", backend="onnx")
    assert (torch_p.backend_name, onnx_p.backend_name) == ("torch", "onnx")
    x = arrays(torch_p, photos)
    for tta in (False, True):
        a, b = torch_p.score_images(x, tta=tta), onnx_p.score_images(x, tta=tta)
        assert a.shape == b.shape == (len(photos), 2)
        np.testing.assert_allclose(b, a, atol=1e-4, rtol=0)
    # and through the whole predict path (decoding included)
    rows_t = torch_p.predict_files(photos).rows
    rows_o = onnx_p.predict_files(photos).rows
    assert [r["valence"] for r in rows_t] == pytest.approx([r["valence"] for r in rows_o], abs=2e-4)


def test_shipped_accurate_model_onnx_matches_torch(photos):
    """The second shipped model, by name, on both backends: the same ratings within 1e-4."""
    assert shipped_onnx_path("accurate") is not None, "run `make accurate-model`"
    torch_p = Predictor.from_pretrained("accurate", device="cpu", backend="torch")
    onnx_p = Predictor.from_pretrained("accurate", backend="onnx")
    assert torch_p.size == onnx_p.size == 300 and onnx_p.spec.architecture == "lite_ensemble"
    x = arrays(torch_p, photos[:4])
    np.testing.assert_allclose(onnx_p.score_images(x), torch_p.score_images(x), atol=1e-4, rtol=0)
    # calibrated like the default (make accurate-calibration): the same calibration on both backends, and the
    # accuracy on each source predicted without it, as the model card gives it
    assert torch_p.calibration is not None and onnx_p.calibration == torch_p.calibration
    held_out = {r["source"]: r for r in torch_p.calibration.info["held_out_accuracy"]}
    assert set(held_out) == {"oasis", "emotion6", "bass", "all"} and held_out["all"]["n"] == 3463
    assert all(0 < held_out[s]["valence_r"] < 1 for s in ("oasis", "emotion6", "bass"))


def test_same_padding_moves_into_the_convolutions(tmp_path):
    """Lite's TF "SAME" Pads are folded into each Conv's pads (no Pad left), at even and odd sizes alike."""
    import torch

    from picaffect import models
    from picaffect.inference import model_record, save_atomic
    from picaffect.inference.onnx_export import export_onnx

    assert not [n for n in onnx.load(str(shipped_onnx_path("default"))).graph.node if n.op_type == "Pad"], \
        "the shipped default.onnx has Pad nodes: rerun `make default-onnx`"
    torch.manual_seed(0)
    model = models.create("efficientnet_lite0", pretrained=None).eval()
    for size in (64, 67):  # 64: pads (0, 1) on every stride-2 conv; 67: odd sizes along the way, (1, 1) too
        spec = ModelSpec(architecture="efficientnet_lite0", size=size, output_scale=4.0, output_offset=5.0)
        ckpt = save_atomic(model_record(model, spec), tmp_path / f"lite{size}.pt")
        out = export_onnx(ckpt, tmp_path / f"lite{size}.onnx")
        graph = onnx.load(str(out)).graph
        assert not [n for n in graph.node if n.op_type == "Pad"]
        assert any(list(a.ints) != [0, 0, 0, 0] for n in graph.node if n.op_type == "Conv" for a in n.attribute
                   if a.name == "pads")
        x = np.random.default_rng(size).integers(0, 256, (3, 3, size, size)).astype(np.uint8)
        torch_p, onnx_p = Predictor.from_pretrained(ckpt, device="cpu"), Predictor.from_pretrained(out)
        np.testing.assert_allclose(onnx_p.score_images(x), torch_p.score_images(x), atol=1e-4, rtol=0)


def test_export_cli_writes_an_onnx_file_that_scores_alone(checkpoint, photos, tmp_path, capsys):
    out = tmp_path / "tiny.onnx"
    assert main(["export", str(checkpoint), str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["picaffect.format"] == "picaffect.onnx" and meta["picaffect.model_name"] == "tiny"
    assert (meta["picaffect.size"], meta["picaffect.architecture"]) == ("80", "emosepar")
    assert float(meta["picaffect.output_scale"]) == 4.0 and float(meta["picaffect.output_offset"]) == 5.0
    assert float(meta["picaffect.input_scale"]) == pytest.approx(1 / 255)
    assert json.loads(meta["picaffect.metadata"])["note"] == "test"

    # onnxruntime alone, reading only the metadata, scores like the torch checkpoint
    import onnxruntime as ort
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    m = session.get_modelmeta().custom_metadata_map
    torch_p = Predictor.from_pretrained(checkpoint, device="cpu")
    x = arrays(torch_p, photos)
    raw = session.run(None, {"pixels": x.astype(np.float32) * np.float32(m["picaffect.input_scale"])})[0]
    by_hand = raw * float(m["picaffect.output_scale"]) + float(m["picaffect.output_offset"])
    np.testing.assert_allclose(by_hand, torch_p.score_images(x), atol=1e-4, rtol=0)

    onnx_p = Predictor.from_pretrained(out)
    assert onnx_p.backend_name == "onnx" and onnx_p.size == 80
    np.testing.assert_allclose(onnx_p.score_images(x, tta=True), torch_p.score_images(x, tta=True), atol=1e-4, rtol=0)
    # --backend onnx with a torch checkpoint converts it in memory
    converted = Predictor.from_pretrained(checkpoint, backend="onnx")
    np.testing.assert_allclose(converted.score_images(x), torch_p.score_images(x), atol=1e-4, rtol=0)
    # the predict command takes the ONNX file as --model
    assert main(["predict", str(photos[0]), "--model", str(out), "--format", "jsonl"]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert 1 <= row["valence"] <= 9


def test_backend_choice_and_refusals(checkpoint, tmp_path):
    assert choose("default", "auto", "cpu") == "onnx"
    assert choose("default", "auto", "cuda") == "torch"
    assert choose(checkpoint, "auto", "cpu") == "torch"
    assert choose(checkpoint, "onnx", "cpu") == "onnx"
    with pytest.raises(UsageError, match="onnx backend only"):
        choose(tmp_path / "m.onnx", "torch", "cpu")
    with pytest.raises(UsageError, match="runs on the CPU"):
        choose("default", "onnx", "cuda")
    with pytest.raises(UsageError, match="unknown backend"):
        choose("default", "tensorrt", "cpu")
    foreign = tmp_path / "foreign.onnx"
    foreign.write_bytes(b"not onnx")
    with pytest.raises(CheckpointError, match="not a readable ONNX"):
        OnnxBackend(foreign)
    with pytest.raises(UsageError, match="shape"):
        Predictor.from_pretrained("default").score_images(np.zeros((1, 3, 100, 100), np.uint8))


def test_the_launcher_reexecutes_only_for_torch():
    assert not needs_allocator(["predict", "x.jpg"])  # shipped default: ONNX, no allocator re-exec
    assert needs_allocator(["predict", "x.jpg", "--backend", "torch"])
    assert needs_allocator(["train", "--data", "d"])
    assert not needs_allocator(["build", "out"])


PROBE = """
import sys
from picaffect.app.cli import needs_allocator, main
assert not needs_allocator(["predict", sys.argv[1]])
code = main(["predict", sys.argv[1], "--format", "csv"])
from picaffect import Predictor
Predictor.from_pretrained("default").predict(sys.argv[1])
heavy = sorted(m for m in ("torch", "pandas", "matplotlib", "scipy") if m in sys.modules)
print("HEAVY", ",".join(heavy), "CODE", code)
"""


def test_predict_path_never_imports_torch(photos):
    """`picaffect predict` with the shipped default, in a fresh interpreter, leaves torch unimported."""
    done = subprocess.run([sys.executable, "-c", PROBE, str(photos[0])], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last == "HEAVY  CODE 0", f"{last}\n{done.stderr}"
