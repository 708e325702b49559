"""Scaling law of the optimal multiplier on the 5-layer CNN: c* vs width h (n fixed) and vs training-set
size n (h fixed), with fitted exponents and 95% bootstrap intervals, against the two-layer prediction
c* ∝ n⁻² h⁻¹ (exponents −1 for width, −2 for n).

    python experiments/deep_scaling_law.py [--preset cpu|gpu] [--quick] [--out DIR]

For each width and each n it runs a c × η × seed sweep (experiments/deep_fls_sweep.py's machinery, one
resumable run directory each), takes the best peak test accuracy over η at each c, and locates c* by a
parabola in log c through the best grid point. A c* at the end of the c grid is a bound, not an estimate:
it is shown as an open marker and left out of the fit (and printed as "grid end" or "next to a gap", whichever
it is). Writes DIR/{scaling.json, scaling.png} and, per sweep, DIR/<sweep>/{heatmap.png, best_vs_c.png}.

The CPU preset (20 minutes under load) is too short to test the law: with a 400-step budget most
small-c runs stop short of 99% train accuracy, and at most one c* per axis came out interior
(EXPERIMENTS.md, "Deep nets"). The GPU preset is the one meant to measure the exponents.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from gflow.deep import DeepConfig, run_deep_sweep  # noqa: E402
from gflow.deep.analysis import json_safe, scaling_fit  # noqa: E402
from gflow.deep.config import load_preset  # noqa: E402
from gflow.deep.plot import grid_ticks, plot_best_vs_c, plot_heatmap  # noqa: E402
from gflow.runs.store import write_json  # noqa: E402

PREDICTED = {"width": -1.0, "n": -2.0}


def get_config(preset: str = "cpu", *, quick: bool = False) -> dict:
    """The base sweep (gflow/deep/presets/scaling-law-<preset>.toml, its [quick] table with --quick) and the
    plan: the widths swept at n = base_n and the training-set sizes n swept at width base_width."""
    if preset not in ("cpu", "gpu"):
        raise SystemExit(f"--preset: unknown preset {preset!r}; choose cpu or gpu")
    base = load_preset(f"scaling-law-{preset}", quick=quick)
    if quick:  # two points per axis (the preset's [quick] table: three multipliers, one η, two seeds, 60 steps)
        plan = {"widths": (2, 4), "n_values": (64, 128), "base_width": 4, "base_n": 128}
    elif preset == "cpu":
        plan = {"widths": (2, 4, 8), "n_values": (32, 64, 128), "base_width": 4, "base_n": 64}
    else:
        plan = {
            "widths": (8, 16, 32, 64, 128),
            "n_values": (256, 512, 1024, 2048, 4096),
            "base_width": 32,
            "base_n": 1024,
        }
    return {"base": base, **plan}


def _sweep(base: DeepConfig, width: int, n: int, out: Path, progress: bool):
    """One sweep of the law, with its own heatmap and best-vs-c figure (every c on the axis)."""
    cfg = base.replace(model={"width": width}, data={"n_train": n})
    res = run_deep_sweep(cfg, out=out / f"width{width}_n{n}", progress=progress)
    plot_heatmap(res.dir)
    plot_best_vs_c(res.dir)
    return res.arrays


def _plot(fits: dict, out: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for ax, (axis, label) in zip(
        axes, (("width", "width h (channels of the first layer)"), ("n", "training examples n"))
    ):
        f = fits[axis]
        x, cs, interior = np.asarray(f["x"]), np.asarray(f["c_star"]), np.asarray(f["interior"], bool)
        ax.set(xlabel=label, ylabel="optimal multiplier c*", title=f"c* vs {axis}")
        if not np.isfinite(cs).any():
            ax.text(0.5, 0.5, "no multiplier reached the target", ha="center", transform=ax.transAxes)
            continue
        ax.plot(x[interior], cs[interior], "o", color="tab:blue", label="c* (interior optimum)")
        ax.plot(
            x[~interior],
            cs[~interior],
            "o",
            mfc="none",
            color="tab:blue",
            label="best c at the grid end or next to a gap (a bound; not fitted)",
        )
        if np.isfinite(f["exponent"]):
            xx = np.geomspace(x.min(), x.max(), 50)
            lo, hi = f["ci95"]
            ax.plot(
                xx,
                f["prefactor"] * xx ** f["exponent"],
                "-",
                color="tab:blue",
                label=f"fit: exponent {f['exponent']:.2f} [{lo:.2f}, {hi:.2f}]",
            )
            mid = np.exp(np.mean(np.log(x[interior])))
            ref = f["prefactor"] * mid ** f["exponent"] * (xx / mid) ** PREDICTED[axis]
            ax.plot(xx, ref, "--", color="tab:red", label=f"two-layer prediction: exponent {PREDICTED[axis]:g}")
        else:
            ax.text(0.5, 0.5, "no fit: fewer than 2 interior c*", ha="center", transform=ax.transAxes)
        ax.set(xscale="log", yscale="log")
        grid_ticks(ax.xaxis, x, label=lambda v: f"{v:g}")  # widths and sizes as plain numbers
        # c* on the multiplier grid's ticks (labels 2^k), never matplotlib's minor labels, which overlapped
        finite = cs[np.isfinite(cs)]
        grid = np.asarray(fits["multipliers"])
        lo, hi = min(finite.min(), grid.min()), max(finite.max(), grid.max())
        grid_ticks(ax.yaxis, grid[(grid >= lo) & (grid <= hi)])
        ax.set_ylim(lo / 1.5, hi * 1.5)
        ax.legend(fontsize=8)
    path = out / "scaling.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="cpu", choices=("cpu", "gpu"))
    ap.add_argument("--quick", action="store_true", help="tiny smoke-test version of the preset")
    ap.add_argument("--out", default=None, help="output directory (default runs/deep_scaling_<preset>[_quick])")
    ap.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of the seeds")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)
    plan = get_config(args.preset, quick=args.quick)
    out = Path(args.out or f"runs/deep_scaling_{args.preset}{'_quick' if args.quick else ''}")
    out.mkdir(parents=True, exist_ok=True)
    by_width = [_sweep(plan["base"], w, plan["base_n"], out, not args.quiet) for w in plan["widths"]]
    by_n = [_sweep(plan["base"], plan["base_width"], n, out, not args.quiet) for n in plan["n_values"]]
    fits = {
        "width": scaling_fit(plan["widths"], by_width, n_boot=args.n_boot),
        "n": scaling_fit(plan["n_values"], by_n, n_boot=args.n_boot),
    }
    for axis, f in fits.items():
        f["predicted_exponent"] = PREDICTED[axis]
        stars = ", ".join(
            f"{x:g}: {c:.3g}{'' if w == 'interior' else f' ({w})'}" if np.isfinite(c) else f"{x:g}: none ({w})"
            for x, c, w in zip(f["x"], f["c_star"], f["where"])
        )
        lo, hi = f["ci95"]
        verdict = (
            ("consistent with" if lo <= PREDICTED[axis] <= hi else "excludes") if np.isfinite(lo) else "cannot test"
        )
        print(f"c* vs {axis}: {stars}")
        print(
            f"  exponent {f['exponent']:.3f}, 95% CI [{lo:.3f}, {hi:.3f}] ({f['n_boot_used']} bootstrap fits); "
            f"{verdict} the predicted {PREDICTED[axis]:g}"
        )
    write_json(
        out / "scaling.json",
        json_safe(
            {"plan": {k: v for k, v in plan.items() if k != "base"}, "config": plan["base"].to_dict(), "fits": fits}
        ),
    )
    print(f"figure: {_plot({**fits, 'multipliers': plan['base'].sweep.multipliers}, out)}")
    return fits


if __name__ == "__main__":
    main()
