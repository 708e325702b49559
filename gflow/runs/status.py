"""The status vocabulary of both wings: one name and one code per way a run can end.

Codes are positions in `NAMES` and are the same in both wings (a run directory's manifest also lists
the codes it used, so an older directory is decoded by name). Each wing produces a subset of them,
described in its own words (`statuses(wing)`):
- two-layer gradient flow (`gflow.twolayer`): reached_target … solver_error (codes 0–6);
- deep-net SGD (`gflow.deep`): reached_target, max_steps, nonfinite, diverged (codes 0, 4, 5, 7).
A normal stop is one of `OK`: the run reached its target (refined or not) or started there. Only those
runs enter means; the others are counted and reported. `RUNNING` (−1) marks a deep lane still training.

Pure Python and numpy: importing this loads no engine.
"""

from __future__ import annotations

import numpy as np

NAMES = (
    "reached_target",
    "reached_target_unrefined",
    "target_at_init",
    "t_max",
    "max_steps",
    "nonfinite",
    "solver_error",
    "diverged",
)
CODE = {name: i for i, name in enumerate(NAMES)}
RUNNING = -1
OK = ("reached_target", "reached_target_unrefined", "target_at_init")  # the normal stops, in both wings

_MEANINGS = {
    "twolayer": {
        "reached_target": "the loss reached η; the stop was refined so that |L(θ_stop) − η| ≤ stop_rtol·η",
        "reached_target_unrefined": "the loss crossed η in the last step but refinement failed; θ_stop is the step end (L ≤ η)",
        "target_at_init": "L(θ(0)) ≤ η already; t_stop = 0",
        "t_max": "t_max was reached before the loss reached η",
        "max_steps": "max_steps solver steps were taken before the loss reached η",
        "nonfinite": "the state or the loss became NaN or inf",
        "solver_error": "diffrax reported another failure (e.g. dt_min reached); see the manifest",
    },
    "deep": {
        "reached_target": "training accuracy ≥ target_acc (or training loss ≤ target_loss) at a check",
        "max_steps": "the run's step budget (record 'budget') ran out before the target was reached",
        "nonfinite": "the parameters or the training loss became NaN or inf; frozen at that check",
        "diverged": "the training loss exceeded diverge_factor × max(initial loss, log K); frozen at that check",
    },
}
WINGS = tuple(_MEANINGS)


def statuses(wing: str) -> dict[str, str]:
    """{name: meaning} of the statuses `wing` ('twolayer' or 'deep') produces, in code order."""
    if wing not in _MEANINGS:
        raise ValueError(f"wing: must be one of {', '.join(WINGS)}, got {wing!r}")
    return {name: _MEANINGS[wing][name] for name in NAMES if name in _MEANINGS[wing]}


def table(wing: str) -> dict[str, dict]:
    """{name: {"code", "meaning"}} of `wing`: what a manifest records."""
    return {name: {"code": CODE[name], "meaning": m} for name, m in statuses(wing).items()}


def is_ok(codes) -> np.ndarray:
    """Whether each status code is a normal stop (one of `OK`)."""
    return np.isin(np.asarray(codes), [CODE[n] for n in OK])


def names_of(codes) -> np.ndarray:
    """The status name of each code ('running' for `RUNNING`)."""
    return np.asarray(NAMES + ("running",))[np.asarray(codes)]


def counts(codes) -> dict[str, int]:
    """{name: number of runs} of the statuses that occur in `codes`, in code order."""
    codes = np.asarray(codes).ravel()
    return {name: int(np.sum(codes == k)) for k, name in enumerate(NAMES) if np.any(codes == k)}


def counts_by_axis(codes, axes) -> dict[str, dict[str, dict[str, int]]]:
    """{axis: {repr(value): counts}} over every axis of `codes` but 'seed'; `axes` is [(name, values)]
    in the order of the axes of `codes`."""
    codes = np.asarray(codes)
    out = {}
    for a, (name, values) in enumerate(axes):
        if name != "seed":
            out[name] = {repr(v): counts(np.take(codes, i, axis=a)) for i, v in enumerate(values)}
    return out


def recode(codes, old: dict) -> np.ndarray:
    """`codes` written under the manifest table `old` ({name: {"code": …}}) in today's codes (by name)."""
    codes = np.asarray(codes)
    out = codes.copy()
    for name, info in old.items():
        if name not in CODE:
            raise ValueError(f"status {name!r} (code {info['code']}) is not in the status vocabulary")
        out[codes == info["code"]] = CODE[name]
    return out
