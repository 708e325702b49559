"""The pieces gflow's written-out Runge–Kutta steps share (`solvers.FusedBosh3`, `rkc.RKC2`): a fused
leafwise linear combination of stages and the cubic Hermite dense output."""

from __future__ import annotations

import diffrax
import jax
import jax.numpy as jnp


def combine(dt, base, coefs, fs):
    """base + dt·Σ_i coefs[i]·fs[i] leafwise (base None: without it), as one fused expression."""

    def leaf(*xs):
        b, ks = (xs[0], xs[1:]) if base is not None else (None, xs)
        acc = sum(c * k for c, k in zip(coefs, ks))
        return dt * acc if b is None else b + dt * acc

    return jax.tree.map(leaf, *(([base] if base is not None else []) + list(fs)))


def hermite(y0, y1, k0, k1, s):
    """Cubic Hermite interpolant at s ∈ [0, 1] of a step from y0 to y1 with increments k0, k1 (step
    length × the slopes at the ends), leafwise."""
    h00, h10 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s
    h01, h11 = -2 * s**3 + 3 * s**2, s**3 - s**2
    return jax.tree.map(lambda a, b, ka, kb: h00 * a + h10 * ka + h01 * b + h11 * kb, y0, y1, k0, k1)


class HermiteInterpolation(diffrax.AbstractLocalInterpolation):
    """Cubic Hermite interpolant on [t0, t1] from the end values y0, y1 and the increments
    k0 = (t1 − t0)·f(y0), k1 = (t1 − t0)·f(y1): diffrax's ThirdOrderHermitePolynomialInterpolation,
    without precomputing its stacked coefficients."""

    t0: jax.Array  # type: ignore[misc]  # a field, as in diffrax's own interpolations
    t1: jax.Array  # type: ignore[misc]
    y0: object
    y1: object
    k0: object
    k1: object

    def evaluate(self, t0, t1=None, left: bool = True):
        del left
        if t1 is not None:
            return jax.tree.map(jnp.subtract, self.evaluate(t1), self.evaluate(t0))
        width = self.t1 - self.t0
        return hermite(self.y0, self.y1, self.k0, self.k1, (t0 - self.t0) / jnp.where(width == 0, 1, width))
