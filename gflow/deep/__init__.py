"""gflow.deep: FLS sweeps of deep nets (MLP, CNN, VGG, ResNet) trained by SGD with an output multiplier c.

Data flows config → data → models → train (vmapped SGD lanes with a stop rule) → sweep (chunked run
directory) → analysis / plot. Public names are re-exported lazily (PEP 562): importing this package (or
`gflow.deep.config`, with its TOML presets) loads no JAX; the first use of an engine name does.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes

# public name -> the submodule that defines it
_EXPORTS = {
    "DeepConfig": "config",
    "DeepDataConfig": "config",
    "DeepModelConfig": "config",
    "DeepSweepConfig": "config",
    "TrainConfig": "config",
    "load_preset": "config",
    "preset_names": "config",
    "DeepDataset": "data",
    "load_dataset": "data",
    "build_model": "models",
    "run_deep_sweep": "sweep",
    "STATUS_NAMES": "stop",
    "STATUSES": "stop",
    "train_run": "train",
}

if TYPE_CHECKING:  # the names the lazy loader resolves, spelled out for editors and type checkers
    from .config import (
        DeepConfig,
        DeepDataConfig,
        DeepModelConfig,
        DeepSweepConfig,
        TrainConfig,
        load_preset,
        preset_names,
    )
    from .data import DeepDataset, load_dataset
    from .models import build_model
    from .stop import STATUS_NAMES, STATUSES
    from .sweep import run_deep_sweep
    from .train import train_run

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS)  # `gflow.deep.train` works after a bare `import gflow.deep`
