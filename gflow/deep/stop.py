"""The deep wing's stop rule and status vocabulary: every `check_every` SGD steps a lane is evaluated on
the full training and test sets; it stops when its training accuracy reaches target_acc (or its training
loss target_loss), when it diverges or becomes non-finite, or when its step budget runs out. The peak
test accuracy over the checks (step 0 excluded) is tracked here."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import equinox as eqx
import jax
import jax.numpy as jnp

from .config import TrainConfig
from .data import DeepDataset
from .loss import eval_weights, evaluate, forward_all, outputs, uses_batch_stats
from ..numerics import all_finite as _all_finite
from ..runs.status import CODE as STATUS_CODE, NAMES as STATUS_NAMES, RUNNING, statuses as _statuses  # noqa: F401

if TYPE_CHECKING:
    from .train import Lane, LaneState

STATUSES = _statuses("deep")  # the statuses this wing produces (codes: gflow.runs.status, shared with gflow.twolayer)


def check(state: LaneState, lane: Lane, data: DeepDataset, eval_set, *, static, tcfg: TrainConfig) -> LaneState:
    """Evaluate one lane on the training and test sets (`eval_set = train_test_examples(data)`) and apply the stop
    rule; a lane that had stopped before is returned unchanged."""
    dtype = jnp.dtype(tcfg.dtype)
    active = state.status == RUNNING
    n = data.x.shape[0]
    model = eqx.combine(state.params, static)
    net = forward_all(model, eval_set[0], tcfg.eval_batch_size, eval_weights(data, dtype),
                       batch_stats=uses_batch_stats(model))
    train_loss, train_acc, test_loss, test_acc = evaluate(outputs(net, lane.multiplier.astype(dtype), state.f0),
                                                           eval_set[1], n, binary=data.n_out == 1)
    finite = jnp.isfinite(train_loss) & _all_finite(state.params)
    train_acc, test_acc = (jnp.where(finite, v, jnp.nan) for v in (train_acc, test_acc))
    reached = (train_acc >= tcfg.target_acc) | (train_loss <= tcfg.target_loss)
    status = jnp.select(
        [~finite, reached, train_loss > tcfg.diverge_factor * state.loss_ref, state.step >= state.budget],
        [STATUS_CODE[s] for s in ("nonfinite", "reached_target", "diverged", "max_steps")],
        RUNNING,
    ).astype(jnp.int32)
    better = finite & ~(test_acc <= state.peak_test_acc)  # the first check beats the NaN start
    new = state._replace(
        status=status, train_loss=train_loss, train_acc=train_acc, test_loss=test_loss, test_acc=test_acc,
        peak_test_acc=jnp.where(better, test_acc, state.peak_test_acc),
        peak_step=jnp.where(better, state.step, state.peak_step),
    )
    return jax.tree.map(partial(jnp.where, active), new, state)
