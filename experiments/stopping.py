"""Claim 5, stopping ablation: does the optimal α move with the target training risk η, or when training
stops at the minimum of a validation risk instead of at L = η?

    python experiments/stopping.py [--quick] [--out runs/stopping]

One sweep per η (η is a traced value: no recompilation). Two validation stops are read off the save grid
of the runs with the smallest η: the grid time where the held-out logistic loss `traj_test_loss` (first
`flow.n_test_grid` test points) is smallest ("val. loss min"), and the grid time where the held-out 0-1
error `traj_test_err` on the same points is smallest ("val. error min"). There we read E(ŵ₊) (analytic,
unbiased) and the network's error on *fresh* held-out points: the smallest-η sweep is run a second time
with the same training set and a new test sample from the same mixture (numpy, seed `fresh_test_seed` +
data seed); the trajectories θ(t) are the same (checked: equal stop times), so its `traj_test_err` at the
chosen grid time is an independent estimate. The error on the selection points is reported too, as the
selection bias. Each rule's α* and the arms of its U (E(smallest α) − min, E(largest α) − min) get 95%
intervals from the hierarchical bootstrap over the independent datasets (data seeds `fa.data_seeds(n, ·)`),
then init seeds, and the arms the label of `gflow.stats.verdict_label` for the sign claim "> 0". Ties count
as errors throughout (Monte-Carlo errors on the save grid; the tie mass is not recorded there). Writes
<out>/eta<η>_data<k>/, summary.json, stopping.png.
"""

from __future__ import annotations

import numpy as np

import gflow
from gflow import stats
from gflow.twolayer import theory

if __package__:  # imported as experiments.<name>
    from . import fls_analysis as fa
    from . import regimes
else:  # run as python experiments/<name>.py
    import fls_analysis as fa
    import regimes


def get_config(quick: bool = False) -> dict:
    preset = dict(
        n=40,
        d=100,
        kappa=1.0,
        sigma=0.5,
        width=100,  # the default problem
        n_datasets=12,  # independent datasets (data seeds fa.data_seeds(n, ·))
        n_test=10_000,  # Monte-Carlo test points at the stop
        target_losses=(0.1, 0.03, 0.01, 0.003),  # η values; the validation stop uses the smallest
        init_scales=tuple(np.logspace(-3, 0.5, 11)),  # α grid
        n_seeds=3,  # init seeds per α and dataset
        n_boot=1000,  # bootstrap replicates
        fresh_test_seed=10_000,  # numpy seed (+ data seed) of the fresh test sample that evaluates the validation stops
        flow=dict(
            n_save=81, t_save_min=1e-2, t_max=1e4, n_test_grid=4000
        ),  # 13 grid points per decade; 4000 validation points
    )
    if quick:
        preset.update(
            d=5,
            n=20,
            width=20,
            n_datasets=1,
            n_test=2000,
            target_losses=(0.1, 0.01),
            init_scales=(1e-3, 1e-1, 3.0),
            n_seeds=2,
            n_boot=20,
            flow={},
        )
    preset["data_seeds"] = fa.data_seeds(preset["n"], preset["n_datasets"])
    return preset


VALIDATION_RULES = {
    "val. loss min": "traj_test_loss",
    "val. error min": "traj_test_err",
}  # rule name: trajectory it minimizes


def fresh_test_data(data_cfg: gflow.DataConfig, seed: int):
    """The dataset of `data_cfg` with its test points replaced by a fresh sample of the same mixture (same s)."""
    import jax.numpy as jnp

    from gflow.twolayer.data import make_dataset

    ds = make_dataset(data_cfg)
    s = np.asarray(ds.s, np.float64)
    rng = np.random.default_rng(seed)
    y = rng.choice([-1.0, 1.0], size=data_cfg.n_test)
    x = data_cfg.kappa * y[:, None] * s[None, :] + data_cfg.sigma * rng.standard_normal((data_cfg.n_test, data_cfg.d))
    return ds._replace(x_test=jnp.asarray(x, jnp.float32), y_test=jnp.asarray(y, jnp.float32))


def validation_stop(arrays: dict, by: str = "traj_test_loss", fresh: dict | None = None) -> dict[str, np.ndarray]:
    """Per run: the save-grid point (before the η stop) where the held-out trajectory `by` is smallest (the
    first such point on ties), and the values there; `test_err` from `fresh` (the same runs evaluated on
    other test points) where given, `test_err_selection` on the selection points."""
    vl = arrays["traj_test_loss"]
    filled = np.where(np.isfinite(vl) & np.isfinite(arrays[by]), arrays[by], np.inf)
    k = np.argmin(filled, axis=-1)
    take = lambda a: np.take_along_axis(a, k[..., None], axis=-1)[..., 0]  # noqa: E731
    return {
        "test_err": take((arrays if fresh is None else fresh)["traj_test_err"]),
        "test_err_selection": take(arrays["traj_test_err"]),
        "lin_err": take(arrays["traj_lin_err"]),
        "time": arrays["time"][k],
        "test_loss": take(vl),
        "at_last_grid_point": k == np.sum(np.isfinite(vl), axis=-1) - 1,
    }


def analyze(p, alpha, v, ok, seed, in_regime) -> dict:
    """Mean curve (± s.e. over datasets), α* with its hierarchical 95% interval (datasets, then seeds) and the
    arms of the U with theirs, from [α, dataset·seed] values (dataset-major, as the sweeps are concatenated)."""
    shape = (len(alpha), len(p["data_seeds"]), p["n_seeds"])
    v, ok = np.asarray(v, np.float64).reshape(shape), np.asarray(ok).reshape(shape)
    star = fa.alpha_star_scan([alpha], [v], [ok], None, n_boot=p["n_boot"], seed=seed)[0]
    arm = regimes.rich_arm(p, [{"err": v, "tie": np.zeros_like(v), "ok": ok}], None, "error", in_regime)[0]
    return dict(
        arm,
        mean=star["mean"],
        se=star["se"],
        alpha_star=star["alpha_star"],
        at_grid_edge=star["at_grid_edge"],
        ci95=star["ci95"],
        min_error=float(np.nanmin(star["mean"])),
    )


def main(argv=None) -> dict:
    args = fa.parse_args(__doc__, argv, default_out="runs/stopping")
    p = get_config(args.quick)
    timer = fa.Timer()
    alpha = np.asarray(p["init_scales"])
    rules, statuses, val_time, val_at_end, val_bias = {}, {}, {}, {}, {}
    eta_min = min(p["target_losses"])
    lam = [
        fa.geometry(gflow.DataConfig(n=p["n"], d=p["d"], kappa=p["kappa"], sigma=p["sigma"], seed=k, n_test=10))[
            "separability"
        ]
        for k in p["data_seeds"]
    ]
    in_regime = bool(min(lam) > 0)  # the theory assumes orthogonal separability
    for eta in p["target_losses"]:
        cfgs = [
            gflow.Config.from_fields(
                n=p["n"],
                d=p["d"],
                kappa=p["kappa"],
                sigma=p["sigma"],
                seed=k,
                n_test=p["n_test"],
                width=p["width"],
                target_loss=eta,
                **p["flow"],
                init_scales=p["init_scales"],
                n_seeds=p["n_seeds"],
            )
            for k in p["data_seeds"]
        ]
        runs = [fa.sweep(cfg, args.out, f"eta{eta:g}_data{k}") for k, cfg in zip(p["data_seeds"], cfgs)]
        ok = np.concatenate([fa.ok_mask(a["status"]) for a in runs], axis=1)
        statuses[f"eta={eta:g}"] = fa.status_counts(np.concatenate([a["status"] for a in runs], axis=1))
        for tag, key in (("net", "final_test_err"), ("lin", "final_lin_err")):
            v = np.concatenate([a[key] for a in runs], axis=1)
            rules.setdefault(tag, {})[f"η={eta:g}"] = analyze(p, alpha, v, ok, int(1e4 * eta), in_regime)
        if eta == eta_min:
            fresh = []
            for k, cfg in zip(p["data_seeds"], cfgs):
                name = f"eta{eta:g}_data{k}_freshtest{p['fresh_test_seed'] + k}"
                fresh.append(fa.sweep(cfg, args.out, name, data=fresh_test_data(cfg.data, p["fresh_test_seed"] + k)))
            t_a, t_b = (np.concatenate([r["t_stop"] for r in rr], axis=1) for rr in (runs, fresh))
            fresh_t_stop_max_rel_diff = float(np.max(np.abs(t_a - t_b) / t_a))
            assert fresh_t_stop_max_rel_diff < 1e-4, (
                f"the fresh-test rerun took other trajectories: {fresh_t_stop_max_rel_diff}"
            )
            for rule, by in VALIDATION_RULES.items():
                vs = [validation_stop(a, by, f) for a, f in zip(runs, fresh)]
                val = {key: np.concatenate([v[key] for v in vs], axis=1) for key in vs[0]}
                for tag, key in (("net", "test_err"), ("lin", "lin_err")):
                    rules[tag][rule] = analyze(p, alpha, val[key], ok, 7, in_regime)
                val_time[rule] = stats.seed_mean(val["time"], ok)[0]
                val_at_end[rule] = float(np.mean(val["at_last_grid_point"][ok]))
                val_bias[rule] = float(np.mean((val["test_err_selection"] - val["test_err"])[ok]))
                rules["net"][rule]["mean_on_selection_points"] = stats.seed_mean(val["test_err_selection"], ok)[0]
    bayes = float(theory.bayes_error(p["kappa"], p["sigma"]))
    plot(p, alpha, rules, val_time, val_at_end, bayes, args.out)
    summary = {
        "preset": p,
        "rules": rules,
        "validation_stop_time": val_time,
        "fraction_val_stop_at_last_grid_point": val_at_end,
        "validation_selection_bias": val_bias,
        "fresh_rerun_t_stop_max_rel_diff": fresh_t_stop_max_rel_diff,
        "status_counts": statuses,
        "bayes_error": bayes,
        "separability": lam,
        "in_regime": in_regime,
        "wall_s": timer.seconds(),
        "sweeps": timer.sweeps(),
    }
    summary = fa.strip_boot(summary)
    fa.write_summary(args.out, summary)
    for tag, rr in rules.items():
        for name, r in rr.items():
            print(
                f"{tag} {name:>15}: α* = {r['alpha_star']:.3g} CI {np.round(r['ci95'], 4).tolist()} edge={r['at_grid_edge']} min "
                f"error {r['min_error']:.4f}; "
                f"rich arm {r['rich_arm']:.2e} {np.round(r['rich_arm_ci95'], 5).tolist()} → {r['rich_arm_label']}"
            )
    for rule, frac in val_at_end.items():
        print(
            f"{rule}: at the last grid point before the η stop in {frac:.0%} of runs; selection bias {val_bias[rule]:+.4f}"
        )
    print(f"wall {summary['wall_s']:.1f} s")
    return summary


VAL_COLORS = {"val. loss min": "tab:red", "val. error min": "tab:purple"}


def plot(p, alpha, rules, val_time, val_at_end, bayes, out):
    plt = fa.plt
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8), constrained_layout=True)
    names = list(rules["net"])
    cmap = plt.get_cmap("viridis")
    for k, name in enumerate(names):
        r = rules["net"][name]
        color = VAL_COLORS[name] if name in VALIDATION_RULES else cmap(k / max(1, len(names) - len(VALIDATION_RULES)))
        m, se = np.asarray(r["mean"]), np.asarray(r["se"])
        axes[0].plot(alpha, m, "o-", ms=3, color=color, label=f"stop at {name}: α* = {r['alpha_star']:.3g}")
        axes[0].fill_between(alpha, m - se, m + se, color=color, alpha=0.2, lw=0)
    axes[0].axhline(bayes, color="k", ls="--", lw=1, label="Bayes error")
    axes[0].set_xscale("log")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("init scale α")
    axes[0].set_ylabel("network test error (mean ± s.e.)")
    n_val = p["flow"].get("n_test_grid", gflow.FlowConfig().n_test_grid)
    axes[0].set_title(
        f"test error vs α for each stopping rule\n(validation rules: stop chosen on {n_val} validation points, error on {n_val} "
        f"fresh ones)",
        fontsize=9,
    )
    axes[0].legend(fontsize=7)
    ax = axes[1]
    xs = np.arange(len(names))
    for tag, marker, color, off in (("net", "o", "tab:blue", -0.08), ("lin", "s", "tab:orange", 0.08)):
        a = np.array([rules[tag][nm]["alpha_star"] for nm in names])
        ci = np.array([rules[tag][nm]["ci95"] for nm in names])
        ax.errorbar(
            xs + off,
            a,
            yerr=[a - ci[:, 0], ci[:, 1] - a],
            fmt=marker,
            color=color,
            capsize=3,
            label="network test error" if tag == "net" else "effective predictor E(ŵ₊)",
        )
    ax.set_xticks(xs, [nm.replace(" min", "\nmin") for nm in names])
    ax.set_yscale("log")
    ax.set_ylabel("α* (refined argmin; bootstrap 95% CI)")
    ax.set_title("does the optimum move with the stopping rule?", fontsize=9)
    ax.legend(fontsize=7)
    ax = axes[2]
    for rule, times in val_time.items():
        ax.plot(
            alpha,
            times,
            "o-",
            color=VAL_COLORS[rule],
            ms=3,
            label=f"{rule} (at the η stop in {val_at_end[rule]:.0%} of runs)",
        )
    ax.legend(fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("init scale α")
    ax.set_ylabel("time of the validation stop (seed mean)")
    ax.set_title(f"validation stops on the save grid of the η = {min(p['target_losses']):g} runs", fontsize=9)
    fig.suptitle(
        f"Stopping ablation: n={p['n']}, d={p['d']}, κ/σ={p['kappa'] / p['sigma']:g}, h={p['width']}, {len(p['data_seeds'])} "
        f"datasets × {p['n_seeds']} seeds"
    )
    fa.save_figure(fig, out, "stopping")


if __name__ == "__main__":
    main()
