"""What a sweep of either wing returns: `SweepResult`, named arrays with their dims and the run's metadata."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from . import status
from .store import to_dataset


@dataclasses.dataclass
class SweepResult:
    """Named arrays with their dims, plus run metadata; returned by `gflow.run_sweep` and `gflow.deep.run_deep_sweep`.

    `arrays[name]` has dims `dims[name]`, e.g. ["scale", "seed"] or ["data.n", "scale", "seed", "time"] (two-layer
    wing) or ["multiplier", "lr", "seed"] (deep wing). Coordinates are arrays too (e.g. `arrays["init_scale"]`,
    dims ["scale"]). `meta` is what the run directory's manifest holds; `dir` is the run directory (None for a
    two-layer sweep run without one).
    """

    arrays: dict[str, np.ndarray]
    dims: dict[str, list[str]]
    meta: dict
    dir: Path | None = None

    def status_names(self) -> np.ndarray:
        """The status of every run as a name (`gflow.runs.status`), in the shape of `arrays["status"]`."""
        return status.names_of(self.arrays["status"])

    def to_dataset(self):
        """The result as the labeled `xarray.Dataset` that `gflow.load_run` returns for a saved run."""
        return to_dataset(self.arrays, self.dims, self.meta)
