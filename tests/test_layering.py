"""The plan of the house: imports run downwards, no cycles, no module over 600 lines.

Layers, from the bottom: the shared core (``common/``), the stages (``capture/``,
``detect/``, ``classify/``, ``display/``), training (``train/``, which may use classify's
model code), the Python API (``api/``, which runs the stages' pure cores in the caller's
process), and the control plane (``control/``: CLI, supervisor, status, site file, metrics,
report), which may use everything.  The package entry ``fakeblock/__init__.py`` is checked
too.  Every import counts, including those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
PACKAGE_FOLDERS = ("capture", "detect", "classify", "display", "common", "train", "api", "control")
STAGES = ("capture", "detect", "classify", "display")
# A concern longer than this is more than one concern.
MAX_MODULE_LINES = 600
# What each layer may import besides itself.
ALLOWED = {"core": {"core"}, "train": {"core", "classify"}, "api": {"core", *STAGES},
           "control": {"core", "train", "api", *STAGES}, "entry": {"core", "api", "control", *STAGES},
           **{stage: {"core"} for stage in STAGES}}


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    modules = {}
    for folder in PACKAGE_FOLDERS:
        for path in sorted((REPOSITORY / folder).rglob("*.py")):
            parts = path.relative_to(REPOSITORY).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            modules[".".join(("fakeblock", *parts))] = path
    for path in sorted((REPOSITORY / "fakeblock").glob("*.py")):
        name = path.stem
        modules["fakeblock" if name == "__init__" else f"fakeblock.{name}"] = path
    return modules


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] not in PACKAGE_FOLDERS:
        return "entry"
    return "core" if parts[1] == "common" else parts[1]


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


def test_no_module_is_over_600_lines():
    long = {str(path.relative_to(REPOSITORY)): lines for path in _modules().values()
            if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, long


def test_the_checks_see_the_whole_package():
    # Guards the guards: the walk finds the stages, the core and the control plane.
    layers = {_layer(module) for module in _modules()}
    assert layers == {"entry", "core", "control", "api", "train", *STAGES}
    assert "fakeblock.common.wire" in _graph()["fakeblock.detect.stage"]
    assert "fakeblock.control.cli.entry" in _graph()["fakeblock.__main__"]


# Every stage folder has the GUIDE's pair: core.py (pure per-frame work) and stage.py (its loop).
PER_STAGE_NAMES = {"__init__", "core", "stage"}


def test_module_names_say_their_job_once():
    # Two modules of one name (a runtime here and a runtime there) make every import a riddle.
    seen: dict[str, list[str]] = {}
    for module in _modules():
        seen.setdefault(module.rsplit(".", 1)[-1], []).append(module)
    twice = {name: modules for name, modules in seen.items() if len(modules) > 1 and name not in PER_STAGE_NAMES}
    assert not twice, twice


def test_no_module_only_re_exports_another():
    # A module whose body is nothing but imports (and an __all__) is a facade: callers should import
    # from where the names live.
    facades = []
    for module, path in _modules().items():
        if path.name == "__init__.py" or module.startswith("fakeblock.") is False:
            continue
        body = [node for node in ast.parse(path.read_text()).body
                if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]
        imports = [node for node in body if isinstance(node, ast.Import | ast.ImportFrom)]
        rest = [node for node in body if node not in imports and not (
            isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets))]
        if imports and not rest:
            facades.append(module)
    assert not facades, facades
