"""`scipy.integrate.solve_ivp` on the gradient-flow ODE, one configuration at a time (float64, numpy).

The state is θ = (W.ravel(), a); the right-hand side is −∇L(θ) written out by hand (4·n·h·d FLOP,
the formulas of `gflow.twolayer.model.loss_and_grad`); a terminal event L(θ) = η (direction −1) stops the
solve and scipy locates it on its dense output. atol = rtol × rms(θ(0)): tolerances relative to the
init scale, as gflow's default (scipy's default atol = 1e-6 is far above the weights at α = 1e-5).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy.integrate import solve_ivp

from benchmarks.gd import _softplus, loss_and_grad_np


class IVPResult(NamedTuple):
    t_stop: float
    test_err: float
    reached: bool
    nfev: int
    steps: int  # accepted steps (len(sol.t) − 1)


def make_rhs(x, y, width):
    d = x.shape[1]

    def unpack(theta):
        return theta[: width * d].reshape(width, d), theta[width * d :]

    def rhs(t, theta):
        _, grad_W, grad_a = loss_and_grad_np(*unpack(theta), x, y)
        return -np.concatenate([grad_W.ravel(), grad_a])

    def loss(theta):
        W, a = unpack(theta)
        return float(np.mean(_softplus(-(y * (np.maximum(x @ W.T, 0.0) @ a)))))

    return rhs, loss, unpack


def solve(W, a, x, y, x_test, y_test, *, eta, rtol, method="RK45", atol=None, t_max=1e6, max_nfev=None) -> IVPResult:
    """One run. `atol` defaults to rtol·rms(θ(0)). Gives up (reached=False) past `max_nfev` evaluations."""
    width = W.shape[0]
    rhs, loss, unpack = make_rhs(x, y, width)
    theta0 = np.concatenate([W.ravel(), a])
    if atol is None:
        atol = rtol * float(np.sqrt(np.mean(theta0**2)))
    calls = [0]

    def counted(t, th):
        calls[0] += 1
        if max_nfev is not None and calls[0] > max_nfev:
            raise _TooMany()
        return rhs(t, th)

    def event(t, th):
        return math.log(loss(th)) - math.log(eta)

    event.terminal, event.direction = True, -1
    try:
        sol = solve_ivp(counted, (0.0, t_max), theta0, method=method, rtol=rtol, atol=atol, events=event)
    except _TooMany:
        return IVPResult(math.nan, math.nan, False, calls[0], -1)
    if len(sol.t_events[0]) == 0:
        return IVPResult(math.nan, math.nan, False, sol.nfev, len(sol.t) - 1)
    Wf, af = unpack(sol.y_events[0][0])
    test_err = float(np.mean(y_test * (np.maximum(x_test @ Wf.T, 0.0) @ af) <= 0))
    return IVPResult(float(sol.t_events[0][0]), test_err, True, sol.nfev, len(sol.t) - 1)


class _TooMany(Exception):
    pass
