"""experiments/*.py run at their `--quick` presets (in process), their tables checked against the stored
runs (recomputed in numpy/scipy), and tests of their analysis helpers.

The quick presets share one problem shape (d = 5, h = 20, n ∈ {20, 40}, 2000 test points, default
flow settings), so the compiled sweep is reused from test to test; the first test pays the compile.
"""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest
from scipy.stats import norm

import gflow
from experiments import fls_analysis as fa


def _load(name: str):
    return importlib.import_module(f"experiments.{name}")


def _run_quick(name: str, tmp_path) -> dict:
    out = tmp_path / name
    summary = _load(name).main(["--quick", "--out", str(out)])
    saved = json.loads((out / "summary.json").read_text())
    assert saved["wall_s"] > 0
    return summary, out


# --- helpers (the statistics are tested in tests/test_stats.py) ------------------------------------


def test_ok_mask_keeps_the_normal_stops():
    status = np.array([0, 1, 2, 3, 4])  # reached_target, _unrefined, target_at_init, t_max, max_steps
    np.testing.assert_array_equal(fa.ok_mask(status), [True, True, True, False, False])


@pytest.mark.slow  # over ~5 s (compiles its own programs); runs in .ci/run's slow pass
def test_sweep_resumes_its_run_directory_and_recomputes_an_edited_setting(tmp_path, capsys):
    """fa.sweep is gflow.run_sweep(out=...): a rerun loads (computes nothing); an edited config in the same
    directory is recomputed with a notice; a run's result does not depend on its neighbours in the grid."""
    cfg = gflow.Config.from_fields(n=20, d=5, n_test=2000, width=20, init_scales=[0.1], n_seeds=2)
    fa.Timer()
    first = fa.sweep(cfg, tmp_path, "s")
    again = fa.sweep(cfg, tmp_path, "s")
    assert [e["loaded"] for e in fa.SWEEP_LOG] == [False, True]
    np.testing.assert_array_equal(again["final_test_err"], first["final_test_err"])
    edited = fa.sweep(
        gflow.Config.from_fields(n=20, d=5, n_test=2000, width=20, init_scales=[0.1, 1.0], n_seeds=2), tmp_path, "s"
    )
    assert "recomputing it" in capsys.readouterr().out and not fa.SWEEP_LOG[-1]["loaded"]
    assert edited["final_test_err"].shape == (2, 2)
    np.testing.assert_array_equal(edited["final_test_err"][0], first["final_test_err"][0])
    assert gflow.load_run(tmp_path / "s").attrs["config"]["sweep"]["init_scales"] == [0.1, 1.0]


@pytest.mark.slow  # over ~4.5 s (compiles its own programs); runs in .ci/run's slow pass
def test_default_u_curve_is_the_default_sweep_in_a_run_directory(tmp_path, monkeypatch):
    script = _load("default_u_curve")
    assert script.get_config() == gflow.Config()  # "same as gflow sweep"
    monkeypatch.setattr(
        script,
        "get_config",
        lambda: gflow.Config.from_fields(n=20, d=5, n_test=2000, width=20, init_scales=[0.1, 1.0], n_seeds=2),
    )
    script.main(["--out", str(tmp_path / "d")])
    assert (tmp_path / "d" / "u_curve.png").stat().st_size > 10_000
    assert gflow.load_run(tmp_path / "d")["final_test_err"].shape == (2, 2)


# --- smoke tests of the quick presets ---------------------------------------------------------------


@pytest.mark.slow  # over ~5 s (compiles its own programs); runs in .ci/run's slow pass
def test_u_curve_quick(tmp_path):
    """Independent datasets per setting; each arm's point value is recomputed from the stored runs (numpy), and
    the 'half' curve is the 'error' curve less half the tie mass."""
    summary, out = _run_quick("u_curve", tmp_path)
    assert (out / "u_curve.png").stat().st_size > 10_000
    results, p = summary["results"], summary["preset"]
    assert [r["in_regime"] for r in results] == [True, False]
    for r in results:
        s = r["setting"]
        a = _runs(out, s["name"])
        assert np.asarray(a["status"]).shape[0] == p["n_datasets"]  # [data_seed, α, seed]
        ok = fa.ok_mask(np.asarray(a["status"]))  # runs that stopped at t_max are left out of every mean
        masked = lambda k: np.nansum(np.where(ok, np.asarray(a[k], np.float64), 0.0), axis=(0, 2)) / ok.sum(axis=(0, 2))  # noqa: E731
        err, tie = masked("final_test_err_sa"), masked("final_test_tie_sa")
        np.testing.assert_allclose(r["error"]["mean"], err, rtol=1e-6)
        np.testing.assert_allclose(r["half"]["mean"], err - 0.5 * tie, rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(r["error"]["rich_arm"], err[0] - err.min(), rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(r["error"]["lazy_arm"], err[-1] - err.min(), rtol=1e-6, atol=1e-12)
        for ties in ("error", "half"):
            assert r[ties]["rich_arm_label"] in gflow.stats.VERDICT_LABELS
    rows = [r for r in _load("verdicts").main(["--runs", str(tmp_path)]).splitlines() if "(§1)" in r]
    assert len(rows) == 8 and all(r.rstrip(" |").split("| ")[-1] in gflow.stats.VERDICT_LABELS for r in rows)


def _runs(out, name: str) -> dict:
    return gflow.runs.store.arrays_of(gflow.load_run(out / name))


def _seed_mean(v):
    return np.asarray(v, np.float64).mean(axis=1)


def _excess_lin(cos_s, kappa, sigma):
    """E(v) − E* for directions at cosine `cos_s` to s: Φ(−κ cos/σ) − Φ(−κ/σ), in scipy."""
    return norm.cdf(-kappa * np.asarray(cos_s, np.float64) / sigma) - norm.cdf(-kappa / sigma)


@pytest.mark.slow  # over ~5 s (compiles its own programs); runs in .ci/run's slow pass
def test_oa_of_quick(tmp_path):
    """OA and OF recomputed from each run's stored cosines with the closed form of the cone infimum
    (the closest direction to s in {v : cos(v, x₊) ≥ Ψ} is at angle max(φ − arccos Ψ, 0) from s), in
    numpy/scipy; and Ψ has the physical sign: at small α the predictor points along +x₊."""
    summary, out = _run_quick("oa_of", tmp_path)
    assert (out / "oa_of.png").stat().st_size > 10_000
    for r in summary["results"]:
        s = r["setting"]
        oas, excesses, phis, oks = [], [], [], []
        for k in s["data_seeds"]:  # independent datasets, each with its own geometry
            a = _runs(out, f"{s['name']}_data{k}")
            oks.append(fa.ok_mask(np.asarray(a["status"])))  # a quick run can stop at t_max: left out of the means
            data_cfg = gflow.DataConfig(
                mode=s["mode"], n=s["n"], d=s["d"], kappa=s["kappa"], sigma=s["sigma"], seed=k, n_test=10
            )
            ds = gflow.twolayer.data.make_dataset(data_cfg, np.float64)
            x, y, sv = (np.asarray(v) for v in (ds.x, ds.y, ds.s))
            xplus = (y[:, None] * x).mean(axis=0)
            phi = np.arccos(xplus @ sv / np.linalg.norm(xplus))
            half = np.arccos(np.clip(np.asarray(a["final_Psi"], np.float64), -1, 1))
            oas.append(_excess_lin(np.cos(np.maximum(phi - half, 0.0)), s["kappa"], s["sigma"]))
            excesses.append(_excess_lin(a["final_cos_s"], s["kappa"], s["sigma"]))
            phis.append(np.full(oas[-1].shape, phi))
            assert np.all(
                np.asarray(a["final_Psi"])[0][oks[-1][0]] > np.cos(np.radians(30))
            )  # α = 1e-3: within 30° of +x₊
        ok = np.concatenate(oks, axis=1)
        _seed_mean = lambda v: np.where(ok, v, 0.0).sum(axis=1) / ok.sum(axis=1)  # noqa: E731
        oa, excess = np.concatenate(oas, axis=1), np.concatenate(excesses, axis=1)
        np.testing.assert_allclose(np.radians(r["phi_xplus"]), _seed_mean(np.concatenate(phis, axis=1)), rtol=1e-5)
        np.testing.assert_allclose(r["OA_xplus"], _seed_mean(oa), rtol=1e-3, atol=1e-6)
        np.testing.assert_allclose(r["OF_xplus"], _seed_mean(excess - oa), rtol=1e-3, atol=1e-6)
        np.testing.assert_allclose(r["excess_lin"], _seed_mean(excess), rtol=1e-3, atol=1e-6)
        v = r["verdicts"]
        np.testing.assert_allclose(v["OA_xplus"]["gap"], _seed_mean(oa)[0] - _seed_mean(oa)[-1], rtol=1e-3, atol=1e-6)
        np.testing.assert_allclose(
            v["OF_xplus"]["gap"], _seed_mean(excess - oa)[-1] - _seed_mean(excess - oa)[0], rtol=1e-3, atol=1e-6
        )
        assert all(e["label"] in gflow.stats.VERDICT_LABELS for e in v.values())
    assert [r["in_regime"] for r in summary["results"]] == [True, False]
    rows = [r for r in _load("verdicts").main(["--runs", str(tmp_path)]).splitlines() if "(§2)" in r]
    assert len(rows) == 8 and all(r.rstrip(" |").split("| ")[-1] in gflow.stats.VERDICT_LABELS for r in rows)


@pytest.mark.slow  # over ~5 s (compiles its own programs); runs in .ci/run's slow pass
def test_phase1_alignment_quick(tmp_path):
    summary, out = _run_quick("phase1_alignment", tmp_path)
    for name in ("phase1_alignment.png", "phase1_scalings.png"):
        assert (out / name).stat().st_size > 10_000
    study = summary["t_alpha_study"]
    assert all(s > 0 for s in study["slope"])  # smaller α: longer Phase 1
    assert study["label"] in gflow.stats.VERDICT_LABELS and study["in_regime"] is False  # the default mixture: λ < 0
    for n in summary["preset"]["n_values"]:  # each n on its own, independent datasets
        assert (out / f"t_alpha_n{n}_data{fa.data_seeds(n, 1)[0]}").is_dir()
    rows = [r for r in _load("verdicts").main(["--runs", str(tmp_path)]).splitlines() if "(§3)" in r]
    assert len(rows) == 1 and rows[0].rstrip(" |").split("| ")[-1] == study["label"]
    # the measured slope of t_α in log(1/α) matches the Phase-1 rate prediction 1/max(‖v₊‖, ‖v₋‖)
    ratio = np.asarray(study["slope_per_dataset"]) / np.asarray(study["predicted_per_dataset"])
    assert np.all(np.abs(ratio - 1) < 0.05), ratio
    for per_alpha in summary["snapshot_status"].values():
        for statuses in per_alpha.values():
            assert all(s == "t_max" for s in statuses)  # snapshots stop at t_max by construction
    devs = [dev for per_alpha in summary["snapshot_trick_max_dev"].values() for dev in per_alpha.values()]
    assert devs and all(dev is not None and dev < 0.05 for dev in devs), (
        devs
    )  # the multiplier trick reproduces the trajectory


@pytest.mark.slow  # over ~5 s (compiles its own programs); runs in .ci/run's slow pass
def test_optimal_alpha_quick(tmp_path):
    """The error tables are the means over datasets × seeds of the stored runs ([data seed, α, seed]), with
    'half' = error − tie/2 from the stored tie fraction; α* lies next to the grid minimum; the exponents are the
    least-squares slopes of log α* against log n (log h); each n has its own data seeds."""
    summary, out = _run_quick("optimal_alpha", tmp_path)
    assert (out / "optimal_alpha.png").stat().st_size > 10_000
    p = summary["preset"]
    alphas = np.asarray(p["init_scales"])
    seeds = {}
    for key in ("n", "width"):
        xs = list(p["n_values"] if key == "n" else p["width_values"])
        for tag in ("error", "half"):
            res = summary["fits"][key][tag]
            for x, e in zip(xs, res["entries"]):
                n, h = (x, p["ref_width"]) if key == "n" else (p["ref_n"], x)
                run = gflow.load_run(out / f"n{n}_h{h}")
                seeds[n] = run.attrs["config"]["sweep"]["data_seeds"]
                a = gflow.runs.store.arrays_of(run)
                ok = fa.ok_mask(a["status"])  # [data seed, α, seed]
                assert ok.mean() > 0.5
                err = np.asarray(a["final_test_err"], np.float64) - (0.5 if tag == "half" else 0.0) * np.asarray(
                    a["final_test_tie"], np.float64
                )
                mean_ok = lambda v: np.nansum(np.where(ok, v, np.nan), axis=(0, 2)) / ok.sum(axis=(0, 2))  # noqa: E731
                np.testing.assert_allclose(e["mean"], mean_ok(err), rtol=1e-6, atol=1e-12)
                np.testing.assert_allclose(
                    e["tie_mass"], mean_ok(np.asarray(a["final_test_tie"], np.float64)), rtol=1e-6, atol=1e-12
                )
                i = int(np.argmin(e["mean"]))
                assert alphas[max(i - 1, 0)] <= e["alpha_star"] <= alphas[min(i + 1, len(alphas) - 1)]
            fit = res["fits"]["pooled"]
            if fit["exponent"] is not None:
                used = [xs.index(x) for x in fit["used"]]
                np.testing.assert_allclose(
                    fit["exponent"],
                    np.polyfit(np.log(fit["used"]), np.log([res["entries"][k]["alpha_star"] for k in used]), 1)[0],
                    rtol=1e-9,
                )
            assert fit["label"] in gflow.stats.VERDICT_LABELS
    assert not set(seeds[p["n_values"][0]]) & set(seeds[p["n_values"][1]])  # independent datasets across n
    table = _load("verdicts").main(
        ["--runs", str(tmp_path)]
    )  # the verdict table lays out the labels the script computed
    rows = [r for r in table.splitlines() if "(§4)" in r]
    assert len(rows) == 8 and all(r.rstrip(" |").split("| ")[-1] in gflow.stats.VERDICT_LABELS for r in rows)
    assert "(regimes: not run)" in table


def test_stopping_quick(tmp_path):
    """The η rules' tables are the seed means of the stored runs (E(ŵ₊) recomputed from cos(ŵ₊, s));
    the rerun on a fresh test set follows the same trajectories but measures other test errors."""
    summary, out = _run_quick("stopping", tmp_path)
    assert (out / "stopping.png").stat().st_size > 10_000
    assert set(summary["rules"]["net"]) == {"η=0.1", "η=0.01", "val. loss min", "val. error min"}
    p = summary["preset"]
    np.testing.assert_allclose(summary["bayes_error"], norm.cdf(-p["kappa"] / p["sigma"]), rtol=1e-6)
    for eta in p["target_losses"]:
        a = _runs(out, f"eta{eta:g}_data{p['data_seeds'][0]}")
        assert np.all(a["status"] == 0)
        np.testing.assert_allclose(a["final_loss"], eta, rtol=1e-5)
        np.testing.assert_allclose(
            summary["rules"]["net"][f"η={eta:g}"]["mean"], _seed_mean(a["final_test_err"]), rtol=1e-6
        )
        lin = norm.cdf(-p["kappa"] * np.asarray(a["final_cos_s"], np.float64) / p["sigma"])
        np.testing.assert_allclose(summary["rules"]["lin"][f"η={eta:g}"]["mean"], _seed_mean(lin), rtol=1e-4)
    assert summary["fresh_rerun_t_stop_max_rel_diff"] < 1e-6
    k = p["data_seeds"][0]
    a, fresh = _runs(out, f"eta0.01_data{k}"), _runs(out, f"eta0.01_data{k}_freshtest{p['fresh_test_seed'] + k}")
    assert not np.array_equal(a["final_test_err"], fresh["final_test_err"])
    rows = [r for r in _load("verdicts").main(["--runs", str(tmp_path)]).splitlines() if "(§5)" in r]
    assert len(rows) == 4 and all(r.rstrip(" |").split("| ")[-1] in gflow.stats.VERDICT_LABELS for r in rows)


@pytest.mark.slow  # over ~5 s (compiles its own programs); runs in .ci/run's slow pass
def test_phase_diagram_quick(tmp_path):
    """Each row's errors are the means over datasets × seeds of its stored sweep, with E* = Φ(−κ/σ); the
    κ/σ plane's reference row is the n row on its first datasets; the n rows use disjoint data seeds."""
    summary, out = _run_quick("phase_diagram", tmp_path)
    assert (out / "phase_diagram.png").stat().st_size > 10_000
    res = summary["error"]
    assert len(res["n_rows"]) == 2 and len(res["snr_rows"]) == 2
    k = summary["preset"]["snr_datasets"]
    for in_snr_plane, rows in ((False, res["n_rows"]), (True, res["snr_rows"])):
        for row in rows:
            a = _runs(out, f"n{row['n']}_snr{row['snr']:g}")
            ok = fa.ok_mask(a["status"])[: k if in_snr_plane else None]
            err = np.asarray(a["final_test_err"], np.float64)[: k if in_snr_plane else None]
            np.testing.assert_allclose(
                row["mean"], np.nansum(np.where(ok, err, np.nan), axis=(0, 2)) / ok.sum(axis=(0, 2)), rtol=1e-6
            )
            np.testing.assert_allclose(row["bayes_error"], norm.cdf(-row["snr"]), rtol=1e-6)
    half = summary["half"]["n_rows"][0]
    a = _runs(out, f"n{half['n']}_snr{half['snr']:g}")
    ok = fa.ok_mask(a["status"])
    half_err = np.asarray(a["final_test_err"], np.float64) - 0.5 * np.asarray(a["final_test_tie"], np.float64)
    np.testing.assert_allclose(
        half["mean"],
        np.nansum(np.where(ok, half_err, np.nan), axis=(0, 2)) / ok.sum(axis=(0, 2)),
        rtol=1e-6,
        atol=1e-12,
    )
    seeds = [
        gflow.load_run(out / f"n{n}_snr{summary['preset']['ref_snr']:g}").attrs["config"]["sweep"]["data_seeds"]
        for n in summary["preset"]["n_values"]
    ]
    assert not set(seeds[0]) & set(seeds[1])
    assert res["n_exponent"]["pooled"]["label"] in gflow.stats.VERDICT_LABELS


def test_data_seeds_are_disjoint_across_n_and_give_independent_not_nested_training_sets():
    """One data seed across n gives nested training sets (the smaller is a prefix of the larger: the old
    n-sweeps); fa.data_seeds gives each n its own seeds, so the sets are independent draws."""
    s10, s20 = fa.data_seeds(10, 12), fa.data_seeds(20, 12)
    assert s10 == tuple(range(10_000, 10_012)) and len(set(s10) | set(s20)) == 24
    same = [gflow.twolayer.data.make_dataset(gflow.DataConfig(n=n, d=5, seed=3, n_test=10)).x for n in (10, 20)]
    np.testing.assert_array_equal(same[0], same[1][:10])  # the failure mode: nested prefixes
    own = [
        gflow.twolayer.data.make_dataset(gflow.DataConfig(n=n, d=5, seed=fa.data_seeds(n, 1)[0], n_test=10)).x
        for n in (10, 20)
    ]
    assert not np.any(np.all(np.isclose(own[1][:, None, :], own[0][None, :, :]), axis=-1))  # no shared training point
    for script in ("optimal_alpha", "regimes"):  # the n-scans of the full presets use them
        assert "n_datasets" in _load(script).get_config() and "data_seeds" not in _load(script).get_config()
    with pytest.raises(ValueError, match="count"):
        fa.data_seeds(10, 0)


def test_full_preset_settings_have_the_stated_separability():
    """The full presets have separable settings (conditioned on λ > 0 by the data mode) and settings that are
    not orthogonally separable (checked at two of their data seeds); no runs needed."""
    for preset in (_load("u_curve").get_config(), _load("oa_of").get_config()):
        modes = [s["mode"] for s in preset["settings"]]
        assert modes.count("separable") >= 1 and modes.count("gaussian") >= 1
    assert [s["mode"] for s in _load("u_curve").get_config()["settings"]].count(
        "separable"
    ) >= 3  # ≥ 3 separable U-curve settings
    o = _load("oa_of").get_config()
    for s in o["settings"]:  # the 'gaussian' settings are not orthogonally separable at their data seeds
        if s["mode"] == "gaussian":
            for k in s["data_seeds"][:2]:
                geo = fa.geometry(
                    gflow.DataConfig(n=s["n"], d=s["d"], kappa=s["kappa"], sigma=s["sigma"], seed=k, n_test=10)
                )
                assert geo["separability"] < 0, (s["name"], k, geo["separability"])


@pytest.mark.slow  # 9 min cold on the loaded 2-core machine (4 compiled shapes), 94 s with a warm compilation cache
def test_regimes_quick(tmp_path):
    """Both regimes, coarse + refined α grids, the multiplier sweep, every tie convention; the run
    directories resume (a second call computes nothing)."""
    summary, out = _run_quick("regimes", tmp_path)
    for regime in ("separable", "high_dim"):
        s = summary[regime]
        for st in s["n_scan"]["settings"]:
            assert len(st["alphas"]) == 5 and st["ok_fraction"] == 1.0
            if regime == "separable":
                assert np.all(np.asarray(st["separability"]) > 0)
            for tie in ("error", "half", "correct"):
                assert np.all(np.asarray(st[tie]["mean"]) <= np.asarray(st["error"]["mean"]) + 1e-12)
                assert st[tie]["rich_arm_label"] in gflow.stats.VERDICT_LABELS
        assert s["n_scan"]["in_regime"] == (regime == "separable")
        for tie in ("error", "half"):
            assert s["n_scan"]["fits"][tie]["pooled"]["label"] in gflow.stats.VERDICT_LABELS
        m = s["multiplier"][0]
        assert (
            0.3 < m["c_star"] / m["alpha_star_sq"] < 3 and m["label"] == "consistency check"
        )  # c = α² is the same flow (rescaled time)
    assert (out / "regimes.png").exists()
    again = _load("regimes").main(["--quick", "--out", str(out)])
    assert again["sweeps"]["n_loaded"] == again["sweeps"]["n_sweeps"]


@pytest.mark.slow  # four compiled solves (n_save × sa_grid): 58 s under load
def test_sa_cost_quick(tmp_path):
    summary, _ = _run_quick("sa_cost", tmp_path)
    assert all(r["sa_s"] > 0 and r["mc_s"] > 0 for r in summary["observable"])
    assert {(r["n_save"], r["sa_grid"]) for r in summary["runs"]} == {(2, False), (2, True), (4, False), (4, True)}
