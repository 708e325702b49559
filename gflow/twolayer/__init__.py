"""The two-layer wing: gradient flow of a two-layer ReLU net under logistic loss, integrated with diffrax.

Data flows config → data → model init → flow (diffrax) → observables → sweep → the run directory
(`gflow.runs`) → plot. Importing this package loads nothing; its modules load JAX/diffrax as needed.
"""

from importlib import import_module as _import_module


def __getattr__(name):  # `gflow.twolayer.<module>` works after a bare `import gflow` (PEP 562)
    try:
        return _import_module(f".{name}", __name__)
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
