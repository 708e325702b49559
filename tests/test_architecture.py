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


@pytest.mark.parametrize("layer, forbidden", [
    ("deep", ("gflow.twolayer",)),
    ("twolayer", ("gflow.deep",)),
    ("runs", ("gflow.twolayer", "gflow.deep")),
])
def test_layers_import_only_downward(layer, forbidden):
    bad = {str(p.relative_to(GFLOW)): sorted(m for m in _imported_gflow_modules(p) if m.startswith(forbidden))
           for p in (GFLOW / layer).rglob("*.py")}
    assert not {k: v for k, v in bad.items() if v}


@pytest.mark.parametrize("module", ["config.py", "stats.py", "numerics.py", "_lazy.py"])
def test_shared_modules_import_no_wing(module):
    assert not {m for m in _imported_gflow_modules(GFLOW / module) if m.startswith(("gflow.twolayer", "gflow.deep"))}


def test_the_checker_sees_a_wing_import():
    """The check itself: the CLI does import both wings."""
    mods = _imported_gflow_modules(GFLOW / "cli.py")
    assert any(m.startswith("gflow.twolayer") for m in mods) and any(m.startswith("gflow.deep") for m in mods)
