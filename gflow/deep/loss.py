"""The deep wing's objective: the model of a lane (c·f_θ, or c·(f_θ − f_θ₀) centered), the per-example
loss (softmax cross-entropy for K > 2 classes, the logistic loss softplus(−y·F) for K = 2) and the
evaluation of loss and accuracy on the training and test sets in one forward pass."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from .data import DeepDataset
from .models import BATCH_AXIS, BatchNorm


def uses_batch_stats(model) -> bool:
    """Whether the net has BatchNorm layers (its outputs depend on the other examples of the batch)."""
    return any(isinstance(m, BatchNorm) for m in jax.tree.leaves(model, is_leaf=lambda m: isinstance(m, BatchNorm)))


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
    """f(x_i) for a batch of examples, in one vectorized pass; with BatchNorm the statistics are those of
    the examples weighted by w (all of them when w is None)."""
    w = jnp.ones(x.shape[:1], x.dtype) if w is None else w
    return jax.vmap(model, axis_name=BATCH_AXIS)(x, w)


def forward_all(model, x, batch: int, w=None, *, batch_stats: bool = False):
    """f(x_i) for every example, `batch` examples per vectorized pass; with BatchNorm (`batch_stats`)
    one pass over all of them, so the w-weighted statistics are those of the whole set."""
    if batch_stats or x.shape[0] <= batch:
        return forward(model, x, w)
    return jax.lax.map(lambda v: model(v), x, batch_size=batch)


def eval_weights(data: DeepDataset, dtype):
    """Weights of the evaluation set's examples in BatchNorm statistics: 1 for training, 0 for test."""
    return jnp.concatenate([jnp.ones(data.x.shape[0], dtype), jnp.zeros(data.x_test.shape[0], dtype)])


def evaluate(net_out, y, n_train: int, *, binary):
    """(train loss, train accuracy, test loss, test accuracy) from the model's outputs on the training
    examples followed by the test examples (one forward pass serves both)."""
    loss, correct = jax.vmap(partial(per_example, binary=binary))(net_out, y)
    correct = correct.astype(net_out.dtype)
    return loss[:n_train].mean(), correct[:n_train].mean(), loss[n_train:].mean(), correct[n_train:].mean()


def train_test_examples(data: DeepDataset):
    """Training and test examples in one array, so one forward pass evaluates both."""
    return jnp.concatenate([data.x, data.x_test]), jnp.concatenate([data.y, data.y_test])
