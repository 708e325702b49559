"""Helpers shared by the two-layer experiment scripts: the command line, one resumable sweep per setting,
the data geometry, figures and summary.json. The statistics are `gflow.stats`.

Conventions
- A "setting" is one `gflow.Config`; its sweep is the run directory `<out>/<name>/` of
  `gflow.run_sweep(cfg, out=...)`: a rerun resumes it (loading what is done, computing the rest).
- Only the statuses in `gflow.twolayer.stop.OK_STATUSES` enter means; other runs are counted and reported.
- Errors are averaged over runs ("units": an init seed, or an (data seed, init seed) pair); intervals over
  datasets come from the hierarchical bootstrap of `gflow.stats` (datasets, then seeds within a dataset).
- Data seeds (`data_seeds`): dataset i of a setting with n training points has data seed
  DATA_SEED_STRIDE·n + i. One seed shared across n would give nested training sets (the n = 10 set is the
  first 10 points of the n = 20 set: the sampler draws points in order from one key), so the n values would
  not be independent samples; disjoint seeds per n make them independent draws. Settings with the same n
  (other widths, stopping targets, tie conventions) share their datasets, and are resampled jointly.
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
from gflow import stats  # noqa: E402
from gflow.runs import status as _status  # noqa: E402
from gflow.runs.runner import RunMismatchError  # noqa: E402
from gflow.runs.store import write_json  # noqa: E402
from gflow.twolayer import theory  # noqa: E402
from gflow.twolayer.data import make_dataset  # noqa: E402

status_counts, ok_mask = _status.counts, _status.is_ok  # the names the experiment scripts use


def parse_args(doc: str, argv=None, default_out: str = "runs/experiment", extra=None) -> argparse.Namespace:
    """--quick and --out; `extra(parser)` adds a script's own options."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny preset for smoke tests (seconds, not minutes)")
    ap.add_argument("--out", default=default_out, help="run directory (sweeps, summary.json, figures)")
    if extra is not None:
        extra(ap)
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


DATA_SEED_STRIDE = 1000  # datasets per n at most


def data_seeds(n: int, count: int) -> tuple[int, ...]:
    """The data seeds of the `count` datasets of a setting with n training points: DATA_SEED_STRIDE·n + i,
    i < count (disjoint across n: independent training sets, not nested prefixes of one draw)."""
    if not 0 < count <= DATA_SEED_STRIDE:
        raise ValueError(f"count: datasets per n must be in 1..{DATA_SEED_STRIDE}, got {count}")
    return tuple(DATA_SEED_STRIDE * int(n) + i for i in range(count))


def geometry(data_cfg: gflow.DataConfig) -> dict:
    """Float64 geometry of the Gaussian-mixture training set of `data_cfg` (the data every α sees)."""
    ds = make_dataset(data_cfg)
    x, y, s = (np.asarray(v, np.float64) for v in (ds.x, ds.y, ds.s))
    xplus = (y[:, None] * x).mean(0)
    mu_plus = x[y > 0].mean(0)  # μ₊, the positive-class mean
    k_pos, k_neg = (float(v) for v in theory.phase1_rates(x, y))
    return {
        "x": x,
        "y": y,
        "s": s,
        "xplus": xplus,
        "mu_plus": mu_plus,
        "phi_xplus": float(theory.angle(xplus, s)),  # ∠(x₊, s)
        "phi_mu": float(theory.angle(mu_plus, s)),  # ∠(μ₊, s)
        "cos_xplus_mu": float(theory.cosine(xplus, mu_plus)),
        "separability": gflow.separability_constant(x, y),
        "bayes_error": float(theory.bayes_error(data_cfg.kappa, data_cfg.sigma)),
        "rate_pos": k_pos,
        "rate_neg": k_neg,  # Phase-1 growth rates ‖v₊‖, ‖v₋‖
        "x_max": float(np.linalg.norm(x, axis=1).max()),
        "xplus_norm": float(np.linalg.norm(xplus)),
    }


def unit_width_max(d: int, width: int, seeds) -> float:
    """W_max = max_j ‖w̄_j‖ of the unit-scale init W̄ (W(0) = α·W̄), maximized over the given init seeds."""
    from gflow.twolayer import model

    return max(
        float(
            np.linalg.norm(
                np.asarray(model.init_params(key=model.init_key(j), d=d, width=width, init_scale=1.0).W), axis=1
            ).max()
        )
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
        return {
            "n_sweeps": len(SWEEP_LOG),
            "n_loaded": sum(e["loaded"] for e in SWEEP_LOG),
            "sweep_wall_s": float(sum(e["wall_s"] for e in SWEEP_LOG)),
        }


# --- α* over datasets: the pooled and per-dataset rules, hierarchical intervals, exponents, labels --------


def by_dataset(arr) -> np.ndarray:
    """[data_seed, scale, seed(, …)] sweep arrays → [scale, data_seed, seed(, …)] (the grid first)."""
    return np.moveaxis(np.asarray(arr), 1, 0)


def with_ties(err, tie, ties: str) -> np.ndarray:
    """The error under a tie convention from the error that counts ties as errors and the tie mass:
    err − (1 − w)·tie with w = 1 ('error'), 1/2 ('half') or 0 ('correct': an abstention-adjusted error,
    not a test error: a net that abstains everywhere would score 0)."""
    from gflow.twolayer.gm_error import tie_weight

    return np.asarray(err) - (1.0 - tie_weight(ties)) * np.asarray(tie)


def dataset_curve(values, ok) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over all ok units of [grid, dataset, seed] values, its standard error over datasets (the
    standard deviation of the dataset means over √datasets) and the number of datasets with an ok run."""
    v, ok = np.asarray(values, np.float64), np.asarray(ok)
    mean = stats.seed_mean(v.reshape(v.shape[0], -1), ok.reshape(ok.shape[0], -1))[0]
    ds_mean = stats.seed_mean(v, ok, axis=2)[0]
    _, se, count = stats.seed_mean(ds_mean, np.isfinite(ds_mean))
    return mean, se, count


def alpha_star_scan(grids, values, oks, groups, *, n_boot: int, seed: int) -> list[dict]:
    """α* of each setting of a scan by both rules, with hierarchical bootstrap replicates drawn jointly
    within each group of settings that share their datasets (`groups`: e.g. n, for a width scan at one n).

    Per setting (grid_i, values_i [grid, dataset, seed], ok_i): the pooled rule (refined argmin of the curve
    averaged over all units; `at_grid_edge` marks a bound) and the per-dataset rule (median over datasets of
    each dataset's refined argmin, datasets with an edge minimum left out, their count reported); each with
    its replicates ('boot') and 95% interval; the mean curve and its standard error over datasets."""
    grids = [np.asarray(g, np.float64) for g in grids]
    settings = [(np.asarray(v, np.float64), np.asarray(o)) for v, o in zip(values, oks)]
    pooled = stats.hierarchical_bootstrap(
        lambda i, v, o: stats.pooled_argmin(grids[i], v, o), settings, groups=groups, n_boot=n_boot, seed=seed
    )
    cache = {}

    def median(i, datasets, seeds, v, o):  # the per-dataset rule, each (dataset, seed multiset) refined once
        xs = []
        for d, row in zip(datasets, seeds):
            key = (i, int(d), tuple(sorted(int(r) for r in row)))
            if key not in cache:
                cache[key] = stats.per_dataset_argmin(grids[i], v[:, d : d + 1][:, :, row], o[:, d : d + 1][:, :, row])[
                    0
                ]
            xs.append(cache[key])
        xs = np.asarray(xs)
        return float(np.median(xs[np.isfinite(xs)])) if np.isfinite(xs).any() else float("nan")

    median = stats.hierarchical_bootstrap(median, settings, groups=groups, n_boot=n_boot, seed=seed, with_indices=True)
    out = []
    for i, (v, o) in enumerate(settings):
        mean, se, count = dataset_curve(v, o)
        x, at_edge = stats.refine_argmin(grids[i], mean)
        per_ds = stats.per_dataset_argmin(grids[i], v, o)
        out.append(
            {
                "alpha_star": x,
                "at_grid_edge": at_edge,
                "location": stats.argmin_location(mean),
                "ci95": stats.interval(pooled[i]),
                "boot": pooled[i],
                "alpha_star_median": stats.median_per_dataset_argmin(grids[i], v, o),
                "ci95_median": stats.interval(median[i]),
                "boot_median": median[i],
                "per_dataset": per_ds,
                "datasets_interior": int(np.isfinite(per_ds).sum()),
                "mean": mean,
                "se": se,
                "datasets": count,
            }
        )
    return out


def scan_exponent(xs, entries, rule: str = "pooled") -> dict:
    """Power-law exponent of α* (pooled rule, or 'median' for the per-dataset rule) across a scan, with the
    95% interval of the exponents refitted on each joint bootstrap replicate; settings whose pooled α* is at
    a grid end are bounds and left out (listed in 'used')."""
    key, boot = ("alpha_star", "boot") if rule == "pooled" else ("alpha_star_median", "boot_median")
    inner = [k for k, e in enumerate(entries) if not e["at_grid_edge"] and np.isfinite(e[key])]
    if len(inner) < 2:
        return {"exponent": None, "ci95": None, "used": [xs[k] for k in inner]}
    x = np.asarray([xs[k] for k in inner], float)
    return {
        "exponent": stats.fit_power_law(x, [entries[k][key] for k in inner])[0],
        "ci95": stats.bootstrap_exponent(x, np.stack([entries[k][boot] for k in inner]))[1],
        "used": x.tolist(),
    }


def strip_boot(obj):
    """`obj` without its bootstrap replicates (keys starting 'boot'), for summary.json."""
    if isinstance(obj, dict):
        return {k: strip_boot(v) for k, v in obj.items() if not str(k).startswith("boot")}
    if isinstance(obj, list):
        return [strip_boot(v) for v in obj]
    return obj
