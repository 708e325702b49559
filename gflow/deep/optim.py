"""The deep wing's optimizer: SGD at step size η/c (optax), with the configured momentum, coupled L2 and
decoupled weight decay."""

from __future__ import annotations

import optax

from .config import TrainConfig


def make_optimizer(tcfg: TrainConfig, step_size):
    """SGD with step size η/c: update = −(η/c)·m with m the (momentum) average of g + l2·θ (coupled L2),
    then −decoupled_decay·θ, applied outside the gradient path:
        θ ← θ − (η/c)·m − decoupled_decay·θ."""
    parts = [optax.add_decayed_weights(tcfg.l2)] if tcfg.l2 else []
    parts.append(optax.sgd(step_size, momentum=tcfg.momentum or None))
    if tcfg.decoupled_decay:
        parts.append(optax.add_decayed_weights(-tcfg.decoupled_decay))
    return parts[0] if len(parts) == 1 else optax.chain(*parts)
