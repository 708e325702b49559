"""gflow: gradient flow of two-layer ReLU nets under logistic loss, swept over feature-learning strength.

Layers (docs/architecture.md): `gflow.runs` (the run directory: chunk store, chunk loop, progress) under two
wings, `gflow.twolayer` (gradient flow of the two-layer net, diffrax) and `gflow.deep` (SGD on deep nets).

Public names are re-exported lazily (PEP 562): `import gflow` and the command line's argument
parsing load neither JAX nor diffrax; the first use of an engine name (e.g. `gflow.simulate`) does.
"""

from typing import TYPE_CHECKING

from ._lazy import lazy_attributes
from .compile_cache import configure as _configure_compile_cache

_configure_compile_cache()  # before JAX/equinox are first imported: persistent cache, EQX_ON_ERROR=nan

# public name -> the submodule that defines it
_EXPORTS = {
    "Config": "twolayer.config",
    "ConfigError": "config",
    "DataConfig": "twolayer.config",
    "FlowConfig": "twolayer.config",
    "ModelConfig": "twolayer.config",
    "SweepConfig": "twolayer.config",
    "Dataset": "twolayer.data",
    "gaussian_mixture": "twolayer.data",
    "separability_constant": "twolayer.data",
    "STATUS_NAMES": "twolayer.stop",
    "STATUSES": "twolayer.stop",
    "RunResult": "twolayer.flow",
    "simulate": "twolayer.flow",
    "enable_float64": "numerics",
    "load_run": "runs.store",
    "save_run": "runs.store",
    "SweepResult": "runs.result",
    "run_sweep": "twolayer.sweep",
    "bayes_error": "twolayer.theory",
    "linear_test_error": "twolayer.theory",
}

if TYPE_CHECKING:  # the names the lazy loader resolves, spelled out for editors and type checkers
    from .config import ConfigError
    from .numerics import enable_float64
    from .runs.result import SweepResult
    from .runs.store import load_run, save_run
    from .twolayer.config import Config, DataConfig, FlowConfig, ModelConfig, SweepConfig
    from .twolayer.data import Dataset, gaussian_mixture, separability_constant
    from .twolayer.flow import RunResult, simulate
    from .twolayer.stop import STATUS_NAMES, STATUSES
    from .twolayer.sweep import run_sweep
    from .twolayer.theory import bayes_error, linear_test_error

__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"
__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS)  # `gflow.twolayer.data` works after a bare `import gflow`
