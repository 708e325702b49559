"""Claim 3, Phase-1 alignment: at small α the neurons first align (a_j > 0 neurons with the positive
class, a_j < 0 with the negative class) while their norms grow like e^{rate·t}; the phase lasts
t_α ∝ log(1/α) (the paper: Θ(log(1/α)/n)) and leaves a final neuron angle ∝ √α.

    python experiments/phase1_alignment.py [--quick] [--out runs/phase1_alignment]

Operational definition: t_α = the first time the training loss drops to 0.9·log 2 (10% below its
small-α start L(0) ≈ log 2), found by the engine's refined stop (`flow.target_loss`). Parts:
A. Ψ(t) = cos(ŵ₊, x₊), cos(ŵ₊, μ₊) on the save grid for several α (sweeps stopped at η = 0.01).
B. Per-neuron ψ_j(t): snapshots of θ(t) from `simulate`, using the scale/multiplier equivalence: the run
   with multiplier c = t/T from init scale α/√c, stopped at t_max = T, is √c·θ(t) of the flow from α
   (its status is `t_max` by design). Compared with the Phase-1 bound of `gflow.twolayer.theory`.
C. Neuron angles to x₊ and μ₊ at t_α and at the stop t_η vs α: fitted exponent, bootstrap CI (theory 0.5).
D. t_α vs log(1/α) for several n: fitted slope vs the Phase-1 rate prediction 1/max(‖v₊‖, ‖v₋‖).
Writes <out>/<sweeps>, summary.json, phase1_alignment.png, phase1_scalings.png.
"""

from __future__ import annotations

import numpy as np

import gflow
from gflow import stats
from gflow.twolayer import theory

if __package__:  # imported as experiments.<name>
    from . import fls_analysis as fa
else:  # run as python experiments/<name>.py
    import fls_analysis as fa

PHASE1_LOSS = 0.9 * np.log(2.0)  # t_α := first time L(θ) ≤ 0.9·log 2


def get_config(quick: bool = False) -> dict:
    preset = dict(
        settings=[
            # name, n, d, κ, σ, data seed, expected orthogonal separability
            dict(name="sep_n40_d5_snr3.5", n=40, d=5, kappa=1.0, sigma=1 / 3.5, data_seed=0, separable=True),
            dict(name="nonsep_n40_d100_snr2", n=40, d=100, kappa=1.0, sigma=0.5, data_seed=0, separable=False),
        ],
        width=100,  # hidden neurons h
        n_test=1000,  # test points (test error is not used here)
        target_loss=0.01,  # the usual stop, for trajectories and final angles
        traj_alphas=(1e-6, 1e-4, 1e-2, 1e-1),  # α of the trajectory and snapshot panels
        snapshot_times=tuple(np.logspace(-1, 2, 13)),  # times of the per-neuron snapshots (≤ t_η used)
        angle_alphas=tuple(np.logspace(-7, -1, 7)),  # α of the final-angle fit
        angle_fit_range=(1e-4, 1e-2),  # fit the angle exponent on these α (below 1e-4 the t_α angle is on a plateau)
        loss_drops=(0.01, 0.001),  # extra stops L = (1 − ε)·log 2 for the separable setting
        angle_rtol=1e-5,  # solver rtol of the t_α angle runs (the angle floor at rtol 1e-3 is ~rtol)
        n_values=(10, 20, 40, 80, 160),  # n of the t_α study (d, κ, σ of the second setting)
        t_alpha_datasets=12,  # independent datasets per n in the t_α study (data seeds fa.data_seeds(n, ·))
        t_alpha_seeds=2,  # init seeds per dataset in the t_α study
        t_alpha_alphas=tuple(np.logspace(-8, -2, 7)),  # α of the t_α fit
        n_seeds=8,  # init seeds
        n_boot=1000,  # bootstrap replicates
        flow=dict(n_save=97, t_save_min=1e-2, t_max=1e4),  # save grid: 16 points per decade
    )
    if quick:
        preset.update(
            settings=[
                dict(preset["settings"][0], name="sep_n20_d5_snr3.5", n=20),
                dict(preset["settings"][1], name="nonsep_n20_d5_snr2", n=20, d=5),
            ],
            width=20,
            n_test=2000,
            traj_alphas=(1e-4, 1e-1),
            snapshot_times=(0.3, 3.0),
            angle_alphas=(1e-5, 1e-3),
            angle_fit_range=(1e-5, 1e-3),
            loss_drops=(0.01,),
            n_values=(20, 40),
            t_alpha_datasets=1,
            t_alpha_seeds=2,
            t_alpha_alphas=(1e-6, 1e-3),
            n_seeds=2,
            n_boot=20,
            flow={},
        )
    return preset


def make_config(
    p: dict, s: dict, *, n=None, data_seed=None, alphas=(1.0,), target=None, multiplier=1.0, rtol=None, n_seeds=None
) -> gflow.Config:
    """The sweep of setting `s` over α = `alphas` (n, data seed, η, c and rtol default to the setting's and the preset's)."""
    return gflow.Config.from_fields(
        n=n or s["n"],
        d=s["d"],
        kappa=s["kappa"],
        sigma=s["sigma"],
        seed=s["data_seed"] if data_seed is None else data_seed,
        n_test=p["n_test"],
        width=p["width"],
        multiplier=multiplier,
        target_loss=target or p["target_loss"],
        rtol=rtol or gflow.FlowConfig().rtol,
        **p["flow"],
        init_scales=alphas,
        n_seeds=n_seeds or p["n_seeds"],
    )


def neuron_cosines(W, a, target):
    """cos(w_j, target) and ‖w_j‖² of the a_j > 0 neurons."""
    W, a = np.asarray(W, np.float64), np.asarray(a, np.float64)
    pos = a > 0
    norms = np.linalg.norm(W[pos], axis=1)
    return (W[pos] @ target) / (norms * np.linalg.norm(target)), norms**2


def targets(geo) -> dict:
    """The directions the a_j > 0 neurons are compared with: x₊, μ₊ and the Phase-1 fixed point u₊*."""
    return {"xplus": geo["xplus"], "mu": geo["mu_plus"], "ustar": geo["u_star"]}


TARGET_NAMES = {"xplus": "x₊", "mu": "μ₊", "ustar": "u₊* (Phase-1 fixed point)"}


def weighted_angle(W, a, target) -> float:
    """‖w_j‖²-weighted mean angle (radians) of the a_j > 0 neurons to `target`."""
    cos, w = neuron_cosines(W, a, target)
    return float(np.sum(w * np.arccos(np.clip(cos, -1, 1))) / np.sum(w))


# --- A + B: trajectories and per-neuron snapshots -----------------------------------------------


def trajectories(p, s, out):
    cfg = make_config(p, s, alphas=p["traj_alphas"])
    arrays = fa.sweep(cfg, out, f"traj_{s['name']}")
    return arrays


def snapshots(p, s, geo, arrays) -> dict:
    """ψ_j(t) to x₊ and μ₊ for the a_j > 0 neurons of init seed 0, at the snapshot times ≤ t_η(α)."""
    T = p["flow"].get("t_max", gflow.FlowConfig().t_max)
    w_unit = np.asarray(
        gflow.twolayer.model.init_params(
            key=gflow.twolayer.model.init_key(0), d=s["d"], width=p["width"], init_scale=1.0
        ).W,
        np.float64,
    )
    a_sign = np.sign(
        np.asarray(
            gflow.twolayer.model.init_params(
                key=gflow.twolayer.model.init_key(0), d=s["d"], width=p["width"], init_scale=1.0
            ).a
        )
    )
    x_max, w_max, xp_norm = geo["x_max"], float(np.linalg.norm(w_unit, axis=1).max()), geo["xplus_norm"]
    res = {}
    for i, alpha in enumerate(p["traj_alphas"]):
        t_eta = float(arrays["t_stop"][i, 0])
        times = [t for t in p["snapshot_times"] if t <= t_eta]
        rows = {"t": [], "psi_xplus": [], "psi_mu": [], "psi_ustar": [], "psi_pos_engine": [], "status": []}
        for t in times:
            c = t / T
            cfg = make_config(p, s, target=1e-12, multiplier=c)
            r = gflow.simulate(init_scale=alpha / np.sqrt(c), seed=0, config=cfg)
            rows["status"].append(gflow.STATUS_NAMES[int(r.status)])
            rows["t"].append(t)
            for tag, target in targets(geo).items():
                rows[f"psi_{tag}"].append(neuron_cosines(r.params.W, r.params.a, target)[0])
            rows["psi_pos_engine"].append(float(r.final["psi_pos"]))
        zeta = float(theory.phase1_zeta(alpha, s["n"], p["width"], x_max, w_max, xp_norm))
        psi0 = {f"psi0_{tag}": neuron_cosines(w_unit, a_sign, target)[0] for tag, target in targets(geo).items()}
        # the trick's consistency: ψ_pos from the snapshot vs the sweep's trajectory at the same t (seed 0)
        ts = np.asarray(arrays["time"], np.float64)
        traj = arrays["traj_psi_pos"][i, 0]
        good = np.isfinite(traj)
        interp = (
            np.interp(np.log(np.maximum(rows["t"], 1e-300)), np.log(np.maximum(ts[good], 1e-300)), traj[good])
            if rows["t"]
            else []
        )
        res[alpha] = {
            **{k: np.asarray(v) for k, v in rows.items()},
            "zeta": zeta,
            **psi0,
            "trick_vs_trajectory_max_dev": float(np.max(np.abs(np.asarray(rows["psi_pos_engine"]) - interp)))
            if rows["t"]
            else None,
            "t_eta": t_eta,
        }
    return res


def bound_check(snap: dict, rate: float, t_alpha: float) -> dict:
    """Fraction of (neuron, time ≤ t_α) pairs with ψ_j(t) ≥ the Phase-1 bound, for each target."""
    out = {}
    for tag in TARGET_NAMES:
        if snap["zeta"] <= 0 or not len(snap["t"]):
            out[tag] = None
            continue
        keep = snap["t"] <= t_alpha
        if not keep.any():
            out[tag] = None
            continue
        meas = np.stack(snap[f"psi_{tag}"])[keep]  # (times, neurons)
        bound = np.asarray(
            theory.phase1_alignment_bound(snap["t"][keep][:, None], snap["zeta"], rate, snap[f"psi0_{tag}"][None, :])
        )
        out[tag] = {"fraction_above_bound": float(np.mean(meas >= bound - 1e-6)), "pairs": int(meas.size)}
    return out


# --- C: neuron angles at t_α and t_η --------------------------------------------------------------


def final_angles(p, s, geo) -> dict:
    """Weighted neuron angles at several stops: t_α (at two tolerances), L = (1 − ε)·log 2 for smaller ε
    (separable setting only: is the small-α plateau set by the loss drop ε?), and t_η."""
    res = {}
    stops = [
        ("t_alpha", PHASE1_LOSS, p["angle_rtol"]),
        ("t_alpha_rtol1e-3", PHASE1_LOSS, None),
        ("t_eta", p["target_loss"], None),
    ]
    if s["separable"]:
        stops += [(f"loss_drop_{eps:g}", (1 - eps) * np.log(2.0), p["angle_rtol"]) for eps in p["loss_drops"]]
    for stop, loss, rtol in stops:
        cfg = make_config(p, s, target=loss, rtol=rtol)
        ang = {tag: np.full((len(p["angle_alphas"]), p["n_seeds"]), np.nan) for tag in TARGET_NAMES}
        status = np.zeros((len(p["angle_alphas"]), p["n_seeds"]), int)
        for i, alpha in enumerate(p["angle_alphas"]):
            for j in range(p["n_seeds"]):
                r = gflow.simulate(init_scale=alpha, seed=j, config=cfg)
                status[i, j] = int(r.status)
                for tag, target in targets(geo).items():
                    ang[tag][i, j] = weighted_angle(r.params.W, r.params.a, target)
        ok = fa.ok_mask(status)
        alphas = np.asarray(p["angle_alphas"])
        lo, hi = p["angle_fit_range"]
        fit = (alphas >= lo * (1 - 1e-9)) & (alphas <= hi * (1 + 1e-9))
        entry = {"status_counts": fa.status_counts(status), "alpha": alphas, "rtol": rtol or gflow.FlowConfig().rtol}
        for tag, v in ang.items():
            mean, se, _ = stats.seed_mean(v, ok)
            slope, _ = stats.fit_power_law(alphas[fit], mean[fit])
            rng = np.random.default_rng(1)
            boot = []
            for _ in range(p["n_boot"]):
                idx = rng.integers(0, v.shape[1], v.shape[1])
                boot.append(stats.fit_power_law(alphas[fit], stats.seed_mean(v[:, idx], ok[:, idx])[0][fit])[0])
            local = np.diff(np.log(mean)) / np.diff(np.log(alphas))  # slope between neighbouring α
            entry[tag] = {
                "angle_mean": mean,
                "angle_se": se,
                "exponent": slope,
                "exponent_ci95": stats.interval(boot),
                "local_slopes": local,
            }
        res[stop] = entry
    return res


# --- D: t_α vs log(1/α) and n ---------------------------------------------------------------------


def t_alpha_study(p, s, out) -> dict:
    """Per n and dataset: least-squares slope of t_α in log(1/α) over α × init seeds; per n the mean over
    datasets, with a bootstrap over datasets and, within each, init seeds."""
    alphas = np.asarray(p["t_alpha_alphas"])
    L = np.log(1 / alphas)
    rng = np.random.default_rng(2)
    res = {
        "n": [],
        "slope": [],
        "slope_ci95": [],
        "predicted_slope": [],
        "slope_per_dataset": [],
        "predicted_per_dataset": [],
        "intercept": [],
        "t_alpha": [],
        "status_counts": [],
    }
    boots = []
    for n in p["n_values"]:
        per = []  # (t [α, seed], predicted slope) per dataset
        for k in fa.data_seeds(n, p["t_alpha_datasets"]):
            cfg = make_config(p, s, n=n, data_seed=k, alphas=alphas, target=PHASE1_LOSS, n_seeds=p["t_alpha_seeds"])
            arrays = fa.sweep(cfg, out, f"t_alpha_n{n}_data{k}")
            geo = fa.geometry(cfg.data)
            ok = fa.ok_mask(arrays["status"])
            res["status_counts"].append({"n": n, "data_seed": k, **fa.status_counts(arrays["status"])})
            per.append((np.where(ok, arrays["t_stop"], np.nan), 1.0 / max(geo["rate_pos"], geo["rate_neg"])))

        def fit(t, cols):
            tt, ll = t[:, cols].ravel(), np.repeat(L[:, None], len(cols), axis=1).ravel()
            g = np.isfinite(tt)
            return np.polyfit(ll[g], tt[g], 1)

        fits = [fit(t, np.arange(t.shape[1])) for t, _ in per]
        boot = []
        for _ in range(p["n_boot"]):
            ds = rng.integers(0, len(per), len(per))
            boot.append(
                np.mean([fit(per[d][0], rng.integers(0, per[d][0].shape[1], per[d][0].shape[1]))[0] for d in ds])
            )
        boots.append(np.asarray(boot))
        res["n"].append(n)
        res["slope_per_dataset"].append([f[0] for f in fits])
        res["predicted_per_dataset"].append([pr for _, pr in per])
        res["slope"].append(float(np.mean([f[0] for f in fits])))
        res["intercept"].append(float(np.mean([f[1] for f in fits])))
        res["predicted_slope"].append(float(np.mean([pr for _, pr in per])))
        res["slope_ci95"].append(stats.interval(boot))
        res["t_alpha"].append(np.nanmean(np.concatenate([t for t, _ in per], axis=1), axis=1))
    ns = np.asarray(res["n"], float)
    _, expo_ci = stats.bootstrap_exponent(ns, np.stack(boots))
    res["slope_vs_n_exponent"] = stats.fit_power_law(ns, res["slope"])[0]
    res["slope_vs_n_exponent_ci95"] = expo_ci
    res["predicted_slope_vs_n_exponent"] = stats.fit_power_law(ns, res["predicted_slope"])[0]
    ratio = np.asarray(res["slope_per_dataset"]) / np.asarray(res["predicted_per_dataset"])
    res["measured_over_predicted"] = {"mean": float(ratio.mean()), "min": float(ratio.min()), "max": float(ratio.max())}
    # the same slopes in the time of the summed loss Σ_i ℓ_i (τ = t/n): the paper's convention
    res["sum_loss_slope_vs_n_exponent"] = res["slope_vs_n_exponent"] - 1.0
    res["sum_loss_slope_vs_n_exponent_ci95"] = [v - 1.0 for v in expo_ci]
    # the theory's t_α = Θ(log(1/α)/n) in summed-loss time: exponent −1, in regime when every training set has λ > 0
    in_regime = bool(
        all(
            fa.geometry(make_config(p, s, n=n, data_seed=k).data)["separability"] > 0
            for n in p["n_values"]
            for k in fa.data_seeds(n, p["t_alpha_datasets"])
        )
    )
    res["in_regime"] = in_regime
    res["label"] = stats.verdict_label(-1.0, res["sum_loss_slope_vs_n_exponent_ci95"], in_regime=in_regime)
    res["alpha"] = alphas
    return res


# --- figures --------------------------------------------------------------------------------------


def plot_alignment(p, settings, traj, snaps, geos, t_alphas, out):
    plt = fa.plt
    cmap = plt.get_cmap("viridis")
    fig, axes = plt.subplots(2, 3, figsize=(16, 9), constrained_layout=True)
    for row, s in zip(axes, settings):
        arrays, snap, geo = traj[s["name"]], snaps[s["name"]], geos[s["name"]]
        ts = arrays["time"]
        ax = row[0]
        for i, alpha in enumerate(p["traj_alphas"]):
            color = cmap(i / max(1, len(p["traj_alphas"]) - 1))
            for key, ls, lab in (("traj_Psi_mu", "-", "cos(ŵ₊, μ₊)"), ("traj_Psi", "--", "Ψ = cos(ŵ₊, x₊)")):
                v = arrays[key][i]
                live = np.any(np.isfinite(v), axis=0)  # grid times before every seed's stop
                mean = np.nanmean(v[:, live], axis=0)
                ax.plot(ts[live], mean, ls=ls, color=color, label=f"α={alpha:g}: {lab}")
                ax.fill_between(
                    ts[live],
                    np.nanmin(v[:, live], axis=0),
                    np.nanmax(v[:, live], axis=0),
                    color=color,
                    alpha=0.12,
                    lw=0,
                )
            ax.axvline(t_alphas[s["name"]].get(alpha, np.nan), color=color, lw=0.8, ls=":")
        ax.axhline(geo["cos_xplus_mu"], color="gray", lw=0.8, ls="-.", label="cos(x₊, μ₊)")
        ax.set_xscale("log")
        ax.set_xlim(ts[1], np.nanmax(arrays["t_stop"]) * 1.5)
        ax.set_xlabel("gradient-flow time t")
        ax.set_ylabel("alignment of the effective predictor ŵ₊")
        ax.set_title(
            f"{s['name']} (λ={geo['separability']:.2f}): mean over seeds, band = min–max; dotted: t_α", fontsize=9
        )
        ax.legend(fontsize=6, ncol=2)
        for ax, tag in ((row[1], "ustar"), (row[2], "xplus")):
            name = TARGET_NAMES[tag]
            for i, alpha in enumerate(p["traj_alphas"]):
                sn = snap[alpha]
                if not len(sn["t"]):
                    continue
                color = cmap(i / max(1, len(p["traj_alphas"]) - 1))
                psi = np.stack(sn[f"psi_{tag}"])  # (times, neurons)
                q = np.percentile(psi, [10, 50, 90], axis=1)
                ax.plot(sn["t"], q[1], "o-", ms=3, color=color, label=f"α={alpha:g}: median ψ_j, band 10–90%")
                ax.fill_between(sn["t"], q[0], q[2], color=color, alpha=0.15, lw=0)
                if sn["zeta"] > 0:
                    rate = geo["rate_pos"]
                    b = np.asarray(
                        theory.phase1_alignment_bound(sn["t"][:, None], sn["zeta"], rate, sn[f"psi0_{tag}"][None, :])
                    )
                    ax.plot(
                        sn["t"],
                        np.median(b, axis=1),
                        ls="--",
                        color=color,
                        lw=1,
                        label=f"α={alpha:g}: median bound, ζ={sn['zeta']:.3f}",
                    )
            ax.set_xscale("log")
            ax.set_xlabel("gradient-flow time t")
            ax.set_ylabel(f"ψ_j = cos(w_j, {name.split()[0]}), neurons with a_j > 0")
            ax.set_title(f"per-neuron alignment with {name}\n(init seed 0; snapshots up to t_η)", fontsize=9)
            ax.legend(fontsize=6)
    fig.suptitle(
        "Phase 1: alignment trajectories (bound: √ζ·tanh(√ζ·‖v₊‖·t + artanh(ψ_j(0)/√ζ)), drawn where ζ(α) > 0)"
    )
    fa.save_figure(fig, out, "phase1_alignment")


def plot_scalings(p, settings, angles, tstudy, out):
    plt = fa.plt
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8), constrained_layout=True)
    ax = axes[0]
    cmap = plt.get_cmap("plasma")
    L = np.log(1 / tstudy["alpha"])
    for k, n in enumerate(tstudy["n"]):
        color = cmap(k / max(1, len(tstudy["n"])))
        ax.plot(L, tstudy["t_alpha"][k], "o", color=color, ms=4)
        ax.plot(
            L,
            tstudy["slope"][k] * L + tstudy["intercept"][k],
            "-",
            color=color,
            lw=1,
            label=f"n={n}: slope {tstudy['slope'][k]:.2f} (pred. {tstudy['predicted_slope'][k]:.2f})",
        )
    ax.set_xlabel("log(1/α)")
    ax.set_ylabel("t_α: first time L ≤ 0.9·log 2")
    ax.set_title("end of Phase 1 vs log(1/α) (points: seed means; lines: fits)", fontsize=9)
    ax.legend(fontsize=7)
    ax = axes[1]
    ns = np.asarray(tstudy["n"], float)
    ci = np.asarray(tstudy["slope_ci95"])
    ax.errorbar(
        ns,
        tstudy["slope"],
        yerr=[np.asarray(tstudy["slope"]) - ci[:, 0], ci[:, 1] - np.asarray(tstudy["slope"])],
        fmt="o-",
        label=f"measured dt_α/dlog(1/α): n^{tstudy['slope_vs_n_exponent']:.2f} (95% CI "
        f"{np.round(tstudy['slope_vs_n_exponent_ci95'], 2).tolist()})",
    )
    ax.plot(
        ns,
        tstudy["predicted_slope"],
        "s--",
        label=f"1/max(‖v₊‖,‖v₋‖) (mean-loss Phase-1 rate): n^{tstudy['predicted_slope_vs_n_exponent']:.2f}",
    )
    ax.plot(
        ns,
        tstudy["slope"][0] * (ns / ns[0]) ** -1.0,
        ":",
        color="gray",
        label="∝ n⁻¹ (paper's Θ(log(1/α)/n), read in mean-loss time)",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training points n")
    ax.set_ylabel("slope of t_α in log(1/α)")
    ax.set_title(
        f"n-dependence of the Phase-1 duration (mean over {p['t_alpha_datasets']} independent datasets per n;\nbars: bootstrap 95% "
        f"CI over datasets and seeds)",
        fontsize=9,
    )
    ax.legend(fontsize=7)
    ax = axes[2]
    styles = {"t_alpha": "-", "t_eta": "--"}
    colors = {
        ("sep", "xplus"): "tab:blue",
        ("sep", "ustar"): "tab:orange",
        ("nonsep", "xplus"): "tab:green",
        ("nonsep", "ustar"): "tab:red",
    }
    drop_colors = iter(["tab:purple", "tab:brown", "tab:olive", "tab:cyan"])
    for s in settings:
        kind = s["name"].split("_")[0]
        for stop, e in angles[s["name"]].items():
            if stop == "t_alpha_rtol1e-3":
                continue
            drop = stop.startswith("loss_drop_")
            for tag, marker in (("xplus", "o"), ("ustar", "s")):
                if drop and tag == "xplus":
                    continue
                mean, se = np.asarray(e[tag]["angle_mean"]), np.asarray(e[tag]["angle_se"])
                name = {"t_alpha": "t_α", "t_eta": "t_η"}.get(stop, f"L=(1−{stop.split('_')[-1]})log2")
                ax.errorbar(
                    e["alpha"],
                    np.degrees(mean),
                    yerr=np.degrees(se),
                    ls=":" if drop else styles[stop],
                    marker="v" if drop else marker,
                    ms=3,
                    color=next(drop_colors) if drop else colors[(kind, tag)],
                    label=f"{kind} {name}, to {TARGET_NAMES[tag].split()[0]}: α^{e[tag]['exponent']:.2f} "
                    f"{np.round(e[tag]['exponent_ci95'], 2).tolist()}",
                )
    a = np.asarray(p["angle_alphas"])
    ax.plot(a, 30 * np.sqrt(a / a[-1]), ":", color="gray", label="∝ √α (theory)")
    ax.plot(a, 30 * (a / a[-1]), "-.", color="gray", lw=0.8, label="∝ α")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("init scale α")
    ax.set_ylabel("‖w_j‖²-weighted mean angle, a_j > 0 neurons (degrees)")
    lo, hi = p["angle_fit_range"]
    ax.set_title(
        f"neuron angle: t_α (solid), earlier cuts (dotted), t_η (dashed)\n"
        f"exponents fit on {lo:g} ≤ α ≤ {hi:g}; rtol {p['angle_rtol']:g} at t_α",
        fontsize=9,
    )
    ax.legend(fontsize=5.5)
    fig.suptitle("Phase-1 scalings (mean ± s.e. over init seeds)")
    fa.save_figure(fig, out, "phase1_scalings")


def main(argv=None) -> dict:
    args = fa.parse_args(__doc__, argv, default_out="runs/phase1_alignment")
    p = get_config(args.quick)
    timer = fa.Timer()
    traj, snaps, geos, angles, checks, t_alphas = {}, {}, {}, {}, {}, {}
    tstudy = t_alpha_study(p, p["settings"][1], args.out)
    for s in p["settings"]:
        geo = fa.geometry(make_config(p, s).data)
        if (geo["separability"] > 0) != s["separable"]:
            raise RuntimeError(f"{s['name']}: λ = {geo['separability']:.3f} contradicts separable={s['separable']}")
        geo["u_star"], geo["u_star_converged"] = theory.phase1_fixed_point(geo["x"], geo["y"], 1.0)
        geo["angle_ustar_mu_deg"] = float(np.degrees(theory.angle(geo["u_star"], geo["mu_plus"])))
        geo["angle_ustar_s_deg"] = float(np.degrees(theory.angle(geo["u_star"], geo["s"])))
        geos[s["name"]] = geo
        traj[s["name"]] = trajectories(p, s, args.out)
        # t_α of init seed 0 at the trajectory α (for the bound check and the figure)
        cfg = make_config(p, s, target=PHASE1_LOSS)
        t_alphas[s["name"]] = {
            a: float(gflow.simulate(init_scale=a, seed=0, config=cfg).t_stop) for a in p["traj_alphas"]
        }
        snaps[s["name"]] = snapshots(p, s, geo, traj[s["name"]])
        checks[s["name"]] = {
            a: bound_check(snaps[s["name"]][a], geo["rate_pos"], t_alphas[s["name"]][a]) for a in p["traj_alphas"]
        }
        angles[s["name"]] = final_angles(p, s, geo)
    plot_alignment(p, p["settings"], traj, snaps, geos, t_alphas, args.out)
    plot_scalings(p, p["settings"], angles, tstudy, args.out)
    summary = {
        "preset": p,
        "phase1_loss": PHASE1_LOSS,
        "geometry": {k: {kk: vv for kk, vv in g.items() if np.ndim(vv) == 0} for k, g in geos.items()},
        "t_alpha_ratio_measured_over_predicted": tstudy["measured_over_predicted"],
        "t_alpha_seed0": t_alphas,
        "snapshot_status": {k: {a: sn["status"] for a, sn in v.items()} for k, v in snaps.items()},
        "snapshot_trick_max_dev": {
            k: {a: sn["trick_vs_trajectory_max_dev"] for a, sn in v.items()} for k, v in snaps.items()
        },
        "zeta": {k: {a: sn["zeta"] for a, sn in v.items()} for k, v in snaps.items()},
        "bound_check": checks,
        "angles": angles,
        "t_alpha_study": tstudy,
        "wall_s": timer.seconds(),
        "sweeps": timer.sweeps(),
    }
    fa.write_summary(args.out, summary)
    print(
        "t_α slopes:",
        np.round(tstudy["slope"], 3).tolist(),
        "predicted",
        np.round(tstudy["predicted_slope"], 3).tolist(),
        f"n-exponent {tstudy['slope_vs_n_exponent']:.3f} CI {np.round(tstudy['slope_vs_n_exponent_ci95'], 3).tolist()}; summed-loss time "
        f"{tstudy['sum_loss_slope_vs_n_exponent']:.3f} (theory −1) → {tstudy['label']}",
    )
    for k, v in angles.items():
        for stop, e in v.items():
            print(
                f"{k} {stop}: angle exponents "
                + ", ".join(
                    f"{tag} {e[tag]['exponent']:.3f} {np.round(e[tag]['exponent_ci95'], 3).tolist()}"
                    for tag in TARGET_NAMES
                )
            )
    print("bound check:", checks)
    print("snapshot trick max |Δψ_pos|:", summary["snapshot_trick_max_dev"])
    print(f"wall {summary['wall_s']:.1f} s")
    return summary


if __name__ == "__main__":
    main()
