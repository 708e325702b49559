"""Helpers shared by the two-layer experiment scripts: the command line, one resumable sweep per setting,
the data geometry, figures and summary.json. The statistics are `gflow.stats`.

Conventions
- A "setting" is one `gflow.Config`; its sweep is the run directory `<out>/<name>/` of
  `gflow.run_sweep(cfg, out=...)`: a rerun resumes it (loading what is done, computing the rest).
- Only the statuses in `gflow.twolayer.flow.OK_STATUSES` enter means; other runs are counted and reported.
- Errors are averaged over runs ("units": an init seed, or an (data seed, init seed) pair); bootstrap
  intervals resample units with replacement.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import gflow  # noqa: E402
from gflow.runs.runner import RunMismatchError  # noqa: E402
from gflow.runs.status import counts as status_counts, is_ok as ok_mask  # noqa: E402,F401  (the scripts' names)
from gflow.runs.store import write_json  # noqa: E402
from gflow.twolayer import theory  # noqa: E402
from gflow.twolayer.data import make_dataset  # noqa: E402


def parse_args(doc: str, argv=None, default_out: str = "runs/experiment") -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny preset for smoke tests (seconds, not minutes)")
    ap.add_argument("--out", default=default_out, help="run directory (sweeps, summary.json, figures)")
    return ap.parse_args(argv)


SWEEP_LOG: list[dict] = []  # sweeps of this experiment: name, wall time now, loaded (nothing computed now)


def sweep(cfg: gflow.Config, out_dir, name: str, data=None) -> dict[str, np.ndarray]:
    """The sweep of `cfg` in the run directory out_dir/name (`gflow.run_sweep(cfg, out=...)`): a rerun
    resumes it. A directory that holds another config (an edited preset) is recomputed, with one line
    on stdout. Returns the arrays, dims [scale, seed(, time)] ([data_seed, scale, seed] with data seeds).

    `data` (a `gflow` Dataset) overrides the config's data; the run's fingerprint records it.
    """
    path = Path(out_dir) / name
    try:
        res = gflow.run_sweep(cfg, data=data, out=path, progress=False)
    except RunMismatchError as e:
        print(f"{str(e).split('; use another')[0]}: recomputing it", flush=True)
        res = gflow.run_sweep(cfg, data=data, out=path, progress=False, force=True)
    SWEEP_LOG.append({"name": name, "wall_s": res.meta["wall_s"], "loaded": res.meta["chunks_computed"] == 0})
    return res.arrays


def geometry(data_cfg: gflow.DataConfig) -> dict:
    """Float64 geometry of the Gaussian-mixture training set of `data_cfg` (the data every α sees)."""
    ds = make_dataset(data_cfg)
    x, y, s = (np.asarray(v, np.float64) for v in (ds.x, ds.y, ds.s))
    xplus = (y[:, None] * x).mean(0)
    mu_plus = x[y > 0].mean(0)  # μ₊, the positive-class mean
    k_pos, k_neg = (float(v) for v in theory.phase1_rates(x, y))
    return {
        "x": x, "y": y, "s": s, "xplus": xplus, "mu_plus": mu_plus,
        "phi_xplus": float(theory.angle(xplus, s)),  # ∠(x₊, s)
        "phi_mu": float(theory.angle(mu_plus, s)),  # ∠(μ₊, s)
        "cos_xplus_mu": float(theory.cosine(xplus, mu_plus)),
        "separability": gflow.separability_constant(x, y),
        "bayes_error": float(theory.bayes_error(data_cfg.kappa, data_cfg.sigma)),
        "rate_pos": k_pos, "rate_neg": k_neg,  # Phase-1 growth rates ‖v₊‖, ‖v₋‖
        "x_max": float(np.linalg.norm(x, axis=1).max()),
        "xplus_norm": float(np.linalg.norm(xplus)),
    }


def unit_width_max(d: int, width: int, seeds) -> float:
    """W_max = max_j ‖w̄_j‖ of the unit-scale init W̄ (W(0) = α·W̄), maximized over the given init seeds."""
    from gflow.twolayer import model

    return max(
        float(np.linalg.norm(np.asarray(model.init_params(key=model.init_key(j), d=d, width=width, init_scale=1.0).W), axis=1).max())
        for j in seeds
    )


def save_figure(fig, out_dir, name: str) -> Path:
    """Save as a PNG with a 128-colour palette (about 3× smaller, small enough to commit)."""
    from PIL import Image  # a dependency of matplotlib

    path = Path(out_dir) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    Image.open(path).convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return path


def write_summary(out_dir, summary: dict) -> Path:
    path = Path(out_dir) / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, _jsonable(summary))
    return path


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    return obj


class Timer:
    """Wall time of a whole experiment (compile included), for summary.json and EXPERIMENTS.md, and of
    its sweeps: `sweeps()` counts them, those loaded from an earlier run (nothing computed now), and the
    wall time they took in this call (a loaded sweep costs only its reassembly)."""

    def __init__(self):
        self.start = time.perf_counter()
        SWEEP_LOG.clear()

    def seconds(self) -> float:
        return time.perf_counter() - self.start

    def sweeps(self) -> dict:
        return {"n_sweeps": len(SWEEP_LOG), "n_loaded": sum(e["loaded"] for e in SWEEP_LOG),
                "sweep_wall_s": float(sum(e["wall_s"] for e in SWEEP_LOG))}
