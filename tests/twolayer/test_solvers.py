"""gflow's written-out Bosh3 step against diffrax.Bosh3 and against closed forms (float64)."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from gflow.twolayer import model
from gflow.twolayer.config import SOLVER_NAMES
from gflow.twolayer.solvers import SOLVERS, FusedBosh3


def test_solver_names_match_config():
    assert tuple(SOLVERS) == SOLVER_NAMES
    assert SOLVERS["bosh3"].cls is FusedBosh3


@pytest.mark.parametrize(
    "name", [n for n in SOLVER_NAMES if n != "rkc2"]
)  # RKC2 has no tableau: tests/twolayer/test_rkc.py
def test_registry_stage_counts(name):
    """The registry's stage count (used by the memory model) is the tableau's: diffrax's Butcher tableau
    has one row per stage after the first; FusedBosh3 is Bosh3's tableau written out."""
    spec = SOLVERS[name]
    cls = diffrax.Bosh3 if spec.cls is FusedBosh3 else spec.cls
    assert spec.stages == len(cls.tableau.c) + 1


def _gflow_term():
    """gflow's vector field (−∇L on a small two-layer ReLU net) with a pytree state."""
    key = jax.random.PRNGKey(0)
    x = jax.random.normal(key, (12, 7), jnp.float64)
    y = jnp.sign(jax.random.normal(jax.random.PRNGKey(1), (12,), jnp.float64))
    p0 = model.init_params(key=model.init_key(3), d=7, width=5, init_scale=0.7, dtype=jnp.float64)
    term = diffrax.ODETerm(lambda t, p, args: model.flow_velocity(p, x, y)[0])
    return term, p0


@pytest.mark.parametrize("dt", [1e-3, 0.3])
def test_one_step_matches_diffrax_bosh3(dt):
    term, p0 = _gflow_term()
    t0, t1 = jnp.float64(0.2), jnp.float64(0.2 + dt)
    out = {}
    for name, solver in [("ours", FusedBosh3()), ("diffrax", diffrax.Bosh3())]:
        state = solver.init(term, t0, t1, p0, None)
        y1, err, dense, _, result = solver.step(term, t0, t1, p0, None, state, False)
        assert result == diffrax.RESULTS.successful
        interp = solver.interpolation_cls(t0=t0, t1=t1, **dense)
        mids = [interp.evaluate(t0 + s * dt) for s in (0.0, 0.3, 0.7, 1.0)]
        out[name] = (y1, err, mids)
    # the state is O(1); the error estimate is a difference of O(dt) terms, so compare absolutely
    for a, b in zip(jax.tree.leaves(out["ours"]), jax.tree.leaves(out["diffrax"])):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    # the interpolant passes through both step ends
    for a, b in zip(jax.tree.leaves(out["ours"][2][0]), jax.tree.leaves(p0)):
        np.testing.assert_allclose(a, b, rtol=1e-14)
    for a, b in zip(jax.tree.leaves(out["ours"][2][3]), jax.tree.leaves(out["ours"][0])):
        np.testing.assert_allclose(a, b, rtol=1e-14)


def _linear_solve(solver, A, y0, ts, rtol):
    term = diffrax.ODETerm(lambda t, y, args: {"u": A @ y["u"], "v": -0.5 * y["v"]})
    return diffrax.diffeqsolve(
        term,
        solver,
        t0=0.0,
        t1=float(ts[-1]),
        dt0=None,
        y0=y0,
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=rtol * 1e-3),
    )


def test_adaptive_solve_matches_closed_form_and_diffrax():
    """y' = A y (rotation plus decay) and v' = −v/2: the adaptive solve and its dense output at
    save times against expm / exp, and the step counts against diffrax.Bosh3 (same controller)."""
    A = jnp.array([[-0.1, 2.0, 0.0], [-2.0, -0.1, 0.3], [0.0, -0.3, -0.5]], jnp.float64)
    y0 = {"u": jnp.array([1.0, 0.0, -0.5], jnp.float64), "v": jnp.array([2.0, -1.0], jnp.float64)}
    ts = jnp.linspace(0.0, 5.0, 23)
    ours = _linear_solve(FusedBosh3(), A, y0, ts, 1e-8)
    ref = _linear_solve(diffrax.Bosh3(), A, y0, ts, 1e-8)
    exact_u = np.stack([scipy.linalg.expm(np.asarray(A) * t) @ np.asarray(y0["u"]) for t in np.asarray(ts)])
    exact_v = np.exp(-0.5 * np.asarray(ts))[:, None] * np.asarray(y0["v"])
    np.testing.assert_allclose(ours.ys["u"], exact_u, atol=2e-7)
    np.testing.assert_allclose(ours.ys["v"], exact_v, atol=2e-7)
    assert int(ours.stats["num_accepted_steps"]) == int(ref.stats["num_accepted_steps"])
    assert int(ours.stats["num_rejected_steps"]) == int(ref.stats["num_rejected_steps"])
    np.testing.assert_allclose(ours.ys["u"], ref.ys["u"], rtol=0, atol=1e-12)


def test_third_order_convergence():
    """Fixed steps on y' = A y: halving dt cuts the error at t = 1 by ≈ 2³."""
    A = jnp.array([[0.0, 1.0], [-4.0, -0.2]], jnp.float64)
    y0 = jnp.array([1.0, 0.5], jnp.float64)
    exact = scipy.linalg.expm(np.asarray(A)) @ np.asarray(y0)
    errs = []
    for n in (16, 32, 64):
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(lambda t, y, args: A @ y),
            FusedBosh3(),
            t0=0.0,
            t1=1.0,
            dt0=1.0 / n,
            y0=y0,
            stepsize_controller=diffrax.ConstantStepSize(),
        )
        errs.append(float(np.linalg.norm(np.asarray(sol.ys[-1]) - exact)))
    rates = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all((rates > 2.8) & (rates < 3.3)), rates
