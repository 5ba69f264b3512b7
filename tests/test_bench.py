"""`python -m benchmarks` (make bench) and the README table written from its results file.

The bench runs here only in its smoke mode (toy sizes, a synthetic set): these tests
check that it runs, refuses a busy machine, and writes a results file of the right
shape. No timing is asserted; figures measured under a test suite mean nothing.
"""
from __future__ import annotations

import copy
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "bench_results.json"
FULL_RUN_KEYS = {"schema", "smoke", "command", "started", "finished", "max_load", "load_at_start", "machine",
                 "dataset", "benchmarks"}
ENTRY_KEYS = {"name", "command", "started", "status", "reason", "seconds", "load_before", "load_after",
              "others_cpu", "quiet", "figures", "output"}


def bench(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=1800)


def load_table_module():
    spec = importlib.util.spec_from_file_location("bench_table", ROOT / "scripts" / "bench_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def keys_of(tree, prefix: str = "") -> set[str]:
    """Every key path in nested dicts (lists and leaves end a path), to compare shapes, not values."""
    if not isinstance(tree, dict):
        return set()
    out = set()
    for k, v in tree.items():
        path = f"{prefix}.{k}" if prefix else k
        out.add(path)
        out |= keys_of(v, path)
    return out


def check_shape(results: dict, names: list[str]) -> None:
    assert set(results) == FULL_RUN_KEYS
    assert results["smoke"] is True and results["schema"] == 1
    assert datetime.fromisoformat(results["started"]) <= datetime.fromisoformat(results["finished"])
    m = results["machine"]
    assert m["cores"] == os.cpu_count() and isinstance(m["cpu_flags"], list)
    assert m["libraries"]["torch"] and "capability" in m["torch_cpu"]
    assert [b["name"] for b in results["benchmarks"]] == names
    for entry in results["benchmarks"]:
        assert set(entry) == ENTRY_KEYS, entry["name"]
        assert entry["status"] == "ok", entry["output"][-2000:]
        assert entry["command"].startswith(f"python benchmarks/bench_{entry['name']}.py")
        assert entry["others_cpu"] is None or entry["others_cpu"] >= 0
        assert isinstance(entry["load_before"], float) and isinstance(entry["load_after"], float)


def test_refuses_a_busy_machine_and_writes_nothing(tmp_path):
    run = bench("--max-load", "0", "--out", str(tmp_path / "results"), "--work", str(tmp_path / "work"))
    assert run.returncode == 3, run.stderr
    assert "not idle" in run.stderr and "--busy-ok" in run.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "work").exists()


def test_unknown_benchmark_is_refused(tmp_path):
    run = bench("--smoke", "--only", "inference,warp", "--work", str(tmp_path))
    assert run.returncode == 2 and "warp" in run.stderr


def test_smoke_inference_results_file_shape_and_table(tmp_path):
    run = bench("--smoke", "--only", "inference", "--work", str(tmp_path / "work"), "--out", str(tmp_path / "results"),
                "--timeout", "1200")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    files = list((tmp_path / "results").glob("*.json"))
    assert len(files) == 1
    results = json.loads(files[0].read_text())
    check_shape(results, ["inference"])
    figures = results["benchmarks"][0]["figures"]
    assert set(figures["models"]) == {"emosepar", "default"}
    assert figures["models"]["default"]["size"] == 224 and figures["models"]["emosepar"]["size"] == 80
    assert all(m["nchw"] > 0 and m["channels_last"] > 0 for m in figures["models"].values())
    # the table generator reads what the runner wrote (same keys as the fixture the table tests use)
    fixture = json.loads(FIXTURE.read_text())
    fixture_entry = next(b for b in fixture["benchmarks"] if b["name"] == "inference")
    def outside_models(tree: dict) -> set[str]:
        return {k for k in keys_of(tree) if not k.startswith("figures.models.")}

    assert outside_models(results["benchmarks"][0]) == outside_models(fixture_entry)
    assert all(set(m) == {"size", "nchw", "channels_last"} for m in figures["models"].values())
    table = load_table_module()
    block = table.table(results, "x.json")
    assert "smoke run: the figures mean nothing" in block
    assert "`python benchmarks/bench_inference.py --models emosepar,default" in block


@pytest.mark.slow
def test_the_whole_smoke_bench(tmp_path):
    """Every benchmark at toy sizes (Ray's start-up and a server make this a minute or more)."""
    run = bench("--smoke", "--work", str(tmp_path / "work"), "--out", str(tmp_path / "results"), "--timeout", "1200")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-3000:]
    results = json.loads(next((tmp_path / "results").glob("*.json")).read_text())
    check_shape(results, ["build", "train", "inference", "predict", "serve", "ray"])
    fixture = {b["name"]: b for b in json.loads(FIXTURE.read_text())["benchmarks"]}
    for entry in results["benchmarks"]:
        # the fixture's figures (a full run's) name every key the table reads; the smoke run writes them all,
        # less the Keras peer's and the models the smoke run leaves out
        missing = {k for k in keys_of(fixture[entry["name"]]["figures"]) - keys_of(entry["figures"])
                   if not k.startswith(("settings.", "end_to_end.runs.keras", "end_to_end.median.keras",
                                        "end_to_end.peer.", "end_to_end.over_peer.", "models."))}
        assert not missing, (entry["name"], missing)
    train = next(b for b in results["benchmarks"] if b["name"] == "train")["figures"]
    assert train["end_to_end"]["peer"] is None and train["size"] == 80
    assert set(train["settings"]["emosepar"]) == {"fp32_nchw", "bf16_channels_last"}
    assert results["dataset"]["built"] is True
    block = load_table_module().table(results, "x.json")
    assert "| not measured" not in block and "Keras peer not measured" in block  # no row failed


# -- the speed table, written by `make figures` (scripts/figures.py, block `bench`) ---------------------------------
START, END = "<!-- figures:bench:start", "<!-- figures:bench:end -->"
README = f"""# picaffect

intro

{START} (hand-written) -->
| old | table |
{END}

### Accuracy
kept as it is
"""


def write_run(folder: Path, results: dict, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(results))
    return path


def run_figures(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "figures.py"), *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_table_rewrites_only_between_the_markers(tmp_path):
    results = json.loads(FIXTURE.read_text())
    write_run(tmp_path / "results" / "bench", results, "2026-12-02-030005.json")
    readme = tmp_path / "README.md"
    readme.write_text(README)
    run = run_figures("--root", str(tmp_path))
    assert run.returncode == 0, run.stderr
    text = readme.read_text()
    before, _, rest = text.partition(START)
    block, _, after = rest.partition(END)
    assert before == README.split(START)[0]
    assert after == README.split(END)[1]
    assert "generated by make figures from results/bench/2026-12-02-030005.json" in block
    assert "| old | table |" not in block
    rows = [line for line in block.splitlines() if line.startswith("| ") and not line.startswith("| what")]
    # build, train end to end + 2 models, inference, predict + one-picture wall, serve, ray
    assert len(rows) == 9
    by_command = {b["command"]: b for b in results["benchmarks"]}
    for row in rows:
        command = row.split("`")[-2]
        assert command in by_command  # each row names the command that reproduces it
        assert datetime.fromisoformat(by_command[command]["started"]).strftime("%Y-%m-%d %H:%M") in row
    e2e = results["benchmarks"][1]["figures"]["end_to_end"]
    assert f"bf16 **{e2e['median']['bf16'] / e2e['median']['keras']:.2f}x**" in block
    predict = results["benchmarks"][3]["figures"]
    assert f"onnx **{predict['best']['onnx'] / predict['best']['torch']:.2f}x**" in block
    # the train benchmark ran while others used 0.6 cores (max_load 0.5): its rows say busy, the others do not
    train_rows = [r for r in rows if "bench_train.py" in r]
    assert train_rows and all("**busy**" in r for r in train_rows)
    assert not any("**busy**" in r for r in rows if r not in train_rows)
    assert "did not run" in next(r for r in train_rows if r.startswith("| Emosepar training step"))
    assert "not measured: the child process exited" in next(r for r in train_rows if r.startswith("| VGG16"))
    assert "AMD EPYC; avx2, fma, avx512f, avx512_vnni, avx512_bf16" in block
    assert "absolute figures are this machine's" in block
    # rerunning on its own output changes nothing (the markers stay, the block is replaced, not appended to)
    assert run_figures("--root", str(tmp_path)).returncode == 0
    assert readme.read_text() == text


def test_latest_skips_smoke_and_unfinished_runs(tmp_path):
    table = load_table_module()
    full = json.loads(FIXTURE.read_text())
    newer_smoke = dict(copy.deepcopy(full), smoke=True, started="2026-12-03T01:00:00+00:00")
    newer_unfinished = dict(copy.deepcopy(full), finished=None, started="2026-12-04T01:00:00+00:00")
    older = dict(copy.deepcopy(full), started="2026-11-30T01:00:00+00:00")
    folder = tmp_path / "bench"
    write_run(folder, older, "a.json")
    expected = write_run(folder, full, "b.json")
    write_run(folder, newer_smoke, "c.json")
    write_run(folder, newer_unfinished, "d.json")
    (folder / "e.json").write_text("{ half a fi")
    assert table.latest(folder) == expected
    with pytest.raises(table.TableError, match="make bench"):
        table.latest(tmp_path / "empty")


def test_failed_benchmark_and_missing_markers(tmp_path):
    table = load_table_module()
    results = json.loads(FIXTURE.read_text())
    results["benchmarks"][-1].update(status="failed", reason="stopped after the 900 s limit", figures=None)
    block = table.table(results, "x.json")
    assert "| ray | not measured: stopped after the 900 s limit |" in block
    readme = tmp_path / "README.md"
    unclosed = README.replace(END, "")
    readme.write_text(unclosed)
    write_run(tmp_path / "results" / "bench", json.loads(FIXTURE.read_text()), "r.json")
    run = run_figures("--root", str(tmp_path))
    assert run.returncode == 2 and "figures:bench:end" in run.stderr
    assert readme.read_text() == unclosed


BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass"


def _cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:  # gone, reaped
        return None


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="the meter reads /proc (Linux)")
def test_meter_charges_outsiders_to_others_and_descendants_to_us(tmp_path):
    """A process outside our tree counts as someone else's; our own child, even unreaped, does not."""
    from benchmarks import machine

    pidfile = tmp_path / "outsider.pid"
    meter = machine.Meter.start()
    # started by a shell that exits at once, the outsider is reparented away from us, like another user's job
    burn = shlex.join([sys.executable, "-c", BURN.format(s=0.6)])
    subprocess.run(["sh", "-c", f"{burn} > /dev/null 2>&1 & echo $! > {pidfile}"], check=True)
    outsider = int(pidfile.read_text())
    child = subprocess.Popen([sys.executable, "-c", BURN.format(s=0.6)])
    outsider_cpu = 0.0
    # what decides whose a process is: the child is in our tree, the outsider is not
    ours = machine.descendants(machine.processes(), os.getpid())
    assert child.pid in ours and outsider not in ours
    while _state(outsider) not in (None, "Z"):
        outsider_cpu = max(outsider_cpu, _cpu_seconds(outsider) if _state(outsider) else 0.0)
        time.sleep(0.05)
    while _state(child.pid) != "Z":  # finished, not yet reaped by us
        time.sleep(0.05)
    child_cpu = _cpu_seconds(child.pid)
    reading = meter.read()
    child.wait()
    assert outsider_cpu >= 0.3 and child_cpu >= 0.5
    others = reading["others_cpu"] * reading["seconds"]
    assert others >= 0.8 * outsider_cpu - 0.1, (others, outsider_cpu)
    # on an idle machine the others are the outsider alone (a busy one adds its own jobs: the tree test above holds)
    if os.getloadavg()[0] < 0.5:
        assert others < outsider_cpu + 0.5 * child_cpu, (others, outsider_cpu, child_cpu)
    assert set(reading) == {"seconds", "load_before", "load_after", "others_cpu"}
