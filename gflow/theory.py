"""Closed forms for the Gaussian mixture x = κ·y·s + σ·z (z ~ N(0, I_d), ‖s‖ = 1).

A linear classifier sign⟨v, x⟩ errs when y⟨v, x⟩ < 0, and y⟨v, x⟩ ~ N(κ⟨v, s⟩, σ²‖v‖²), so
    E(v) = Φ(−κ⟨v, s⟩ / (σ‖v‖)),        E* = min_v E(v) = E(s) = Φ(−κ/σ).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import ndtr


def bayes_error(kappa, sigma):
    """E* = Φ(−κ/σ), the error of the Bayes classifier sign⟨s, x⟩."""
    return ndtr(-jnp.asarray(kappa) / sigma)


def linear_test_error(v, s, kappa, sigma):
    """E(v) = Φ(−κ⟨v, s⟩/(σ‖v‖)) for direction(s) v of shape (..., d). E(0) is taken as 1/2."""
    norm = jnp.linalg.norm(v, axis=-1)
    cos = jnp.where(norm > 0, (v @ s) / jnp.where(norm > 0, norm, 1.0), 0.0)
    return ndtr(-kappa * cos / sigma)


def cosine(u, v):
    """cos(u, v) along the last axis; 0 where either vector is zero."""
    nu = jnp.linalg.norm(u, axis=-1)
    nv = jnp.linalg.norm(v, axis=-1)
    denom = nu * nv
    return jnp.where(denom > 0, jnp.sum(u * v, axis=-1) / jnp.where(denom > 0, denom, 1.0), 0.0)
