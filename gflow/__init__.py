"""gflow: gradient flow of two-layer ReLU nets under logistic loss, swept over feature-learning strength.

Data flows config → data → model init → flow (diffrax) → observables → store → plot.
"""

from .compile_cache import configure as _configure_compile_cache

_configure_compile_cache()  # before JAX/equinox are imported below: persistent cache, EQX_ON_ERROR=nan

from .config import Config as Config  # noqa: E402
from .config import ConfigError as ConfigError
from .config import DataConfig as DataConfig
from .config import FlowConfig as FlowConfig
from .config import ModelConfig as ModelConfig
from .config import SweepConfig as SweepConfig
from .data import Dataset as Dataset
from .data import gaussian_mixture as gaussian_mixture
from .data import separability_constant as separability_constant
from .flow import STATUS_NAMES as STATUS_NAMES
from .flow import STATUSES as STATUSES
from .flow import RunResult as RunResult
from .flow import enable_float64 as enable_float64
from .flow import simulate as simulate
from .store import load_run as load_run
from .store import save_run as save_run
from .sweep import SweepResult as SweepResult
from .sweep import run_sweep as run_sweep
from .theory import bayes_error as bayes_error
from .theory import linear_test_error as linear_test_error

__version__ = "0.1.0"
