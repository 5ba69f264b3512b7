"""The per-machine cache of onnxruntime's optimised graphs: used, keyed, and never a reason to fail."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from picaffect.inference import OnnxBackend, shipped_onnx_path  # noqa: E402
from picaffect.inference import onnx_cache  # noqa: E402


@pytest.fixture
def model(tmp_path, monkeypatch):
    """A copy of the shipped default.onnx and a cache folder of this test's own."""
    path = tmp_path / "model.onnx"
    shutil.copyfile(shipped_onnx_path("default"), path)
    monkeypatch.setenv("PICAFFECT_CACHE_DIR", str(tmp_path / "cache"))
    return path


def pictures() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (2, 3, 224, 224)).astype(np.uint8)


def test_second_open_uses_the_optimised_graph_and_scores_the_same(model, tmp_path, monkeypatch):
    first = OnnxBackend(model)
    entries = list((tmp_path / "cache" / "onnx").glob("*.onnx"))
    assert len(entries) == 1 and entries[0] == onnx_cache.entry(model, __import__("onnxruntime").__version__)
    assert not list((tmp_path / "cache" / "onnx").glob(".*partial"))
    second = OnnxBackend(model)
    assert second.spec == first.spec and second.metadata == first.metadata
    np.testing.assert_allclose(second.run(pictures()), first.run(pictures()), atol=1e-5, rtol=0)
    # the second session read the cached graph: it was opened with optimisation off
    assert second.session.get_session_options().graph_optimization_level.name == "ORT_DISABLE_ALL"
    monkeypatch.setenv("PICAFFECT_CACHE_DIR", "off")
    plain = OnnxBackend(model)
    np.testing.assert_allclose(plain.run(pictures()), first.run(pictures()), atol=1e-5, rtol=0)


def test_a_new_model_file_gets_its_own_entry(model):
    before = onnx_cache.entry(model, "1.0")
    stat = model.stat()
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert onnx_cache.entry(model, "1.0") != before
    assert onnx_cache.entry(model, "2.0") != onnx_cache.entry(model, "1.0")


def test_a_damaged_entry_or_an_unwritable_cache_is_passed_over(model, tmp_path, monkeypatch):
    import onnxruntime as ort

    entry = onnx_cache.entry(model, ort.__version__)
    entry.parent.mkdir(parents=True)
    entry.write_bytes(b"not an onnx graph")
    expected = OnnxBackend(model, threads=1).run(pictures())  # opened from the model file, entry rewritten
    assert entry.stat().st_size > 1_000_000
    np.testing.assert_allclose(OnnxBackend(model).run(pictures()), expected, atol=1e-5, rtol=0)
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder would go")
    monkeypatch.setenv("PICAFFECT_CACHE_DIR", str(blocked))
    np.testing.assert_allclose(OnnxBackend(model).run(pictures()), expected, atol=1e-5, rtol=0)


def test_cache_folder_choice(monkeypatch, tmp_path):
    monkeypatch.setenv("PICAFFECT_CACHE_DIR", "off")
    assert onnx_cache.cache_dir() is None
    monkeypatch.delenv("PICAFFECT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert onnx_cache.cache_dir() == tmp_path / "picaffect" / "onnx"
