"""SGD training of deep nets with an output multiplier c, vmapped over replicas ("lanes").

A lane is one run, set by three traced values: the multiplier c, the base learning rate η and the
init seed. Its model is
    F(x) = c·f_θ(x),   or, centered,   F(x) = c·(f_θ(x) − f_θ₀(x)),
with f_θ₀ the net at init, held fixed (precomputed once on the train, validation and test sets). The loss is
softmax cross-entropy for K > 2 classes and the logistic loss softplus(−y·F) (y = ±1) for K = 2. SGD
(optax; momentum, coupled L2 and decoupled decay only if configured) uses step size η/c. Time is
counted in SGD steps.

Stop rule, checked every `check_every` steps on the full training set: training accuracy ≥ target_acc,
or training loss ≤ target_loss (if > 0), within the run's step budget `TrainConfig.budget(c)`
(max_steps, scaled up for c < budget_c when budget_power > 0; recorded per run as `budget`). Every check evaluates the training,
validation and test sets (a point of the run's learning curves, `CURVES`); the peak step is chosen on
validation and the test accuracy at it is the number reported (`gflow.deep.stop`). BatchNorm nets
train with batch statistics and update their running averages (buffers of the lane) after every step;
evaluations use the running averages (`gflow.deep.loss`). A lane that has
stopped (any status) is frozen: every later update is masked out with `jnp.where`, so its parameters and
records stay bit-identical while the other lanes of its chunk keep training. A diverged lane is a status,
never an exception.

Loops: on an accelerator a chunk of lanes runs whole rounds inside one compiled while loop; on the CPU
the rounds are driven from Python (see `_run`: XLA:CPU convolutions are ~10× slower inside loop bodies).
Both give the same numbers.

Keys: init seed i uses fold_in(PRNGKey(INIT_ROOT), i), its minibatch order fold_in(PRNGKey(ORDER_ROOT), i),
so seed i is the same run for every c and η, whatever the number of seeds or lanes per chunk.
"""

from __future__ import annotations

import functools
import math
from functools import partial

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..numerics import INIT_ROOT
from .config import DeepModelConfig, TrainConfig
from .data import DeepDataset
from .lanes import Lane, LaneState
from .loss import (
    eval_examples,
    evaluate,
    forward_all,
    forward_train,
    outputs,
    per_example,
    split_sizes,
)
from .models import build_model, split, with_running_stats
from .optim import make_optimizer
from .stop import CURVES, RUNNING, check, curve_point

ORDER_ROOT = 0x0D3E
RECORDS = {
    "status": "code of the run's status (see statuses)",
    "steps": "SGD steps taken when the run stopped",
    "budget": "the run's step budget: TrainConfig.budget(c)",
    "peak_val_acc": "highest validation accuracy over the checks (step 0 excluded); NaN without a validation set",
    "peak_step": "step of the first check with the peak validation accuracy (peak test accuracy without a "
    "validation set): the selected point of the run",
    "test_acc_at_peak": "test accuracy at peak_step: the reported accuracy of the run",
    "peak_test_acc": "highest test accuracy over the checks (step 0 excluded): selected on test, an optimistic "
    "reference, not the reported accuracy",
    "final_test_acc": "test accuracy at the stop (NaN for nonfinite runs, as is final_train_acc)",
    "final_test_loss": "test loss at the stop",
    "final_train_acc": "training accuracy at the stop",
    "final_train_loss": "training loss at the stop",
    "init_test_acc": "test accuracy at step 0",
    "init_train_loss": "training loss at step 0 (log K, or log 2 for binary, when centered)",
}


def make_lanes(multipliers, lrs, seeds, dtype=jnp.float32) -> Lane:
    """Lanes from three equal-length sequences."""
    return Lane(
        jnp.asarray(np.asarray(multipliers, np.float64), dtype),
        jnp.asarray(np.asarray(lrs, np.float64), dtype),
        jnp.asarray(np.asarray(seeds), jnp.uint32),
    )


def _keys(seed):
    return (
        jax.random.fold_in(jax.random.PRNGKey(INIT_ROOT), seed),
        jax.random.fold_in(jax.random.PRNGKey(ORDER_ROOT), seed),
    )


def model_static(mcfg: DeepModelConfig, data: DeepDataset, dtype):
    """The non-array part of the model (identical for every lane); nothing is initialized."""
    return _model_static(mcfg, tuple(data.x.shape[1:]), data.n_out, jnp.dtype(dtype))


@functools.lru_cache(maxsize=64)
def _model_static(mcfg, input_shape, n_out, dtype):
    shapes = eqx.filter_eval_shape(
        partial(build_model, mcfg, input_shape, n_out, dtype=dtype), key=jax.random.PRNGKey(0)
    )
    return split(shapes, lambda v: isinstance(v, jax.ShapeDtypeStruct))[2]


def init_lane(lane: Lane, budget, data: DeepDataset, *, mcfg: DeepModelConfig, tcfg: TrainConfig) -> LaneState:
    """Initialize one lane: parameters from its seed, f_θ₀ if centered, and the step-0 evaluation."""
    dtype = jnp.dtype(tcfg.dtype)
    init_key, _ = _keys(lane.seed)
    model = build_model(mcfg, data.x.shape[1:], data.n_out, key=init_key, dtype=dtype)
    params, buffers, _ = split(model)
    c = lane.multiplier.astype(dtype)
    x_all, y_all = eval_examples(data)
    net0 = forward_all(model, x_all, tcfg.eval_batch_size)
    f0 = net0 if mcfg.centered else None
    train_loss, train_acc, val_loss, val_acc, test_loss, test_acc = evaluate(
        outputs(net0, c, f0), y_all, split_sizes(data), binary=data.n_out == 1
    )
    zero, nan = jnp.zeros((), dtype), jnp.full((), jnp.nan, dtype)
    log_k = jnp.asarray(math.log(data.n_classes), dtype)
    return LaneState(
        params=params,
        buffers=buffers,
        opt_state=make_optimizer(tcfg, lane.lr).init(params),
        f0=f0,
        step=jnp.zeros((), jnp.int32),
        status=jnp.full((), RUNNING, jnp.int32),
        train_loss=train_loss,
        train_acc=train_acc,
        val_loss=val_loss,
        val_acc=val_acc,
        test_loss=test_loss,
        test_acc=test_acc,
        peak_test_acc=nan,
        peak_val_acc=nan,
        peak_step=jnp.zeros((), jnp.int32),
        test_acc_at_peak=nan,
        loss_ref=jnp.maximum(jnp.where(jnp.isfinite(train_loss), train_loss, zero), log_k),
        init_test_acc=test_acc,
        init_train_loss=train_loss,
        budget=jnp.asarray(budget, jnp.int32),
    )


AUGMENT_SALT = 0xA06  # the augmentation key of step s: fold_in(fold_in(order key, AUGMENT_SALT), s)
CROP_PAD = 4


def augment(x, key):
    """Random crop and flip of a batch of images x (B, C, H, W): each image is zero-padded by CROP_PAD pixels
    on every side, cropped back to H × W at a uniform offset in [0, 2·CROP_PAD]², and flipped left–right
    with probability 1/2 (the usual CIFAR augmentation)."""
    if x.ndim != 4:
        raise ValueError(f"train.augment: needs images (channels, height, width), got examples of shape {x.shape[1:]}")
    b, _, h, w = x.shape
    k_off, k_flip = jax.random.split(key)
    offsets = jax.random.randint(k_off, (b, 2), 0, 2 * CROP_PAD + 1)
    flips = jax.random.bernoulli(k_flip, 0.5, (b,))
    padded = jnp.pad(x, ((0, 0), (0, 0), (CROP_PAD, CROP_PAD), (CROP_PAD, CROP_PAD)))

    def one(img, off, flip):
        crop = jax.lax.dynamic_slice(img, (0, off[0], off[1]), (img.shape[0], h, w))
        return jnp.where(flip, crop[..., ::-1], crop)

    return jax.vmap(one)(padded, offsets, flips)


def sgd_step(state: LaneState, lane: Lane, data: DeepDataset, *, static, tcfg: TrainConfig) -> LaneState:
    """One SGD step of one lane (step size η/c); a stopped lane is returned unchanged."""
    dtype = jnp.dtype(tcfg.dtype)
    c = lane.multiplier.astype(dtype)
    opt = make_optimizer(tcfg, (lane.lr / lane.multiplier).astype(dtype))
    binary = data.n_out == 1
    active = state.status == RUNNING
    n = data.x.shape[0]
    batch = tcfg.batch_size if 0 < tcfg.batch_size < n else n
    if batch < n:  # minibatch: a fresh permutation of the data every epoch, keyed by the init seed
        per_epoch = n // batch
        _, order_key = _keys(lane.seed)
        perm = jax.random.permutation(jax.random.fold_in(order_key, state.step // per_epoch), n)
        idx = jax.lax.dynamic_slice(perm, ((state.step % per_epoch) * batch,), (batch,))
        x, y = data.x[idx], data.y[idx]
        f0 = None if state.f0 is None else state.f0[idx]
    else:
        x, y, f0 = data.x, data.y, None if state.f0 is None else state.f0[:n]
    if tcfg.augment and state.f0 is not None:
        raise ValueError("train.augment: not defined with model.centered (f_θ₀ is stored for the un-augmented images)")
    if tcfg.augment:  # a fresh crop and flip of every image at every step, keyed by the init seed
        x = augment(x, jax.random.fold_in(jax.random.fold_in(_keys(lane.seed)[1], AUGMENT_SALT), state.step))

    def loss_fn(params):
        model = eqx.combine(params, state.buffers, static)
        net, batch_stats = forward_train(model, x)
        out = outputs(net, c, f0)
        buffers = split(with_running_stats(model, batch_stats))[1]  # BatchNorm: running averages move
        return jnp.mean(jax.vmap(partial(per_example, binary=binary))(out, y)[0]), buffers

    grads, buffers = jax.grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = opt.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    keep = partial(jnp.where, active)  # frozen lanes keep their old values
    return state._replace(
        params=jax.tree.map(keep, params, state.params),
        buffers=jax.tree.map(keep, buffers, state.buffers),
        opt_state=jax.tree.map(keep, opt_state, state.opt_state),
        step=state.step + active.astype(jnp.int32),
    )


def train_round(state: LaneState, lane: Lane, data: DeepDataset, eval_set, *, static, tcfg: TrainConfig) -> LaneState:
    """`check_every` SGD steps of one lane, then the stop-rule check."""
    step = partial(sgd_step, lane=lane, data=data, static=static, tcfg=tcfg)
    state = jax.lax.scan(lambda s, _: (step(s), None), state, None, length=tcfg.check_every)[0]
    return check(state, lane, data, eval_set, static=static, tcfg=tcfg)


@eqx.filter_jit
def _init_batched(lanes: Lane, budgets, data: DeepDataset, mcfg: DeepModelConfig, tcfg: TrainConfig) -> LaneState:
    return jax.vmap(partial(init_lane, mcfg=mcfg, tcfg=tcfg), in_axes=(0, 0, None))(lanes, budgets, data)


@eqx.filter_jit
def _init_single(lane: Lane, budget, data: DeepDataset, mcfg: DeepModelConfig, tcfg: TrainConfig) -> LaneState:
    return init_lane(lane, budget, data, mcfg=mcfg, tcfg=tcfg)


def budgets(tcfg: TrainConfig, multipliers) -> np.ndarray:
    """The step budget `tcfg.budget(c)` of each multiplier, as int32."""
    return np.asarray([tcfg.budget(float(c)) for c in np.atleast_1d(np.asarray(multipliers, np.float64))], np.int32)


def _lanewise(fn, batched: bool, n_shared: int):
    """vmap `fn(state, lane, *shared)` over lanes when batched."""
    return jax.vmap(fn, in_axes=(0, 0) + (None,) * n_shared) if batched else fn


def _point(before: LaneState, after: LaneState) -> jax.Array:
    """The learning-curve values (`CURVES`, last axis) of a round: NaN for lanes that had stopped before it."""
    nan = jnp.full((), jnp.nan, after.train_loss.dtype)
    return jnp.where((before.status == RUNNING)[..., None], curve_point(after), nan)


@eqx.filter_jit
def _advance_device(
    state: LaneState,
    lanes: Lane,
    data: DeepDataset,
    n_rounds: jax.Array,
    static,
    tcfg: TrainConfig,
    batched: bool,
    max_rounds: int,
) -> tuple[LaneState, jax.Array]:
    """Up to `n_rounds` (≤ max_rounds) rounds in one program (a while loop), or fewer if every lane has
    stopped; also the learning-curve points of each round, (max_rounds, [lanes,] len(CURVES)), NaN-padded."""
    round_fn = _lanewise(partial(train_round, static=static, tcfg=tcfg), batched, 2)
    eval_set = eval_examples(data)
    points = jnp.full((max_rounds,) + state.status.shape + (len(CURVES),), jnp.nan, state.train_loss.dtype)

    def cond(carry):
        i, s, _ = carry
        return (i < n_rounds) & jnp.any(s.status == RUNNING)

    def body(carry):
        i, s, pts = carry
        new = round_fn(s, lanes, data, eval_set)
        return i + 1, new, pts.at[i].set(_point(s, new))

    _, state, points = jax.lax.while_loop(cond, body, (jnp.zeros((), jnp.int32), state, points))
    return state, points


@eqx.filter_jit
def _step_host(state: LaneState, lanes: Lane, data: DeepDataset, static, tcfg: TrainConfig, batched: bool) -> LaneState:
    return _lanewise(partial(sgd_step, static=static, tcfg=tcfg), batched, 1)(state, lanes, data)


@eqx.filter_jit
def _check_host(
    state: LaneState, lanes: Lane, data: DeepDataset, eval_set, static, tcfg: TrainConfig, batched: bool
) -> LaneState:
    return _lanewise(partial(check, static=static, tcfg=tcfg), batched, 2)(state, lanes, data, eval_set)


@eqx.filter_jit
def _check_point_host(
    state: LaneState, lanes: Lane, data: DeepDataset, eval_set, static, tcfg: TrainConfig, batched: bool
) -> tuple[LaneState, jax.Array]:
    new = _lanewise(partial(check, static=static, tcfg=tcfg), batched, 2)(state, lanes, data, eval_set)
    return new, _point(state, new)


_eval_set_jit = eqx.filter_jit(eval_examples)


def _run(state, lanes, data, mcfg, tcfg, n_rounds: int, *, batched: bool, loop: str) -> tuple[LaneState, np.ndarray]:
    """Up to `n_rounds` rounds of `check_every` steps and a check each, by the chosen loop, and the
    learning-curve points of the rounds, (n_rounds, [lanes,] len(CURVES)) (NaN for rounds not run or for
    lanes stopped before them). 'device' runs the rounds in one compiled while loop (no host round trips: for
    accelerators); 'host' calls a compiled step `check_every` times and then a compiled check, from
    Python. XLA:CPU runs convolutions inside loop bodies about 10× slower than in straight-line code, so
    'auto' picks 'host' on the CPU."""
    static = model_static(mcfg, data, jnp.dtype(tcfg.dtype))
    if loop == "auto":
        loop = "host" if jax.default_backend() == "cpu" else "device"
    if loop == "device":
        state, points = _advance_device(
            state, lanes, data, jnp.asarray(n_rounds, jnp.int32), static, tcfg, batched, n_rounds
        )
        return state, np.asarray(points)
    if loop != "host":
        raise ValueError(f"loop: must be 'auto', 'device' or 'host', got {loop!r}")
    eval_set = _eval_set_jit(data)
    host_points = []
    for _ in range(n_rounds):
        if not np.any(np.asarray(state.status) == RUNNING):
            break
        for _ in range(tcfg.check_every):
            state = _step_host(state, lanes, data, static, tcfg, batched)
        state, point = _check_point_host(state, lanes, data, eval_set, static, tcfg, batched)
        host_points.append(point)
    out = np.full((n_rounds,) + np.shape(state.status) + (len(CURVES),), np.nan, np.asarray(state.train_loss).dtype)
    if host_points:
        out[: len(host_points)] = np.asarray(jnp.stack(host_points))
    return state, out


def init_lanes(mcfg: DeepModelConfig, tcfg: TrainConfig, data: DeepDataset, lanes: Lane) -> LaneState:
    """Stacked initial states of a batch of lanes (one compiled program per lane count and model)."""
    return _init_batched(lanes, jnp.asarray(budgets(tcfg, lanes.multiplier)), data, mcfg, tcfg)


def advance(
    state: LaneState,
    lanes: Lane,
    data: DeepDataset,
    mcfg: DeepModelConfig,
    tcfg: TrainConfig,
    n_rounds: int,
    *,
    loop: str = "auto",
) -> LaneState:
    """Run a batch of lanes for up to `n_rounds` checks (stopped lanes stay frozen); see `_run` for `loop`."""
    return _run(state, lanes, data, mcfg, tcfg, n_rounds, batched=True, loop=loop)[0]


def records(state: LaneState) -> dict[str, np.ndarray]:
    """The per-lane results (see RECORDS) as numpy arrays."""
    s = state._replace(params=None, buffers=None, opt_state=None, f0=None)
    s = jax.tree.map(np.asarray, s)
    return {
        "status": s.status,
        "steps": s.step,
        "budget": s.budget,
        "peak_val_acc": s.peak_val_acc,
        "peak_step": s.peak_step,
        "test_acc_at_peak": s.test_acc_at_peak,
        "peak_test_acc": s.peak_test_acc,
        "final_test_acc": s.test_acc,
        "final_test_loss": s.test_loss,
        "final_train_acc": s.train_acc,
        "final_train_loss": s.train_loss,
        "init_test_acc": s.init_test_acc,
        "init_train_loss": s.init_train_loss,
    }


def _curves(init: LaneState, blocks: list[np.ndarray], n_checks: int) -> np.ndarray:
    """Learning curves (n_checks + 1, [lanes,] len(CURVES)): step 0, then every check; NaN after a stop."""
    dtype = np.asarray(init.train_loss).dtype
    rows = [np.asarray(curve_point(init))[None]] + blocks
    out = np.concatenate(rows)[: n_checks + 1]
    if len(out) < n_checks + 1:
        pad = np.full((n_checks + 1 - len(out),) + out.shape[1:], np.nan, dtype)
        out = np.concatenate([out, pad])
    return out


def train_lanes(
    mcfg: DeepModelConfig,
    tcfg: TrainConfig,
    data: DeepDataset,
    lanes: Lane,
    *,
    sync_every: int = 20,
    on_stop=None,
    loop: str = "auto",
    curves: bool = False,
) -> dict[str, np.ndarray]:
    """Train a batch of lanes to their stop; `on_stop(k)` is called with the number of lanes that
    stopped since the last host synchronization (every `sync_every` checks). With `curves`, the records
    also hold "curves": (lanes, max budget / check_every + 1, len(CURVES)), the values of `CURVES` at step
    0 and at every check (NaN once a lane has stopped)."""
    state = init_lanes(mcfg, tcfg, data, lanes)
    init = state
    stopped = 0
    max_rounds = int(np.max(np.asarray(state.budget))) // tcfg.check_every
    blocks = []
    for _ in range(0, max_rounds, sync_every):
        state, points = _run(state, lanes, data, mcfg, tcfg, sync_every, batched=True, loop=loop)
        blocks.append(points)
        now = int(np.sum(np.asarray(state.status) != RUNNING))
        if on_stop is not None and now > stopped:
            on_stop(now - stopped)
        stopped = now
        if now == len(state.status):
            break
    out = records(state)
    if curves:
        out["curves"] = np.moveaxis(_curves(init, blocks, max_rounds), 1, 0)
    return out


def train_run(
    mcfg: DeepModelConfig,
    tcfg: TrainConfig,
    data: DeepDataset,
    *,
    multiplier: float,
    lr: float,
    seed: int,
    loop: str = "auto",
    curves: bool = False,
) -> dict:
    """One run, not vmapped: the reference that every lane of a sweep must reproduce (with `curves`, also
    its learning curves, (budget / check_every + 1, len(CURVES)), under "curves")."""
    dtype = jnp.dtype(tcfg.dtype)
    lane = Lane(jnp.asarray(multiplier, dtype), jnp.asarray(lr, dtype), jnp.asarray(seed, jnp.uint32))
    budget = tcfg.budget(float(lane.multiplier))
    init = _init_single(lane, jnp.asarray(budget, jnp.int32), data, mcfg, tcfg)
    state, points = _run(init, lane, data, mcfg, tcfg, budget // tcfg.check_every, batched=False, loop=loop)
    out = {k: v.item() for k, v in records(state).items()}
    if curves:
        out["curves"] = _curves(init, [points], budget // tcfg.check_every)
    return out
