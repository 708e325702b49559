"""The public names of `gflow` and `gflow.deep`: each resolves from the module that defines it, and the
TYPE_CHECKING imports that editors and type checkers read list exactly the lazy loader's table."""

import ast
import importlib
import inspect
from pathlib import Path

import pytest


def _type_checking_imports(package: str) -> dict[str, str]:
    init = Path(importlib.import_module(package).__file__)
    found = {}
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.level == 1, ast.dump(imp)
                found.update({alias.name: imp.module for alias in imp.names})
    return found


@pytest.mark.parametrize("package", ["gflow", "gflow.deep"])
def test_type_checking_imports_match_the_lazy_exports(package):
    module = importlib.import_module(package)
    assert _type_checking_imports(package) == module._EXPORTS
    assert module.__all__ == sorted(module._EXPORTS)


@pytest.mark.parametrize("package", ["gflow", "gflow.deep"])
def test_each_public_class_and_function_comes_from_its_defining_module(package):
    module = importlib.import_module(package)
    for name, where in module._EXPORTS.items():
        value = getattr(module, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__ == f"{package}.{where}", (name, value.__module__)
        else:  # a table (status names): the same object as in its module
            assert value is getattr(importlib.import_module(f"{package}.{where}"), name)
