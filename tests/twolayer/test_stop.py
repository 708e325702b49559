"""gflow.twolayer.stop on its own: the status decoding table and the stop refinement (float64), the loss
checked with the independent numpy loss of tests/reference.py."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference import np_loss, np_velocity

from gflow.runs.status import NAMES
from gflow.twolayer import model
from gflow.twolayer.integrate import MAX_STEPS, REACHED_T1, STOPPED
from gflow.twolayer.stop import decode_status, refine_stop

EVENT = STOPPED
T, F = True, False


@pytest.mark.parametrize(
    "result, hit, refined, at_init, finite, expected",
    [
        (EVENT, T, T, F, T, "reached_target"),
        (EVENT, T, F, F, T, "reached_target_unrefined"),
        (EVENT, F, F, F, T, "solver_error"),  # the loop says the stop held but the loss is above η
        (REACHED_T1, F, F, F, T, "t_max"),
        (MAX_STEPS, F, F, F, T, "max_steps"),
        (-1, F, F, F, T, "solver_error"),  # any other ending (diffrax's own failures on its path)
        (EVENT, T, T, F, F, "nonfinite"),  # a non-finite state overrides everything but target_at_init
        (MAX_STEPS, F, F, T, F, "target_at_init"),
    ],
)
def test_decode_status(result, hit, refined, at_init, finite, expected):
    code = decode_status(result, jnp.asarray(hit), jnp.asarray(refined), jnp.asarray(at_init), jnp.asarray(finite))
    assert NAMES[int(code)] == expected


def _step():
    """One explicit Euler step of the flow on a small net: (θ_start, θ_end, h, x, y), float64."""
    x = jax.random.normal(jax.random.PRNGKey(0), (16, 5), jnp.float64)
    y = jnp.sign(x[:, 0] + 0.3)
    p0 = model.init_params(key=model.init_key(1), d=5, width=8, init_scale=1.0, dtype=jnp.float64)
    h = 0.5
    v = np_velocity(np.asarray(p0.W), np.asarray(p0.a), np.asarray(x), np.asarray(y))
    p1 = model.Params(W=p0.W + h * v[0], a=p0.a + h * v[1])
    return p0, p1, h, x, y


def test_refined_stop_meets_the_target_inside_the_step():
    p0, p1, h, x, y = _step()
    l0, l1 = (np_loss(np.asarray(p.W), np.asarray(p.a), np.asarray(x), np.asarray(y)) for p in (p0, p1))
    assert l1 < l0
    for frac in (0.1, 0.5, 0.9):
        target = l0 + frac * (l1 - l0)
        tau, p, converged, iters = refine_stop(p0, p1, jnp.asarray(h), jnp.asarray(target), x, y, 1.0, 1e-10)
        assert bool(converged) and 0 < float(tau) < h and int(iters) <= 16
        np.testing.assert_allclose(
            np_loss(np.asarray(p.W), np.asarray(p.a), np.asarray(x), np.asarray(y)), target, rtol=1e-9
        )


def test_a_target_outside_the_step_is_not_converged():
    p0, p1, h, x, y = _step()
    l1 = np_loss(np.asarray(p1.W), np.asarray(p1.a), np.asarray(x), np.asarray(y))
    _, _, converged, _ = refine_stop(p0, p1, jnp.asarray(h), jnp.asarray(0.5 * l1), x, y, 1.0, 1e-10)
    assert not bool(converged)  # the loss never reaches η within the step: no bracket
