"""Scalar summaries of a network state, evaluated inside the solve through `SaveAt(fn=...)`.

Every observable is a scalar, so a run stores (n_save + 1) numbers per observable, never a dense
trajectory. Names, units and conventions are listed in `OBSERVABLES`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from . import model, theory
from .data import Dataset
from .gm_error import semi_analytic_error

OBSERVABLES = {
    "loss": "mean logistic training loss",
    "train_acc": "training accuracy (y·f > 0)",
    "test_err": "Monte-Carlo test error of the network on the held-out sample (y·f < 0, plus f = 0 with the tie weight of flow.ties)",
    "test_tie": "fraction of the held-out sample with f = 0 exactly (a tie)",
    "test_err_sa": "semi-analytic test error on the Gaussian mixture: exact along s, averaged over the coordinates ⟂ s "
    "of the first flow.sa_draws held-out points (gflow.twolayer.gm_error; ties weighted by flow.ties; NaN without a known s)",
    "test_tie_sa": "semi-analytic probability of f = 0 (a tie), same draws as test_err_sa",
    "test_loss": "mean logistic loss on the held-out sample (a validation risk)",
    "Psi": "Ψ = cos(ŵ₊, x₊), alignment of the effective predictor ŵ₊ = Σ_{a_j>0} a_j w_j with x₊ = mean_i y_i x_i",
    "Psi_mu": "cos(ŵ₊, μ₊), alignment of ŵ₊ with the positive-class mean μ₊",
    "cos_s": "cos(ŵ₊, s), alignment of ŵ₊ with the Bayes direction s (NaN without a known s)",
    "lin_err": "E(ŵ₊) = Φ(−κ cos(ŵ₊, s)/σ), analytic test error of the effective predictor",
    "psi_pos": "Σ_{a_j>0} ‖w_j‖² ψ_j / Σ_{a_j>0} ‖w_j‖², norm-weighted neuron alignment ψ_j = cos(w_j, x₊)",
    "psi_neg": "the same over neurons with a_j < 0 (→ −1 when they align with −x₊)",
    "psi_abs": "mean_j |ψ_j|, unweighted",
    "invariant_drift": "max_j |(a_j² − ‖w_j‖²)(t) − (a_j² − ‖w_j‖²)(0)|, absolute; exactly 0 for exact gradient flow",
    "param_norm": "‖θ‖ = sqrt(‖W‖² + ‖a‖²)",
    "w_norm": "‖W‖_F",
    "margin": "normalized margin min_i y_i·c·f(x_i) / ‖θ‖²",
}


class ObsArgs(NamedTuple):
    """Everything observables need besides the state; built once per run."""

    data: Dataset
    multiplier: jax.Array
    xplus: jax.Array  # (d,) x₊ = mean_i y_i x_i
    mu_plus: jax.Array  # (d,) positive-class mean
    inv0: jax.Array  # (width,) a_j² − ‖w_j‖² at t = 0
    tie_weight: float | jax.Array = 1.0  # weight of f = 0 in the test errors (gm_error.TIE_WEIGHTS)
    sa_draws: int = 4096  # the semi-analytic error uses the first sa_draws test points (static)


def observe(params: model.Params, args: ObsArgs, semi_analytic: bool = True) -> dict[str, jax.Array]:
    """All observables of `OBSERVABLES` for one state; `semi_analytic=False` leaves test_err_sa and
    test_tie_sa NaN (they cost 30–140 Monte-Carlo errors: a sort of h breakpoints per draw)."""
    data, c = args.data, args.multiplier
    m_train = data.y * model.apply(params, data.x, c)
    m_test = data.y_test * model.apply(params, data.x_test, c)
    w_hat = model.effective_predictor(params)
    psi = theory.cosine(params.W, args.xplus[None, :])
    sq = jnp.sum(params.W**2, axis=1)
    pos = params.a > 0
    wpos, wneg = jnp.where(pos, sq, 0.0), jnp.where(pos, 0.0, sq)
    norm = model.param_norm(params)
    has_s = jnp.any(data.s != 0)
    if semi_analytic:
        sa_err, sa_tie = semi_analytic_error(
            params.W, params.a, data.s, data.kappa, data.sigma, data.x_test[: args.sa_draws], args.tie_weight
        )
    else:
        sa_err = sa_tie = jnp.asarray(jnp.nan, data.x.dtype)
    return {
        "loss": model.logistic_loss(m_train),
        "train_acc": jnp.mean(m_train > 0),
        "test_err": jnp.mean(
            jnp.where(m_test < 0, 1.0, jnp.where(m_test == 0, args.tie_weight, 0.0)).astype(m_test.dtype)
        ),
        "test_tie": jnp.mean((m_test == 0).astype(m_test.dtype)),
        "test_err_sa": jnp.where(has_s, sa_err, jnp.nan),
        "test_tie_sa": jnp.where(has_s, sa_tie, jnp.nan),
        "test_loss": model.logistic_loss(m_test),
        "Psi": theory.cosine(w_hat, args.xplus),
        "Psi_mu": theory.cosine(w_hat, args.mu_plus),
        "cos_s": jnp.where(has_s, theory.cosine(w_hat, data.s), jnp.nan),
        "lin_err": jnp.where(has_s, theory.linear_test_error(w_hat, data.s, data.kappa, data.sigma), jnp.nan),
        "psi_pos": jnp.sum(wpos * psi) / jnp.maximum(jnp.sum(wpos), jnp.finfo(sq.dtype).tiny),
        "psi_neg": jnp.sum(wneg * psi) / jnp.maximum(jnp.sum(wneg), jnp.finfo(sq.dtype).tiny),
        "psi_abs": jnp.mean(jnp.abs(psi)),
        "invariant_drift": jnp.max(jnp.abs(model.balance_invariant(params) - args.inv0)),
        "param_norm": norm,
        "w_norm": jnp.sqrt(jnp.sum(sq)),
        "margin": jnp.min(m_train) / norm**2,
    }
