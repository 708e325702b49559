"""Datasets for the two-layer engine: the paper's Gaussian mixture, and checks on user data.

Gaussian mixture: x = κ·y·s + σ·z with y uniform in {±1}, s a unit vector and z ~ N(0, I_d).
The data key is separate from the init key, so every α in a sweep sees the same data.

Data modes (`DataConfig.mode`), the regimes of the theory:
- 'gaussian': the mixture as above, no condition (the default).
- 'separable': the mixture conditioned on orthogonal separability, λ = min_{i≠k} y_i y_k cos(x_i, x_k) > 0,
  by rejection: training draw r uses key fold_in(k_train, r), r = 0, 1, … < `max_draws`; s and the test
  sample do not change between draws. No draw with λ > 0 raises ValueError; λ is never silently ≤ 0.
- 'high_dim': d ≫ n (d ≥ 10·n is enforced) with the noise scaled per input, σ/√d per coordinate, so
  ‖σz‖ ≈ σ whatever d and the x_i are nearly orthogonal: cos(x_i, x_k) = ±κ²/(κ² + σ²) + O(1/√d).
  `Dataset.sigma` is then the per-coordinate noise σ/√d (every closed form uses it), so the Bayes error
  is Φ(−κ√d/σ). λ is reported, not enforced (set `separable = true` to condition on λ > 0 here too).
`dataset_report` gives λ and the number of draws of a config's dataset.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

DATA_ROOT = 0xDA7A


def data_key(seed: int) -> jax.Array:
    """Key of data seed i: fold_in(PRNGKey(DATA_ROOT), i), independent of the init keys."""
    return jax.random.fold_in(jax.random.PRNGKey(DATA_ROOT), seed)


class Dataset(NamedTuple):
    """Training and held-out test data, labels in {±1}.

    `s`, `kappa`, `sigma` describe the generating Gaussian mixture; for other data `s` is all zeros
    and `kappa`, `sigma` are NaN, and the analytic observables come out NaN.
    """

    x: jax.Array  # (n, d)
    y: jax.Array  # (n,)
    x_test: jax.Array  # (n_test, d)
    y_test: jax.Array  # (n_test,)
    s: jax.Array  # (d,) unit signal direction, or zeros
    kappa: jax.Array  # () signal strength
    sigma: jax.Array  # () noise level


def gaussian_mixture(*, key: jax.Array, n: int, n_test: int, d: int, kappa, sigma, dtype=jnp.float32) -> Dataset:
    """Sample n training and n_test test points of x = κ·y·s + σ·z; s is a random unit vector."""
    dtype = jnp.dtype(dtype)
    return _gaussian_mixture(
        key, jnp.asarray(kappa, dtype), jnp.asarray(sigma, dtype), jnp.int32(0), n=n, n_test=n_test, d=d, dtype=dtype
    )


@partial(jax.jit, static_argnames=("n", "n_test", "d", "dtype"))
def _gaussian_mixture(key, kappa, sigma, draw, *, n, n_test, d, dtype) -> Dataset:
    # Random draws are always made in float32 and then cast, so float32 and float64 runs see the
    # same data (JAX's float64 stream differs from its float32 stream).
    k_s, k_train, k_test = jax.random.split(key, 3)
    # draw r > 0 (rejection sampling of the training set) uses fold_in(k_train, r); draw 0 is the plain one
    k_train = jnp.where(draw > 0, jax.random.fold_in(k_train, draw), k_train)
    s = jax.random.normal(k_s, (d,), jnp.float32).astype(dtype)
    s = s / jnp.linalg.norm(s)

    def sample(k, m):
        k_y, k_z = jax.random.split(k)
        y = jnp.where(jax.random.bernoulli(k_y, jnp.float32(0.5), (m,)), 1.0, -1.0).astype(dtype)
        z = jax.random.normal(k_z, (m, d), jnp.float32).astype(dtype)
        return kappa * y[:, None] * s[None, :] + sigma * z, y

    x, y = sample(k_train, n)
    x_test, y_test = sample(k_test, n_test)
    return Dataset(x, y, x_test, y_test, s, jnp.asarray(kappa, dtype), jnp.asarray(sigma, dtype))


def noise_per_coordinate(cfg) -> float:
    """σ per coordinate of a `DataConfig`: σ, or σ/√d in the 'high_dim' mode (‖noise‖ ≈ σ)."""
    return cfg.sigma / np.sqrt(cfg.d) if cfg.mode == "high_dim" else cfg.sigma


def _draw(cfg, dtype, draw: int) -> Dataset:
    dtype = jnp.dtype(dtype)
    return _gaussian_mixture(
        data_key(cfg.seed),
        jnp.asarray(cfg.kappa, dtype),
        jnp.asarray(noise_per_coordinate(cfg), dtype),
        jnp.int32(draw),
        n=cfg.n,
        n_test=cfg.n_test,
        d=cfg.d,
        dtype=dtype,
    )


def dataset_report(cfg, dtype=jnp.float32) -> tuple[Dataset, dict]:
    """The dataset of a `DataConfig` and a report: {'separability': λ (float64), 'draws': training draws used,
    'mode', 'conditioned': whether λ > 0 was required}. Raises ValueError if a separable draw is required
    and none of `max_draws` draws has λ > 0."""
    if cfg.mode == "high_dim" and cfg.d < 10 * cfg.n:
        raise ValueError(f"data.d: the 'high_dim' mode needs d ≥ 10·n = {10 * cfg.n}, got {cfg.d}")
    conditioned = cfg.mode == "separable" or cfg.separable
    for r in range(cfg.max_draws if conditioned else 1):
        ds = _draw(cfg, dtype, r)
        lam = separability_constant(ds.x, ds.y)
        if not conditioned or lam > 0:
            return ds, {"separability": lam, "draws": r + 1, "mode": cfg.mode, "conditioned": conditioned}
    raise ValueError(
        f"data: no orthogonally separable draw (λ > 0) in data.max_draws = {cfg.max_draws} tries at n={cfg.n}, d={cfg.d}, "
        f"κ/σ={cfg.kappa / cfg.sigma:g}, mode={cfg.mode!r}, seed={cfg.seed}; raise κ/σ, lower d or n, or raise data.max_draws"
    )


def make_dataset(cfg, dtype=jnp.float32) -> Dataset:
    """The Gaussian-mixture dataset described by a `DataConfig` (its mode applied; see the module doc)."""
    return dataset_report(cfg, dtype)[0]


def from_arrays(x, y, x_test, y_test, dtype=jnp.float32) -> Dataset:
    """Wrap user arrays as a Dataset after `check_arrays`; analytic observables are NaN for it."""
    check_arrays(x, y, x_test, y_test)
    d = np.shape(x)[1]
    cast = lambda v: jnp.asarray(v, dtype)  # noqa: E731
    nan = jnp.asarray(jnp.nan, dtype)
    return Dataset(cast(x), cast(y), cast(x_test), cast(y_test), jnp.zeros((d,), dtype), nan, nan)


def check_arrays(x, y, x_test, y_test) -> None:
    """Raise ValueError naming the offending array: shapes, ±1 labels, finiteness."""
    for name, v, ndim in (("x", x, 2), ("y", y, 1), ("x_test", x_test, 2), ("y_test", y_test, 1)):
        v = np.asarray(v)
        if v.ndim != ndim:
            raise ValueError(f"data.{name}: expected {ndim} dimensions, got shape {v.shape}")
        if v.shape[0] < 1:
            raise ValueError(f"data.{name}: is empty")
        if not np.all(np.isfinite(v)):
            raise ValueError(f"data.{name}: contains NaN or inf")
    if np.shape(x)[0] != np.shape(y)[0]:
        raise ValueError(f"data.y: {np.shape(y)[0]} labels for {np.shape(x)[0]} rows of data.x")
    if np.shape(x_test)[0] != np.shape(y_test)[0]:
        raise ValueError(f"data.y_test: {np.shape(y_test)[0]} labels for {np.shape(x_test)[0]} rows of data.x_test")
    if np.shape(x)[1] != np.shape(x_test)[1]:
        raise ValueError(f"data.x_test: has {np.shape(x_test)[1]} features, data.x has {np.shape(x)[1]}")
    for name, v in (("y", y), ("y_test", y_test)):
        bad = ~np.isin(np.asarray(v), (-1.0, 1.0))
        if bad.any():
            raise ValueError(f"data.{name}: labels must be ±1, found {np.unique(np.asarray(v)[bad])[:5].tolist()}")


def class_mean_direction(x: jax.Array, y: jax.Array) -> jax.Array:
    """x₊ = mean_i y_i x_i, the empirical class-mean direction."""
    return jnp.mean(y[:, None] * x, axis=0)


def positive_class_mean(x: jax.Array, y: jax.Array) -> jax.Array:
    """μ₊ = mean of the x_i with y_i = +1 (the direction small-init neurons with a_j > 0 align with)."""
    pos = (y > 0).astype(x.dtype)
    return (pos @ x) / jnp.maximum(jnp.sum(pos), 1.0)


def separability_constant(x, y) -> float:
    """λ = min_{i≠j} y_i y_j ⟨x_i, x_j⟩ / (‖x_i‖‖x_j‖). λ > 0 means orthogonally separable."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    g = (y[:, None] * y[None, :]) * (u @ u.T)
    np.fill_diagonal(g, np.inf)
    return float(g.min()) if len(y) > 1 else float("inf")
