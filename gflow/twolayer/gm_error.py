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


def _mass(lo, hi):
    """P(lo ≤ Z ≤ hi) for Z ~ N(0, 1) from endpoints given as (z, Φ(z), Φ(−z)); accurate in both tails
    (differences of upper-tail values right of 0, of lower-tail values left of it); 0 when hi ≤ lo."""
    m = jnp.where(lo[0] > 0, lo[2] - hi[2], hi[1] - lo[1])
    return jnp.where(hi[0] > lo[0], jnp.maximum(m, 0.0), 0.0)


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
    bc = lambda z: jnp.broadcast_to(z, tau.shape)  # noqa: E731
    # one sort carries every neuron's jumps (slope, offset, active count) along with its breakpoint
    tau_s, d_a, d_b, d_n = jax.lax.sort(
        (tau, bc(sign * a * b), bc(sign * a * e), bc(sign)), dimension=tau.ndim - 1, num_keys=1
    )
    d_n = d_n.astype(jnp.int32)
    zeros = jnp.zeros_like(a0)[:, None]
    # piece k = 0 … h lies between breakpoints k − 1 and k (±∞ at the ends)
    slope = a0[:, None] + jnp.concatenate([zeros, jnp.cumsum(d_a, axis=-1)], axis=-1)
    icept = b0[:, None] + jnp.concatenate([zeros, jnp.cumsum(d_b, axis=-1)], axis=-1)
    n_on = n0[:, None] + jnp.concatenate([jnp.zeros_like(n0)[:, None], jnp.cumsum(d_n, axis=-1)], axis=-1)
    one, nil = jnp.ones_like(zeros), jnp.zeros_like(zeros)
    # all neurons off, or exact cancellation: f ≡ 0 on the piece (integer count, immune to rounding)
    tie = (n_on == 0) | ((slope == 0) & (icept == 0))
    flat = slope == 0
    root = -icept / jnp.where(flat, 1.0, slope)
    err, tie_mass = 0.0, 0.0
    for y in (1.0, -1.0):
        # each endpoint as (z, Φ(z), Φ(−z)) in the units of t ~ N(κy, σ²); Φ is evaluated once per breakpoint
        zb = (tau_s - kappa * y) / sigma
        cb, cbn = ndtr(zb), ndtr(-zb)
        lo = (
            jnp.concatenate([-jnp.inf * one, zb], -1),
            jnp.concatenate([nil, cb], -1),
            jnp.concatenate([one, cbn], -1),
        )
        hi = (jnp.concatenate([zb, jnp.inf * one], -1), jnp.concatenate([cb, one], -1), jnp.concatenate([cbn, nil], -1))
        zr = (root - kappa * y) / sigma
        rt = (zr, ndtr(zr), ndtr(-zr))
        pick = lambda c, p, q: tuple(jnp.where(c, u, v) for u, v in zip(p, q))  # noqa: E731
        ys = y * slope
        # y·f < 0 on [lo, min(hi, root)] if y·A > 0, on [max(lo, root), hi] if y·A < 0, everywhere if A = 0 and y·B < 0
        # (an interval with e_hi ≤ e_lo has mass 0, so a root outside the piece needs no special case)
        e_lo = pick(~flat & (ys < 0) & (zr > lo[0]), rt, lo)
        e_hi = pick(flat, pick(y * icept < 0, hi, lo), pick((ys > 0) & (zr < hi[0]), rt, hi))
        piece_err = jnp.where(tie, 0.0, _mass(e_lo, e_hi))
        err = err + 0.5 * jnp.sum(piece_err, axis=-1)
        tie_mass = tie_mass + 0.5 * jnp.sum(jnp.where(tie, _mass(lo, hi), 0.0), axis=-1)
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
        f = lambda *c, k=k: integrand(*c)[k]
        out.append(f() if d == 1 else integrate.quad(f, -np.inf, np.inf, epsrel=epsrel, epsabs=epsabs, limit=400)[0])
    return out[0], out[1]
