"""The structure the code promises (ARCHITECTURE.md), checked from the source with ``ast``:
imports inside app/ go one way, no module keeps mutable state at module level, and reads
are pinned to the primary one way only."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Entry points may build the app at import (gunicorn's and Celery's).
ENTRY_POINTS = {"app/wsgi.py", "worker/__init__.py"}


def modules(package: str) -> Iterator[tuple[str, Path]]:
    for path in sorted((ROOT / package).rglob("*.py")):
        relative = path.relative_to(ROOT)
        parts = list(relative.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path


def imported_modules(path: Path, name: str, known: set[str]) -> set[str]:
    """The modules of ``known`` that ``path`` imports anywhere (module level or inside functions)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in known else base)
    return {module for module in found if module in known}


def import_graph(package: str) -> dict[str, set[str]]:
    found = dict(modules(package))
    known = set(found)
    return {name: imported_modules(path, name, known) - {name} for name, path in found.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_inside_app() -> None:
    graph = import_graph("app")
    assert "app.database.routing" in graph["app.database"], "the graph sees package imports"
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph) or [])}"


def test_only_create_app_imports_the_app_package() -> None:
    """Nothing inside app/ imports ``app`` itself (the package whose __init__ wires everything)."""
    importers = [name for name, imports in import_graph("app").items() if "app" in imports and name != "app.wsgi"]
    assert importers == []


MUTABLE_CALLS = {"dict", "list", "set", "defaultdict", "OrderedDict", "Counter", "deque", "WeakValueDictionary"}


def mutable_module_state(path: Path) -> list[str]:
    """Module-level names bound to mutable containers, and any ``global`` statement."""
    tree = ast.parse(path.read_text())
    found = [f"global {', '.join(node.names)}" for node in ast.walk(tree) if isinstance(node, ast.Global)]
    for node in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        if value is None:
            continue
        mutable = isinstance(value, (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp)) or (
            isinstance(value, ast.Call)
            and isinstance(value.func, (ast.Name, ast.Attribute))
            and (value.func.id if isinstance(value.func, ast.Name) else value.func.attr) in MUTABLE_CALLS
        )
        names = [target.id for target in targets if isinstance(target, ast.Name)]
        # UPPER_CASE containers are constants by convention (and never rebound or mutated);
        # __all__ is Python's. Anything else is state.
        if mutable and any(not name.isupper() and name != "__all__" for name in names):
            found.extend(names)
    return found


def test_mutable_state_detector() -> None:
    sample = ROOT / "tests" / "unit" / "data" / "module_with_state.py.txt"
    assert mutable_module_state(sample) == ["global _seen", "_seen", "registry"]


@pytest.mark.parametrize("package", ["app", "worker"])
def test_no_module_level_mutable_state(package: str) -> None:
    """State lives on objects created in create_app (app.extensions), not in module globals."""
    offenders = {
        str(path.relative_to(ROOT)): state
        for _, path in modules(package)
        if str(path.relative_to(ROOT)) not in ENTRY_POINTS and (state := mutable_module_state(path))
    }
    assert offenders == {}


def test_reads_are_pinned_to_the_primary_one_way() -> None:
    """``use_primary`` (app.database) is the one way: no ``bind_arguments`` or engine binds in
    queries (app.database itself, where the session routes, excepted)."""
    offenders = [
        str(path.relative_to(ROOT))
        for name, path in modules("app")
        if not name.startswith("app.database") and "bind_arguments" in path.read_text()
    ]
    assert offenders == []
