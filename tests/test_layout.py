"""The package's shape: the inference core stays light, and stages import one way.

Read statically (every ``import`` and ``from ... import`` in every module, function
level included), so a hidden import inside a function counts as much as one at
the top of the file.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import picaffect

PACKAGE = Path(picaffect.__file__).parent

# Stages in pipeline order; a module may import its own stage, the top-level helpers,
# and the stages listed for it: never a later one, never back.
ALLOWED = {
    "data": set(),
    "models": set(),
    "inference": {"data", "models"},
    "training": {"data", "models", "inference"},
    "evaluation": {"data", "models", "inference"},
    "service": {"data", "models", "inference"},
    "batch": {"data", "models", "inference"},
    "selection": {"data", "evaluation"},
    "workflows": {"data", "models", "inference", "training", "evaluation"},
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


def stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in ALLOWED) else None


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


def test_stages_import_one_way():
    wrong = []
    for module, targets in graph().items():
        own = stage(module)
        if own is None:
            continue
        for target in targets:
            other = stage(target)
            if other is not None and other != own and other not in ALLOWED[own]:
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_the_walk_sees_hidden_and_relative_imports(tmp_path):
    """A function-level, relative training -> evaluation import is found and resolved."""
    fake = tmp_path / "fake.py"
    fake.write_text("def f():\n    from ..evaluation.metrics import rmse\n    from . import recipes\n")
    found = imports_of(fake, "picaffect.training.fake")
    assert {"picaffect.evaluation.metrics", "picaffect.training.recipes"} <= found
    assert stage("picaffect.evaluation.metrics") not in ALLOWED[stage("picaffect.training.fake")]
