"""Two-layer ReLU network f(x) = c · Σ_j a_j relu(⟨w_j, x⟩): initialization, forward pass, loss, gradient.

Conventions
- Parameters are a `Params(W, a)` pytree with W of shape (width, d) and a of shape (width,).
- `multiplier` is the output multiplier c. The net is 2-homogeneous, so scale α from unit init equals
  c = α² from unit init with time rescaled by t/c (see `tests/twolayer/test_flow.py`).
- The loss is the mean logistic loss, mean_i ℓ(y_i f(x_i)) with ℓ(m) = softplus(−m), defined once in
  `per_example_loss` (the gradient and the flow velocity use its derivative).
- relu'(0) = 0, as in `jax.nn.relu`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..numerics import INIT_ROOT

SECOND_LAYER_INITS = ("balanced", "gaussian")


def init_key(seed) -> jax.Array:
    """Key of init seed i: fold_in(PRNGKey(INIT_ROOT), i). Seed i is the same whatever the number of seeds."""
    return jax.random.fold_in(jax.random.PRNGKey(INIT_ROOT), seed)


class Params(NamedTuple):
    """First-layer weights W (width × d) and second-layer weights a (width,)."""

    W: jax.Array
    a: jax.Array


def init_params(
    *, key: jax.Array, d: int, width: int, init_scale, second_layer: str = "balanced", dtype=jnp.float32
) -> Params:
    """W(0) = α·W̄ with rows of W̄ ~ N(0, I/d).

    `second_layer="balanced"`: a_j(0) = ±‖w_j(0)‖ with an independent random sign, so that the
    invariant a_j² − ‖w_j‖² starts at zero. `"gaussian"`: a_j(0) ~ α·N(0, 1/width).
    `init_scale` may be a traced scalar (it is swept without recompiling).
    """
    if second_layer not in SECOND_LAYER_INITS:
        raise ValueError(f"model.second_layer: unknown init {second_layer!r}; choose one of {SECOND_LAYER_INITS}")
    k_w, k_a = jax.random.split(key)
    # Draws in float32, then cast: float32 and float64 runs start from the same W̄.
    W = init_scale * jax.random.normal(k_w, (width, d), jnp.float32).astype(dtype) / jnp.sqrt(jnp.asarray(d, dtype))
    if second_layer == "balanced":
        sign = jnp.where(jax.random.bernoulli(k_a, jnp.float32(0.5), (width,)), 1.0, -1.0).astype(dtype)
        a = sign * jnp.linalg.norm(W, axis=1)
    else:
        a = (
            init_scale
            * jax.random.normal(k_a, (width,), jnp.float32).astype(dtype)
            / jnp.sqrt(jnp.asarray(width, dtype))
        )
    return Params(W=W, a=a)


def apply(params: Params, x: jax.Array, multiplier=1.0) -> jax.Array:
    """Network output c·f(x) for a batch x of shape (n, d); returns shape (n,)."""
    return multiplier * (jax.nn.relu(x @ params.W.T) @ params.a)


def per_example_loss(margins: jax.Array) -> jax.Array:
    """ℓ(m) = softplus(−m) = log(1 + e^{−m}) for margins m = y·c·f(x): THE loss, written once.

    Everything else derives from it: the mean loss (`logistic_loss`, `loss`), its derivative ℓ′ through
    `loss_slope` (the gradient, the flow velocity and the margin rate), the stop event and the stop
    refinement (`gflow.twolayer.stop`), and the observables. To study another margin loss, change this
    function: ℓ′ follows by forward-mode differentiation.
    """
    return jax.nn.softplus(-margins)


def loss_slope(margins: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(ℓ(m), ℓ′(m)) elementwise, in one forward-mode pass of `per_example_loss` (for the logistic loss
    ℓ′(m) = −sigmoid(−m); agreement with the closed form is tested)."""
    return jax.jvp(per_example_loss, (margins,), (jnp.ones_like(margins),))


def logistic_loss(margins: jax.Array) -> jax.Array:
    """The mean loss over margins m = y·f(x): mean ℓ(m); stable for large |m|."""
    return jnp.mean(per_example_loss(margins))


def loss(params: Params, x: jax.Array, y: jax.Array, multiplier=1.0) -> jax.Array:
    """Mean logistic training loss L(θ)."""
    return logistic_loss(y * apply(params, x, multiplier))


def _output_slope(margins, y, multiplier, n):
    """(mean loss, g) with g_i = dL/d(act·a)_i = c·y_i·ℓ′(m_i)/n: the loss derivative per example."""
    values, slopes = loss_slope(margins)
    return jnp.mean(values), (multiplier / n) * y * slopes


def loss_and_grad(params: Params, x: jax.Array, y: jax.Array, multiplier=1.0) -> tuple[jax.Array, Params]:
    """L(θ) and ∇L(θ), written out by hand: two (n×d)·(d×h)-sized matmuls, 4·n·h·d FLOP.

    Agrees with `jax.grad(loss)` (tested); the hand-written form avoids autodiff's bookkeeping in the
    innermost loop of every solve.
    """
    pre = x @ params.W.T  # (n, h)
    act = jax.nn.relu(pre)
    margins = y * (multiplier * (act @ params.a))
    value, g = _output_slope(margins, y, multiplier, x.shape[0])
    grad_a = act.T @ g
    grad_W = ((g[:, None] * params.a[None, :]) * (pre > 0)).T @ x
    return value, Params(W=grad_W, a=grad_a)


def effective_predictor(params: Params) -> jax.Array:
    """ŵ₊ = Σ_{a_j>0} a_j w_j, the linear predictor carried by the positive-output neurons."""
    return jnp.where(params.a > 0, params.a, 0.0) @ params.W


def balance_invariant(params: Params) -> jax.Array:
    """a_j² − ‖w_j‖² per neuron; exactly conserved by gradient flow on this net."""
    return params.a**2 - jnp.sum(params.W**2, axis=1)


def param_norm(params: Params) -> jax.Array:
    """‖θ‖ = sqrt(‖W‖_F² + ‖a‖²)."""
    return jnp.sqrt(jnp.sum(params.W**2) + jnp.sum(params.a**2))


def flow_velocity(
    params: Params, x: jax.Array, y: jax.Array, multiplier=1.0, gram: jax.Array | None = None
) -> tuple[Params, jax.Array]:
    """v = −∇L(θ) and the rate of the training margins, d(y_i c f(x_i))/dt = y_i c ∂f(x_i)/∂θ · v.

    The gradient costs 4·n·h·d FLOP. The margin rate needs x·v_Wᵀ: 2·n·h·d FLOP directly, or
    2·n²·h from the Gram matrix `gram` = x·xᵀ (pass it when n < d), since
    x·v_Wᵀ = −(gram · (g ∘ 1[pre > 0])) ∘ a with g the loss derivative per example.
    """
    pre = x @ params.W.T
    mask = pre > 0
    act = jnp.where(mask, pre, 0.0)
    margins = y * (multiplier * (act @ params.a))
    g = _output_slope(margins, y, multiplier, x.shape[0])[1]
    gm = g[:, None] * mask
    v_a = -(act.T @ g)
    v_W = -((gm * params.a[None, :]).T @ x)
    xv = -(gram @ gm) * params.a[None, :] if gram is not None else x @ v_W.T
    df = act @ v_a + (xv * mask) @ params.a
    return Params(W=v_W, a=v_a), y * (multiplier * df)
