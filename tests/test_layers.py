"""The package's layers (DESIGN.md): import-linter's layers contract holds, an upward import
breaks it with a message naming the import, and no module is part of an import cycle, counting
imports inside functions."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp", reason="needs the test extra (import-linter)")

ROOT = Path(__file__).resolve().parents[1]
LINT = [sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()"]


def lint(where: Path, source: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(source), "PATH": "/usr/bin:/bin"}
    return subprocess.run(LINT, cwd=where, env=env, capture_output=True, text=True, timeout=120)


def test_the_layers_contract_holds():
    done = lint(ROOT, ROOT / "src")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout


def test_an_upward_import_inside_a_function_breaks_the_contract(tmp_path):
    # A copy of the package whose engine imports the CLI inside a function: the kind of
    # import that hid the loops this contract exists to catch.
    source = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "mnistlab", source / "mnistlab")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    engine = source / "mnistlab" / "engine.py"
    engine.write_text(engine.read_text() + "\n\ndef _leak():\n    from . import cli\n")
    done = lint(tmp_path, source)
    assert done.returncode == 1
    assert "mnistlab.engine -> mnistlab.cli" in done.stdout
    assert "1 broken" in done.stdout


def import_cycles(graph) -> list[list[str]]:
    """The strongly connected components of the import graph with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(module: str) -> None:  # Tarjan's algorithm
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in graph.find_modules_directly_imported_by(module):
            if not other.startswith("mnistlab"):
                continue
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph.modules):
        if module.startswith("mnistlab") and module not in index:
            visit(module)
    return cycles


def test_no_module_takes_part_in_an_import_cycle(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "src"))
    # Imports under `if TYPE_CHECKING:` never run, so they cannot make a loop at run time.
    graph = grimp.build_graph("mnistlab", cache_dir=None, exclude_type_checking_imports=True)
    assert import_cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    class Graph:
        imports = {"mnistlab.a": {"mnistlab.b"}, "mnistlab.b": {"mnistlab.a"}, "mnistlab.c": set()}
        modules = set(imports)

        def find_modules_directly_imported_by(self, module):
            return self.imports[module]

    assert import_cycles(Graph()) == [["mnistlab.a", "mnistlab.b"]]
