"""Deep-net training and sweeps: the multiplier and centering against a hand-written SGD, sweep elements
equal single runs (full batch and minibatch), stopped lanes stay frozen, divergence is a status, new c/η
values compile nothing, chunking, resume and config refusal."""

import dataclasses
import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gflow
import gflow.runs.status
from gflow.deep import stop, train
from gflow.deep.config import DeepConfig, DeepDataConfig, DeepModelConfig, DeepSweepConfig, TrainConfig
from gflow.deep.data import from_arrays, load_dataset
from gflow.deep.models import build_model
from gflow.deep.sweep import lanes_per_chunk, run_deep_sweep
from gflow.runs import status
from gflow.runs.compile_log import track_compiles
from gflow.runs.runner import RunMismatchError

CFG = DeepConfig(
    data=DeepDataConfig(name="digits", n_train=120, n_test=100),
    model=DeepModelConfig(arch="mlp", width=16, depth=1),
    train=TrainConfig(check_every=5, max_steps=100, dtype="float64", diverge_factor=10.0),
    # η = 0.3 reaches the target; η = 300 kills every ReLU at c = 0.01 (max_steps) and diverges at c = 1
    # (loss > 10× its start); η = 1e150 (near the largest learning rate validation accepts) overflows float64 (nonfinite)
    sweep=DeepSweepConfig(multipliers=(0.01, 1.0), lrs=(0.3, 300.0, 1e150), n_seeds=2, max_lanes=12, sync_every=4),
)


@pytest.fixture(scope="module")
def data():
    return load_dataset(CFG.data, jnp.float64)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    return run_deep_sweep(CFG, out=tmp_path_factory.mktemp("deep") / "run", progress=False)


def test_sweep_elements_equal_single_runs(sweep, data):
    arr = sweep.arrays
    assert arr["status"].shape == (2, 3, 2) and sweep.dims["peak_test_acc"] == ["multiplier", "lr", "seed"]
    assert set(sweep.status_names().ravel()) == set(stop.STATUSES)  # the grid exercises every status of the wing
    for i, c in enumerate(CFG.sweep.multipliers):
        for j, lr in enumerate(CFG.sweep.lrs):
            for s in range(2):
                one = train.train_run(CFG.model, CFG.train, data, multiplier=c, lr=lr, seed=s)
                for name, v in one.items():
                    np.testing.assert_allclose(
                        arr[name][i, j, s], v, rtol=1e-9, atol=1e-12, err_msg=f"{name} {c} {lr} {s}"
                    )
    ok = arr["status"] == stop.STATUS_CODE["reached_target"]
    assert np.all(arr["final_train_acc"][ok] >= 0.99)
    assert np.all(arr["steps"] % CFG.train.check_every == 0) and np.all(arr["steps"] <= CFG.train.max_steps)
    assert arr["seed"].tolist() == [0, 1] and not np.array_equal(
        arr["init_test_acc"][..., 0], arr["init_test_acc"][..., 1]
    )


def test_minibatch_lanes_equal_single_runs(sweep, data):
    tcfg = dataclasses.replace(CFG.train, batch_size=32)  # 3 batches per epoch, reshuffled every epoch
    cs, lrs, seeds = [1.0, 1.0, 0.01], [0.3, 0.3, 0.3], [0, 1, 0]
    out = train.train_lanes(CFG.model, tcfg, data, train.make_lanes(cs, lrs, seeds, jnp.float64))
    for k in range(3):
        one = train.train_run(CFG.model, tcfg, data, multiplier=cs[k], lr=lrs[k], seed=seeds[k])
        for name, v in one.items():
            np.testing.assert_allclose(out[name][k], v, rtol=1e-9, atol=1e-12, err_msg=name)
    assert out["final_train_loss"][0] != sweep.arrays["final_train_loss"][1, 0, 0]  # minibatching changes the run


def test_stopped_lanes_stay_frozen(sweep, data):
    """Advance one check at a time: once a lane has stopped, nothing of it changes, bit for bit."""
    c, lr, seed = (v.ravel() for v in np.meshgrid(CFG.sweep.multipliers, CFG.sweep.lrs, np.arange(2), indexing="ij"))
    lanes = train.make_lanes(c, lr, seed, jnp.float64)
    state = train.init_lanes(CFG.model, CFG.train, data, lanes)
    snapshots = {}
    n_rounds = 0
    while np.any(np.asarray(state.status) == train.RUNNING):
        state = train.advance(state, lanes, data, CFG.model, CFG.train, n_rounds=1)
        n_rounds += 1
        for k in np.flatnonzero(np.asarray(state.status) != train.RUNNING):
            lane = jax.tree.map(lambda v, k=k: np.asarray(v[k]), state)
            if k in snapshots:
                for a, b in zip(jax.tree.leaves(snapshots[k]), jax.tree.leaves(lane)):
                    np.testing.assert_array_equal(a, b)
            else:
                snapshots[k] = lane
    steps = np.asarray(state.step)
    assert steps.min() < steps.max() == n_rounds * CFG.train.check_every  # some lanes stopped early, others ran on
    np.testing.assert_array_equal(steps, sweep.arrays["steps"].ravel())


def test_divergence_is_a_status_not_an_error(sweep):
    arr, names = sweep.arrays, sweep.status_names()
    assert np.all(names[1, 1] == "diverged") and np.all(names[:, 2] == "nonfinite")
    bad = np.isin(names, ("diverged", "nonfinite"))
    assert np.all(arr["steps"][bad] == CFG.train.check_every)  # stopped at the first check, not run to the budget
    assert np.all(np.isnan(arr["final_test_acc"][names == "nonfinite"]))
    assert np.all(np.isnan(arr["peak_test_acc"][names == "nonfinite"]))
    manifest = json.loads((sweep.dir / "manifest.json").read_text())
    assert sum(manifest["status_counts"].values()) == 12 and manifest["complete"]
    ds = gflow.load_run(sweep.dir)  # labeled: dims from the named axes, statuses named, config in attrs
    assert ds.peak_test_acc.dims == ("multiplier", "lr", "seed") and ds.step_size.dims == ("multiplier", "lr")
    np.testing.assert_array_equal(ds.multiplier, CFG.sweep.multipliers)
    np.testing.assert_array_equal(gflow.runs.status.names_of(ds.status), names)
    assert ds.status.attrs["flag_meanings"].split() == list(stop.STATUSES)
    assert ds.attrs["config"] == json.loads(json.dumps(CFG.to_dict()))
    assert sweep.to_dataset().drop_attrs().identical(ds.drop_attrs())  # the same Dataset in memory


def test_new_multipliers_compile_nothing(sweep, tmp_path):
    other = CFG.replace(sweep={"multipliers": (0.2, 2.0), "lrs": (0.1, 1.0, 5.0)})
    with track_compiles() as log:
        res = run_deep_sweep(other, out=tmp_path / "other", progress=False)
    assert log.count == 0 and res.meta["n_compiles"] == 0
    np.testing.assert_array_equal(res.arrays["multiplier"], [0.2, 2.0])
    np.testing.assert_allclose(res.arrays["step_size"], np.array([[0.1, 1.0, 5.0]]) / np.array([[0.2], [2.0]]))


def test_chunks_padding_resume_and_refusal(sweep, tmp_path):
    chunked = CFG.replace(sweep={"max_lanes": 5})
    out = tmp_path / "chunked"
    res = run_deep_sweep(chunked, out=out, progress=False)
    assert res.meta["n_chunks"] == 3 and res.meta["lanes_per_chunk"] == 5  # 5 + 5 + 2 (padded to 5)
    for name in train.RECORDS:
        np.testing.assert_allclose(res.arrays[name], sweep.arrays[name], rtol=1e-9, atol=1e-12, err_msg=name)
    # resume: a lost chunk is recomputed, the others are read back
    (out / "chunks" / "chunk-000001.npz").unlink()
    (out / "results.nc").unlink()
    again = run_deep_sweep(chunked, out=out, progress=False)
    for name in train.RECORDS:
        np.testing.assert_array_equal(again.arrays[name], res.arrays[name])
    changed = chunked.replace(train={"target_acc": 0.9})
    with pytest.raises(RunMismatchError, match="train.target_acc"):
        run_deep_sweep(changed, out=out, progress=False)


def test_memory_budget_sets_lanes_per_chunk(data):
    big, per_lane = lanes_per_chunk(CFG.replace(sweep={"max_lanes": 0}), data, 1000)
    small, _ = lanes_per_chunk(
        CFG.replace(sweep={"max_lanes": 0, "memory_budget_mb": 3 * per_lane / 2**20}), data, 1000
    )
    assert small == 3 and big > 3 and per_lane > 0
    assert lanes_per_chunk(CFG.replace(sweep={"max_lanes": 0, "memory_budget_mb": 1e-6}), data, 1000)[0] == 1


def _manual_sgd(mcfg, data, c, eta, steps, seed=0):
    """Reference written out here: optax SGD with step size η/c on the mean loss of c·f_θ, or of
    c·(f_θ − f_θ₀) when centered, from the init of `seed`."""
    key = jax.random.fold_in(jax.random.PRNGKey(train.INIT_ROOT), seed)
    model = eqx.filter_jit(build_model)(mcfg, data.x.shape[1:], data.n_out, key=key, dtype=jnp.float64)
    params, static = eqx.partition(model, eqx.is_array)
    f0 = jax.vmap(model)(data.x)

    def loss(p):
        f = jax.vmap(eqx.combine(p, static))(data.x)
        out = c * (f - f0) if mcfg.centered else c * f
        if data.n_out == 1:
            return jnp.mean(jax.nn.softplus(-(2.0 * data.y - 1.0) * out[:, 0]))
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(out, data.y))

    opt = optax.sgd(eta / c)

    @jax.jit
    def run(params):
        state = opt.init(params)
        for _ in range(steps):
            updates, state = opt.update(jax.grad(loss)(params), state)
            params = optax.apply_updates(params, updates)
        return params, loss(params)

    params, final_loss = run(params)
    return params, float(final_loss)


def test_uncentered_lanes_train_c_f_with_step_eta_over_c(data):
    """Lanes of the sweep grid against the hand-written SGD: at c = 1 the plain net with step η; at
    c = 0.01 the net c·f with step η/c, which a step of η (or the plain net) would not reproduce."""
    c, lr, seed = (v.ravel() for v in np.meshgrid(CFG.sweep.multipliers, CFG.sweep.lrs, np.arange(2), indexing="ij"))
    lanes = train.make_lanes(c, lr, seed, jnp.float64)
    state = train.advance(
        train.init_lanes(CFG.model, CFG.train, data, lanes), lanes, data, CFG.model, CFG.train, n_rounds=1
    )
    steps = CFG.train.check_every
    for k, cval in ((6, 1.0), (0, 0.01)):
        assert (c[k], lr[k], seed[k]) == (cval, 0.3, 0)
        ref_params, ref_loss = _manual_sgd(CFG.model, data, cval, 0.3, steps=steps)
        for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(ref_params)):
            np.testing.assert_allclose(a[k], b, rtol=1e-10, atol=1e-12)
        assert float(state.train_loss[k]) == pytest.approx(ref_loss, rel=1e-10)
    # the check can tell the step size apart: SGD on c·f with step η instead of η/c ends elsewhere
    wrong, _ = _manual_sgd(CFG.model, data, 0.01, 0.3 * 0.01, steps=steps)
    gap = max(float(np.max(np.abs(a[0] - b))) for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(wrong)))
    assert gap > 1e-4, gap


def test_minibatch_order_is_reshuffled_every_epoch():
    """One-hot inputs make the batch visible: an SGD step changes column i of the first layer only if
    example i is in the batch. Each epoch covers every example once, and the three epochs' batch
    sequences all differ (a fixed order would repeat them)."""
    n, batch = 12, 4
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], n // 2)
    small = from_arrays(np.eye(n), y, np.eye(n)[:4], y[:4], n_classes=2, standardize=False, dtype=jnp.float64)
    mcfg = DeepModelConfig(arch="mlp", width=16, depth=1)
    tcfg = TrainConfig(batch_size=batch, check_every=1, max_steps=100, dtype="float64")
    lane = train.Lane(
        jnp.asarray(1.0, jnp.float64), jnp.asarray(0.1, jnp.float64), jnp.asarray(rng.integers(10), jnp.uint32)
    )
    state = train._init_single(lane, jnp.asarray(tcfg.budget(1.0), jnp.int32), small, mcfg, tcfg)
    static = train.model_static(mcfg, small, jnp.float64)
    batches = []
    for _ in range(3 * n // batch):
        before = np.asarray(state.params.hidden[0].weight)
        state = train._step_host(state, lane, small, static, tcfg, False)
        changed = np.flatnonzero(np.any(np.asarray(state.params.hidden[0].weight) != before, axis=0))
        assert len(changed) == batch, changed
        batches.append(tuple(changed))
    epochs = [batches[e * (n // batch) : (e + 1) * (n // batch)] for e in range(3)]
    for ep in epochs:
        assert sorted(i for b in ep for i in b) == list(range(n))
    assert epochs[0] != epochs[1] and epochs[1] != epochs[2] and epochs[0] != epochs[2], epochs


def _one_lane(data):
    """(lane, initial state, static model, eval set) of one unbatched lane: c = 1, η = 0.3, seed 0."""
    lane = train.Lane(jnp.asarray(1.0, jnp.float64), jnp.asarray(0.3, jnp.float64), jnp.asarray(0, jnp.uint32))
    state = train._init_single(lane, jnp.asarray(CFG.train.budget(1.0), jnp.int32), data, CFG.model, CFG.train)
    return lane, state, train.model_static(CFG.model, data, jnp.float64), gflow.deep.loss.train_test_examples(data)


def test_peak_step_is_the_first_check_of_a_tie(data):
    """The peak step is chosen on validation: a check whose validation accuracy ties the peak keeps the
    earlier peak step (and its test accuracy); a better one moves both. peak_test_acc tracks the test set's
    own maximum regardless (a test-selected reference)."""
    lane, state, static, eval_set = _one_lane(data)
    first = train._check_host(state, lane, data, eval_set, static, CFG.train, False)
    val, acc = float(first.val_acc), float(first.test_acc)
    assert data.x_val.shape[0] == 200 and np.isfinite(val)
    for peak, expected_step in ((val, 5), (val - 0.01, 10), (val + 0.01, 5)):
        before = state._replace(
            step=jnp.asarray(10, jnp.int32),
            peak_val_acc=jnp.asarray(peak, jnp.float64),
            peak_step=jnp.asarray(5, jnp.int32),
            test_acc_at_peak=jnp.asarray(-1.0, jnp.float64),
            peak_test_acc=jnp.asarray(2.0, jnp.float64),
        )
        after = train._check_host(before, lane, data, eval_set, static, CFG.train, False)
        assert float(after.test_acc) == acc and float(after.val_acc) == val
        assert int(after.peak_step) == expected_step, (peak, val)
        assert float(after.peak_val_acc) == max(peak, val)
        assert float(after.test_acc_at_peak) == (acc if expected_step == 10 else -1.0)
        assert float(after.peak_test_acc) == 2.0  # a higher test peak elsewhere does not move the selection
    # without a validation set (data.n_val = -1) the peak is selected on the test set, as before the split
    no_val = load_dataset(dataclasses.replace(CFG.data, n_val=-1), jnp.float64)
    lane, state, static, eval_set = _one_lane(no_val)
    before = state._replace(
        step=jnp.asarray(10, jnp.int32),
        peak_test_acc=jnp.asarray(-1.0, jnp.float64),
        peak_step=jnp.asarray(5, jnp.int32),
    )
    after = train._check_host(before, lane, no_val, eval_set, static, CFG.train, False)
    assert int(after.peak_step) == 10 and float(after.test_acc_at_peak) == float(after.test_acc)
    assert np.isnan(float(after.peak_val_acc)) and np.isnan(float(after.val_acc))


def test_stop_rule_reaches_the_target_at_equality(data):
    """Training accuracy equal to target_acc stops the run (the rule is ≥, not >)."""
    lane, state, static, eval_set = _one_lane(data)
    acc = float(train._check_host(state, lane, data, eval_set, static, CFG.train, False).train_acc)
    assert 0 < acc < 1
    for target, want in ((acc, "reached_target"), (np.nextafter(acc, 1.0), "running")):
        tcfg = dataclasses.replace(CFG.train, target_acc=float(target))
        after = train._check_host(state, lane, data, eval_set, static, tcfg, False)
        assert status.names_of(after.status) == want, (target, acc)


def test_centered_multiplier_trains_c_times_the_change():
    """Centered, binary (logistic loss on one output): the lane trains c·(f_θ − f_θ₀) with step η/c, and
    its output is exactly 0 at init."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(24, 6)), rng.integers(0, 2, 24)
    small = from_arrays(x, y, x[:10] + 0.1, y[:10], n_classes=2, dtype=jnp.float64)
    mcfg = DeepModelConfig(arch="mlp", width=8, depth=1, centered=True)
    tcfg = TrainConfig(check_every=5, max_steps=50, target_acc=1.0, dtype="float64")
    lanes = train.make_lanes([0.5], [0.3], [0], jnp.float64)
    state = train.init_lanes(mcfg, tcfg, small, lanes)
    assert float(state.init_train_loss[0]) == pytest.approx(np.log(2), rel=1e-12)
    state = train.advance(state, lanes, small, mcfg, tcfg, n_rounds=1)
    ref_params, ref_loss = _manual_sgd(mcfg, small, 0.5, 0.3, steps=5)
    for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(ref_params)):
        np.testing.assert_allclose(a[0], b, rtol=1e-10, atol=1e-12)
    assert float(state.train_loss[0]) == pytest.approx(ref_loss, rel=1e-10)


def test_device_loop_matches_host_loop(sweep, data):
    """The accelerator path (whole rounds in one compiled while loop) gives the host-driven CPU path's numbers."""
    c, lr, seed = (v.ravel() for v in np.meshgrid(CFG.sweep.multipliers, CFG.sweep.lrs, np.arange(2), indexing="ij"))
    out = train.train_lanes(
        CFG.model, CFG.train, data, train.make_lanes(c, lr, seed, jnp.float64), sync_every=4, loop="device", curves=True
    )
    for name in train.RECORDS:
        np.testing.assert_allclose(out[name], sweep.arrays[name].ravel(), rtol=1e-9, atol=1e-12, err_msg=name)
    # and the learning curves: every check of every lane, NaN after its stop (the sweep stores float32)
    for k, name in enumerate(train.CURVES):
        host = sweep.arrays[f"curve_{name}"].reshape(len(c), -1)
        np.testing.assert_allclose(
            out["curves"][..., k].astype(np.float32), host, rtol=1e-6, equal_nan=True, err_msg=name
        )
    n_points = np.sum(np.isfinite(sweep.arrays["curve_train_loss"]), axis=-1).ravel()
    stopped_finite = np.isfinite(sweep.arrays["final_train_loss"]).ravel()
    assert np.all(
        n_points[stopped_finite] == sweep.arrays["steps"].ravel()[stopped_finite] // CFG.train.check_every + 1
    )
