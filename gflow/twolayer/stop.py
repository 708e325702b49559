"""How a two-layer run stops: the status vocabulary, the refinement of the stop inside the last step,
and the decoding of diffrax's result into a status.

The solve (`gflow.twolayer.flow`) ends at the end of the first accepted step whose loss is ≤ η (a
boolean diffrax `Event`); `refine_stop` then locates the crossing inside that step, and
`decode_status` turns how the solve ended and these checks into one status per run.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..runs import status as _status
from . import model
from .integrate import MAX_STEPS, REACHED_T1, STOPPED
from .rk_parts import hermite

STATUSES = _status.statuses("twolayer")  # the statuses this wing produces (codes: gflow.runs.status)
STATUS_NAMES = _status.NAMES  # every status name, indexed by its code (shared by both wings: gflow.runs.status)
STATUS_CODE = _status.CODE  # name -> code
OK_STATUSES = _status.OK  # the statuses of a run that reached η

_NEWTON_MAX_ITERS = 16


def refine_stop(p_start: model.Params, p_end: model.Params, h, target, x, y, c, stop_rtol):
    """Locate the stop inside the last accepted step [t_start, t_start + h].

    θ(τ) on the step is the cubic Hermite interpolant of its end states and velocities (third order,
    like Bosh3's own interpolation; two extra gradient evaluations). Safeguarded Newton on
    g(τ) = log L(θ(τ)) − log η over [0, h], where g(0) > 0 (the step started above η) and g(h) ≤ 0
    (the event fired at its end); each iteration costs one forward pass and its tangent. The log
    keeps g nearly linear even when the step overshoots η by orders of magnitude (lazy regime,
    L ~ exp(−margin)). A Newton step that leaves the bracket is replaced by bisection. Returns
    (τ, θ(τ), converged, iterations); converged means |L − η| ≤ stop_rtol·η.
    """
    log_target = jnp.log(target)
    # increments over the step: h × the velocities −∇L at its two ends
    k0 = jax.tree.map(lambda g: -h * g, model.loss_and_grad(p_start, x, y, c)[1])
    k1 = jax.tree.map(lambda g: -h * g, model.loss_and_grad(p_end, x, y, c)[1])

    def path(tau):
        return hermite(p_start, p_end, k0, k1, tau / h)

    def g(tau):
        return jnp.log(model.loss(path(tau), x, y, c)) - log_target

    tol = jnp.log1p(stop_rtol)  # |log L − log η| ≤ log(1 + r) implies |L − η| ≤ r·η

    def cond(state):
        tau, lo, hi, val, it = state
        return (jnp.abs(val) > tol) & (it < _NEWTON_MAX_ITERS) & jnp.isfinite(val)

    def body(state):
        tau, lo, hi, _, it = state
        val, slope = jax.jvp(g, (tau,), (jnp.ones_like(tau),))
        lo = jnp.where(val > 0, tau, lo)
        hi = jnp.where(val > 0, hi, tau)
        newton = tau - val / jnp.where(slope < 0, slope, -jnp.inf)
        inside = (newton > lo) & (newton < hi) & jnp.isfinite(newton)
        new_tau = jnp.where(inside, newton, 0.5 * (lo + hi))
        return new_tau, lo, hi, g(new_tau), it + 1

    g0, gh = g(jnp.zeros_like(h)), g(h)
    bracketed = (g0 > 0) & (gh <= 0)
    # start from the secant guess inside the bracket
    tau0 = jnp.where(bracketed, h * g0 / (g0 - jnp.where(bracketed, gh, g0 - 1.0)), h)
    init = (tau0, jnp.zeros_like(h), h, g(tau0), jnp.int32(0))
    tau, _, _, val, iters = jax.lax.while_loop(cond, body, init)
    converged = bracketed & (jnp.abs(val) <= tol)
    return tau, path(tau), converged, iters


def decode_status(result, event_hit, refined, at_init, finite):
    """Map how the solve ended (`gflow.twolayer.integrate`'s STOPPED, REACHED_T1, MAX_STEPS; anything else is a
    solver error) plus our own checks to a code into STATUS_NAMES."""
    code = jnp.int32(STATUS_CODE["solver_error"])
    code = jnp.where(result == MAX_STEPS, STATUS_CODE["max_steps"], code)
    code = jnp.where(result == REACHED_T1, STATUS_CODE["t_max"], code)
    hit = event_hit & (result == STOPPED)
    code = jnp.where(
        hit, jnp.where(refined, STATUS_CODE["reached_target"], STATUS_CODE["reached_target_unrefined"]), code
    )
    code = jnp.where(finite, code, STATUS_CODE["nonfinite"])
    return jnp.where(at_init, STATUS_CODE["target_at_init"], code).astype(jnp.int32)
