"""The values a deep-net lane carries: `Lane` (the swept c, η and seed of a run) and `LaneState` (its training
state and records between checks), shared by the trainer (`train`) and the stop rule (`stop`)."""

from __future__ import annotations

from typing import NamedTuple

import jax


class Lane(NamedTuple):
    """The swept values of a run (a leading lane axis when batched)."""

    multiplier: jax.Array  # c
    lr: jax.Array  # base learning rate η; SGD step size η/c
    seed: jax.Array  # init seed (uint32)


class LaneState(NamedTuple):
    params: object
    buffers: object  # BatchNorm running averages (None leaves without BatchNorm)
    opt_state: object
    f0: jax.Array | None  # (n + n_val + n_test, n_out) net at init on the training, validation, test sets, if centered
    step: jax.Array  # int32
    status: jax.Array  # int32, RUNNING until the run stops
    train_loss: jax.Array
    train_acc: jax.Array
    val_loss: jax.Array
    val_acc: jax.Array
    test_loss: jax.Array
    test_acc: jax.Array
    peak_test_acc: jax.Array
    peak_val_acc: jax.Array
    peak_step: jax.Array
    test_acc_at_peak: jax.Array
    loss_ref: jax.Array  # max(initial training loss, log K): the divergence scale
    init_test_acc: jax.Array
    init_train_loss: jax.Array
    budget: jax.Array  # int32 step budget of the lane
