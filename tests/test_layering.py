"""The plan of the house: imports run downwards, no cycles, no module over 300 lines.

Layers, from the bottom: the shared core (``common/*.py``), the stages (``capture/``,
``detect/``, ``classify/``, ``display/``), training (``train/``, which may use classify's
model code), and the control plane (``common/control/``: CLI, supervisor, status, site
file), which may use everything.  Every import counts, including those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
PACKAGE_FOLDERS = ("capture", "detect", "classify", "display", "common", "train")
STAGES = ("capture", "detect", "classify", "display")
MAX_MODULE_LINES = 300
# What each layer may import besides itself.
ALLOWED = {"core": {"core"}, "train": {"core", "classify"}, "control": {"core", "train", *STAGES},
           **{stage: {"core"} for stage in STAGES}}


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    modules = {}
    for folder in PACKAGE_FOLDERS:
        for path in sorted((REPOSITORY / folder).rglob("*.py")):
            parts = path.relative_to(REPOSITORY).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            modules[".".join(("fakeblock", *parts))] = path
    return modules


def _layer(module: str) -> str:
    parts = module.split(".")
    if parts[1] == "common":
        return "control" if len(parts) > 2 and parts[2] == "control" else "core"
    return parts[1]


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``path`` imports anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found.update(name for name in names if name in modules)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {module: _imports(path, modules) - {module} for module, path in modules.items()}


def test_imports_only_run_downwards():
    wrong = [f"{module} ({_layer(module)}) imports {target} ({_layer(target)})"
             for module, targets in _graph().items() for target in sorted(targets)
             if _layer(target) != _layer(module) and _layer(target) not in ALLOWED[_layer(module)]]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    graph = _graph()
    # A package's __init__ is imported on the way to its modules; only module-to-module edges count.
    state: dict[str, str] = {}
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(cycles)


def test_no_module_is_over_300_lines():
    long = {str(path.relative_to(REPOSITORY)): lines for path in _modules().values()
            if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, long


def test_the_checks_see_the_whole_package():
    # Guards the guards: the walk finds the stages, the core and the control plane.
    layers = {_layer(module) for module in _modules()}
    assert layers == {"core", "control", "train", *STAGES}
    assert "fakeblock.common.wire" in _graph()["fakeblock.detect.stage"]
