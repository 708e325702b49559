"""Semi-analytic test error of a two-layer ReLU net on the Gaussian mixture x = κ·y·s + σ·z.

Write x = t·s + σ·v with v ⟂ s (v ~ N(0, I − ssᵀ), independent of y) and t = ⟨x, s⟩ ~ N(κy, σ²). For a
fixed v the network output f(t) = c·Σ_j a_j relu(b_j t + e_j), with b_j = ⟨w_j, s⟩ and e_j = σ⟨w_j, v⟩,
is piecewise linear in t with at most h breakpoints τ_j = −e_j/b_j. On each piece f = A·t + B, so the
set {t : y·f(t) < 0} is an interval per piece and its probability under N(κy, σ²) is a difference of
Gaussian CDFs: the error given v is exact in t (and in y, which is summed over both labels). Only v is
sampled: `conditional_error` takes the draws, `semi_analytic_error` averages over them. The draws are
the orthogonal parts v_i = (x_i − ⟨x_i, s⟩s)/σ of the held-out test sample, so every net evaluated
on one Dataset sees the same draws and differences between nets (between α) are paired.

Ties. Where every neuron is off, f ≡ 0 on a whole piece (a wedge of inputs, typical after small-α
training). Its probability is returned separately as the tie mass; the error counts it with the
weight of the tie convention: 'error' (1, the default, as the Monte-Carlo error always did),
'half' (1/2) or 'correct' (0). A piece where f ≡ 0 with active neurons (exact cancellation) is a tie
too. Isolated zeros of f have probability 0.

Exactness. `exact_error` integrates the conditional error over v by adaptive quadrature (scipy) for
d ≤ 2, where v has at most one coordinate: float64, to the quadrature tolerance, in about a second.
(d = 3 by nested quadrature took minutes per net and is not offered.)

Everything but `exact_error` is pure jax.numpy (jit- and vmap-safe), in the dtype of its inputs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr

TIE_WEIGHTS = {"error": 1.0, "half": 0.5, "correct": 0.0}


def tie_weight(ties: str) -> float:
    """The weight of f = 0 in the test error under a tie convention ('error', 'half', 'correct')."""
    if ties not in TIE_WEIGHTS:
        raise ValueError(f"ties: must be one of {', '.join(TIE_WEIGHTS)}, got {ties!r}")
    return TIE_WEIGHTS[ties]


def _gauss_mass(lo, hi):
    """P(lo ≤ Z ≤ hi) for Z ~ N(0, 1), accurate in both tails (0 when hi ≤ lo)."""
    hi = jnp.maximum(hi, lo)
    return jnp.where(lo > 0, ndtr(-lo) - ndtr(-hi), ndtr(hi) - ndtr(lo))


def orthogonal_draws(x, s, sigma):
    """v_i = (x_i − ⟨x_i, s⟩s)/σ: the coordinates of the sample x orthogonal to s, in units of σ."""
    return (x - (x @ s)[:, None] * s[None, :]) / sigma


def conditional_error(W, a, s, kappa, sigma, v):
    """For each draw v_i (rows of v, ⟂ s): (P(y·f < 0 | v_i), P(f = 0 | v_i)), both averaged over y = ±1.

    The net is f(x) = Σ_j a_j relu(⟨w_j, x⟩) (a positive output multiplier does not change signs).
    Returns two arrays of shape (m,).
    """
    b = W @ s  # (h,) slopes of the pre-activations in t
    e = sigma * (v @ W.T)  # (m, h) their offsets
    nz = b != 0
    tau = jnp.where(nz, -e / jnp.where(nz, b, 1.0), jnp.inf)  # breakpoints; b = 0: none
    on_left = (b < 0) | (~nz & (e > 0))  # active as t → −∞ (b = 0 and e > 0: always active)
    sign = jnp.where(b > 0, 1.0, jnp.where(b < 0, -1.0, 0.0)).astype(e.dtype)  # switched on (+1) / off (−1) at τ
    a0 = jnp.sum(jnp.where(on_left & nz, a * b, 0.0), axis=-1)
    b0 = jnp.sum(jnp.where(on_left, a * e, 0.0), axis=-1)
    n0 = jnp.sum(on_left, axis=-1)
    order = jnp.argsort(tau, axis=-1)
    tau_s = jnp.take_along_axis(tau, order, axis=-1)
    take = lambda z: jnp.take_along_axis(jnp.broadcast_to(z, tau.shape), order, axis=-1)  # noqa: E731
    d_a, d_b, d_n = take(sign * a * b), take(sign * a * e), take(sign.astype(jnp.int32))
    zeros = jnp.zeros_like(a0)[:, None]
    # piece k = 0 … h lies between breakpoints k − 1 and k (±∞ at the ends)
    slope = a0[:, None] + jnp.concatenate([zeros, jnp.cumsum(d_a, axis=-1)], axis=-1)
    icept = b0[:, None] + jnp.concatenate([zeros, jnp.cumsum(d_b, axis=-1)], axis=-1)
    n_on = n0[:, None] + jnp.concatenate([jnp.zeros_like(n0)[:, None], jnp.cumsum(d_n, axis=-1)], axis=-1)
    inf = jnp.full_like(zeros, jnp.inf)
    lo = jnp.concatenate([-inf, tau_s], axis=-1)
    hi = jnp.concatenate([tau_s, inf], axis=-1)
    # all neurons off, or exact cancellation: f ≡ 0 on the piece (integer count, immune to rounding)
    tie = (n_on == 0) | ((slope == 0) & (icept == 0))
    flat = slope == 0
    root = -icept / jnp.where(flat, 1.0, slope)
    err, tie_mass = 0.0, 0.0
    for y in (1.0, -1.0):
        to_z = lambda t: (t - kappa * y) / sigma  # noqa: E731
        ys = y * slope
        # y·f < 0 on [lo, min(hi, root)] if y·A > 0, on [max(lo, root), hi] if y·A < 0, everywhere if A = 0 and y·B < 0
        e_lo = jnp.where(flat, lo, jnp.where(ys > 0, lo, jnp.maximum(lo, root)))
        e_hi = jnp.where(flat, jnp.where(y * icept < 0, hi, lo), jnp.where(ys > 0, jnp.minimum(hi, root), hi))
        piece_err = jnp.where(tie, 0.0, _gauss_mass(to_z(e_lo), to_z(e_hi)))
        err = err + 0.5 * jnp.sum(piece_err, axis=-1)
        tie_mass = tie_mass + 0.5 * jnp.sum(jnp.where(tie, _gauss_mass(to_z(lo), to_z(hi)), 0.0), axis=-1)
    return err, tie_mass


def semi_analytic_error(W, a, s, kappa, sigma, x_test, tie_weight=1.0):
    """(test error, tie mass) of the net f = Σ a_j relu(⟨w_j, x⟩) on the mixture (κ, σ, s), exact along s and
    averaged over the orthogonal parts of the points x_test (their labels are not used). The error counts
    the tie mass with `tie_weight` (1: f = 0 is an error)."""
    err, tie = conditional_error(W, a, s, kappa, sigma, orthogonal_draws(x_test, s, sigma))
    return jnp.mean(err + tie_weight * tie), jnp.mean(tie)


def exact_error(W, a, s, kappa, sigma, tie_weight=1.0, *, epsrel=1e-10, epsabs=1e-14):
    """(test error, tie mass) integrated over v by adaptive quadrature (scipy.integrate.quad, float64), for d ≤ 2.

    Exact to the quadrature tolerance (`epsrel`, `epsabs`); a few hundred evaluations of
    `conditional_error`. Needs JAX's 64-bit mode (gflow.enable_float64()).
    """
    import numpy as np
    from scipy import integrate

    if not jax.config.jax_enable_x64:
        raise ValueError("exact_error: needs float64; call gflow.enable_float64() first")
    W, a, s = (np.asarray(v, np.float64) for v in (W, a, s))
    d = W.shape[1]
    if d > 2:
        raise ValueError(f"exact_error: d ≤ 2 only (use semi_analytic_error), got d = {d}")
    s = s / np.linalg.norm(s)
    basis = np.linalg.svd(np.eye(d) - np.outer(s, s))[0][:, : d - 1].T  # orthonormal basis of s⊥, (d−1, d)
    fn = jax.jit(lambda v: conditional_error(W, a, s, float(kappa), float(sigma), v))

    def integrand(*coords):
        err, tie = fn(jnp.asarray(np.asarray(coords) @ basis)[None, :])
        dens = np.prod(np.exp(-0.5 * np.square(coords)) / np.sqrt(2 * np.pi))
        return float(err[0] + tie_weight * tie[0]) * dens, float(tie[0]) * dens

    out = []
    for k in range(2):
        f = lambda *c: integrand(*c)[k]  # noqa: E731
        out.append(f() if d == 1 else integrate.quad(f, -np.inf, np.inf, epsrel=epsrel, epsabs=epsabs, limit=400)[0])
    return out[0], out[1]
