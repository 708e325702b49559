"""gflow.deep: FLS sweeps of deep nets (MLP, CNN, VGG, ResNet) trained by SGD with an output multiplier c.

Data flows config → data → models → train (vmapped SGD lanes with a stop rule) → sweep (chunked run
directory) → analysis / plot. Public names are re-exported lazily (PEP 562): importing this package (or
`gflow.deep.config`, with its TOML presets) loads no JAX; the first use of an engine name does.
"""

from importlib import import_module

# public name -> the submodule that defines it
_EXPORTS = {
    "DeepConfig": "config", "DeepDataConfig": "config", "DeepModelConfig": "config", "DeepSweepConfig": "config",
    "TrainConfig": "config", "load_preset": "config", "preset_names": "config",
    "DeepDataset": "data", "load_dataset": "data",
    "build_model": "models",
    "DeepSweepResult": "sweep", "run_deep_sweep": "sweep",
    "STATUS_NAMES": "train", "STATUSES": "train", "train_run": "train",
}

_SUBMODULES = ("analysis", "config", "data", "models", "plot", "sweep", "train")

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:  # `gflow.deep.train.train_lanes` works after a bare `import gflow.deep`
        return import_module(f".{name}", __name__)
    raise AttributeError(f"module 'gflow.deep' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
