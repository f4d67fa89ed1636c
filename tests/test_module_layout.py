"""The house's layout across the four packages: dependencies point one way, no import cycles, short modules.

curation -> {filters, attribution} -> stores: a package never imports one above it. No two
modules import each other (directly or in a ring), counting every import statement wherever
it stands (function-level imports included). No module is over 500 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("stores", "attribution", "filters", "curation")
#: what each package may import from the others
ALLOWED = {"stores": set(), "attribution": {"stores"}, "filters": {"stores", "attribution"},
           "curation": {"stores", "attribution", "filters"}}
MAX_LINES = 500


def module_name(path: Path) -> str:
    """Dotted module name of a file under the repository root (``pkg/__init__.py`` -> ``pkg``)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    """Every module of the four packages by dotted name."""
    return {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def imported(path: Path, known: set[str]) -> set[str]:
    """The project modules a file imports (``from x import y`` counts ``x.y`` when that is a module)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> project modules it imports; package ``__init__`` re-exports are edges too."""
    mods = modules()
    return {name: imported(path, set(mods)) for name, path in mods.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (first module repeated at the end), or None. A package and its own modules
    importing each other (``__init__`` re-exporting a submodule) is not a cycle."""
    def skip(a: str, b: str) -> bool:
        return b.startswith(a + ".") or a.startswith(b + ".")

    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(n for n in graph.get(node, ()) if not skip(node, n)):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_dependencies_point_one_way() -> None:
    wrong = [f"{a} imports {b}" for a, deps in import_graph().items() for b in deps
             if b.split(".")[0] != a.split(".")[0] and b.split(".")[0] not in ALLOWED[a.split(".")[0]]]
    assert wrong == []


def test_no_import_cycles() -> None:
    assert find_cycle(import_graph()) is None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"p": {"p.x"}, "p.x": {"p"}}) is None


def test_no_module_over_500_lines() -> None:
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_modules_and_public_names_are_documented() -> None:
    missing = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text())
        if not ast.get_docstring(tree):
            missing.append(name)
        missing += [f"{name}.{node.name}" for node in tree.body
                    if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_")
                    and not ast.get_docstring(node)]
    assert missing == []
