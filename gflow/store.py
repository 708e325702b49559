"""Run directories: `manifest.json` (config, versions, device, timing, status counts, array dims) and
`arrays.npz`. Every file is written atomically: to a temporary file in the same directory, then renamed."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

from .flow import STATUSES
from .observables import OBSERVABLES

MANIFEST = "manifest.json"
ARRAYS = "arrays.npz"


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: Path, obj) -> None:
    _atomic_write(Path(path), lambda f: f.write(json.dumps(obj, indent=2, sort_keys=False).encode()))


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    _atomic_write(Path(path), lambda f: np.savez(f, **arrays))


def versions() -> dict[str, str]:
    out = {}
    for pkg in ("gflow", "jax", "jaxlib", "diffrax", "equinox", "optax", "numpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def git_commit() -> str | None:
    """The commit of the gflow source tree, if it is a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def save_run(out_dir, config: dict, result) -> Path:
    """Write a SweepResult to `out_dir` (created if needed): arrays first, manifest last."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_npz(out / ARRAYS, result.arrays)
    manifest = {
        "config": config,
        "versions": versions(),
        "git_commit": git_commit(),
        **result.meta,
        "dims": result.dims,
        "statuses": {name: {"code": i, "meaning": m} for i, (name, m) in enumerate(STATUSES.items())},
        "observables": OBSERVABLES,
    }
    write_json(out / MANIFEST, manifest)
    return out


def load_run(run_dir) -> tuple[dict, dict[str, np.ndarray]]:
    """(manifest, arrays) of a run directory; a clear error if it is not one."""
    run_dir = Path(run_dir)
    if not (run_dir / MANIFEST).is_file():
        raise FileNotFoundError(f"{run_dir}: not a gflow run directory (needs {MANIFEST} and {ARRAYS})")
    manifest = json.loads((run_dir / MANIFEST).read_text())
    if not manifest.get("complete", True) or not (run_dir / ARRAYS).is_file():
        n_done = len(list((run_dir / "chunks").glob("chunk-*.npz")))
        total = manifest.get("plan", {}).get("n_chunks", "?")
        raise FileNotFoundError(f"{run_dir}: run incomplete ({n_done} of {total} chunks); rerun the same sweep to finish it")
    with np.load(run_dir / ARRAYS) as z:
        arrays = {k: z[k] for k in z.files}
    return manifest, arrays
