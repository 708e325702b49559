"""SGD training of deep nets with an output multiplier c, vmapped over replicas ("lanes").

A lane is one run, set by three traced values: the multiplier c, the base learning rate η and the
init seed. Its model is
    F(x) = c·f_θ(x),   or, centered,   F(x) = c·(f_θ(x) − f_θ₀(x)),
with f_θ₀ the net at init, held fixed (precomputed once on the train and test sets). The loss is
softmax cross-entropy for K > 2 classes and the logistic loss softplus(−y·F) (y = ±1) for K = 2. SGD
(optax; momentum, coupled L2 and decoupled decay only if configured) uses step size η/c. Time is
counted in SGD steps.

Stop rule, checked every `check_every` steps on the full training set: training accuracy ≥ target_acc,
or training loss ≤ target_loss (if > 0), within the run's step budget `TrainConfig.budget(c)`
(max_steps, scaled up for c < budget_c when budget_power > 0; recorded per run as `budget`). The test accuracy is evaluated at
every check; its peak over the checks (step 0 excluded) is the number the paper reports. A lane that has
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
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .config import DeepModelConfig, TrainConfig
from .data import DeepDataset
from .loss import eval_weights, evaluate, forward, forward_all, outputs, per_example, train_test_examples, uses_batch_stats  # noqa: F401
from .models import build_model
from .optim import make_optimizer
from .stop import RUNNING, STATUS_CODE, STATUS_NAMES, STATUSES, check  # noqa: F401  (re-exported)
from ..numerics import INIT_ROOT  # noqa: F401 (re-exported)
from ..runs.status import names_of as status_names  # noqa: F401 (re-exported)

ORDER_ROOT = 0x0D3E
RECORDS = {
    "status": "code of the run's status (see statuses)",
    "steps": "SGD steps taken when the run stopped",
    "budget": "the run's step budget: TrainConfig.budget(c)",
    "peak_test_acc": "highest test accuracy over the checks (step 0 excluded)",
    "peak_step": "step of the first check with the peak test accuracy",
    "final_test_acc": "test accuracy at the stop (NaN for nonfinite runs, as is final_train_acc)",
    "final_test_loss": "test loss at the stop",
    "final_train_acc": "training accuracy at the stop",
    "final_train_loss": "training loss at the stop",
    "init_test_acc": "test accuracy at step 0",
    "init_train_loss": "training loss at step 0 (log K, or log 2 for binary, when centered)",
}


class Lane(NamedTuple):
    """The swept values of a run (a leading lane axis when batched)."""

    multiplier: jax.Array  # c
    lr: jax.Array  # base learning rate η; SGD step size η/c
    seed: jax.Array  # init seed (uint32)


class LaneState(NamedTuple):
    params: object
    opt_state: object
    f0: jax.Array | None  # (n + n_test, n_out) net at init on the training then the test set, if centered
    step: jax.Array  # int32
    status: jax.Array  # int32, RUNNING until the run stops
    train_loss: jax.Array
    train_acc: jax.Array
    test_loss: jax.Array
    test_acc: jax.Array
    peak_test_acc: jax.Array
    peak_step: jax.Array
    loss_ref: jax.Array  # max(initial training loss, log K): the divergence scale
    init_test_acc: jax.Array
    init_train_loss: jax.Array
    budget: jax.Array  # int32 step budget of the lane


def make_lanes(multipliers, lrs, seeds, dtype=jnp.float32) -> Lane:
    """Lanes from three equal-length sequences."""
    return Lane(jnp.asarray(np.asarray(multipliers, np.float64), dtype), jnp.asarray(np.asarray(lrs, np.float64), dtype),
                jnp.asarray(np.asarray(seeds), jnp.uint32))


def _keys(seed):
    return (jax.random.fold_in(jax.random.PRNGKey(INIT_ROOT), seed),
            jax.random.fold_in(jax.random.PRNGKey(ORDER_ROOT), seed))


def model_static(mcfg: DeepModelConfig, data: DeepDataset, dtype):
    """The non-array part of the model (identical for every lane); nothing is initialized."""
    return _model_static(mcfg, tuple(data.x.shape[1:]), data.n_out, jnp.dtype(dtype))


@functools.lru_cache(maxsize=64)
def _model_static(mcfg, input_shape, n_out, dtype):
    shapes = eqx.filter_eval_shape(partial(build_model, mcfg, input_shape, n_out, dtype=dtype),
                                   key=jax.random.PRNGKey(0))
    return eqx.partition(shapes, lambda v: isinstance(v, jax.ShapeDtypeStruct))[1]


def init_lane(lane: Lane, budget, data: DeepDataset, *, mcfg: DeepModelConfig, tcfg: TrainConfig) -> LaneState:
    """Initialize one lane: parameters from its seed, f_θ₀ if centered, and the step-0 evaluation."""
    dtype = jnp.dtype(tcfg.dtype)
    init_key, _ = _keys(lane.seed)
    model = build_model(mcfg, data.x.shape[1:], data.n_out, key=init_key, dtype=dtype)
    params, _ = eqx.partition(model, eqx.is_array)
    c = lane.multiplier.astype(dtype)
    x_all, y_all = train_test_examples(data)
    net0 = forward_all(model, x_all, tcfg.eval_batch_size, eval_weights(data, dtype),
                        batch_stats=uses_batch_stats(model))
    f0 = net0 if mcfg.centered else None
    train_loss, train_acc, test_loss, test_acc = evaluate(outputs(net0, c, f0), y_all, data.x.shape[0],
                                                           binary=data.n_out == 1)
    zero, nan = jnp.zeros((), dtype), jnp.full((), jnp.nan, dtype)
    log_k = jnp.asarray(math.log(data.n_classes), dtype)
    return LaneState(
        params=params, opt_state=make_optimizer(tcfg, lane.lr).init(params), f0=f0,
        step=jnp.zeros((), jnp.int32), status=jnp.full((), RUNNING, jnp.int32),
        train_loss=train_loss, train_acc=train_acc, test_loss=test_loss, test_acc=test_acc,
        peak_test_acc=nan, peak_step=jnp.zeros((), jnp.int32),
        loss_ref=jnp.maximum(jnp.where(jnp.isfinite(train_loss), train_loss, zero), log_k),
        init_test_acc=test_acc, init_train_loss=train_loss, budget=jnp.asarray(budget, jnp.int32),
    )


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

    def loss_fn(params):
        out = outputs(forward(eqx.combine(params, static), x), c, f0)
        return jnp.mean(jax.vmap(partial(per_example, binary=binary))(out, y)[0])

    grads = jax.grad(loss_fn)(state.params)
    updates, opt_state = opt.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    keep = partial(jnp.where, active)  # frozen lanes keep their old values
    return state._replace(params=jax.tree.map(keep, params, state.params),
                          opt_state=jax.tree.map(keep, opt_state, state.opt_state),
                          step=state.step + active.astype(jnp.int32))


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


@eqx.filter_jit
def _advance_device(state: LaneState, lanes: Lane, data: DeepDataset, n_rounds: jax.Array, static, tcfg: TrainConfig,
                    batched: bool) -> LaneState:
    """Up to `n_rounds` rounds in one program (a while loop), or fewer if every lane has stopped."""
    round_fn = _lanewise(partial(train_round, static=static, tcfg=tcfg), batched, 2)
    eval_set = train_test_examples(data)

    def cond(carry):
        i, s = carry
        return (i < n_rounds) & jnp.any(s.status == RUNNING)

    def body(carry):
        i, s = carry
        return i + 1, round_fn(s, lanes, data, eval_set)

    return jax.lax.while_loop(cond, body, (jnp.zeros((), jnp.int32), state))[1]


@eqx.filter_jit
def _step_host(state: LaneState, lanes: Lane, data: DeepDataset, static, tcfg: TrainConfig, batched: bool) -> LaneState:
    return _lanewise(partial(sgd_step, static=static, tcfg=tcfg), batched, 1)(state, lanes, data)


@eqx.filter_jit
def _check_host(state: LaneState, lanes: Lane, data: DeepDataset, eval_set, static, tcfg: TrainConfig,
                batched: bool) -> LaneState:
    return _lanewise(partial(check, static=static, tcfg=tcfg), batched, 2)(state, lanes, data, eval_set)


_eval_set_jit = eqx.filter_jit(train_test_examples)


def _run(state, lanes, data, mcfg, tcfg, n_rounds: int, *, batched: bool, loop: str) -> LaneState:
    """Up to `n_rounds` rounds of `check_every` steps and a check each, by the chosen loop:
    'device' runs them in one compiled while loop (no host round trips: for accelerators); 'host' calls a
    compiled step `check_every` times and then a compiled check, from Python. XLA:CPU runs convolutions
    inside loop bodies about 10× slower than in straight-line code, so 'auto' picks 'host' on the CPU."""
    static = model_static(mcfg, data, jnp.dtype(tcfg.dtype))
    if loop == "auto":
        loop = "host" if jax.default_backend() == "cpu" else "device"
    if loop == "device":
        return _advance_device(state, lanes, data, jnp.asarray(n_rounds, jnp.int32), static, tcfg, batched)
    if loop != "host":
        raise ValueError(f"loop: must be 'auto', 'device' or 'host', got {loop!r}")
    eval_set = _eval_set_jit(data)
    for _ in range(n_rounds):
        if not np.any(np.asarray(state.status) == RUNNING):
            break
        for _ in range(tcfg.check_every):
            state = _step_host(state, lanes, data, static, tcfg, batched)
        state = _check_host(state, lanes, data, eval_set, static, tcfg, batched)
    return state


def init_lanes(mcfg: DeepModelConfig, tcfg: TrainConfig, data: DeepDataset, lanes: Lane) -> LaneState:
    """Stacked initial states of a batch of lanes (one compiled program per lane count and model)."""
    return _init_batched(lanes, jnp.asarray(budgets(tcfg, lanes.multiplier)), data, mcfg, tcfg)


def advance(state: LaneState, lanes: Lane, data: DeepDataset, mcfg: DeepModelConfig, tcfg: TrainConfig,
            n_rounds: int, *, loop: str = "auto") -> LaneState:
    """Run a batch of lanes for up to `n_rounds` checks (stopped lanes stay frozen); see `_run` for `loop`."""
    return _run(state, lanes, data, mcfg, tcfg, n_rounds, batched=True, loop=loop)


def records(state: LaneState) -> dict[str, np.ndarray]:
    """The per-lane results (see RECORDS) as numpy arrays."""
    s = state._replace(params=None, opt_state=None, f0=None)
    s = jax.tree.map(np.asarray, s)
    return {
        "status": s.status, "steps": s.step, "budget": s.budget, "peak_test_acc": s.peak_test_acc, "peak_step": s.peak_step,
        "final_test_acc": s.test_acc, "final_test_loss": s.test_loss, "final_train_acc": s.train_acc,
        "final_train_loss": s.train_loss, "init_test_acc": s.init_test_acc, "init_train_loss": s.init_train_loss,
    }


def train_lanes(mcfg: DeepModelConfig, tcfg: TrainConfig, data: DeepDataset, lanes: Lane, *,
                sync_every: int = 20, on_stop=None, loop: str = "auto") -> dict[str, np.ndarray]:
    """Train a batch of lanes to their stop; `on_stop(k)` is called with the number of lanes that
    stopped since the last host synchronization (every `sync_every` checks)."""
    state = init_lanes(mcfg, tcfg, data, lanes)
    stopped = 0
    max_rounds = int(np.max(np.asarray(state.budget))) // tcfg.check_every
    for _ in range(0, max_rounds, sync_every):
        state = advance(state, lanes, data, mcfg, tcfg, sync_every, loop=loop)
        now = int(np.sum(np.asarray(state.status) != RUNNING))
        if on_stop is not None and now > stopped:
            on_stop(now - stopped)
        stopped = now
        if now == len(state.status):
            break
    return records(state)


def train_run(mcfg: DeepModelConfig, tcfg: TrainConfig, data: DeepDataset, *, multiplier: float, lr: float,
              seed: int, loop: str = "auto") -> dict[str, float]:
    """One run, not vmapped: the reference that every lane of a sweep must reproduce."""
    dtype = jnp.dtype(tcfg.dtype)
    lane = Lane(jnp.asarray(multiplier, dtype), jnp.asarray(lr, dtype), jnp.asarray(seed, jnp.uint32))
    budget = tcfg.budget(float(lane.multiplier))
    state = _init_single(lane, jnp.asarray(budget, jnp.int32), data, mcfg, tcfg)
    state = _run(state, lane, data, mcfg, tcfg, budget // tcfg.check_every, batched=False, loop=loop)
    return {k: v.item() for k, v in records(state).items()}

