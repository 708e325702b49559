"""The deep wing's objective: the model of a lane (c·f_θ, or c·(f_θ − f_θ₀) centered), the per-example
loss (softmax cross-entropy for K > 2 classes, the logistic loss softplus(−y·F) for K = 2) and the
evaluation of loss and accuracy on the training, validation and test sets.

BatchNorm convention (as torch): a training step normalizes with the minibatch's statistics
(`forward_train`, which also returns them for the running averages); an evaluation uses the running
averages (`forward_all`, the net in inference mode), so every example is evaluated on its own and the
evaluation runs in batches of `eval_batch_size` examples, whatever the net."""

from __future__ import annotations

from functools import partial

import equinox as eqx
import jax
import jax.numpy as jnp

from .data import DeepDataset
from .models import BATCH_AXIS, batch_norms, collect_batch_stats

SPLITS = ("train", "val", "test")


def uses_batch_stats(model) -> bool:
    """Whether the net has BatchNorm layers (in training, its outputs depend on the rest of the batch)."""
    return bool(batch_norms(model))


def per_example(out, label, binary: bool):
    """(loss, correct) of one example with network output `out` (n_out,) and integer label."""
    if binary:
        sign = jnp.where(label == 1, 1, -1).astype(out.dtype)
        return jax.nn.softplus(-sign * out[0]), (out[0] > 0) == (label == 1)
    return jax.nn.logsumexp(out) - out[label], jnp.argmax(out) == label


def outputs(net_out, multiplier, f0=None):
    """The model of a lane: c·f, or c·(f − f0) when centered."""
    return multiplier * (net_out if f0 is None else net_out - f0)


def forward(model, x, w=None):
    """f(x_i) for a batch of examples in training mode, in one vectorized pass; with BatchNorm the
    statistics are those of the examples weighted by w (all of them when w is None)."""
    return forward_train(model, x, w)[0]


def forward_train(model, x, w=None):
    """(f(x_i) in training mode, {id(BatchNorm layer): (batch mean, unbiased batch variance)}) for a batch;
    the statistics feed `gflow.deep.models.with_running_stats` ({} without BatchNorm)."""
    w = jnp.ones(x.shape[:1], x.dtype) if w is None else w

    def one(xi, wi):
        with collect_batch_stats() as stats:
            out = model(xi, wi)
        return out, dict(stats)

    out, stats = jax.vmap(one, axis_name=BATCH_AXIS)(x, w)
    return out, jax.tree.map(lambda v: v[0], stats)  # the statistics are the same for every example


def forward_all(model, x, batch: int):
    """f(x_i) for every example in evaluation mode (BatchNorm: running averages), `batch` examples per
    vectorized pass, so the memory of an evaluation is bounded by the batch, not the set."""
    model = eqx.nn.inference_mode(model)
    if x.shape[0] <= batch:
        return jax.vmap(model)(x)
    return jax.lax.map(model, x, batch_size=batch)


def _mean(v):
    return v.mean() if v.shape[0] else jnp.full((), jnp.nan, v.dtype)


def evaluate(net_out, y, sizes, *, binary):
    """(train loss, train accuracy, val loss, val accuracy, test loss, test accuracy) from the model's
    outputs on the examples of `eval_examples` (train, then validation, then test; `sizes` their counts).
    An empty validation set gives NaN for its two values."""
    loss, correct = jax.vmap(partial(per_example, binary=binary))(net_out, y)
    correct = correct.astype(net_out.dtype)
    n, n_val = sizes[0], sizes[1]
    out = []
    for lo, hi in ((0, n), (n, n + n_val), (n + n_val, loss.shape[0])):
        out += [_mean(loss[lo:hi]), _mean(correct[lo:hi])]
    return tuple(out)


def split_sizes(data: DeepDataset) -> tuple[int, int, int]:
    return data.x.shape[0], data.x_val.shape[0], data.x_test.shape[0]


def eval_examples(data: DeepDataset):
    """Training, validation and test examples in one array (one batched evaluation serves all three)."""
    return (jnp.concatenate([data.x, data.x_val, data.x_test]), jnp.concatenate([data.y, data.y_val, data.y_test]))


train_test_examples = eval_examples  # the name before the validation split
