"""Closed forms of the two-layer theory for the Gaussian mixture x = κ·y·s + σ·z (z ~ N(0, I_d), ‖s‖ = 1).

Test error of a direction. A linear classifier sign⟨v, x⟩ errs when y⟨v, x⟩ < 0, and
y⟨v, x⟩ ~ N(κ⟨v, s⟩, σ²‖v‖²), so
    E(v) = Φ(−κ⟨v, s⟩ / (σ‖v‖)),        E* = min_v E(v) = E(s) = Φ(−κ/σ).
E depends on v only through its angle to s, and grows with that angle on [0, π].

Over-alignment / over-fitting. Let `target` be the direction the neurons align with (the paper's
x₊ = mean_i y_i x_i; in our runs the a_j > 0 neurons align with the positive-class mean μ₊ instead,
so every function below takes the target as an argument), φ = ∠(target, s) and
H(Ψ) = {v : cos(v, target) ≥ Ψ} the cone of half-angle β = arccos Ψ around it. The smallest angle to
s over H is max(φ − β, 0) (the great-circle distance from s to the cap), reached by s itself when
φ ≤ β and else by the boundary direction of H in the plane of target and s. Hence
    inf_H E = Φ(−(κ/σ)·cos(max(φ − arccos Ψ, 0))),
    OA = inf_H E − E*  ≥ 0,        OF = E(ŵ) − inf_H E  ≥ 0  (ŵ ∈ H when Ψ = cos(ŵ, target)),
    OA + OF = E(ŵ) − E*            (the excess error of the effective linear predictor ŵ).

Phase 1 (alignment) at small init. While |f| ≪ 1 the loss derivative is −y_i·σ(−m_i)/n ≈ −y_i/(2n),
so with the mean loss neuron j moves as dw_j/dt = (a_j/2n) Σ_{i: ⟨w_j,x_i⟩>0} y_i x_i. A neuron with
a_j > 0 that is active exactly on the positive class is driven by the constant vector
v₊ = (1/2n) Σ_{y_i=+1} x_i (∝ μ₊), and one with a_j < 0 active exactly on the negative class by
v₋ = (1/2n) Σ_{y_i=−1} x_i. Its direction u obeys du/dt = (I − uuᵀ)v, so ψ = cos(u, v) obeys
ψ' = ‖v‖(1 − ψ²), ψ(t) = tanh(‖v‖t + artanh ψ(0)), while a balanced neuron's norm grows like
e^{‖v‖t}. The output reaches O(1) after t_α = (log(1/α) + O(1)) / ‖v‖: the slope of t_α in log(1/α) is
1/‖v‖ = 2n/‖Σ_{y_i=±1} x_i‖, independent of n to leading order for the mean loss (with the sum
loss, time is n× faster and t_α = Θ(log(1/α)/n), the paper's statement).

The Phase-1 bound we implement (this project's reconstruction, stated in docs/theory.md): ζ(α) = 1 − 4·α·n·√h·x_max²·W_max²/‖x₊‖, with
x_max = max_i ‖x_i‖, W_max = max_j ‖w̄_j‖ (W(0) = α·W̄) and x₊ = mean_i y_i x_i, and the comparison
form ψ' ≥ k(ζ − ψ²), whose solution gives
    ψ(t) ≥ √ζ · tanh(√ζ·k·t + artanh(ψ(0)/√ζ))      for |ψ(0)| < √ζ,
(√ζ·coth(...) for ψ(0) > √ζ). ζ > 0 requires α < α_ζ = ‖x₊‖/(4 n √h x_max² W_max²) ∝ 1/(n√h): the
origin of the predicted α* ∝ 1/(n√h), i.e. c* = α*² ∝ n⁻² h⁻¹. The α*-law, ζ and the rate k are this
project's reconstructions from a secondary summary of the paper (only its abstract was at hand), not the
paper's proven statements.

Everything here is pure jax.numpy (works on numpy input, jit- and vmap-safe) and knows nothing about
the engine.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import ndtr

from .data import class_mean_direction

# Predicted exponents of the paper's scalings (tested against the closed forms below; measured in
# experiments/).
ALPHA_STAR_N_EXPONENT = -1.0  # α* ∝ n⁻¹
ALPHA_STAR_WIDTH_EXPONENT = -0.5  # α* ∝ h^(−1/2)
MULTIPLIER_STAR_N_EXPONENT = -2.0  # c* = α*² ∝ n⁻²
MULTIPLIER_STAR_WIDTH_EXPONENT = -1.0  # c* ∝ h⁻¹
ANGLE_EXPONENT = 0.5  # final neuron angle to the alignment target ∝ α^(1/2)


def bayes_error(kappa, sigma):
    """E* = Φ(−κ/σ), the error of the Bayes classifier sign⟨s, x⟩."""
    return ndtr(-jnp.asarray(kappa) / sigma)


def linear_test_error(v, s, kappa, sigma):
    """E(v) = Φ(−κ⟨v, s⟩/(σ‖v‖)) for direction(s) v of shape (..., d). E(0) is taken as 1/2."""
    norm = jnp.linalg.norm(v, axis=-1)
    cos = jnp.where(norm > 0, (v @ s) / jnp.where(norm > 0, norm, 1.0), 0.0)
    return ndtr(-kappa * cos / sigma)


def error_at_angle(theta, kappa, sigma):
    """E of any direction at angle θ (radians) to s: Φ(−(κ/σ)·cos θ)."""
    return ndtr(-jnp.asarray(kappa) / sigma * jnp.cos(theta))


def cosine(u, v):
    """cos(u, v) along the last axis; 0 where either vector is zero."""
    nu = jnp.linalg.norm(u, axis=-1)
    nv = jnp.linalg.norm(v, axis=-1)
    denom = nu * nv
    return jnp.where(denom > 0, jnp.sum(u * v, axis=-1) / jnp.where(denom > 0, denom, 1.0), 0.0)


def angle(u, v):
    """∠(u, v) in radians, in [0, π], along the last axis (π/2 where either vector is zero)."""
    return jnp.arccos(jnp.clip(cosine(u, v), -1.0, 1.0))


def class_mean_angle(x, y, s):
    """φ = ∠(x₊, s), the angle between the empirical class-mean direction and the Bayes direction."""
    return angle(class_mean_direction(x, y), s)


# --- over-alignment / over-fitting ----------------------------------------------------------------


def cone_min_angle(phi, psi):
    """Smallest angle to s over the cone {v : cos(v, target) ≥ ψ}, given φ = ∠(target, s): max(φ − arccos ψ, 0)."""
    return jnp.maximum(phi - jnp.arccos(jnp.clip(psi, -1.0, 1.0)), 0.0)


def cone_inf_error(phi, psi, kappa, sigma):
    """inf over H = {v : cos(v, target) ≥ ψ} of E(v) = Φ(−(κ/σ)·cos(max(φ − arccos ψ, 0)))."""
    return error_at_angle(cone_min_angle(phi, psi), kappa, sigma)


def cone_best_direction(target, s, psi):
    """The unit vector of H = {v : cos(v, target) ≥ ψ} closest in angle to s (the minimizer of E over H).

    s itself when ∠(target, s) ≤ arccos ψ; else the direction at angle arccos ψ from the target, rotated
    towards s in the plane of the two (for s = −target any such boundary direction is optimal; one is returned).
    """
    t = target / jnp.linalg.norm(target)
    s = s / jnp.linalg.norm(s)
    beta = jnp.arccos(jnp.clip(psi, -1.0, 1.0))
    perp = s - (s @ t) * t
    pn = jnp.linalg.norm(perp)
    # s antiparallel to t: any unit vector ⟂ t spans a plane with t; take the first axis not along t.
    fallback = jnp.eye(t.shape[0], dtype=t.dtype)[jnp.argmin(jnp.abs(t))]
    fallback = fallback - (fallback @ t) * t
    e = jnp.where(pn > 1e-12, perp / jnp.where(pn > 1e-12, pn, 1.0), fallback / jnp.linalg.norm(fallback))
    boundary = jnp.cos(beta) * t + jnp.sin(beta) * e
    return jnp.where(jnp.arccos(jnp.clip(s @ t, -1.0, 1.0)) <= beta, s, boundary)


def over_alignment(phi, psi, kappa, sigma):
    """OA = inf_{cos(v, target) ≥ ψ} E(v) − E*, from φ = ∠(target, s) and the cone level ψ."""
    return cone_inf_error(phi, psi, kappa, sigma) - bayes_error(kappa, sigma)


def over_fitting(cos_s, phi, psi, kappa, sigma):
    """OF = E(ŵ) − inf_H E, from cos(ŵ, s), φ = ∠(target, s) and ψ = cos(ŵ, target)."""
    return ndtr(-jnp.asarray(kappa) / sigma * cos_s) - cone_inf_error(phi, psi, kappa, sigma)


def decompose_excess_error(w_hat, target, s, kappa, sigma):
    """OA, OF and their sum E(ŵ) − E* for a predictor ŵ, with the cone H = {v : cos(v, target) ≥ cos(ŵ, target)}."""
    phi = angle(target, s)
    psi = cosine(w_hat, target)
    cos_s = cosine(w_hat, s)
    oa = over_alignment(phi, psi, kappa, sigma)
    of = over_fitting(cos_s, phi, psi, kappa, sigma)
    return {"OA": oa, "OF": of, "excess": oa + of, "phi": phi, "Psi": psi}


# --- Phase 1: alignment ---------------------------------------------------------------------------


def phase1_drives(x, y):
    """(v₊, v₋) = ((1/2n) Σ_{y_i=+1} x_i, (1/2n) Σ_{y_i=−1} x_i): the small-α drive of a neuron active
    exactly on the positive (a_j > 0) or negative (a_j < 0) class, for the mean logistic loss."""
    x, y = jnp.asarray(x), jnp.asarray(y)
    n = y.shape[0]
    pos = (y > 0).astype(x.dtype)
    return (pos @ x) / (2 * n), ((1 - pos) @ x) / (2 * n)


def phase1_rates(x, y):
    """(‖v₊‖, ‖v₋‖): the exponential growth rates of aligned balanced neurons of either sign in Phase 1."""
    vp, vm = phase1_drives(x, y)
    return jnp.linalg.norm(vp), jnp.linalg.norm(vm)


def phase1_fixed_point(x, y, sign=1.0, start=None, max_iter=100):
    """The Phase-1 attractor of a neuron with sign(a_j) = `sign`: a unit u with
    u ∝ sign·Σ_{i: ⟨u, x_i⟩ > 0} y_i x_i, found by iterating that map from `start` (default: the class
    mean, μ₊ for sign > 0, μ₋ for sign < 0) until the active set repeats. Returns (u, converged).

    It is μ₊ (μ₋) when that mean is active exactly on its own class, e.g. on orthogonally separable data;
    otherwise the drive of the neuron's own active set. Plain numpy (a data-dependent loop).
    """
    import numpy as np

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    cls = y > 0 if sign > 0 else y < 0
    u = x[cls].mean(0) if start is None else np.asarray(start, np.float64)
    u = u / np.linalg.norm(u)
    seen = set()
    for _ in range(max_iter):
        active = x @ u > 0
        key = active.tobytes()
        drive = sign * (y[active] @ x[active]) if active.any() else u
        u_new = drive / np.linalg.norm(drive)
        if key in seen and np.array_equal(x @ u_new > 0, active):
            return u_new, True
        seen.add(key)
        u = u_new
    return u, False


def phase1_time(alpha, rate, offset=0.0):
    """Predicted end of Phase 1, t_α = (log(1/α) + offset)/rate, in gradient-flow time of the mean loss."""
    return (jnp.log(1.0 / jnp.asarray(alpha)) + offset) / rate


def phase1_zeta(alpha, n, width, x_max, w_max, xplus_norm):
    """ζ(α) = 1 − 4·α·n·√h·x_max²·W_max²/‖x₊‖ (our reconstruction, docs/theory.md); the bound is informative for ζ > 0."""
    return 1.0 - 4.0 * jnp.asarray(alpha) * n * jnp.sqrt(width) * x_max**2 * w_max**2 / xplus_norm


def phase1_constants(x, y, w_unit):
    """(x_max, W_max, ‖x₊‖) from data and the unit-scale first layer W̄ (h × d, W(0) = α·W̄)."""
    x_max = jnp.max(jnp.linalg.norm(x, axis=1))
    w_max = jnp.max(jnp.linalg.norm(w_unit, axis=1))
    return x_max, w_max, jnp.linalg.norm(class_mean_direction(x, y))


def alpha_zeta_zero(n, width, x_max, w_max, xplus_norm):
    """α_ζ = ‖x₊‖/(4 n √h x_max² W_max²), where ζ(α) = 0: the bound is informative only for α < α_ζ."""
    return xplus_norm / (4.0 * n * jnp.sqrt(width) * x_max**2 * w_max**2)


def phase1_alignment_bound(t, zeta, rate, psi0):
    """Lower bound on ψ(t) from ψ' ≥ rate·(ζ − ψ²), ψ(0) = ψ₀ (the solution of the comparison ODE):

        √ζ·tanh(√ζ·rate·t + artanh(ψ₀/√ζ))   for |ψ₀| < √ζ,
        √ζ·coth(√ζ·rate·t + arcoth(ψ₀/√ζ))   for ψ₀ > √ζ,      √ζ for ψ₀ = √ζ.

    Vacuous cases return −1: ζ ≤ 0, or ψ₀ ≤ −√ζ (the comparison solution leaves [−1, 1]).
    With ζ = 1 and equality it is the exact alignment ψ(t) = tanh(rate·t + artanh ψ₀).
    """
    t, zeta, psi0 = jnp.asarray(t), jnp.asarray(zeta), jnp.asarray(psi0)
    rz = jnp.sqrt(jnp.maximum(zeta, 0.0))
    safe = jnp.where(rz > 0, rz, 1.0)
    q = psi0 / safe
    inside = jnp.abs(q) < 1
    above = q > 1
    tanh_branch = rz * jnp.tanh(rz * rate * t + jnp.arctanh(jnp.clip(q, -1 + 1e-15, 1 - 1e-15)))
    q_above = jnp.where(above, q, 2.0)
    coth_branch = rz / jnp.tanh(rz * rate * t + 0.5 * jnp.log((q_above + 1) / (q_above - 1)))
    out = jnp.where(inside, tanh_branch, jnp.where(above, coth_branch, jnp.where(q == 1, rz, -1.0)))
    return jnp.where(zeta > 0, out, -1.0)


# --- predicted scalings ---------------------------------------------------------------------------


def predicted_alpha_star(n, width, *, ref_alpha, ref_n, ref_width):
    """α* ∝ 1/(n√h), through a reference point (ref_n, ref_width, ref_alpha)."""
    return (
        ref_alpha
        * (jnp.asarray(n) / ref_n) ** ALPHA_STAR_N_EXPONENT
        * (jnp.asarray(width) / ref_width) ** ALPHA_STAR_WIDTH_EXPONENT
    )


def predicted_multiplier_star(n, width, *, ref_c, ref_n, ref_width):
    """c* = α*² ∝ n⁻² h⁻¹, through a reference point."""
    return (
        ref_c
        * (jnp.asarray(n) / ref_n) ** MULTIPLIER_STAR_N_EXPONENT
        * (jnp.asarray(width) / ref_width) ** MULTIPLIER_STAR_WIDTH_EXPONENT
    )


def predicted_angle(alpha, *, ref_alpha, ref_angle):
    """Final neuron angle to the alignment target ∝ √α, through a reference point."""
    return ref_angle * (jnp.asarray(alpha) / ref_alpha) ** ANGLE_EXPONENT
