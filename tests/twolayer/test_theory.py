import jax.numpy as jnp
import numpy as np
from scipy import stats

from gflow.twolayer import theory


def test_bayes_error_matches_scipy():
    for k, s in [(1.0, 1.0), (2.0, 0.5), (0.1, 3.0)]:
        np.testing.assert_allclose(theory.bayes_error(k, s), stats.norm.cdf(-k / s), rtol=1e-12)


def test_linear_test_error_matches_monte_carlo():
    """E(v) against the error rate of sign⟨v, x⟩ on 400k samples of the mixture."""
    rng = np.random.default_rng(0)
    d, kappa, sigma, m = 6, 1.0, 0.8, 400_000
    s = rng.normal(size=d)
    s /= np.linalg.norm(s)
    v = s + 0.9 * rng.normal(size=d)
    y = rng.choice([-1.0, 1.0], size=m)
    x = kappa * y[:, None] * s + sigma * rng.normal(size=(m, d))
    mc = np.mean(y * (x @ v) <= 0)
    exact = float(theory.linear_test_error(jnp.asarray(v), jnp.asarray(s), kappa, sigma))
    assert abs(mc - exact) < 4 * np.sqrt(exact * (1 - exact) / m)
    assert float(theory.linear_test_error(jnp.asarray(s), jnp.asarray(s), kappa, sigma)) == float(
        theory.bayes_error(kappa, sigma)
    )


def test_cosine_and_zero_vector():
    np.testing.assert_allclose(theory.cosine(jnp.asarray([1.0, 0.0]), jnp.asarray([1.0, 1.0])), 1 / np.sqrt(2))
    assert float(theory.cosine(jnp.zeros(2), jnp.ones(2))) == 0.0
    assert float(theory.linear_test_error(jnp.zeros(2), jnp.ones(2) / np.sqrt(2), 1.0, 1.0)) == 0.5


# --- angles and the over-alignment cone -----------------------------------------------------------


def _unit(v):
    return v / np.linalg.norm(v)


def test_class_mean_angle_matches_numpy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 7))
    y = rng.choice([-1.0, 1.0], size=30)
    s = _unit(rng.normal(size=7))
    xp = (y[:, None] * x).mean(0)
    expected = np.arccos(xp @ s / np.linalg.norm(xp))
    np.testing.assert_allclose(
        theory.class_mean_angle(jnp.asarray(x), jnp.asarray(y), jnp.asarray(s)), expected, rtol=1e-12
    )
    np.testing.assert_allclose(theory.angle(jnp.asarray([1.0, 0.0]), jnp.asarray([-1.0, 0.0])), np.pi)


def _cone_cases(rng, d, m):
    """Random (target, s, ψ) with s inside and outside the cone, and ψ < 0 (cones wider than a half-space)."""
    for k in range(m):
        target, s = _unit(rng.normal(size=d)), _unit(rng.normal(size=d))
        psi = [0.95, 0.6, 0.0, -0.4][k % 4]
        yield target, s, psi


def test_cone_inf_error_matches_brute_force_search_in_3d():
    """inf over the cone of E(v) against the minimum of E over 400k directions drawn uniformly on S² in the cone."""
    rng = np.random.default_rng(2)
    kappa, sigma = 1.0, 0.7
    dirs = rng.normal(size=(400_000, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    n_inside = 0
    for target, s, psi in _cone_cases(rng, 3, 24):
        in_cone = dirs @ target >= psi
        brute = stats.norm.cdf(-kappa / sigma * (dirs[in_cone] @ s)).min()
        exact = float(theory.cone_inf_error(np.arccos(target @ s), psi, kappa, sigma))
        assert exact <= brute + 1e-12  # the closed form is a lower bound of every feasible direction
        assert brute - exact < 2e-3 * max(exact, 1e-3) + 1e-4  # and the search gets arbitrarily close to it
        n_inside += np.arccos(target @ s) <= np.arccos(psi)
        best = np.asarray(theory.cone_best_direction(jnp.asarray(target), jnp.asarray(s), psi))
        np.testing.assert_allclose(np.linalg.norm(best), 1.0, rtol=1e-12)
        assert best @ target >= psi - 1e-12
        np.testing.assert_allclose(stats.norm.cdf(-kappa / sigma * (best @ s)), exact, rtol=1e-10, atol=1e-15)
    assert 0 < n_inside < 24  # both branches (s in the cone, s outside) were exercised


def test_cone_inf_error_matches_constrained_optimizer_in_8d():
    """Against scipy's SLSQP: maximize cos(v, s) subject to cos(v, target) ≥ ψ, 10 random starts."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(3)
    kappa, sigma = 1.0, 0.5
    for target, s, psi in _cone_cases(rng, 8, 8):
        best = -np.inf
        for _ in range(10):
            res = minimize(
                lambda v: -(v @ s) / np.linalg.norm(v),
                rng.normal(size=8),
                constraints=[{"type": "ineq", "fun": lambda v: (v @ target) / np.linalg.norm(v) - psi}],
                method="SLSQP",
                options={"ftol": 1e-14, "maxiter": 500},
            )
            v = res.x / np.linalg.norm(res.x)
            if v @ target >= psi - 1e-9:
                best = max(best, v @ s)
        exact = float(theory.cone_inf_error(np.arccos(target @ s), psi, kappa, sigma))
        np.testing.assert_allclose(stats.norm.cdf(-kappa / sigma * best), exact, rtol=1e-6, atol=1e-12)


def test_over_alignment_over_fitting_decomposition():
    """OA ≥ 0, OF ≥ 0, OA + OF = E(ŵ) − E*, OA = 0 exactly when s lies in the cone; OA falls as the cone widens."""
    rng = np.random.default_rng(4)
    kappa, sigma, d = 1.0, 0.5, 20
    s = _unit(rng.normal(size=d))
    target = _unit(s + 0.8 * _unit(rng.normal(size=d)))
    phi = np.arccos(target @ s)
    w = target + rng.uniform(0, 2, size=(500, 1)) * rng.normal(size=(500, d)) / np.sqrt(d)
    dec = {
        k: np.asarray(v)
        for k, v in theory.decompose_excess_error(
            jnp.asarray(w), jnp.asarray(target), jnp.asarray(s), kappa, sigma
        ).items()
    }
    e_w = stats.norm.cdf(-kappa / sigma * (w @ s) / np.linalg.norm(w, axis=1))
    assert np.all(dec["OA"] >= -1e-15) and np.all(dec["OF"] >= -1e-12)
    np.testing.assert_allclose(dec["OA"] + dec["OF"], e_w - stats.norm.cdf(-kappa / sigma), rtol=1e-10, atol=1e-15)
    psi = (w @ target) / np.linalg.norm(w, axis=1)
    np.testing.assert_array_equal(dec["OA"] == 0.0, np.arccos(psi) >= phi)
    assert 0 < np.sum(dec["OA"] == 0.0) < len(w)
    psis = np.linspace(-1, 1, 101)
    oa = np.asarray(theory.over_alignment(phi, psis, kappa, sigma))
    assert np.all(np.diff(oa) >= -1e-15)  # a narrower cone (larger Ψ) never lowers OA
    np.testing.assert_allclose(
        oa[-1], stats.norm.cdf(-kappa / sigma * np.cos(phi)) - stats.norm.cdf(-kappa / sigma), rtol=1e-10
    )


# --- Phase 1 --------------------------------------------------------------------------------------


def test_phase1_bound_solves_the_comparison_ode():
    """The closed form against solve_ivp of ψ' = k(ζ − ψ²) (rtol 1e-12) from below, above and at √ζ."""
    from scipy.integrate import solve_ivp

    k, zeta = 1.7, 0.81
    ts = np.linspace(0, 3, 31)
    for psi0 in (-0.85, -0.3, 0.0, 0.5, 0.9, 0.98, 1.0):
        sol = solve_ivp(lambda t, p: k * (zeta - p**2), (0, 3), [psi0], t_eval=ts, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(theory.phase1_alignment_bound(ts, zeta, k, psi0), sol.y[0], rtol=1e-9, atol=1e-12)
    assert float(theory.phase1_alignment_bound(1.0, -0.1, k, 0.5)) == -1.0  # ζ ≤ 0: vacuous
    assert float(theory.phase1_alignment_bound(1.0, zeta, k, -0.95)) == -1.0  # ψ₀ ≤ −√ζ: vacuous


def test_phase1_exact_alignment_of_a_driven_neuron():
    """du/dt = (I − uuᵀ)v (a neuron with a fixed active set) gives cos(u, v) = tanh(‖v‖t + artanh ψ₀): ζ = 1."""
    from scipy.integrate import solve_ivp

    rng = np.random.default_rng(5)
    v = rng.normal(size=6) * 0.4
    u0 = _unit(rng.normal(size=6))
    ts = np.linspace(0, 5, 26)
    sol = solve_ivp(lambda t, u: v - (u @ v) * u, (0, 5), u0, t_eval=ts, rtol=1e-12, atol=1e-14)
    cos = (sol.y.T @ v) / np.linalg.norm(v) / np.linalg.norm(sol.y.T, axis=1)
    bound = theory.phase1_alignment_bound(ts, 1.0, np.linalg.norm(v), u0 @ v / np.linalg.norm(v))
    np.testing.assert_allclose(bound, cos, rtol=1e-9, atol=1e-11)


def test_phase1_bound_holds_under_a_perturbed_drive():
    """Any ψ with ψ' ≥ k(ζ − ψ²) stays above the bound: ψ' = k(1 − ψ²) − k(1 − ζ)|sin 3t|."""
    from scipy.integrate import solve_ivp

    k, zeta, psi0 = 0.9, 0.64, -0.2
    ts = np.linspace(0, 6, 61)
    sol = solve_ivp(
        lambda t, p: k * (1 - p**2) - k * (1 - zeta) * np.abs(np.sin(3 * t)),
        (0, 6),
        [psi0],
        t_eval=ts,
        rtol=1e-11,
        atol=1e-13,
    )
    bound = np.asarray(theory.phase1_alignment_bound(ts, zeta, k, psi0))
    assert np.all(sol.y[0] >= bound - 1e-9)
    assert np.max(sol.y[0] - bound) > 0.05  # and it is not trivially equal


def test_phase1_drive_is_the_small_init_gradient():
    """The engine's −∇_w L for a neuron active exactly on the positive class, at α = 1e-8, is a_j·v₊ (to O(α²))."""
    from gflow.twolayer import model

    rng = np.random.default_rng(6)
    n, d = 16, 5
    y = np.repeat([1.0, -1.0], n // 2)
    s = _unit(rng.normal(size=d))
    x = 2.0 * y[:, None] * s + 0.3 * rng.normal(size=(n, d))
    mu_plus, mu_minus = x[y > 0].mean(0), x[y < 0].mean(0)
    assert np.all((x @ mu_plus > 0) == (y > 0)) and np.all((x @ mu_minus > 0) == (y < 0))  # active sets: one class each
    W = 1e-8 * np.stack([mu_plus, mu_minus])
    a = np.linalg.norm(W, axis=1) * np.array([1.0, -1.0])
    _, grad = model.loss_and_grad(model.Params(jnp.asarray(W), jnp.asarray(a)), jnp.asarray(x), jnp.asarray(y))
    vp, vm = theory.phase1_drives(jnp.asarray(x), jnp.asarray(y))
    np.testing.assert_allclose(-np.asarray(grad.W[0]) / a[0], vp, rtol=1e-6)
    np.testing.assert_allclose(-np.asarray(grad.W[1]) / abs(a[1]), vm, rtol=1e-6)  # a_j < 0 neurons: v₋
    np.testing.assert_allclose(
        theory.phase1_rates(jnp.asarray(x), jnp.asarray(y))[0], np.linalg.norm(x[y > 0].sum(0)) / (2 * n)
    )
    np.testing.assert_allclose(theory.phase1_time(1e-4, 2.0, offset=1.0), (np.log(1e4) + 1) / 2)


def test_zeta_and_its_threshold():
    """ζ from its definition with x_max, W_max, ‖x₊‖ computed directly; ζ(α_ζ) = 0; α_ζ ∝ 1/(n√h)."""
    rng = np.random.default_rng(7)
    n, d, h = 24, 9, 50
    x = rng.normal(size=(n, d))
    y = rng.choice([-1.0, 1.0], size=n)
    w_unit = rng.normal(size=(h, d)) / np.sqrt(d)
    x_max, w_max, xp = (float(v) for v in theory.phase1_constants(jnp.asarray(x), jnp.asarray(y), jnp.asarray(w_unit)))
    np.testing.assert_allclose(x_max, np.linalg.norm(x, axis=1).max())
    np.testing.assert_allclose(w_max, np.linalg.norm(w_unit, axis=1).max())
    np.testing.assert_allclose(xp, np.linalg.norm((y[:, None] * x).mean(0)))
    alpha = 1e-4
    np.testing.assert_allclose(
        theory.phase1_zeta(alpha, n, h, x_max, w_max, xp), 1 - 4 * alpha * n * np.sqrt(h) * x_max**2 * w_max**2 / xp
    )
    a0 = float(theory.alpha_zeta_zero(n, h, x_max, w_max, xp))
    np.testing.assert_allclose(theory.phase1_zeta(a0, n, h, x_max, w_max, xp), 0.0, atol=1e-12)
    np.testing.assert_allclose(theory.alpha_zeta_zero(2 * n, 4 * h, x_max, w_max, xp), a0 / 4)


def test_predicted_scalings_have_the_stated_exponents():
    ns, hs = np.array([10.0, 40.0, 160.0]), np.array([25.0, 100.0, 400.0])
    a_n = theory.predicted_alpha_star(ns, 100, ref_alpha=0.1, ref_n=40, ref_width=100)
    a_h = theory.predicted_alpha_star(40, hs, ref_alpha=0.1, ref_n=40, ref_width=100)
    np.testing.assert_allclose(np.polyfit(np.log(ns), np.log(a_n), 1)[0], -1.0)
    np.testing.assert_allclose(np.polyfit(np.log(hs), np.log(a_h), 1)[0], -0.5)
    np.testing.assert_allclose(a_n[1], 0.1)
    c_n = theory.predicted_multiplier_star(ns, 100, ref_c=0.01, ref_n=40, ref_width=100)
    c_h = theory.predicted_multiplier_star(40, hs, ref_c=0.01, ref_n=40, ref_width=100)
    np.testing.assert_allclose(c_n, np.asarray(a_n) ** 2)
    np.testing.assert_allclose(c_h, np.asarray(a_h) ** 2)
    al = np.logspace(-6, -2, 5)
    np.testing.assert_allclose(
        np.polyfit(np.log(al), np.log(theory.predicted_angle(al, ref_alpha=1e-4, ref_angle=0.1)), 1)[0], 0.5
    )


def test_phase1_fixed_point_is_self_consistent():
    """u* ∝ sign·Σ_{active(u*)} y_i x_i, and it equals μ₊ / μ₋ when those are active exactly on their class."""
    rng = np.random.default_rng(8)
    n, d = 40, 30
    y = rng.choice([-1.0, 1.0], size=n)
    s = _unit(rng.normal(size=d))
    x = 1.0 * y[:, None] * s + 0.5 * rng.normal(size=(n, d))  # not orthogonally separable
    for sign in (1.0, -1.0):
        u, converged = theory.phase1_fixed_point(x, y, sign)
        assert converged
        act = x @ u > 0
        drive = sign * (y[act] @ x[act])
        np.testing.assert_allclose(u, drive / np.linalg.norm(drive), rtol=1e-12)
        np.testing.assert_allclose(np.linalg.norm(u), 1.0)
    x_sep = 2.0 * y[:, None] * s + 0.05 * rng.normal(size=(n, d))
    u, _ = theory.phase1_fixed_point(x_sep, y, 1.0)
    np.testing.assert_allclose(u, _unit(x_sep[y > 0].mean(0)), rtol=1e-12)
