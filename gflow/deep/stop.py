"""The deep wing's stop rule and status vocabulary: every `check_every` SGD steps a lane is evaluated on
the full training, validation and test sets; it stops when its training accuracy reaches target_acc (or
its training loss target_loss), when it diverges or becomes non-finite, or when its step budget runs out.

Selection (tracked here): the peak step is the first check (step 0 excluded) with the highest validation
accuracy, and the test accuracy at that check is the number reported (`test_acc_at_peak`). Without a
validation set (data.n_val = −1) the peak is taken on the test set, as runs saved before the validation
split were. `peak_test_acc`, the highest test accuracy over the checks, is kept as a test-selected
(optimistic) reference only."""

from __future__ import annotations

from functools import partial

import equinox as eqx
import jax
import jax.numpy as jnp

from ..numerics import all_finite as _all_finite
from ..runs import status as _status
from ..runs.status import RUNNING
from .config import TrainConfig
from .data import DeepDataset
from .lanes import Lane, LaneState
from .loss import evaluate, forward_all, outputs, split_sizes

STATUSES = _status.statuses(
    "deep"
)  # the statuses this wing produces (codes: gflow.runs.status, shared with gflow.twolayer)
STATUS_NAMES = _status.NAMES  # every status name, indexed by its code (shared by both wings: gflow.runs.status)
STATUS_CODE = _status.CODE  # name -> code
CURVES = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc")  # a lane's values at a check


def curve_point(state: LaneState) -> jax.Array:
    """The values of `CURVES` of a lane's last check, stacked on the last axis."""
    return jnp.stack([getattr(state, k) for k in CURVES], axis=-1)


def check(state: LaneState, lane: Lane, data: DeepDataset, eval_set, *, static, tcfg: TrainConfig) -> LaneState:
    """Evaluate one lane on the training, validation and test sets (`eval_set = eval_examples(data)`) and
    apply the stop rule; a lane that had stopped before is returned unchanged."""
    dtype = jnp.dtype(tcfg.dtype)
    active = state.status == RUNNING
    model = eqx.combine(state.params, state.buffers, static)
    net = forward_all(model, eval_set[0], tcfg.eval_batch_size)
    train_loss, train_acc, val_loss, val_acc, test_loss, test_acc = evaluate(
        outputs(net, lane.multiplier.astype(dtype), state.f0), eval_set[1], split_sizes(data), binary=data.n_out == 1
    )
    finite = jnp.isfinite(train_loss) & _all_finite((state.params, state.buffers))
    train_acc, val_acc, test_acc = (jnp.where(finite, v, jnp.nan) for v in (train_acc, val_acc, test_acc))
    reached = (train_acc >= tcfg.target_acc) | (train_loss <= tcfg.target_loss)
    status = jnp.select(
        [~finite, reached, train_loss > tcfg.diverge_factor * state.loss_ref, state.step >= state.budget],
        [STATUS_CODE[s] for s in ("nonfinite", "reached_target", "diverged", "max_steps")],
        RUNNING,
    ).astype(jnp.int32)
    better_test = finite & ~(test_acc <= state.peak_test_acc)  # the first check beats the NaN start
    better_val = finite & ~(val_acc <= state.peak_val_acc)
    selected = better_val if data.x_val.shape[0] else better_test  # the peak step: on validation if there is one
    new = state._replace(
        status=status,
        train_loss=train_loss,
        train_acc=train_acc,
        val_loss=val_loss,
        val_acc=val_acc,
        test_loss=test_loss,
        test_acc=test_acc,
        peak_test_acc=jnp.where(better_test, test_acc, state.peak_test_acc),
        peak_val_acc=jnp.where(better_val, val_acc, state.peak_val_acc),
        peak_step=jnp.where(selected, state.step, state.peak_step),
        test_acc_at_peak=jnp.where(selected, test_acc, state.test_acc_at_peak),
    )
    return jax.tree.map(partial(jnp.where, active), new, state)
