"""No import cycle in the ``elastiq`` package (nor in ``ecm``), between its modules nor between
its parts.

A part is a child of ``elastiq``: a module (``elastiq.config``) or a sub-package with all its
modules (``elastiq.runtime``, ``elastiq.cli``): ``runtime`` importing ``cli`` while ``cli``
imports ``runtime`` is a cycle even when no two modules import each other.

The graph is read from the source (AST), not from ``sys.modules``: every ``import`` and
``from ... import`` counts, at module level and inside functions alike (a function-level import
hides a cycle from Python's loader, not from the design); only imports under
``if TYPE_CHECKING:`` (annotations, never executed) are left out.  ``from pkg import name`` is an edge
to ``pkg.name`` when that is a module, else to ``pkg``.  Imports by string (the adapter and
policy registries' ``importlib``) are not edges.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "elastiq"



def modules(root: Path, package: str) -> Dict[str, Path]:
    """Module name -> file, for every ``.py`` file of ``package`` under ``root``."""
    found = {}
    for path in sorted((root / package.replace(".", "/")).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from`` import names (relative ones resolved)."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph(root: Path, package: str, annotations: bool = False) -> Dict[str, Set[str]]:
    """Module -> the modules of ``package`` it imports (anywhere in its body; ``annotations``:
    those under ``if TYPE_CHECKING:`` too)."""
    known = modules(root, package)
    graph: Dict[str, Set[str]] = {}
    for name, path in known.items():
        edges = graph.setdefault(name, set())
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        typing_only = set() if annotations else {
            id(n) for block in ast.walk(tree) if _is_type_checking(block)
            for stmt in block.body for n in ast.walk(stmt)}
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                origin = _absolute(name, path.name == "__init__.py", node)
                targets = [f"{origin}.{a.name}" if f"{origin}.{a.name}" in known else origin
                           for a in node.names]
            else:
                continue
            edges.update(t for t in targets if t in known and t != name)
    return graph


def _is_type_checking(node: ast.AST) -> bool:
    """An ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``) block."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def parts(graph: Dict[str, Set[str]], package: str) -> Dict[str, Set[str]]:
    """The graph between the children of ``package`` (edges inside one child dropped)."""
    def part(module: str) -> str:
        return ".".join(module.split(".")[:package.count(".") + 2])
    collapsed: Dict[str, Set[str]] = {}
    for module, targets in graph.items():
        collapsed.setdefault(part(module), set()).update(
            part(t) for t in targets if part(t) != part(module))
    return collapsed


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """One cycle (``[a, b, ..., a]``) per strongly connected component of more than one
    module (Tarjan), sorted."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    components: List[Set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(_cycle_in(graph, component) for component in components)


def _cycle_in(graph: Dict[str, Set[str]], component: Set[str]) -> List[str]:
    """A shortest cycle through the smallest module of ``component`` (breadth-first)."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node] & component):
                if nxt == start:
                    return paths[node] + [start]
                if nxt not in paths:
                    paths[nxt] = paths[node] + [nxt]
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"{sorted(component)} is not strongly connected")


@pytest.mark.parametrize("package", [PACKAGE, "ecm"])
@pytest.mark.parametrize("level", ["modules", "parts"])
def test_the_package_has_no_import_cycle(package, level):
    graph = import_graph(ROOT, package)
    found = cycles(parts(graph, package) if level == "parts" else graph)
    assert not found, f"import cycles between {level}:\n" + "\n".join(
        " -> ".join(c) for c in found)


def test_the_graph_sees_the_package():
    graph = import_graph(ROOT, PACKAGE)
    assert "elastiq.model" in graph["elastiq.core.decide"]
    assert "elastiq.adapters.base" in graph["elastiq.adapters.ec2.cloud"]


def test_the_core_imports_nothing_of_the_configuration():
    """The core takes its parameters (``elastiq.core.params``), not the configuration: none of
    its modules imports ``elastiq.config``, not even for annotations."""
    graph = import_graph(ROOT, PACKAGE, annotations=True)
    core = {m: deps for m, deps in graph.items()
            if m == "elastiq.core" or m.startswith("elastiq.core.")}
    assert "elastiq.model" in core["elastiq.core.decide"]  # the walk sees the core
    found = {m: sorted(d for d in deps if d == "elastiq.config" or d.startswith("elastiq.config."))
             for m, deps in core.items()}
    assert not {m: d for m, d in found.items() if d}, found


def test_imports_for_annotations_count_when_asked(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n",
        "pkg/b.py": "B = 1\n",
    })
    assert import_graph(tmp_path, "pkg")["pkg.a"] == set()
    assert import_graph(tmp_path, "pkg", annotations=True)["pkg.a"] == {"pkg.b"}


def _write(root: Path, files: Dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_a_cycle_through_a_function_level_import_is_found_and_named(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from .sub import b\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/b.py": "import pkg.c\n",
        "pkg/c.py": "def later():\n    from . import a\n    return a\n",
        "pkg/d.py": "from .a import *\nfrom pkg.sub.b import something\n",
    })
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.d"] == {"pkg.a", "pkg.sub.b"}
    assert cycles(graph) == [["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]]
    assert cycles(parts(graph, "pkg")) == [["pkg.a", "pkg.sub", "pkg.c", "pkg.a"]]


def test_a_cycle_between_parts_only_is_found(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/cli/__init__.py": "",
        "pkg/cli/common.py": "",
        "pkg/cli/ctl.py": "from ..runtime import status\n",
        "pkg/runtime/__init__.py": "",
        "pkg/runtime/status.py": "from ..cli import common\n",
    })
    graph = import_graph(tmp_path, "pkg")
    assert cycles(graph) == []
    assert cycles(parts(graph, "pkg")) == [["pkg.cli", "pkg.runtime", "pkg.cli"]]


def test_relative_imports_from_a_package_and_two_levels_up(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "from .sub import b\n",
        "pkg/sub/__init__.py": "from ..c import x\nfrom .. import c\n",
        "pkg/sub/b.py": "",
        "pkg/c.py": "",
    })
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg"] == {"pkg.sub.b"}
    assert graph["pkg.sub"] == {"pkg.c"}
    assert cycles(graph) == []


def test_imports_for_type_checking_only_are_not_edges(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n",
        "pkg/b.py": "from . import a\n",
    })
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.a"] == set() and graph["pkg.b"] == {"pkg.a"}
