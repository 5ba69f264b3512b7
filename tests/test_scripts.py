"""The compute scripts (scripts/thesis_gpu.sh, scripts/loso.sh) run the commands they mean to.

Neither trains here: thesis_gpu.sh is read through its --dry-run (every command it would run, each
parsed by picaffect's own parser), loso.sh runs against a stand-in ``picaffect`` that records its
calls and writes what ``experiment cross-dataset`` writes.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from picaffect.app.commands import parser
from picaffect.data.rated_sets import dataset_folder, source_arguments
from picaffect.workflows.stages import stages_from_config

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PY=sys.executable,
           PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))


def test_thesis_gpu_builds_trains_and_copies_what_it_says(tmp_path):
    shown = subprocess.run(["bash", str(ROOT / "scripts" / "thesis_gpu.sh"), "--dry-run", "/sets", str(tmp_path)],
                           capture_output=True, text=True, env=ENV, timeout=120)
    assert shown.returncode == 0, shown.stderr
    commands = [shlex.split(line) for line in shown.stdout.splitlines()]
    built, outs, copied = [], set(), []
    for words in commands:
        if words[0] == "cp":
            copied += words[1:-1] if words[1] != "-r" else words[2:-1]
            continue
        if words[0] == "mkdir":
            assert words[1:] == ["-p", words[2]] and words[2].startswith("results/gpu/")
            continue
        assert words[0] == ".venv/bin/picaffect", words
        args = parser().parse_args(words[1:])  # every option and value is one picaffect takes
        if args.command == "build":
            assert words[3:9] == source_arguments("/sets")
            assert args.out_dir == dataset_folder(args.size, args.split)  # the one folder scheme
            built.append(str(args.out_dir))
        else:
            assert args.command == "experiment" and args.device == "cuda"
            assert str(args.data) in built, f"{args.data} is trained on before it is built"
            if args.stages_from:
                assert stages_from_config(ROOT / args.stages_from)
            outs.add(Path(args.out))
    assert [Path(b).name for b in built] == ["oasis+emotion6+bass-150px-thesis", "oasis+emotion6+bass-224px-group"]
    assert outs == {tmp_path / "thesis", tmp_path / "cross-dataset", tmp_path / "cross-dataset-emosepar"}
    # every file it copies is one an experiment above writes into its --out
    assert len(copied) == 7 and all(Path(c).parent in outs for c in copied)


STAND_IN = r"""#!/usr/bin/env bash
echo "$*" >> "$CALLS"
[ "$1" = experiment ] || exit 0
while [ $# -gt 0 ]; do [ "$1" = --out ] && out=$2; shift; done
mkdir -p "$out/runs/oasis/emosepar-thesis/evaluation" "$out/runs/bass/emosepar-thesis"
echo "# Leave one source out" > "$out/report.md"; echo "{}" > "$out/results.json"
run=$out/runs/oasis/emosepar-thesis
echo '{"stopped": "patience"}' > "$run/summary.json"; echo "epoch" > "$run/history.csv"
echo '{"splits": {}}' > "$run/evaluation/metrics.json"
printf '| split |\n| validation | 0.5 |\n' > "$run/evaluation/report.md"
"""


def test_loso_keeps_the_experiments_own_evaluation_and_scores_nothing_again(tmp_path):
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "loso.sh", repo / "scripts" / "loso.sh")
    stand_in = tmp_path / "picaffect"
    stand_in.write_text(STAND_IN)
    stand_in.chmod(0o755)
    calls = tmp_path / "calls"
    env = dict(ENV, PICAFFECT=str(stand_in), CALLS=str(calls), SETS="/sets")
    done = subprocess.run(["bash", "scripts/loso.sh", "keep", "150", "out", "--", "--models", "emosepar"],
                          cwd=repo, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    data = dataset_folder(150, "thesis")
    assert calls.read_text().splitlines() == [
        f"build {data} --split thesis --size 150 {' '.join(source_arguments('/sets'))}",
        f"experiment cross-dataset --data {data} --out out --models emosepar"]  # no `picaffect evaluate`
    held = repo / "keep" / "oasis-held-out"
    run = repo / "out" / "runs" / "oasis" / "emosepar-thesis"
    for name, source in (("metrics.json", run / "evaluation"), ("report.md", run / "evaluation"),
                         ("history.csv", run), ("summary.json", run)):
        assert (held / name).read_bytes() == (source / name).read_bytes()
    assert (repo / "keep" / "report.md").is_file() and (repo / "keep" / "results.json").is_file()
    assert not (repo / "keep" / "bass-held-out").exists()  # that run never stopped
    assert "skipped out/runs/bass/emosepar-thesis: never stopped" in done.stdout
    assert "keep/oasis-held-out: | validation | 0.5 |" in done.stdout
