"""Helpers shared by the experiment scripts: one cached sweep per setting, seed statistics over normal
stops only, α* by a local quadratic fit in log α, bootstrap intervals, power-law fits, figures.

Conventions
- A "setting" is one `gflow.Config`; its sweep is saved in `<out>/<name>/` (manifest.json + results.nc)
  and a rerun with the same config loads it instead of recomputing.
- Only the statuses in `gflow.twolayer.flow.OK_STATUSES` enter means; other runs are counted and reported.
- Errors are averaged over runs ("units": an init seed, or an (data seed, init seed) pair); bootstrap
  intervals resample units with replacement.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import gflow  # noqa: E402
from gflow.twolayer import theory  # noqa: E402
from gflow.twolayer.data import make_dataset  # noqa: E402
from gflow.twolayer.flow import OK_STATUSES, STATUS_NAMES  # noqa: E402
from gflow.runs.store import arrays_of, write_json  # noqa: E402
from gflow.stats import (  # noqa: E402,F401  (re-exported for the scripts)
    bootstrap_argmin,
    bootstrap_exponent,
    fit_power_law,
    interval,
    refine_argmin,
    seed_mean,
)

OK_CODES = [STATUS_NAMES.index(name) for name in OK_STATUSES]


def parse_args(doc: str, argv=None, default_out: str = "runs/experiment") -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny preset for smoke tests (seconds, not minutes)")
    ap.add_argument("--out", default=default_out, help="run directory (sweeps, summary.json, figures)")
    return ap.parse_args(argv)


def ok_mask(status) -> np.ndarray:
    return np.isin(np.asarray(status), OK_CODES)


def status_counts(status) -> dict[str, int]:
    status = np.asarray(status)
    return {STATUS_NAMES[c]: int(np.sum(status == c)) for c in np.unique(status)}


def _canonical(obj):
    return json.loads(json.dumps(obj, sort_keys=True))


SWEEP_LOG: list[dict] = []  # sweeps of this experiment: name, recorded wall time, loaded or computed now


def sweep(cfg: gflow.Config, out_dir, name: str, data=None) -> tuple[dict, dict]:
    """Run (or load) the α × init-seed sweep of `cfg`, saved in out_dir/name. Returns (arrays, manifest).

    Arrays with dims [scale, seed(, time)], as `gflow.run_sweep` returns them. `data` (a `gflow` Dataset)
    overrides the config's data; the manifest does not record it, so `name` must identify it.
    """
    path = Path(out_dir) / name
    if (path / "manifest.json").exists():
        ds = gflow.load_run(path)
        manifest, arrays = ds.attrs, arrays_of(ds)
        if _canonical(manifest["config"]) == _canonical(cfg.to_dict()):
            SWEEP_LOG.append({"name": name, "wall_s": manifest.get("wall_s"), "loaded": True})
            return dict(arrays), manifest
    res = gflow.run_sweep(cfg, data=data, progress=False)
    for key in ("final_test_err", "status"):
        assert res.dims[key][:2] == ["scale", "seed"], res.dims[key]
    gflow.save_run(path, cfg.to_dict(), res)
    ds = gflow.load_run(path)
    manifest, arrays = ds.attrs, arrays_of(ds)
    SWEEP_LOG.append({"name": name, "wall_s": res.meta.get("wall_s"), "loaded": False})
    return dict(arrays), manifest


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
    """Wall time of a whole experiment (compile included), for summary.json and EXPERIMENTS.md.

    Sweeps loaded from an earlier run cost nothing now; `sweeps()` reports the wall time their
    manifests recorded when they were computed, so a rerun still states the full cost."""

    def __init__(self):
        self.start = time.perf_counter()
        SWEEP_LOG.clear()

    def seconds(self) -> float:
        return time.perf_counter() - self.start

    def sweeps(self) -> dict:
        walls = [e["wall_s"] or 0.0 for e in SWEEP_LOG]
        return {"n_sweeps": len(SWEEP_LOG), "n_loaded": sum(e["loaded"] for e in SWEEP_LOG), "recorded_sweep_wall_s": float(sum(walls))}
