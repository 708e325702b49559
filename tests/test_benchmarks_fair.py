"""The fair benchmark's contract, fast: GD's state at its interpolated t_η, the envelope rule of the oracles,
the state error, the stored reference states and the held-out problem. (The end-to-end run is
tests/test_benchmarks.py::test_fair_contenders_quick, slow.)"""

import math

import numpy as np
import pytest

from benchmarks import fair
from benchmarks import reference as refmod
from benchmarks.common import problem_config
from benchmarks.gd import dataset_numpy, init, jax_gd_sweep, numpy_gd, numpy_gd_iters


@pytest.fixture(scope="module")
def tiny():
    import gflow

    gflow.enable_float64()
    cfg = problem_config("tiny", target_loss=0.1, dtype="float64", n_seeds=1, init_scales=(0.5,), n_test=50)
    return cfg, gflow.twolayer.data.make_dataset(cfg.data, np.float64)


def test_gd_state_is_interpolated_like_its_time(tiny):
    """θ(t_η) = θ_{k−1} + s·(θ_k − θ_{k−1}), s the fraction of the last step where log L (linear) crosses
    log η: rebuilt here from plain iterations and the losses; numpy and JAX GD agree on it."""
    cfg, data = tiny
    x, y, xt, yt = dataset_numpy(data)
    W0, a0 = init(0.5, 0, cfg.data.d, cfg.model.width)
    lr, eta = 0.5, cfg.flow.target_loss
    r = numpy_gd(W0, a0, x, y, xt, yt, lr=lr, eta=eta)
    k = int(r.iters)
    assert r.reached and k >= 2
    Wp, ap = numpy_gd_iters(W0, a0, x, y, lr=lr, iters=k - 1)
    Wk, ak = numpy_gd_iters(W0, a0, x, y, lr=lr, iters=k)

    def loss(W, a):
        m = y * (np.maximum(x @ W.T, 0) @ a)
        return np.mean(np.logaddexp(0, -m))

    lp, lk = math.log(loss(Wp, ap)), math.log(loss(Wk, ak))
    s = (lp - math.log(eta)) / (lp - lk)
    assert 0 < s <= 1 and r.t_stop == pytest.approx(lr * (k - 1 + s), rel=1e-12)
    np.testing.assert_allclose(r.W, Wp + s * (Wk - Wp), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(r.a, ap + s * (ak - ap), rtol=1e-12, atol=1e-14)
    j = jax_gd_sweep([0.5], [0], data, width=cfg.model.width, lr=lr, eta=eta, state=True)
    assert int(j.iters[0]) == k
    plain = jax_gd_sweep([0.5], [0], data, width=cfg.model.width, lr=lr, eta=eta)  # without the state: the same run
    assert plain.W is None and int(plain.iters[0]) == k and plain.t_stop[0] == j.t_stop[0]
    np.testing.assert_allclose(j.W[0], r.W, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(j.a[0], r.a, rtol=1e-9, atol=1e-12)


def test_state_error_and_contract():
    """‖θ − θ_ref‖/‖θ_ref − θ(0)‖ over (W, a) against a hand computation; the contract needs both errors."""
    W0, a0 = np.zeros((2, 2)), np.zeros(2)
    Wr, ar = np.array([[3.0, 0], [0, 0]]), np.array([0.0, 4.0])  # ‖θ_ref − θ(0)‖ = 5
    W, a = Wr + np.array([[0, 0.03], [0, 0]]), ar + np.array([0.04, 0])  # ‖θ − θ_ref‖ = 0.05
    assert refmod.state_rel_diff(W, a, Wr, ar, W0, a0) == pytest.approx(0.01)
    t_err, th_err = fair.errors(1.001, W, a, 1.0, (W0, a0, Wr, ar))
    assert t_err == pytest.approx(1e-3) and th_err == pytest.approx(1e-2)
    assert fair.meets(t_err, th_err, 1e-2) and not fair.meets(t_err, th_err, 5e-3)  # t alone would meet 5e-3
    assert fair.errors(math.inf, W, a, 1.0, (W0, a0, Wr, ar)) == (math.inf, math.inf)


def test_envelope_rule_skips_lucky_rungs():
    """The oracle takes the largest rung such that it and every smaller one meet both errors; the old
    t_η-only rule takes a lucky large lr (a real pattern: medium α = 10, t_η error 2.7e-3 at lr 0.011,
    6.8e-3 at half of 0.0039)."""
    rungs = [
        dict(lr=1.0, t_err=0.5, theta_err=0.9),
        dict(lr=0.5, t_err=0.002, theta_err=0.05),  # t_η lucky, state far off
        dict(lr=0.25, t_err=0.02, theta_err=0.008),  # t_η misses 1%
        dict(lr=0.125, t_err=0.004, theta_err=0.004),
        dict(lr=0.0625, t_err=0.002, theta_err=0.002),
    ]
    assert fair.envelope_choice(rungs, 1e-2) == 0.125
    assert fair.t_only_choice(rungs, 1e-2) == 0.5
    assert fair.envelope_choice(rungs, 1e-3) is None  # the last rung misses: no choice
    rungs[2]["t_err"] = 0.009
    assert fair.envelope_choice(rungs, 1e-2) == 0.25
    assert fair._inside(rungs, 1e-2 * 4 * 0.6) and not fair._inside(rungs, 1e-2)


def test_reference_states_round_trip(tmp_path):
    """Stored as float32 θ(0) and δ = θ_ref − θ(0): θ_ref comes back to δ's float32 rounding, θ(0) is
    gflow's own initialization in float64, the estimate is the change from the rung before, and a stored
    θ(0) that is not the initialization is refused."""
    import gflow

    gflow.enable_float64()
    cfg = problem_config("tiny", target_loss=1e-2, dtype="float64", n_seeds=1, init_scales=(0.1,))
    W0, a0 = refmod.init_state(cfg, 0.1)
    W0j, a0j = init(0.1, 0, cfg.data.d, cfg.model.width)
    np.testing.assert_array_equal(W0, W0j)  # the GD contenders start from the same θ(0)
    rng = np.random.default_rng(0)
    W, a = W0 + 1e-3 * rng.standard_normal(W0.shape), a0 + 1e-3 * rng.standard_normal(a0.shape)
    Wp, ap = W + 1e-6 * rng.standard_normal(W0.shape), a.copy()
    entry = {"problem": "tiny", "eta": 1e-2, "alphas": [0.1, 1.0], "runs": [{"variant": "floor_on"}, {"variant": None}]}
    path = tmp_path / "s.npz"
    refmod.save_states(entry, {0.1: ((W, a), (Wp, ap))}, path=path)
    assert entry["state_rel_err_estimate"][1] is None
    assert entry["state_rel_err_estimate"][0] == pytest.approx(refmod.state_rel_diff(Wp, ap, W, a, W0, a0))
    W0b, a0b, Wb, ab = refmod.load_state("tiny", 1e-2, 0.1, cfg, path=path)
    np.testing.assert_array_equal(W0b, W0)
    assert refmod.state_rel_diff(Wb, ab, W, a, W0, a0) < 1e-6
    assert refmod.load_state("tiny", 1e-2, 1.0, cfg, path=path) is None
    z = dict(np.load(path))
    z[refmod.state_key("tiny", 1e-2, 0.1) + "|W0"] *= 1.01
    np.savez(path, **z)
    with pytest.raises(ValueError, match="θ\\(0\\)"):
        refmod.load_state("tiny", 1e-2, 0.1, cfg, path=path)


def test_heldout_problem_has_its_own_data():
    """The third problem differs from small and medium in n, d, h, κ, σ and η; the others keep κ = 1, σ = 0.5."""
    from benchmarks.common import DEFAULT_ETA

    h, s, m = (problem_config(p, n_seeds=1) for p in ("heldout", "small", "medium"))
    for other in (s, m):
        assert (h.data.n, h.data.d, h.model.width) != (other.data.n, other.data.d, other.model.width)
        assert h.data.n != other.data.n and h.data.d != other.data.d and h.model.width != other.model.width
    assert (h.data.kappa, h.data.sigma) == (1.5, 0.8) and (s.data.kappa, s.data.sigma) == (
        m.data.kappa,
        m.data.sigma,
    ) == (1.0, 0.5)
    assert DEFAULT_ETA["heldout"] == 0.02 and DEFAULT_ETA["small"] == DEFAULT_ETA["medium"] == 1e-2
    assert refmod.accuracy_subset(range(16), "heldout")


def test_summary_marks_each_contender_against_the_contract():
    """The summary row: gflow's speed-up over each contender (wall and CPU), ✓ where every α met the contract,
    else ✗ with how many did; a contender without a choice is '–'."""

    def row(wall, cpu, t_err, theta_err):
        r = dict(wall_s=wall, cpu_s=cpu, t_err=t_err, theta_err=theta_err, test_err=[0.1, 0.2])
        return fair._summary({"test_err": [0.1, 0.25]}, r, 1e-2)

    g = row(2.0, 1.0, [1e-3, 1e-3], [1e-3, 5e-2])  # the state of the second α misses
    o = row(1.0, 2.0, [9e-3, 1e-3], [1e-3, 1e-3])
    assert not g["met"] and o["met"] and g["test_err_abs_diff_max"] == pytest.approx(0.05)
    res = [
        {
            "problem": "small",
            "eta": 0.01,
            "levels": {
                "0.01": {
                    "gflow": g,
                    "oracle_jax_gd": o,
                    "ratios": {"gflow_vs_oracle_jax_gd": 0.5},
                    "cpu_ratios": {"gflow_vs_oracle_jax_gd": 2.0},
                    "load_average_1min_at_start": 1.0,
                    "load_average_1min_at_end": 2.0,
                }
            },
        }
    ]
    line = fair.summary(res).splitlines()[2]
    cells = [c.strip() for c in line.split("|")[1:-1]]
    assert cells[:3] == ["small (0.01)", "1.00%", "1–2"]
    assert cells[3].startswith("2 s / 1 s, ✗ 1/2 t 1.0e-03 θ 5.0e-02")
    assert cells[4].startswith("0.50× (2.00×) ✓ t 9.0e-03 θ 1.0e-03")
    assert cells[5:] == ["–"] * 4
