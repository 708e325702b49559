"""The lean loop (`flow.integrator = 'lean'`, the default) against the reference path, `diffrax.diffeqsolve`
(`'diffrax'`): the same steps, so the same runs, bit for bit, at every α and every way a run can end."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gflow
from gflow.twolayer import integrate
from gflow.twolayer.config import Config, DataConfig, FlowConfig, ModelConfig

SMALL = Config(
    data=DataConfig(n=20, d=30, n_test=300),
    model=ModelConfig(width=16),
    flow=FlowConfig(dtype="float64", n_save=16, n_test_grid=64, sa_draws=64),
)


def _both(config, alpha, **flow):
    cfg = dataclasses.replace(config, flow=dataclasses.replace(config.flow, **flow))
    lean = gflow.simulate(init_scale=alpha, config=cfg)
    ref = gflow.simulate(
        init_scale=alpha, config=dataclasses.replace(cfg, flow=dataclasses.replace(cfg.flow, integrator="diffrax"))
    )
    return lean, ref


def _assert_same_run(lean, ref):
    assert int(ref.n_steps) == 0 or int(ref.n_steps) > 5
    for field in ("status", "t_stop", "n_steps", "n_accepted", "n_rejected", "newton_iters"):
        np.testing.assert_array_equal(np.asarray(getattr(lean, field)), np.asarray(getattr(ref, field)), err_msg=field)
    for k in ref.traj:
        np.testing.assert_array_equal(np.asarray(lean.traj[k]), np.asarray(ref.traj[k]), err_msg=f"traj {k}")
    for k in ref.final:
        np.testing.assert_array_equal(np.asarray(lean.final[k]), np.asarray(ref.final[k]), err_msg=f"final {k}")
    jax.tree.map(np.testing.assert_array_equal, lean.params, ref.params)


@pytest.mark.slow  # over ~4.5 s (compiles its own programs); runs in .ci/run's slow pass
@pytest.mark.parametrize(
    "alpha, eta, status",
    [
        (1e-3, 0.01, "reached_target"),  # rich
        (10.0, 0.01, "reached_target"),  # lazy: rejects steps
        (0.1, 0.9, "target_at_init"),  # η above L(θ(0)): no step
    ],
)
def test_lean_loop_takes_diffrax_steps(alpha, eta, status):
    """Every count, time, saved value and θ at the stop equal (α and η are traced: one program per path)."""
    lean, ref = _both(SMALL, alpha, target_loss=eta)
    assert gflow.STATUS_NAMES[int(ref.status)] == status
    _assert_same_run(lean, ref)


# float32, Tsit5 (not FSAL-exposed), the 'loss' error norm without floors, a short horizon and few steps
ENDINGS = dataclasses.replace(
    SMALL,
    flow=dataclasses.replace(
        SMALL.flow,
        dtype="float32",
        solver="tsit5",
        error_norm="loss",
        tolerance_floor=False,
        t_max=0.5,
        t_save_min=0.01,
        max_steps=12,
    ),
)


@pytest.mark.slow  # over ~4.5 s (compiles its own programs); runs in .ci/run's slow pass
@pytest.mark.parametrize("alpha, status", [(1e-3, "t_max"), (10.0, "max_steps"), (1e30, "nonfinite")])
def test_lean_loop_matches_diffrax_in_every_ending(alpha, status):
    lean, ref = _both(ENDINGS, alpha)
    assert gflow.STATUS_NAMES[int(ref.status)] == status
    _assert_same_run(lean, ref)


def test_integrate_on_a_linear_ode_against_its_closed_form():
    """dy/dt = −y from 1 with a stop at y ≤ 0.1: the stop lands on the first step end past ln 10, and the
    save grid holds e^{−t} to the solver's accuracy (Bosh3 with its dense output)."""
    import diffrax

    from gflow.twolayer.solvers import FusedBosh3

    ts = jnp.linspace(0.0, 2.0, 9)
    sol = integrate.integrate(
        lambda t, y, _: -y,
        FusedBosh3(),
        diffrax.PIDController(rtol=1e-8, atol=1e-10),
        jnp.float64(1.0),
        t0=0.0,
        t1=10.0,
        max_steps=10_000,
        stop=lambda y: y <= 0.1,
        ts=ts,
        save_fn=lambda t, y, _: y,
    )
    assert int(sol.result) == integrate.STOPPED
    t_end, t_start = float(sol.t_end), float(sol.t_start)
    assert t_start < np.log(10) <= t_end
    np.testing.assert_allclose(float(sol.y_end), np.exp(-t_end), rtol=1e-7)
    reached = np.asarray(ts) <= t_end
    np.testing.assert_allclose(np.asarray(sol.saved)[reached], np.exp(-np.asarray(ts)[reached]), rtol=1e-7)
    assert np.all(np.isnan(np.asarray(sol.saved)[~reached]))
    assert int(sol.n_steps) == int(sol.n_accepted) + int(sol.n_rejected)
