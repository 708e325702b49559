"""RKC2 (gflow.twolayer.rkc) against closed forms, float64: its stability polynomial, one step on a
linear ODE, its order, and a stiff linear system where it must take far fewer steps than Bosh3."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gflow.twolayer import rkc
from gflow.twolayer.solvers import SOLVERS, FusedBosh3


def test_registered():
    assert SOLVERS["rkc2"].cls is rkc.RKC2


@pytest.mark.parametrize("s", [2, 3, 5, 10, 40])
def test_stability_polynomial(s):
    """R_s(z) = a_s + b_s·T_s(w₀ + w₁z) is second order at z = 0 (R = 1 + z + z²/2 + O(z³)) and
    |R_s| ≤ 1 on [−β_s, 0], with β_s = 2 for s = 2 and ≥ 0.64·s² beyond (the paper's ≈ 0.653·s²)."""
    for z in (1e-2, -1e-2):
        err = float(rkc.stability_polynomial(s, z)) - (1 + z + z * z / 2)
        assert abs(err) < 0.2 * abs(z) ** 3
    beta = 2.0 if s == 2 else 0.64 * s * s
    zs = -np.linspace(0.0, beta, 4001)
    assert np.max(np.abs(np.asarray(rkc.stability_polynomial(s, zs)))) <= 1 + 1e-12
    # and beyond the interval it is unstable somewhere (the interval is not much longer than claimed)
    far = -np.linspace(beta, 1.1 * 0.66 * s * s + 2.5, 4001)
    assert np.max(np.abs(np.asarray(rkc.stability_polynomial(s, far)))) > 1


def _linear_term(lams):
    return diffrax.ODETerm(lambda t, y, args: lams * y)


@pytest.mark.parametrize("h", [1e-3, 0.05, 0.4])
def test_one_step_is_the_stability_polynomial(h):
    """On y′ = λ⊙y the step is y₁ = R_s(h·λ)⊙y₀ componentwise, with s the stage count the step chose
    from its spectral-radius estimate (power method; exact here up to its convergence)."""
    lams = -jnp.asarray([1.0, 30.0, 400.0, 2000.0], jnp.float64)
    term, y0 = _linear_term(lams), jnp.asarray([1.0, -2.0, 0.5, 3.0], jnp.float64)
    solver = rkc.RKC2()
    t0, t1 = jnp.float64(0.0), jnp.float64(h)
    state = solver.init(term, t0, t1, y0, None)
    y1, err, dense, (f1, w, rho), result = solver.step(term, t0, t1, y0, None, state, False)
    assert result == diffrax.RESULTS.successful
    np.testing.assert_allclose(rho, 2000.0, rtol=1e-3)  # the power method found the spectral radius
    s = int(rkc.stage_count(h, rkc.RHO_SAFETY * rho, solver.max_stages))
    assert s == max(2, int(1 + np.floor(np.sqrt(1 + 1.54 * h * 1.2 * float(rho)))))
    expect = np.asarray(rkc.stability_polynomial(s, h * np.asarray(lams))) * np.asarray(y0)
    np.testing.assert_allclose(y1, expect, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(f1, lams * y1, rtol=1e-12)  # FSAL: the state is the step end's vector field
    assert np.all(np.abs(np.asarray(y1)) <= np.abs(np.asarray(y0)) + 1e-15)  # stable at every h


def test_second_order_on_a_nonlinear_ode():
    """y′ = −y² (y(0) = 1, y = 1/(1 + t)) at constant steps: halving h divides the error at t = 2 by ≈ 4."""
    term = diffrax.ODETerm(lambda t, y, args: -y * y)
    errs = []
    for n in (20, 40, 80):
        sol = diffrax.diffeqsolve(
            term,
            rkc.RKC2(),
            t0=0.0,
            t1=2.0,
            dt0=2.0 / n,
            y0=jnp.float64(1.0),
            stepsize_controller=diffrax.ConstantStepSize(),
        )
        errs.append(abs(float(sol.ys[-1]) - 1 / 3))
    rates = np.log2(np.asarray(errs[:-1]) / np.asarray(errs[1:]))
    assert np.all((rates > 1.8) & (rates < 2.3)), (errs, rates)


def test_stiff_linear_system_fewer_steps_than_bosh3():
    """y′ = −diag(λ)·y, λ from 1 to 10⁴ (stiff, real spectrum): adaptive RKC2 matches exp(−λt) at t = 1
    within the tolerance's reach and takes several times fewer steps than Bosh3 with the same controller (counted)."""
    lams = -jnp.logspace(0, 4, 9, dtype=jnp.float64)
    y0 = jnp.ones(9, jnp.float64)
    exact = np.exp(np.asarray(lams))
    steps = {}
    for name, solver in (("rkc2", rkc.RKC2()), ("bosh3", FusedBosh3())):
        sol = diffrax.diffeqsolve(
            _linear_term(lams),
            solver,
            t0=0.0,
            t1=1.0,
            dt0=None,
            y0=y0,
            max_steps=100_000,
            stepsize_controller=diffrax.PIDController(rtol=1e-5, atol=1e-8),
        )
        np.testing.assert_allclose(sol.ys[-1], exact, atol=1e-5)
        steps[name] = int(sol.stats["num_steps"])
    assert steps["rkc2"] * 4 < steps["bosh3"], steps  # measured: 804 against 5,285


def test_vmapped_lanes_with_different_stage_counts_equal_their_single_runs():
    """Under vmap the stage loop runs to the largest s of the batch, masked: each lane's result must be
    its own unbatched step's (a stiff and a non-stiff lane together)."""
    solver = rkc.RKC2()

    def one(lam_scale, h):
        lams = -jnp.asarray([1.0, 50.0], jnp.float64) * lam_scale
        term, y0 = _linear_term(lams), jnp.asarray([1.0, 1.0], jnp.float64)
        state = solver.init(term, 0.0, h, y0, None)
        return solver.step(term, jnp.float64(0.0), h, y0, None, state, False)[0]

    scales, hs = jnp.asarray([1.0, 100.0]), jnp.asarray([0.01, 0.05])
    batched = jax.vmap(one)(scales, hs)
    for i in range(2):
        np.testing.assert_allclose(batched[i], one(scales[i], hs[i]), rtol=1e-13)
