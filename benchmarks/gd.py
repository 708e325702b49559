"""Full-batch gradient descent, the way gradient flow is simulated today: the peers of gflow.

Every loop starts from gflow's own initialization (`gflow.twolayer.model.init_params`, the same W̄, signs and
data), takes Euler steps θ ← θ − lr·∇L(θ) and stops at the first iterate k with L(θ_k) ≤ η.
Its estimate of the gradient-flow time is

    t_η = lr·(k − 1 + s),  s = (log L_{k−1} − log η) / (log L_{k−1} − log L_k) ∈ (0, 1],

i.e. linear interpolation of log L over the last step (`interpolate=False` gives the plain k·lr).
Its state at t_η is interpolated the same way, θ(t_η) = θ_{k−1} + s·(θ_k − θ_{k−1}) (`GDResult.W`, `.a`, with
`jax_gd_sweep(..., state=True)`; θ_0 when k = 0). The test error is that of θ_k. Gradients are written out by
hand (4·n·h·d FLOP per iteration, the same formulas as `gflow.twolayer.model.loss_and_grad`): no autodiff overhead for any contender.

- `numpy_gd`: one configuration at a time, float64 (the common practice).
- `jax_gd_sweep`: Euler steps in a jitted `lax.while_loop`, vmapped over all runs of a sweep: what a
  JAX-savvy user writes instead of gflow. Under vmap every lane steps until the slowest is done.
A PyTorch loop (the issue's optional contender) is not included: torch is not a gflow dependency.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gflow.twolayer import model

LR0 = 4.0  # top of the learning-rate ladder lr₀·2^−k of the tuned GD contenders (above every stable lr measured)
MAX_HALVINGS = 24


def rel_err(t, t_ref):
    """|t/t_ref − 1|, inf for a missing or non-finite t."""
    return abs(t / t_ref - 1) if t is not None and math.isfinite(t) else math.inf


class GDResult(NamedTuple):
    t_stop: np.ndarray  # interpolated gradient-flow time of the stop
    t_stop_plain: np.ndarray  # k·lr
    iters: np.ndarray  # k: gradient steps taken (k + 1 loss evaluations)
    test_err: np.ndarray  # test error of θ_k
    reached: np.ndarray  # bool: L(θ_k) ≤ η
    W: np.ndarray | None = None  # θ(t_η) = θ_{k−1} + s·(θ_k − θ_{k−1}), first layer (float64)
    a: np.ndarray | None = None  # … second layer


def init(alpha: float, seed: int, d: int, width: int, dtype=np.float64):
    """gflow's initialization for (α, seed), as numpy arrays (W: width × d, a: width)."""
    jdt = jnp.float32 if dtype == np.float32 else jnp.float64
    p = model.init_params(key=model.init_key(seed), d=d, width=width, init_scale=jnp.asarray(alpha, jdt), dtype=jdt)
    return np.asarray(p.W, dtype), np.asarray(p.a, dtype)


def stop_fraction(loss_prev, loss_k, eta):
    """s ∈ [0, 1]: where log L, linear over the last step, crosses log η (1 if L did not decrease)."""
    with np.errstate(divide="ignore", invalid="ignore"):  # a loss that underflowed to 0: log −inf, s = 0
        lp, lk, le = np.log(loss_prev), np.log(loss_k), np.log(eta)
        return np.clip(np.where(lp > lk, (lp - le) / np.where(lp > lk, lp - lk, 1.0), 1.0), 0.0, 1.0)


def interpolated_time(lr, k, loss_prev, loss_k, eta):
    """lr·(k − 1 + s) with s from linear interpolation of log L over the last step; k·lr if k = 0."""
    return np.where(k > 0, lr * (k - 1 + stop_fraction(loss_prev, loss_k, eta)), 0.0)


def interpolated_state(k, s, prev, last):
    """θ_{k−1} + s·(θ_k − θ_{k−1}) (θ_k itself where k = 0); `s` and `k` broadcast over leading axes."""
    prev, last = np.asarray(prev, np.float64), np.asarray(last, np.float64)
    s = np.where(np.asarray(k) > 0, s, 1.0).reshape(np.shape(k) + (1,) * (last.ndim - np.ndim(k)))
    return prev + s * (last - prev)


# ---------------------------------------------------------------------------------------------- numpy


def _softplus(z):
    return np.logaddexp(0.0, z)


def _sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def loss_and_grad_np(W, a, x, y):
    """L(θ), ∇_W L and ∇_a L in numpy: the formulas of `gflow.twolayer.model.loss_and_grad` (4·n·h·d FLOP)."""
    pre = x @ W.T
    act = np.maximum(pre, 0.0)
    m = y * (act @ a)
    g = -(y / x.shape[0]) * _sigmoid(-m)
    return float(np.mean(_softplus(-m))), ((g[:, None] * a[None, :]) * (pre > 0)).T @ x, act.T @ g


def numpy_gd(W, a, x, y, x_test, y_test, *, lr, eta, max_iters=10**8):
    """One run of full-batch GD in numpy (arrays are copied). Returns (t_η, k·lr, k, test error, reached)."""
    W, a = W.copy(), a.copy()
    loss_prev = loss = np.inf
    k = 0
    step_W, step_a = np.zeros_like(W), np.zeros_like(a)  # the last step θ_k − θ_{k−1}
    while True:
        loss, grad_W, grad_a = loss_and_grad_np(W, a, x, y)
        if loss <= eta or k >= max_iters or not math.isfinite(loss):
            break
        step_W, step_a = -lr * grad_W, -lr * grad_a
        W += step_W
        a += step_a
        loss_prev = loss
        k += 1
    test_err = float(np.mean(y_test * (np.maximum(x_test @ W.T, 0.0) @ a) <= 0))
    t = float(interpolated_time(lr, k, loss_prev, loss, eta))
    s = stop_fraction(loss_prev, loss, eta)
    return GDResult(
        t,
        k * lr,
        k,
        test_err,
        loss <= eta,
        interpolated_state(k, s, W - step_W, W),
        interpolated_state(k, s, a - step_a, a),
    )


def numpy_gd_iters(W, a, x, y, *, lr, iters):
    """`iters` GD steps with no stopping test but the same per-step work (loss included): for timing."""
    W, a = W.copy(), a.copy()
    for _ in range(iters):
        _, grad_W, grad_a = loss_and_grad_np(W, a, x, y)
        W -= lr * grad_W
        a -= lr * grad_a
    return W, a


# ------------------------------------------------------------------------------------------------ JAX


class _State(NamedTuple):
    k: jax.Array
    params: model.Params
    loss: jax.Array
    loss_prev: jax.Array
    grad: model.Params
    params_prev: model.Params  # θ_{k−1}, for the state at the interpolated t_η


def _gd_lane(alpha, key, lr, eta, x, y, x_test, y_test, *, width, max_iters, keep_state):
    dtype = x.dtype
    p0 = model.init_params(key=key, d=x.shape[1], width=width, init_scale=alpha, dtype=dtype)
    loss0, g0 = model.loss_and_grad(p0, x, y)

    def cond(s):
        return (s.loss > eta) & (s.k < max_iters) & jnp.isfinite(s.loss)

    def body(s):
        p = jax.tree.map(lambda v, g: v - lr * g, s.params, s.grad)
        loss, g = model.loss_and_grad(p, x, y)  # one fused forward/backward per iteration
        return _State(s.k + 1, p, loss, s.loss, g, s.params if keep_state else None)

    inf = jnp.asarray(jnp.inf, dtype)
    s = jax.lax.while_loop(cond, body, _State(jnp.int32(0), p0, loss0, inf, g0, p0 if keep_state else None))
    test_err = jnp.mean(y_test * model.apply(s.params, x_test) <= 0)
    return s.k, s.loss, s.loss_prev, test_err, s.params_prev, s.params if keep_state else None


@partial(jax.jit, static_argnames=("width", "keep_state"))
def _gd_batch(alphas, keys, lr, eta, x, y, x_test, y_test, max_iters, *, width, keep_state=False):
    lane = partial(_gd_lane, width=width, max_iters=max_iters, keep_state=keep_state)
    return jax.vmap(lane, in_axes=(0, 0, 0, None, None, None, None, None))(alphas, keys, lr, eta, x, y, x_test, y_test)


def jax_gd_sweep(alphas, seeds, data, *, width, lr, eta, max_iters=10**7, state=False):
    """All (α, seed) runs in one vmapped jitted while loop; lr, η and max_iters are traced (no recompiles).

    `alphas` and `seeds` are flat sequences of equal length (one entry per run); `lr` is one learning
    rate or one per run. Returns a GDResult of numpy arrays, one entry per run; with `state`, also each
    run's θ at its interpolated t_η (W: runs × h × d, a: runs × h; the loop then carries θ_{k−1} too).
    """
    dtype = data.x.dtype
    alphas = jnp.asarray(alphas, dtype)
    lr = np.broadcast_to(np.asarray(lr, np.float64), alphas.shape)
    keys = jax.vmap(model.init_key)(jnp.asarray(seeds, jnp.uint32))
    k, loss, loss_prev, test_err, prev, last = jax.block_until_ready(
        _gd_batch(
            alphas,
            keys,
            jnp.asarray(lr, dtype),
            jnp.asarray(eta, dtype),
            data.x,
            data.y,
            data.x_test,
            data.y_test,
            jnp.int32(max_iters),
            width=width,
            keep_state=state,
        )
    )
    k, loss, loss_prev = np.asarray(k), np.asarray(loss, np.float64), np.asarray(loss_prev, np.float64)
    r = GDResult(
        interpolated_time(lr, k, loss_prev, loss, eta), k * lr, k, np.asarray(test_err, np.float64), loss <= eta
    )
    if not state:
        return r
    s = stop_fraction(loss_prev, loss, eta)
    return r._replace(W=interpolated_state(k, s, prev.W, last.W), a=interpolated_state(k, s, prev.a, last.a))


# ---------------------------------------------------------------------------------------------- torch


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def dataset_numpy(data, dtype=np.float64):
    return tuple(np.asarray(v, dtype) for v in (data.x, data.y, data.x_test, data.y_test))


__all__ = [
    "LR0",
    "MAX_HALVINGS",
    "rel_err",
    "GDResult",
    "init",
    "loss_and_grad_np",
    "numpy_gd",
    "numpy_gd_iters",
    "jax_gd_sweep",
    "torch_available",
    "interpolated_time",
    "stop_fraction",
    "interpolated_state",
    "dataset_numpy",
]
