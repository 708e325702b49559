"""gflow: gradient flow of two-layer ReLU nets under logistic loss, swept over feature-learning strength.

Layers (README, Architecture): `gflow.runs` (the run directory: chunk store, chunk loop, progress) under two
wings, `gflow.twolayer` (gradient flow of the two-layer net, diffrax) and `gflow.deep` (SGD on deep nets).

Public names are re-exported lazily (PEP 562): `import gflow` and the command line's argument
parsing load neither JAX nor diffrax; the first use of an engine name (e.g. `gflow.simulate`) does.
"""

from importlib import import_module

from .compile_cache import configure as _configure_compile_cache

_configure_compile_cache()  # before JAX/equinox are first imported: persistent cache, EQX_ON_ERROR=nan

# public name -> the submodule that defines it
_EXPORTS = {
    "Config": "twolayer.config", "ConfigError": "config", "DataConfig": "twolayer.config", "FlowConfig": "twolayer.config",
    "ModelConfig": "twolayer.config", "SweepConfig": "twolayer.config",
    "Dataset": "twolayer.data", "gaussian_mixture": "twolayer.data", "separability_constant": "twolayer.data",
    "STATUS_NAMES": "twolayer.flow", "STATUSES": "twolayer.flow", "RunResult": "twolayer.flow", "enable_float64": "numerics", "simulate": "twolayer.flow",
    "load_run": "runs.store", "save_run": "runs.store",
    "SweepResult": "twolayer.sweep", "run_sweep": "twolayer.sweep",
    "bayes_error": "twolayer.theory", "linear_test_error": "twolayer.theory",
}

_SUBMODULES = ("cli", "compile_cache", "config", "deep", "numerics", "runs", "stats", "twolayer")

__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:  # `gflow.twolayer.data.from_arrays` works after a bare `import gflow`
        return import_module(f".{name}", __name__)
    raise AttributeError(f"module 'gflow' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
