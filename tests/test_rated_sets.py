"""The rated sets named once (``picaffect.data.rated_sets``) and the one scheme of built dataset folders,
read as the Makefile and the shell scripts read them."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from picaffect.data.rated_sets import RATED_SETS, dataset_folder, dataset_name, main, source_arguments

ROOT = Path(__file__).resolve().parents[1]


def test_the_scheme_spells_the_folders_the_scripts_already_use():
    assert RATED_SETS == ("oasis", "emotion6", "bass")
    assert dataset_name(224, "group") == "oasis+emotion6+bass-224px-group"
    assert dataset_folder(300, "group") == Path("runs/data/oasis+emotion6+bass-300px-group")
    assert dataset_folder(150, "thesis", ("oasis",), seed=2, root="w") == Path("w/oasis-150px-thesis-seed2")
    assert source_arguments("d", ("oasis", "bass")) == ["--source", "oasis=d/oasis", "--source", "bass=d/bass"]


def test_the_command_line_prints_one_word_a_line(capsys):
    assert main(["sources", "../shared/data"]) == 0
    assert capsys.readouterr().out.splitlines() == source_arguments("../shared/data")
    main(["folder", "224", "group"])
    assert capsys.readouterr().out == "runs/data/oasis+emotion6+bass-224px-group\n"
    main(["sets"])
    assert capsys.readouterr().out.split() == list(RATED_SETS)


def test_the_makefile_builds_and_calibrates_from_the_named_sets_and_folders():
    """`make -n` expands what the calibration targets run: the sets' --source options and the scheme's folders."""
    made = subprocess.run(["make", "-n", "-C", str(ROOT), f"PY={sys.executable}", "default-calibration",
                           "accurate-calibration", "DATA=/sets"], capture_output=True, text=True, check=True).stdout
    sources = " ".join(source_arguments("/sets"))
    assert f"build runs/data/oasis+emotion6+bass-224px-group {sources} --size 224 --split group" in made
    assert f"build runs/data/oasis+emotion6+bass-300px-group {sources} --size 300 --split group" in made
    assert "calibrate accurate --data runs/data/oasis+emotion6+bass-300px-group" in made


def test_the_shipped_models_configurations_train_on_the_named_sets():
    """A retrain configuration names its sets itself (the model file's provenance carries the configuration
    as written): those of the shipped models are the project's."""
    import yaml

    configs = [p for p in sorted((ROOT / "configs").glob("*.yaml")) if "build" in yaml.safe_load(p.read_text())]
    assert {p.name for p in configs} >= {"default.yaml", "accurate.yaml"}
    for path in configs:
        assert tuple(yaml.safe_load(path.read_text())["build"]["sources"]) == RATED_SETS, path.name
