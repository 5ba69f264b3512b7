"""`make figures` (scripts/figures.py): every generated block of the documents equals what its record gives.

The first test is the one that guards the documents: it regenerates every block of
README.md, MODEL_CARD.md, docs/*.md and results/**/README.md in memory and fails on any
that differs from the committed text (a record changed, or someone edited a block by
hand). The others check the generator itself on records made here.
"""
from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_figures():
    spec = importlib.util.spec_from_file_location("figures", ROOT / "scripts" / "figures.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["figures"] = module
    spec.loader.exec_module(module)
    return module


figures = load_figures()


def test_every_committed_block_matches_its_record():
    documents = figures.documents(ROOT)
    assert ROOT / "README.md" in documents and ROOT / "MODEL_CARD.md" in documents
    names = {name for path in documents for name, _ in figures.blocks_in(path.read_text())}
    # the blocks the issue asks for are there: the accuracy tables, the speed table, the command reference
    assert {"accuracy", "card-accuracy", "bench", "speed", "commands"} <= names, names
    stale = figures.stale(ROOT)
    assert not stale, "run `make figures`: " + ", ".join(f"{p.relative_to(ROOT)} ({n})" for p, n in stale)


def _block_body(text: str, name: str) -> str:
    start = text.index(f"<!-- figures:{name}:start")
    body = text[text.index("-->\n", start) + 4:text.index(f"<!-- figures:{name}:end -->")]
    return body


def _evaluation(seed: int) -> dict:
    """An evaluation record as `picaffect calibrate` writes it, from made-up predictions of three sources."""
    from picaffect.evaluation import record

    rng = np.random.default_rng(seed)
    sources = np.repeat(["oasis", "emotion6", "bass"], [60, 90, 50])
    y = rng.uniform(1, 9, (len(sources), 2))
    yhat = y + rng.normal(0, 1.0, y.shape) + np.where(sources == "bass", 0.8, 0.0)[:, None]
    loso = record.leave_one_source_out(y, yhat, sources, "each source predicted by a ridge fitted on the others",
                                       n_boot=50)
    valid = record.validation(y[::3], yhat[::3] * 0.9 + 0.5, sources[::3], "the validation rows, scored once",
                              n_boot=50)
    return record.evaluation_record(loso, valid)


def test_accuracy_tables_come_from_the_model_file_and_name_what_is_missing(tmp_path):
    """The shipped file's evaluation fills the tables, new sources first; a file without one says so."""
    import torch

    from picaffect.inference.checkpoint import read

    evaluation = _evaluation(0)
    shipped = read(ROOT / figures.MODELS["default"])
    shipped["metadata"] = {**shipped["metadata"], "evaluation": evaluation}
    weights = tmp_path / figures.MODELS["default"]
    weights.parent.mkdir(parents=True)
    torch.save(shipped, weights)  # `accurate` is absent from this root
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- figures:accuracy:start -->\n<!-- figures:accuracy:end -->\n\nprose\n\n"
                      "<!-- figures:card-accuracy:start old -->\nold\n<!-- figures:card-accuracy:end -->\n")
    assert figures.main(["--root", str(tmp_path)]) == 0
    text = readme.read_text()
    body = _block_body(text, "accuracy")
    loso, valid = evaluation["leave_one_source_out"], evaluation["validation"]
    oasis = loso["sources"]["oasis"]
    row = next(line for line in body.splitlines() if line.startswith("| `default` | OASIS |"))
    assert f"{oasis['valence_r']:.2f} [{oasis['valence_r_ci'][0]:.2f}, {oasis['valence_r_ci'][1]:.2f}]" in row
    assert f"{oasis['rmse']:.2f} [{oasis['rmse_ci'][0]:.2f}, {oasis['rmse_ci'][1]:.2f}]" in row
    mean = next(line for line in body.splitlines() if "mean of the sources" in line)
    assert f"| {loso['mean']['arousal_r']:.2f} |" in mean
    # new sources first, then the validation rows; each block's protocol sentence from the record
    assert body.index("New sources") < body.index("Validation rows")
    assert loso["protocol"] in body and valid["protocol"] in body
    assert f"| `default` | all | {valid['n']} | {valid['valence_r']:.2f} [" in body
    assert "record missing: src/picaffect/weights/accurate.pt" in body
    # the model card's table adds the biases and the validation rows per source
    card = _block_body(text, "card-accuracy")
    bass = next(line for line in card.splitlines() if line.startswith("| `default` | BASS |"))
    assert bass.rstrip(" |").endswith(f"{loso['sources']['bass']['arousal_bias']:.2f}")
    assert sum(line.startswith("| `default` | ") for line in card.splitlines()) == 4 + 4  # 3 sources + mean, all + 3
    assert "prose" in text and "\nold\n" not in text
    # a file made before evaluations were recorded: no figure, the missing parts named
    shipped["metadata"].pop("evaluation")
    torch.save(shipped, weights)
    assert figures.main(["--root", str(tmp_path)]) == 0
    body = _block_body(readme.read_text(), "accuracy")
    assert "record missing: src/picaffect/weights/default.pt (it has no evaluation.leave_one_source_out, " \
           "evaluation.validation: `make default-model` writes them)" in body
    assert "|" not in body


def test_an_absent_record_is_named_not_invented(tmp_path):
    """Every block but the command reference (read from the parsers) says which record it lacks, in its text and
    in its marker line: the generators let ``MissingRecord`` through and ``render`` writes the line."""
    names = [{"pilot-study": "pilot-study/linear"}.get(n, n) for n in sorted(figures.BLOCKS) if n != "commands"]
    names.append("loso/emosepar-thesis")
    doc = tmp_path / "docs" / "x.md"
    doc.parent.mkdir()
    doc.write_text("".join(f"<!-- figures:{n}:start -->\n<!-- figures:{n}:end -->\n" for n in names))
    assert figures.main(["--root", str(tmp_path)]) == 0
    text = doc.read_text()
    for name in names:
        body = _block_body(text, name)
        assert body.startswith("record missing: "), (name, body)
        # nothing but the missing records' names: no figure
        assert not re.search(r"\d\.\d", re.sub(r"record missing: [^\n]*", "", body)), (name, body)
        first = body.splitlines()[0].removeprefix("record missing: ").split(" (")[0]
        start = next(line for line in text.splitlines() if line.startswith(f"<!-- figures:{name}:start"))
        assert f"from {first}" in start, (name, start)
    assert "record missing: results/choice/choice.json" in text
    assert "record missing: results/cross-dataset/emosepar-thesis/results.json" in text
    assert "record missing: results/pilot/linear/study.json" in text
    # a record without the part a block reads is named with that part
    search = tmp_path / "results" / "accuracy" / "search.json"
    search.parent.mkdir(parents=True)
    search.write_text(json.dumps({"validation": {}}))
    assert figures.render("accuracy-readouts", figures.Records(tmp_path)).splitlines()[1] == \
        "record missing: results/accuracy/search.json (readouts)"


def test_only_blocks_change_and_a_second_run_changes_nothing(tmp_path):
    shutil.copytree(ROOT / "results" / "thesis", tmp_path / "results" / "thesis",
                    ignore=shutil.ignore_patterns("curves", "*.txt", "*.log", "*.png"))
    results = json.loads((tmp_path / "results/thesis/results.json").read_text())
    doc = tmp_path / "results" / "thesis" / "README.md"
    before, after = "# Study\n\nHand-written prose.\n\n", "\n\nMore prose.\n"
    doc.write_text(before + "<!-- figures:thesis-runs:start (stale) -->\n| old |\n<!-- figures:thesis-runs:end -->"
                   + after)
    assert figures.main(["--check", "--root", str(tmp_path)]) == 1
    assert figures.main(["--root", str(tmp_path)]) == 0
    text = doc.read_text()
    assert text.startswith(before) and text.endswith(after) and "| old |" not in text
    assert "generated by make figures from results/thesis/results.json; edit that, not this" in text
    rows = [line for line in _block_body(text, "thesis-runs").splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + len(results["runs"])
    assert figures.main(["--check", "--root", str(tmp_path)]) == 0
    assert figures.main(["--root", str(tmp_path)]) == 0 and doc.read_text() == text


@pytest.mark.parametrize("text, message", [
    ("<!-- figures:speed:start -->\nno end\n", "figures:speed:end"),
    ("<!-- figures:nonsense:start -->\n<!-- figures:nonsense:end -->\n", "no generator for block 'nonsense'"),
    ("<!-- figures:speed:start -->\n<!-- figures:choice:start -->\n<!-- figures:choice:end -->\n"
     "<!-- figures:speed:end -->\n", "inside another block"),
])
def test_broken_markers_are_refused_and_nothing_is_written(tmp_path, capsys, text, message):
    readme = tmp_path / "README.md"
    readme.write_text(text)
    assert figures.main(["--root", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert readme.read_text() == text


# Numbers that are not measured figures: the thesis's section, table and figure numbers, licence versions.
NOT_FIGURES = re.compile(r"\b(?:sections?|tables?|figures?|listing|CC BY|Apache-)\s*\d+(?:\.\d+)?"
                         r"(?:(?:,\s*| and | to )\d+(?:\.\d+)?)*")
# A measured figure: a decimal, a ratio, or a speed or size with its unit.
FIGURE = re.compile(r"(?<![\w.])(?:\d+(?:\.\d+)? ?(?:ms|s|img/s|images/s|MB|GB|GFLOP)\b|\d+(?:\.\d+)? ?[x×](?!\w)"
                    r"|[-+±]?\d+\.\d+(?![\w.]))")


def prose(text: str) -> str:
    """A document less its generated blocks, code, link targets and front matter: the words people wrote."""
    text = figures.BLOCK.sub("", text)
    text = re.sub(r"^---\n.*?\n---\n", "", text, flags=re.S)
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return NOT_FIGURES.sub("", text)


def test_prose_outside_the_blocks_states_no_figures():
    found = [f"{path.relative_to(ROOT)}: {hit!r} in {line.strip()[:100]!r}"
             for path in figures.documents(ROOT) for line in prose(path.read_text()).splitlines()
             for hit in FIGURE.findall(line)]
    assert not found, "a measured figure belongs in a generated block:\n" + "\n".join(found)
    # the check itself finds what it should, and lets through what it should
    assert FIGURE.findall(prose("valence r 0.72 and 129.8 img/s, 1.6x the peer, 0.25 s a picture")) == \
        ["0.72", "129.8 img/s", "1.6x", "0.25 s"]
    assert not FIGURE.findall(prose("tables 8.1 to 8.3 and section 7.2, CC BY 4.0, `--level 0.9`, a 2-core CPU"))


def test_the_command_reference_lists_every_option_of_every_command():
    from picaffect.app.commands import parser

    body = figures.render("commands", figures.Records(ROOT))
    sub = next(a for a in parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, p in sub.choices.items():
        section = body[body.index(f"### picaffect {name}\n"):]
        section = section[:section.find("\n### ", 1) if "\n### " in section[1:] else len(section)]
        for action in p._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option}`" in section, (name, option)
