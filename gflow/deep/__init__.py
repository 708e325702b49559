"""gflow.deep: FLS sweeps of deep nets (MLP, CNN, VGG, ResNet) trained by SGD with an output multiplier c.

Data flows config → data → models → train (vmapped SGD lanes with a stop rule) → sweep (chunked run
directory) → analysis / plot. Public names are re-exported lazily (PEP 562): importing this package (or
`gflow.deep.config`, with its TOML presets) loads no JAX; the first use of an engine name does.
"""

from .._lazy import lazy_attributes

# public name -> the submodule that defines it
_EXPORTS = {
    "DeepConfig": "config", "DeepDataConfig": "config", "DeepModelConfig": "config", "DeepSweepConfig": "config",
    "TrainConfig": "config", "load_preset": "config", "preset_names": "config",
    "DeepDataset": "data", "load_dataset": "data",
    "build_model": "models",
    "run_deep_sweep": "sweep",
    "STATUS_NAMES": "train", "STATUSES": "train", "train_run": "train",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS)  # `gflow.deep.train` works after a bare `import gflow.deep`
