"""Lazy package attributes (PEP 562), shared by `gflow` and its subpackages: a public name is imported from
the submodule that defines it on first use, and `package.module` works after a bare `import package`, so
importing a package loads no engine (JAX, diffrax) until one of its names is used."""

from __future__ import annotations

from importlib import import_module


def lazy_attributes(package: str, exports: dict[str, str] | None = None):
    """(__getattr__, __dir__) for `package`: `exports` maps a public name to the submodule (relative to the
    package) that defines it; any other attribute is tried as a submodule of the package."""
    exports = exports or {}

    def __getattr__(name):
        module = import_module(package)
        if name in exports:
            value = getattr(import_module(f".{exports[name]}", package), name)
            setattr(module, name, value)
            return value
        try:
            return import_module(f".{name}", package)
        except ModuleNotFoundError as e:
            if e.name != f"{package}.{name}":
                raise
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(vars(import_module(package))) | set(exports))

    return __getattr__, __dir__
