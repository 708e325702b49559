"""Independent float64 references: the gradient-flow ODE in plain numpy, integrated by scipy."""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

# the tiny problem the command-line tests sweep (`--set` items), and the `--set` arguments of such items
TINY_SETS = ("data.n=20", "data.d=30", "data.n_test=200", "model.width=20")


def cli_sets(*items: str) -> list[str]:
    """["--set", item, "--set", item, …] for the command line."""
    return [arg for item in items for arg in ("--set", item)]


# the digits-mlp preset's quick form, shrunk to 2 c × 2 η × 1 seed, one lane per chunk (`gflow deep sweep` arguments)
DEEP_TINY = [
    "--preset",
    "digits-mlp",
    "--quick",
    *cli_sets("sweep.multipliers=[0.5, 2]", "sweep.n_seeds=1", "sweep.max_lanes=1"),
]


def np_loss(W, a, x, y, c=1.0):
    m = y * (c * (np.maximum(x @ W.T, 0.0) @ a))
    return np.mean(np.logaddexp(0.0, -m))


def np_velocity(W, a, x, y, c=1.0):
    """−∇L for L = mean log(1 + exp(−y c Σ_j a_j relu(w_j·x))), written independently of gflow."""
    n = len(y)
    pre = x @ W.T
    act = np.maximum(pre, 0.0)
    m = y * (c * (act @ a))
    s = 0.5 * (1.0 - np.tanh(0.5 * m))  # sigmoid(−m), stable
    coef = c * y * s / n  # −dL/df_i
    dW = ((coef[:, None] * (pre > 0)) * a[None, :]).T @ x
    da = act.T @ coef
    return dW, da


def scipy_flow(W0, a0, x, y, *, c=1.0, target=None, t_max=1e4, t_eval=None, rtol=1e-12, atol=1e-14, dense_output=False):
    """Integrate dθ/dt = −∇L with DOP853; stop at L = target if given. Returns the OdeResult.

    Unless `t_eval` or `dense_output` asks for them, no states are kept but the event's (`y_events`):
    keeping every step's state (or the dense interpolant) grew past 22 GB on a long rich-regime flow."""
    h, d = W0.shape

    def rhs(t, z):
        W, a = z[: h * d].reshape(h, d), z[h * d :]
        dW, da = np_velocity(W, a, x, y, c)
        return np.concatenate([dW.ravel(), da])

    events = None
    if target is not None:

        def hit(t, z):
            return np_loss(z[: h * d].reshape(h, d), z[h * d :], x, y, c) - target

        hit.terminal = True
        hit.direction = -1
        events = hit
    z0 = np.concatenate([np.asarray(W0, np.float64).ravel(), np.asarray(a0, np.float64)])
    return solve_ivp(
        rhs,
        (0.0, t_max),
        z0,
        method="DOP853",
        rtol=rtol,
        atol=atol,
        t_eval=t_eval if t_eval is not None or dense_output else np.empty(0),
        events=events,
        dense_output=dense_output,
    )
