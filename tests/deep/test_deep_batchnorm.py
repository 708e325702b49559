"""BatchNorm as torch does it: batch statistics in training steps, running averages (momentum 0.1,
unbiased variance) in evaluation, evaluated in bounded batches; and a BatchNorm sweep end to end, from the
command line, against single unvmapped runs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gflow
from gflow import cli
from gflow.deep import stop, train
from gflow.deep.config import DeepModelConfig, TrainConfig, load_preset
from gflow.deep.data import from_arrays, load_dataset
from gflow.deep.loss import forward_all
from gflow.deep.models import split
from gflow.runs import status


def test_running_averages_and_evaluation_against_numpy():
    """One full-batch SGD step of a conv–BatchNorm–ReLU–mean–head net: the running averages become
    0.9·(0, 1) + 0.1·(batch mean, unbiased batch variance) of the conv outputs at θ₀ (numpy, float64),
    the trained parameters exclude them, and an evaluation normalizes with them, whatever the batch size."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 2, 5, 5)) * np.array([1.0, 3.0]).reshape(1, 2, 1, 1) + 0.5, rng.integers(0, 3, 12)
    data = from_arrays(x, y, x[:5] * 1.3, y[:5], n_classes=3, standardize=False, dtype=jnp.float64)
    mcfg = DeepModelConfig(arch="cnn", width=4, depth=2, norm="batch")
    tcfg = TrainConfig(check_every=1, max_steps=5, target_acc=1.0, dtype="float64", eval_batch_size=4)
    lane = train.Lane(jnp.asarray(0.5, jnp.float64), jnp.asarray(0.1, jnp.float64), jnp.asarray(0, jnp.uint32))
    state = train._init_single(lane, jnp.asarray(5, jnp.int32), data, mcfg, tcfg)
    static = train.model_static(mcfg, data, jnp.float64)
    net0 = train.eqx.combine(state.params, state.buffers, static)
    conv0 = np.asarray(jax.vmap(net0.convs[0])(data.x), np.float64)  # (12, 4, 5, 5)
    state1 = train._step_host(state, lane, data, static, tcfg, False)
    bn = state1.buffers.norms[0]
    n = 12 * 25
    np.testing.assert_allclose(np.asarray(bn.running_mean), 0.1 * conv0.mean(axis=(0, 2, 3)), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        np.asarray(bn.running_var), 0.9 + 0.1 * conv0.var(axis=(0, 2, 3)) * n / (n - 1), rtol=1e-10
    )
    # evaluation at θ₁ with the running averages, per example: numpy reference
    net1 = train.eqx.combine(state1.params, state1.buffers, static)
    xs = np.concatenate([x, x[:5] * 1.3])
    conv1 = np.asarray(jax.vmap(net1.convs[0])(jnp.asarray(xs)), np.float64)
    rm, rv = np.asarray(bn.running_mean).reshape(1, -1, 1, 1), np.asarray(bn.running_var).reshape(1, -1, 1, 1)
    scale = np.asarray(state1.params.norms[0].scale).reshape(1, -1, 1, 1)
    shift = np.asarray(state1.params.norms[0].shift).reshape(1, -1, 1, 1)
    h = np.maximum((conv1 - rm) / np.sqrt(rv + 1e-5) * scale + shift, 0.0).mean(axis=(2, 3))
    ref = h @ np.asarray(net1.head.weight).T + np.asarray(net1.head.bias)
    for batch in (4, 17, 100):  # lax.map batches of 4 (with a remainder), or one pass: the same per-example outputs
        np.testing.assert_allclose(np.asarray(forward_all(net1, jnp.asarray(xs), batch)), ref, rtol=1e-10, atol=1e-12)
    # the trained arrays hold no buffer: weight decay and gradients never touch the running averages
    params, buffers, _ = split(net1)
    assert params.norms[0].running_mean is None and buffers.norms[0].scale is None
    # a frozen (stopped) lane keeps its running averages
    stopped = state1._replace(status=jnp.asarray(stop.STATUS_CODE["max_steps"], jnp.int32))
    again = train._step_host(stopped, lane, data, static, tcfg, False)
    np.testing.assert_array_equal(np.asarray(again.buffers.norms[0].running_mean), np.asarray(bn.running_mean))


@pytest.mark.slow  # over ~5 s (compiles its own programs); runs in .ci/run's slow pass
def test_batchnorm_sweep_from_the_cli_equals_single_runs(tmp_path, capsys):
    """`gflow deep sweep --preset edim-cnn --quick --set model.norm=batch` (2 c × 1 η × 1 seed in one
    vmapped chunk) runs to its summary, and every run's status, steps and accuracies equal a single
    unvmapped run's (this sweep crashed before training with 'unbound axis name: batch')."""
    out = tmp_path / "bn"
    sets = [
        "model.norm=batch",
        "sweep.multipliers=[0.25, 1.0]",
        "sweep.lrs=[0.3]",
        "sweep.n_seeds=1",
        "sweep.max_lanes=2",
    ]
    rc = cli.main(
        ["deep", "sweep", "--preset", "edim-cnn", "--quick", "--out", str(out), "--quiet", "--no-plot"]
        + [a for s in sets for a in ("--set", s)]
    )
    assert rc == 0, capsys.readouterr()
    ds = gflow.load_run(out)
    assert ds.attrs["lanes_per_chunk"] == 2 and ds.attrs["selection"] == "validation"
    cfg = load_preset("edim-cnn", quick=True).with_overrides(sets)
    data = load_dataset(cfg.data)
    assert data.x_val.shape[0] == 64  # edim: half of n_test
    for i, c in enumerate((0.25, 1.0)):
        one = train.train_run(cfg.model, cfg.train, data, multiplier=c, lr=0.3, seed=0, curves=True)
        assert status.names_of(int(ds["status"][i, 0, 0])) == status.names_of(one["status"])
        for name in (
            "steps",
            "peak_step",
            "peak_val_acc",
            "test_acc_at_peak",
            "peak_test_acc",
            "final_train_acc",
            "final_test_acc",
            "final_train_loss",
        ):
            np.testing.assert_allclose(float(ds[name][i, 0, 0]), one[name], rtol=2e-5, atol=1e-6, err_msg=name)
        for k, name in enumerate(train.CURVES):
            np.testing.assert_allclose(
                ds[f"curve_{name}"][i, 0, 0].values[: len(one["curves"])],
                one["curves"][:, k],
                rtol=2e-5,
                atol=1e-6,
                err_msg=name,
            )
        assert 0.0 <= one["test_acc_at_peak"] <= 1.0
    summary = (out / "summary.json").read_text()
    assert "NaN" not in summary and "Infinity" not in summary
