"""The run layer shared by both wings: the run directory (chunk store, fingerprints, claims), the chunk
loop, progress and compile accounting. It imports neither engine (no diffrax, no model code)."""

from importlib import import_module as _import_module


def __getattr__(name):  # `gflow.runs.<module>` works after a bare `import gflow` (PEP 562)
    try:
        return _import_module(f".{name}", __name__)
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
