"""RKC2: the damped second-order Runge–Kutta–Chebyshev method, for the stiff (lazy) regime.

Why: in the lazy regime (large α) the flow's Jacobian −∇²L has real eigenvalues spread over
[−λ_max, 0] with λ_max in the thousands (3,247 at θ(0) on the medium problem), and an explicit RK
method of fixed stages is stability-limited there: Bosh3 is stable for h·λ ≤ 2.51, so it takes
steps far shorter than accuracy needs (benchmarks/studies/README.md, `lazy_steps`). RKC's
stability interval on the negative real axis grows with the square of its stage count,
β(s) ≈ 0.65·s², so s vector-field evaluations cover ≈ 0.65·s²/λ of time where s/3 Bosh3 steps cover
≈ 0.84·s/λ: about 0.8·s times as far at the stability limit. Where the flow is not stiff (the rich regime) it
takes s = 2 and is an ordinary two-stage second-order method.

The scheme (Sommeijer, Shampine & Verwer 1997, "RKC: an explicit solver for parabolic PDEs",
J. Comput. Appl. Math. 88; damping ε = 2/13): with w₀ = 1 + ε/s², w₁ = T_s′(w₀)/T_s″(w₀),
b_j = T_j″(w₀)/T_j′(w₀)² (b₀ = b₁ = b₂), a_j = 1 − b_j·T_j(w₀),

    Y₀ = y_n,  Y₁ = Y₀ + μ̃₁·h·F(Y₀),  μ̃₁ = b₁·w₁
    Y_j = (1 − μ_j − ν_j)·Y₀ + μ_j·Y_{j−1} + ν_j·Y_{j−2} + μ̃_j·h·F(Y_{j−1}) + γ̃_j·h·F(Y₀)
    μ_j = 2b_j·w₀/b_{j−1},  ν_j = −b_j/b_{j−2},  μ̃_j = 2b_j·w₁/b_{j−1},  γ̃_j = −a_{j−1}·μ̃_j
    y_{n+1} = Y_s

whose stability polynomial is R_s(z) = a_s + b_s·T_s(w₀ + w₁·z) (tested). The local error estimate is
the paper's 0.8·(y_n − y_{n+1}) + 0.4·h·(F(y_n) + F(y_{n+1})), of order h³ (so `error_order` 3, as the
controller's exponent 1/3 in the paper). F(y_{n+1}) is the next step's first stage (FSAL).

The stage count per step is the paper's s = 1 + ⌊√(1 + 1.54·h·ρ)⌋ with ρ = 1.2 × an estimate of
the spectral radius of the Jacobian, at least 2 and at most `max_stages`. ρ comes from the power
method on Jacobian–vector products (`jax.jvp` of the vector field, exact, one per step): the
iterate is carried from step to step in the solver state, so it follows the dominant eigenvector
as θ moves; `init` runs `power_iters0` iterations. Stages are a `lax.while_loop` over j with a
three-term recurrence: memory does not grow with s (Y_{j−1}, Y_{j−2}, F(Y₀) and one stage), and
under `vmap` lanes with fewer stages are masked while the others finish.

The vector field is evaluated at the stage times t₀ + c_j·h, c_j = w₁·T_j″(w₀)/T_j′(w₀) (c_s = 1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp

from .rk_parts import HermiteInterpolation, combine

EPS = 2 / 13  # damping of the Chebyshev polynomial (the paper's choice)
RHO_SAFETY = 1.2  # the spectral-radius estimate is multiplied by this (the paper's choice)


def stage_count(h, rho, max_stages):
    """The paper's stage count for a step h at spectral radius rho (already with its safety factor)."""
    s = 1 + jnp.floor(jnp.sqrt(1 + 1.54 * jnp.abs(h) * rho))
    return jnp.clip(jnp.where(jnp.isfinite(s), s, max_stages), 2, max_stages).astype(jnp.int32)


def chebyshev(s, x):
    """(T_s(x), T_s′(x), T_s″(x)) by the three-term recurrence; s ≥ 2, traced."""

    def body(j, c):
        t1, t0, d1, d0, e1, e0 = c
        return 2 * x * t1 - t0, t1, 2 * t1 + 2 * x * d1 - d0, d1, 4 * d1 + 2 * x * e1 - e0, e1

    one, zero = jnp.ones_like(x), jnp.zeros_like(x)
    t, _, d, _, e, _ = jax.lax.fori_loop(2, s + 1, body, (x, one, one, zero, zero, zero))
    return t, d, e


def stability_polynomial(s: int, z):
    """R_s(z) = a_s + b_s·T_s(w₀ + w₁·z): the amplification of y′ = λy per step, z = h·λ (for tests)."""
    w0 = 1 + EPS / s**2
    ts, dts, ets = chebyshev(s, jnp.asarray(w0, jnp.float64))
    w1 = dts / ets
    b = ets / dts**2
    zz = w0 + w1 * jnp.asarray(z, jnp.float64)
    tz = chebyshev(s, zz)[0]
    return 1 - b * ts + b * tz


def _tree_norm(t):
    return jnp.sqrt(sum(jnp.sum(jnp.square(v)) for v in jax.tree.leaves(t)))


def _tree_scale(t, a):
    return jax.tree.map(lambda v: (a * v).astype(v.dtype), t)


class RKC2(diffrax.AbstractAdaptiveSolver):
    """Damped second-order Runge–Kutta–Chebyshev with a variable stage count (module docstring). ODE terms only.

    Solver state: (F(y) at the current point, the power-method iterate, the last spectral-radius estimate)."""

    max_stages: int = eqx.field(static=True, default=128)
    power_iters0: int = eqx.field(static=True, default=20)

    term_structure: ClassVar = diffrax.AbstractTerm
    interpolation_cls: ClassVar[Callable[..., HermiteInterpolation]] = HermiteInterpolation
    state_is_end_vf: ClassVar[bool] = True  # end_vf(state) is vf(t1, y1) (RecordStepStart reads it)

    @staticmethod
    def end_vf(solver_state):
        return solver_state[0]

    def order(self, terms):
        return 2

    def error_order(self, terms):
        return 3

    def _power(self, terms, t, y, args, w):
        """One power-method step: (J·w/‖J·w‖, ‖J·w‖/‖w‖) at (t, y); J·w by forward mode."""
        jw = jax.jvp(lambda z: terms.vf(t, z, args), (y,), (w,))[1]
        njw = _tree_norm(jw)
        rho = njw / _tree_norm(w)
        ok = jnp.isfinite(rho) & (njw > 0)
        w_next = jax.tree.map(lambda a, b: jnp.where(ok, a, b), _tree_scale(jw, 1 / jnp.where(ok, njw, 1)), w)
        return w_next, jnp.where(ok, rho, 0.0)

    def init(self, terms, t0, t1, y0, args):
        f0 = terms.vf(t0, y0, args)
        # start from the velocity plus a constant, normalized (never zero)
        w = jax.tree.map(lambda v: v + jnp.ones_like(v), f0)
        w = _tree_scale(w, 1 / _tree_norm(w))

        def body(_, c):
            return self._power(terms, t0, y0, args, c[0])

        w, rho = jax.lax.fori_loop(0, self.power_iters0, body, (w, jnp.zeros((), jnp.result_type(t0))))
        return f0, w, rho

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        f0, w, _ = solver_state
        if made_jump is not False:  # only with jumps in the vector field; gflow never makes any
            f0 = jax.lax.cond(made_jump, lambda: terms.vf(t0, y0, args), lambda: f0)
        h = t1 - t0
        w, rho = self._power(terms, t0, y0, args, w)
        s = stage_count(h, RHO_SAFETY * rho, self.max_stages)

        dtype = jnp.result_type(h)
        w0 = 1 + EPS / s.astype(dtype) ** 2
        ts, dts, ets = chebyshev(s, w0)
        w1 = dts / ets
        b2 = 1 / (4 * w0**2)  # T_2″/T_2′² = 4/(4w₀)²; b₀ = b₁ = b₂
        mu1 = b2 * w1
        y1 = combine(h, y0, (mu1,), (f0,))

        def cond(c):
            return c[0] <= s

        def body(c):
            j, yjm1, yjm2, tm1, tm2, dm1, dm2, em1, em2, bm1, bm2, cm1 = c
            tj = 2 * w0 * tm1 - tm2
            dj = 2 * tm1 + 2 * w0 * dm1 - dm2
            ej = 4 * dm1 + 2 * w0 * em1 - em2
            bj = ej / dj**2
            am1 = 1 - bm1 * tm1
            mu, nu = 2 * bj * w0 / bm1, -bj / bm2
            mut = 2 * bj * w1 / bm1
            gam = -am1 * mut
            fjm1 = terms.vf(t0 + cm1 * h, yjm1, args)
            yj = jax.tree.map(
                lambda a, p, q, f, g: (1 - mu - nu) * a + mu * p + nu * q + h * (mut * f + gam * g),
                y0,
                yjm1,
                yjm2,
                fjm1,
                f0,
            )
            cj = w1 * ej / dj
            return j + 1, yj, yjm1, tj, tm1, dj, dm1, ej, em1, bj, bm1, cj

        one, zero = jnp.ones_like(w0), jnp.zeros_like(w0)
        init = (jnp.int32(2), y1, y0, w0, one, one, zero, zero, zero, b2, b2, mu1)
        ys = jax.lax.while_loop(cond, body, init)[1]

        f1 = terms.vf(t1, ys, args)
        y_error = jax.tree.map(lambda a, b, fa, fb: 0.8 * (a - b) + 0.4 * h * (fa + fb), y0, ys, f0, f1)
        dense_info = dict(y0=y0, y1=ys, k0=combine(h, None, (1.0,), (f0,)), k1=combine(h, None, (1.0,), (f1,)))
        return ys, y_error, dense_info, (f1, w, rho), diffrax.RESULTS.successful

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)
