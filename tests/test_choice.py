"""The choice of the shipped models: made without the validation rows, and the configs follow it."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from picaffect.workflows import choice

ROOT = Path(__file__).resolve().parents[1]


def _write_features(folder: Path, rows: int = 240, seed: int = 0) -> None:
    """Six feature files over one set of pictures; only ``lite2@260`` carries the ratings' signal, and the
    validation rows' ratings are NaN, so that reading them anywhere would poison every figure."""
    rng = np.random.default_rng(seed)
    source = np.array([choice.SOURCES[i % 3] for i in range(rows)])
    split = np.array(["validation" if i % 10 == 0 else ("test" if i % 4 == 0 else "train") for i in range(rows)])
    group = np.array([f"g{i // 2}" for i in range(rows)])
    ratings = rng.uniform(1, 9, size=(rows, 2))
    signal = np.concatenate([ratings, ratings[:, :1] * ratings[:, 1:]], 1)
    ratings[split == "validation"] = np.nan
    ids = np.array([f"p{i}" for i in range(rows)])
    folder.mkdir()
    for name in (choice.DEFAULT_FEATURES, *choice.MEMBERS):
        width = choice.LAST_STAGE + 8 if name == choice.DEFAULT_FEATURES else 12
        x = rng.normal(size=(rows, width))
        if name == "lite2@260":
            x[:, :3] += signal
        np.savez(folder / f"{name}.npz", features=x.astype(np.float32), ratings=ratings, id=ids, source=source,
                 split=split, group=group)


def test_choice_finds_the_informative_member_without_reading_validation_rows(tmp_path):
    _write_features(tmp_path / "f")
    lines: list[str] = []
    record = choice.choose(tmp_path / "f", tmp_path / "out", log=lines.append)
    accurate = record["chosen"]["accurate"]
    assert accurate["stages"][0]["model_options"]["members"].startswith("lite2@260")
    assert accurate["build_size"] >= 260
    for candidate in record["candidates"]:
        assert np.isfinite(candidate["mean"]["score"]), candidate["name"]  # NaN validation ratings never reached
        assert sum(s["n"] for s in candidate["sources"].values()) == sum(record["rows"].values())
    assert sum(record["rows"].values()) == 216  # 240 pictures less the 24 validation rows
    saved = json.loads((tmp_path / "out" / "choice.json").read_text())
    assert saved["chosen"] == record["chosen"]
    assert "**chosen: accurate**" in choice.candidates_table(record)
    assert not (tmp_path / "out" / "README.md").exists()  # make figures renders the record, not the choice
    assert lines and "validation rows not read" in lines[0]


def test_feature_files_that_hold_other_pictures_are_refused(tmp_path):
    _write_features(tmp_path / "f")
    with np.load(tmp_path / "f" / "lite1@240.npz") as f:
        data = dict(f)
    data["id"] = data["id"][::-1]
    np.savez(tmp_path / "f" / "lite1@240.npz", **data)
    with pytest.raises(ValueError, match="lite1@240.npz: its pictures differ"):
        choice.read_rows(tmp_path / "f")


@pytest.mark.skipif(not (ROOT / "results/choice/choice.json").is_file(), reason="no choice record committed yet")
@pytest.mark.parametrize("model", ["default", "accurate"])
def test_configs_make_what_the_choice_chose(model):
    chosen = json.loads((ROOT / "results/choice/choice.json").read_text())["chosen"][model]
    config = yaml.safe_load((ROOT / f"configs/{model}.yaml").read_text())
    assert config["build"]["size"] == chosen["build_size"]
    assert config["stages"] == chosen["stages"]
