"""gflow: gradient flow of two-layer ReLU nets under logistic loss, swept over feature-learning strength.

Data flows config → data → model init → flow (diffrax) → observables → store → plot.

Public names are re-exported lazily (PEP 562): `import gflow` and the command line's argument
parsing load neither JAX nor diffrax; the first use of an engine name (e.g. `gflow.simulate`) does.
"""

from importlib import import_module

from .compile_cache import configure as _configure_compile_cache

_configure_compile_cache()  # before JAX/equinox are first imported: persistent cache, EQX_ON_ERROR=nan

# public name -> the submodule that defines it
_EXPORTS = {
    "Config": "config", "ConfigError": "config", "DataConfig": "config", "FlowConfig": "config",
    "ModelConfig": "config", "SweepConfig": "config",
    "Dataset": "data", "gaussian_mixture": "data", "separability_constant": "data",
    "STATUS_NAMES": "flow", "STATUSES": "flow", "RunResult": "flow", "enable_float64": "flow", "simulate": "flow",
    "load_run": "store", "save_run": "store",
    "SweepResult": "sweep", "run_sweep": "sweep",
    "bayes_error": "theory", "linear_test_error": "theory",
}

_SUBMODULES = ("cli", "compile_cache", "compile_log", "config", "data", "deep", "flow", "model", "observables", "plot", "progress",
               "runner", "solvers", "store", "sweep", "theory")

__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:  # `gflow.data.from_arrays` works after a bare `import gflow`
        return import_module(f".{name}", __name__)
    raise AttributeError(f"module 'gflow' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
