"""The ODE solvers gflow can use, by name, and gflow's own Bogacki–Shampine 3(2) step.

`FusedBosh3` is the default ("bosh3"). It takes the same step as `diffrax.Bosh3` (same tableau, FSAL,
same error estimate, cubic Hermite dense output), written out stage by stage instead of through
diffrax's generic Runge–Kutta loop, which keeps the stages in one stacked buffer and updates it by
dynamic index. Written out, XLA fuses each stage's state update into a single pass, and the
interpolant is evaluated from (y0, y1, k0, k1) directly instead of stacking four coefficient arrays
every step. On the CPU this made whole runs 1.17–1.18× faster (a loop of `simulate` and a sweep) at
equal step counts (benchmarks/README.md, "Solver step"). Agreement with `diffrax.Bosh3` is tested step by step.
"""

from __future__ import annotations

from typing import Callable, ClassVar

import diffrax
import jax
import jax.numpy as jnp

# Bogacki–Shampine 3(2): nodes 1/2, 3/4, 1; weights of the 3rd-order solution; error weights
# (3rd-order minus embedded 2nd-order solution), the last one on the FSAL stage.
_A21, _A32 = 1 / 2, 3 / 4
_B = (2 / 9, 1 / 3, 4 / 9)
_E = (2 / 9 - 7 / 24, 1 / 3 - 1 / 4, 4 / 9 - 1 / 3, -1 / 8)


def _combine(dt, base, coefs, fs):
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

    t0: jax.Array
    t1: jax.Array
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


class FusedBosh3(diffrax.AbstractAdaptiveSolver):
    """Bogacki–Shampine 3(2) with FSAL, as `diffrax.Bosh3`, stages written out. ODE terms only.

    Solver state: the vector field at the current point (the first stage of the next step)."""

    term_structure: ClassVar = diffrax.AbstractTerm
    interpolation_cls: ClassVar[Callable[..., HermiteInterpolation]] = HermiteInterpolation
    state_is_end_vf: ClassVar[bool] = True  # the solver state after a step is vf(t1, y1) (gflow.flow reads it)

    def order(self, terms):
        return 3

    def init(self, terms, t0, t1, y0, args):
        return terms.vf(t0, y0, args)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        f1 = solver_state
        if made_jump is not False:  # only with jumps in the vector field; gflow never makes any
            f1 = jax.lax.cond(made_jump, lambda: terms.vf(t0, y0, args), lambda: f1)
        dt = t1 - t0
        f2 = terms.vf(t0 + _A21 * dt, _combine(dt, y0, (_A21,), (f1,)), args)
        f3 = terms.vf(t0 + _A32 * dt, _combine(dt, y0, (_A32,), (f2,)), args)
        y1 = _combine(dt, y0, _B, (f1, f2, f3))
        f4 = terms.vf(t1, y1, args)
        y_error = _combine(dt, None, _E, (f1, f2, f3, f4))
        dense_info = dict(y0=y0, y1=y1, k0=_combine(dt, None, (1.0,), (f1,)), k1=_combine(dt, None, (1.0,), (f4,)))
        return y1, y_error, dense_info, f4, diffrax.RESULTS.successful

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)


SOLVERS = {
    "bosh3": FusedBosh3,
    "tsit5": diffrax.Tsit5,
    "dopri5": diffrax.Dopri5,
    "dopri8": diffrax.Dopri8,
    "heun": diffrax.Heun,
    "ralston": diffrax.Ralston,
    "midpoint": diffrax.Midpoint,
}
