"""The package's shape: the inference core stays light, and layers import one way.

Read statically (every ``import`` and ``from ... import`` in every module, function
level included), so a hidden import inside a function counts as much as one at
the top of the file. Every module has a layer: the folder it lives in (core/, data/, ..., app/),
or for the package's own __init__ and __main__, ``ROOT_LAYERS``; a file left at the root has none.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import picaffect

PACKAGE = Path(picaffect.__file__).parent

# Layers from the bottom up; a module may import its own layer and the layers listed
# for it: never a later one, never back. ``core`` (errors, names, scales, atomic files,
# metrics, plots, process settings) imports nothing above it; ``app`` (the command
# line, the demo, the output writers) is what users call, and only ``app`` imports it.
ALLOWED = {
    "core": set(),
    "data": {"core"},
    "models": {"core"},
    "inference": {"core", "data", "models"},
    "training": {"core", "data", "models", "inference"},
    "evaluation": {"core", "data", "models", "inference"},
    "service": {"core", "data", "models", "inference"},
    "batch": {"core", "data", "models", "inference"},
    "workflows": {"core", "data", "models", "inference", "training", "evaluation"},
    "selection": {"core", "data", "evaluation"},
    "app": {"core", "data", "models", "inference", "training", "evaluation", "service", "batch", "workflows",
            "selection"},
    # the package itself: ``__version__``, and ``Predictor`` on first use
    "package": {"core", "inference"},
}

# A module's layer is the folder it lives in (picaffect/core/, picaffect/data/, ..., picaffect/app/).
# The package root holds only these two, and any other file there is in no layer, so a test fails.
ROOT_LAYERS = {
    "picaffect": "package",
    "picaffect.__main__": "app",  # `python -m picaffect`: the command line
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, name: str | None = None) -> set[str]:
    """The picaffect modules ``path`` (the module ``name``) imports, resolved to full dotted names."""
    name = name or module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("picaffect")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("picaffect"):
                target = node.module
            else:
                continue
            found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names}  # "from . import models" names a module
    return found


def graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports. A package that contains the importer is left
    out (``from .. import models`` names ``picaffect.models``; Python loads the parents first anyway)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in imports_of(path) if m in modules and m != name and not name.startswith(m + ".")}
            for name, path in modules.items()}


def layer(module: str) -> str | None:
    """``picaffect.training.engine`` -> ``training`` (its folder); ``picaffect`` and ``picaffect.__main__`` from
    ``ROOT_LAYERS``; None for anything else at the root, or in a folder that is no layer."""
    if module in ROOT_LAYERS:
        return ROOT_LAYERS[module]
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED and parts[1] != "package" else None


def test_inference_loads_no_training_evaluation_build_pandas_or_yaml():
    code = ("import sys, picaffect.inference; "
            "print('\\n'.join(sorted(m for m in sys.modules if m.split('.')[0] in ('picaffect', 'pandas', 'yaml'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    forbidden = ("picaffect.training", "picaffect.evaluation", "picaffect.workflows", "picaffect.data.build",
                 "picaffect.data.sources", "pandas", "yaml")
    assert "picaffect.inference.predictor" in loaded
    assert [m for m in loaded if m.startswith(forbidden)] == []


def test_no_import_cycle_among_the_modules():
    edges = graph()
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for module in sorted(edges):
        if module not in state:
            cycle = visit(module)
            assert cycle is None, " -> ".join(cycle)
    assert len(edges) > 40  # the walk saw the whole package


def test_every_module_has_a_layer():
    modules = graph()
    assert sorted(m for m in modules if layer(m) is None) == []
    assert set(ROOT_LAYERS) <= set(modules), "ROOT_LAYERS names modules that are not there"
    assert {"picaffect", "picaffect.__main__", "picaffect.core.errors", "picaffect.app.cli"} <= set(modules)


def test_the_root_holds_only_the_package_and_its_main():
    """Every other module lives in the folder of its layer; one left at the root has no layer."""
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py", "__main__.py"]
    assert layer("picaffect.scale") is None and layer("picaffect.cli") is None
    assert layer("picaffect.helpers.misc") is None  # a folder that is no layer
    assert (layer("picaffect"), layer("picaffect.__main__"), layer("picaffect.core")) == ("package", "app", "core")


def test_layers_import_one_way():
    wrong = []
    for module, targets in graph().items():
        own = layer(module)
        for target in targets:
            other = layer(target)
            if other != own and other not in ALLOWED[own]:
                wrong.append(f"{module} ({own}) imports {target} ({other})")
    assert wrong == []


def test_the_core_is_the_bottom_and_the_app_the_top():
    assert ALLOWED["core"] == set()
    assert all("core" in allowed for name, allowed in ALLOWED.items() if name != "core")
    assert [name for name, allowed in ALLOWED.items() if "app" in allowed] == []


def test_the_walk_sees_hidden_and_relative_imports(tmp_path):
    """A function-level, relative training -> evaluation import is found and resolved."""
    fake = tmp_path / "fake.py"
    fake.write_text("def f():\n    from ..evaluation.metrics import rmse\n    from . import recipes\n")
    found = imports_of(fake, "picaffect.training.fake")
    assert {"picaffect.evaluation.metrics", "picaffect.training.recipes"} <= found
    assert layer("picaffect.evaluation.metrics") not in ALLOWED[layer("picaffect.training.fake")]


def test_a_core_module_that_imports_upwards_is_caught(tmp_path):
    """A core module importing training is reported."""
    fake = tmp_path / "scale.py"
    fake.write_text("from ..training.config import TrainConfig\n")
    found = imports_of(fake, "picaffect.core.scale")
    assert "picaffect.training.config" in found
    assert layer("picaffect.core.scale") == "core" and layer("picaffect.training.config") not in ALLOWED["core"]
    assert layer("picaffect.app.cli") == "app" and "app" not in ALLOWED[layer("picaffect.service.app")]


# -- beside the package: benchmarks/ (speed and memory), research/ (accuracy studies), scripts/, tests/ ----------------
REPOSITORY = PACKAGE.parents[1]
BESIDE = ("benchmarks", "research", "scripts", "tests")
# benchmarks/ holds the speed and memory benchmarks (bench_*.py) and the bench's own parts, nothing else
BENCH_PARTS = {"__init__.py", "__main__.py", "datasets.py", "machine.py", "runner.py"}


def files_beside(folder: str) -> list[Path]:
    return sorted((REPOSITORY / folder).rglob("*.py"))


def top_modules(path: Path) -> set[str]:
    """The top-level names of the modules ``path`` imports absolutely (``from . import x`` is its own folder)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def private_package_imports(path: Path) -> list[str]:
    """``from picaffect.x import _y`` and ``import picaffect.x._y``: what only the package itself may use."""
    def private(name: str) -> bool:
        return any(part.startswith("_") and not part.startswith("__") for part in name.split("."))

    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").startswith("picaffect"):
            found += [f"{node.module}.{a.name}" for a in node.names if private(a.name) or private(node.module)]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("picaffect") and private(a.name)]
    return found


def edits_sys_path(path: Path) -> bool:
    return any(isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name)
               and node.value.id == "sys" for node in ast.walk(ast.parse(path.read_text())))


def test_code_beside_the_package_uses_only_its_public_names():
    wrong = [f"{path.relative_to(REPOSITORY)}: {name}" for folder in BESIDE for path in files_beside(folder)
             for name in private_package_imports(path)]
    assert wrong == []


def test_benchmarks_and_research_are_packages_that_leave_sys_path_alone():
    """They import each other's modules as packages (``python -m research.accuracy_search``), never by editing
    the import path; so does the test suite (pytest puts the repository root on it)."""
    for folder in ("benchmarks", "research"):
        assert (REPOSITORY / folder / "__init__.py").is_file(), folder
    wrong = [str(p.relative_to(REPOSITORY)) for folder in ("benchmarks", "research", "tests") for p in files_beside(folder)
             if edits_sys_path(p)]
    assert wrong == []


def test_what_benchmarks_and_research_may_import():
    """The package imports neither; benchmarks and research do not import each other, the tests or the scripts."""
    package = {m for path in PACKAGE.rglob("*.py") for m in top_modules(path)}
    assert package.isdisjoint(BESIDE)
    for folder in ("benchmarks", "research"):
        for path in files_beside(folder):
            others = top_modules(path) & (set(BESIDE) - {folder})
            assert not others, f"{path.relative_to(REPOSITORY)} imports {', '.join(sorted(others))}"


def test_benchmarks_hold_only_speed_and_memory_benchmarks():
    """An accuracy study lives in research/; benchmarks/ holds bench_*.py and the bench's own parts."""
    names = {p.name for p in (REPOSITORY / "benchmarks").glob("*.py")}
    assert BENCH_PARTS <= names
    assert sorted(n for n in names - BENCH_PARTS if not n.startswith("bench_")) == []


def test_the_walks_beside_the_package_see_what_they_look_for(tmp_path):
    fake = tmp_path / "fake.py"
    fake.write_text("import sys\nsys.path.insert(0, 'x')\nfrom picaffect.app.cli import _hidden, main\n"
                    "from . import sibling\nimport research.accuracy_probes\n")
    assert private_package_imports(fake) == ["picaffect.app.cli._hidden"]
    assert edits_sys_path(fake) and top_modules(fake) == {"sys", "picaffect", "research"}
