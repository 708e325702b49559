"""The README's Architecture promises, checked on the source: neither wing imports the other, and the run
layer, the config base and the statistics import neither wing (read from the import statements)."""

import ast
from pathlib import Path

import pytest

GFLOW = Path(__file__).resolve().parents[1] / "gflow"


def _imported_gflow_modules(path: Path) -> set[str]:
    """Absolute gflow module names imported by `path` (relative imports resolved)."""
    package = ["gflow", *path.relative_to(GFLOW).parent.parts]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m == "gflow" or m.startswith("gflow.")}


@pytest.mark.parametrize(
    "layer, forbidden",
    [
        ("deep", ("gflow.twolayer",)),
        ("twolayer", ("gflow.deep",)),
        ("runs", ("gflow.twolayer", "gflow.deep")),
    ],
)
def test_layers_import_only_downward(layer, forbidden):
    bad = {
        str(p.relative_to(GFLOW)): sorted(m for m in _imported_gflow_modules(p) if m.startswith(forbidden))
        for p in (GFLOW / layer).rglob("*.py")
    }
    assert not {k: v for k, v in bad.items() if v}


@pytest.mark.parametrize("module", ["config.py", "stats.py", "numerics.py", "_lazy.py"])
def test_shared_modules_import_no_wing(module):
    assert not {m for m in _imported_gflow_modules(GFLOW / module) if m.startswith(("gflow.twolayer", "gflow.deep"))}


def test_the_checker_sees_a_wing_import():
    """The check itself: the CLI does import both wings."""
    mods = _imported_gflow_modules(GFLOW / "cli.py")
    assert any(m.startswith("gflow.twolayer") for m in mods) and any(m.startswith("gflow.deep") for m in mods)


def _module_of(name: str) -> str | None:
    """The gflow module a dotted import name refers to (a module, or the module holding an attribute)."""
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        path = GFLOW.parent.joinpath(*parts[:k])
        if path.with_suffix(".py").is_file():
            return ".".join(parts[:k])
        if (path / "__init__.py").is_file():
            return ".".join(parts[:k]) + ".__init__"
    return None


def _import_graph() -> dict[str, set[str]]:
    graph = {}
    for p in GFLOW.rglob("*.py"):
        here = ".".join(p.relative_to(GFLOW.parent).with_suffix("").parts)
        graph[here] = {m for m in map(_module_of, _imported_gflow_modules(p)) if m and m != here}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle found by depth-first search (each reported once, from its smallest module)."""
    found = []

    def walk(start, node, path):
        for nxt in graph.get(node, ()):
            if nxt == start:
                found.append(path)
            elif nxt > start and nxt not in path:
                walk(start, nxt, path + [nxt])

    for start in sorted(graph):
        walk(start, start, [start])
    return found


def test_no_import_circle_between_gflow_modules():
    """Every import (top-level, in functions and under TYPE_CHECKING) of one gflow module by another points one
    way. A package's __init__ (the lazy export table) is left out: it names its modules, they do not import it."""
    graph = {
        m: {n for n in deps if not n.endswith("__init__")}
        for m, deps in _import_graph().items()
        if not m.endswith("__init__")
    }
    assert _cycles(graph) == []


def test_the_cycle_finder_sees_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_function_in_gflow_is_over_100_lines():
    long = {
        f"{p.relative_to(GFLOW)}:{n.name}": n.end_lineno - n.lineno + 1
        for p in GFLOW.rglob("*.py")
        for n in ast.walk(ast.parse(p.read_text()))
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > 100
    }
    assert long == {}
