import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gflow
from gflow.twolayer import data


def test_gaussian_mixture_statistics():
    ds = data.gaussian_mixture(
        key=jax.random.PRNGKey(0), n=20_000, n_test=10, d=8, kappa=1.5, sigma=0.5, dtype=jnp.float64
    )
    x, y, s = np.asarray(ds.x), np.asarray(ds.y), np.asarray(ds.s)
    np.testing.assert_allclose(np.linalg.norm(s), 1.0, rtol=1e-12)
    assert set(np.unique(y)) == {-1.0, 1.0}
    assert abs(np.mean(y)) < 4 / np.sqrt(20_000)
    # y⟨x, s⟩ ~ N(κ, σ²); the noise orthogonal to s has variance σ² per direction
    proj = y * (x @ s)
    assert abs(proj.mean() - 1.5) < 4 * 0.5 / np.sqrt(20_000)
    assert abs(proj.std() - 0.5) < 0.01
    resid = x - np.outer(x @ s, s)
    assert abs(resid.var(axis=0).sum() / 7 - 0.25) < 0.01


def test_data_key_is_separate_and_reproducible():
    a = data.gaussian_mixture(key=data.data_key(3), n=5, n_test=5, d=3, kappa=1.0, sigma=1.0)
    b = data.gaussian_mixture(key=data.data_key(3), n=5, n_test=5, d=3, kappa=1.0, sigma=1.0)
    c = data.gaussian_mixture(key=data.data_key(4), n=5, n_test=5, d=3, kappa=1.0, sigma=1.0)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.allclose(a.x, c.x)


def test_separability_constant_brute_force():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(9, 4))
    y = rng.choice([-1.0, 1.0], size=9)
    brute = min(
        y[i] * y[j] * x[i] @ x[j] / (np.linalg.norm(x[i]) * np.linalg.norm(x[j]))
        for i in range(9)
        for j in range(9)
        if i != j
    )
    np.testing.assert_allclose(data.separability_constant(x, y), brute, rtol=1e-12)
    # high signal, low noise: orthogonally separable
    ds = data.gaussian_mixture(key=jax.random.PRNGKey(0), n=30, n_test=1, d=20, kappa=1.0, sigma=0.05)
    assert data.separability_constant(ds.x, ds.y) > 0


def test_class_means():
    x = jnp.asarray([[1.0, 0.0], [3.0, 0.0], [0.0, -2.0]])
    y = jnp.asarray([1.0, 1.0, -1.0])
    np.testing.assert_allclose(data.class_mean_direction(x, y), [4 / 3, 2 / 3])
    np.testing.assert_allclose(data.positive_class_mean(x, y), [2.0, 0.0])


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda a: a.update(y=np.array([1.0, 0.0, -1.0, 1.0])), "data.y: labels must be ±1"),
        (lambda a: a.update(x=np.where(np.eye(4, 3) > 0, np.nan, 1.0)), "data.x: contains NaN or inf"),
        (lambda a: a.update(x_test=np.full((2, 3), np.inf)), "data.x_test: contains NaN or inf"),
        (lambda a: a.update(y=np.ones(3)), "data.y: 3 labels for 4 rows"),
        (lambda a: a.update(x_test=np.ones((2, 5))), "data.x_test: has 5 features"),
        (lambda a: a.update(x=np.ones(4)), "data.x: expected 2 dimensions"),
    ],
)
def test_bad_arrays_are_rejected(mutate, match):
    arrays = dict(
        x=np.ones((4, 3)), y=np.array([1.0, -1.0, 1.0, -1.0]), x_test=np.ones((2, 3)), y_test=np.array([1.0, -1.0])
    )
    mutate(arrays)
    with pytest.raises(ValueError, match=match):
        data.from_arrays(**arrays)


def test_draws_do_not_depend_on_x64_mode():
    """The same seeds give the same data and init whether or not JAX's 64-bit mode is on
    (the tests run with it on; users usually run with it off)."""
    import subprocess
    import sys

    code = (
        "import numpy as np, jax.numpy as jnp\n"
        "from gflow.twolayer import data, model\n"
        "ds = data.gaussian_mixture(key=data.data_key(2), n=6, n_test=4, d=3, kappa=1.0, sigma=0.5)\n"
        "p = model.init_params(key=model.init_key(5), d=3, width=4, init_scale=0.1)\n"
        "print(repr(np.concatenate([np.ravel(v) for v in (ds.x, ds.y, ds.x_test, ds.y_test, p.W, p.a)]).tolist()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    theirs = np.asarray(eval(out))
    ds = data.gaussian_mixture(key=data.data_key(2), n=6, n_test=4, d=3, kappa=1.0, sigma=0.5)
    from gflow.twolayer import model

    p = model.init_params(key=model.init_key(5), d=3, width=4, init_scale=0.1)
    ours = np.concatenate([np.ravel(v) for v in (ds.x, ds.y, ds.x_test, ds.y_test, p.W, p.a)])
    np.testing.assert_array_equal(ours, theirs)


def test_train_and_test_sets_are_independent_draws():
    """The test set shares no point with the training set, and its noise is uncorrelated with the
    training noise at every index (a test set drawn with the training key would repeat the training
    points: JAX's threefry gives the first n test draws equal to the training draws)."""
    n, n_test, d, kappa, sigma = 200, 400, 10, 1.0, 0.5
    ds = data.gaussian_mixture(
        key=data.data_key(0), n=n, n_test=n_test, d=d, kappa=kappa, sigma=sigma, dtype=jnp.float64
    )
    x, y, xt, yt, s = (np.asarray(v) for v in (ds.x, ds.y, ds.x_test, ds.y_test, ds.s))
    dist = np.linalg.norm(x[:, None, :] - xt[None, :, :], axis=-1)
    assert dist.min() > 1e-3 * sigma
    z, zt = (x - kappa * y[:, None] * s) / sigma, (xt - kappa * yt[:, None] * s) / sigma  # the N(0, I) noise
    m = min(n, n_test)
    corr = np.mean(z * zt[:m]) / np.sqrt(np.mean(z**2) * np.mean(zt[:m] ** 2))
    assert abs(corr) < 5 / np.sqrt(m * d), corr  # 5 standard errors of the correlation of independent draws
    assert abs(np.mean(y == yt[:m]) - 0.5) < 5 * 0.5 / np.sqrt(m)  # labels agree at chance


def test_separable_mode_conditions_on_lambda_and_reports_draws():
    base = dict(n=40, d=5, kappa=1.0, sigma=1 / 3.0, n_test=50)
    plain = data.make_dataset(gflow.DataConfig(**base, seed=0))
    assert data.separability_constant(plain.x, plain.y) <= 0  # seed 0 is not separable as drawn
    ds, rep = data.dataset_report(gflow.DataConfig(**base, seed=0, mode="separable"))
    assert rep["draws"] > 1 and rep["conditioned"]
    assert rep["separability"] == data.separability_constant(ds.x, ds.y) > 0
    # only the training set is redrawn: s and the test sample are those of the plain draw
    np.testing.assert_array_equal(ds.s, plain.s)
    np.testing.assert_array_equal(ds.x_test, plain.x_test)
    # the gaussian mode is unchanged (draw 0) and reports λ without conditioning
    ds0, rep0 = data.dataset_report(gflow.DataConfig(**base, seed=0))
    np.testing.assert_array_equal(ds0.x, plain.x)
    assert rep0 == {
        "separability": data.separability_constant(plain.x, plain.y),
        "draws": 1,
        "mode": "gaussian",
        "conditioned": False,
    }


def test_separable_mode_raises_when_impossible():
    with pytest.raises(ValueError, match="no orthogonally separable draw"):
        data.make_dataset(gflow.DataConfig(n=40, d=50, kappa=1.0, sigma=1.0, n_test=10, mode="separable", max_draws=3))


def test_high_dim_mode_noise_per_input_and_near_orthogonality():
    cfg = gflow.DataConfig(n=20, d=4000, kappa=0.5, sigma=1.0, n_test=10, mode="high_dim")
    ds, rep = data.dataset_report(cfg)
    x, y, s = (np.asarray(v, np.float64) for v in (ds.x, ds.y, ds.s))
    noise = x - np.outer(y * 0.5, s)
    np.testing.assert_allclose(np.linalg.norm(noise, axis=1), 1.0, atol=0.06)  # ‖σz‖ ≈ σ whatever d
    np.testing.assert_allclose(float(ds.sigma), 1.0 / np.sqrt(4000), rtol=1e-6)  # per-coordinate σ in Dataset
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    g = (y[:, None] * y[None, :]) * (u @ u.T)
    off = g[~np.eye(20, dtype=bool)]
    np.testing.assert_allclose(off.mean(), 0.25 / 1.25, atol=0.02)  # cos = ±κ²/(κ² + σ²) + O(1/√d)
    assert np.abs(off - 0.2).max() < 0.1 and rep["separability"] == pytest.approx(off.min())
    with pytest.raises(ValueError, match="d ≥ 10·n"):
        data.make_dataset(gflow.DataConfig(n=20, d=100, mode="high_dim"))


@pytest.mark.slow  # over ~5 s (compiles its own programs); runs in .ci/run's slow pass
def test_data_mode_config_and_sweep_axis():
    with pytest.raises(gflow.ConfigError, match="data.mode"):
        gflow.DataConfig(mode="orthogonal")
    # the shapes and flow settings of tests/twolayer/test_sweep.py, so the compiled program is shared
    cfg = gflow.Config(
        data=gflow.DataConfig(n=20, d=30, kappa=1.0, sigma=1 / 4.0, n_test=200, seed=0),
        model=gflow.ModelConfig(width=20),
        flow=gflow.FlowConfig(dtype="float64", n_save=12),
        sweep=gflow.SweepConfig(init_scales=(0.5,), n_seeds=1, grid={"data.mode": ["gaussian", "separable"]}),
    )
    res = gflow.run_sweep(cfg, progress=False)
    assert res.dims["separability"] == ["data.mode"]
    sep, draws = res.arrays["separability"], res.arrays["data_draws"]
    assert sep[0] < 0 < sep[1] and draws[0] == 1 and draws[1] > 1
    assert (sep[0] > 0) == (draws[1] == 1)  # one draw suffices exactly when the plain draw is separable
