"""The lean integration loop: a diffrax solver's step and step-size controller, driven by a plain
`lax.while_loop` instead of `diffrax.diffeqsolve` (`flow.integrator = 'lean'`, the default).

It takes the same steps as `diffrax.diffeqsolve` does with the same solver, controller, boolean stop
event and save grid: the first trial step 0.01 (as diffeqsolve's, see `FIRST_STEP`), each step from
`solver.step`, its acceptance and the next size from `controller.adapt_step_size`, NaN errors read
as infinite, the step clipped to end exactly at `t1` within 100 ulp, the save grid filled from the
solver's dense output after every accepted step, and the solve ended at the end of the first
accepted step whose state meets `stop`. What it leaves out is what gflow never uses: adjoints and
checkpointed buffers, jumps, SDE terms, progress meters, `SaveAt(steps=...)`, dense output and the
generic event machinery. Leaving them out did not make a step cheaper on the CPU (6.7 against 6.5
gradient-descent iterations a step, `python -m benchmarks.studies.step_cost`, docs/numerics.md): the loop is
kept for its simplicity and as the place a faster step can be written. The two paths are compared run
by run in `tests/twolayer/test_integrate.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import diffrax
import equinox.internal as eqxi
import jax
import jax.numpy as jnp

# how a solve ended (`Solution.result`); gflow.twolayer.stop.decode_status maps them to statuses
STOPPED, REACHED_T1, MAX_STEPS = 0, 1, 2
FIRST_STEP = 0.01  # the first trial step, in gradient-flow time (what diffeqsolve takes for gflow's terms)


class Solution(NamedTuple):
    """The end of a solve. `t_start`/`y_start` open the last accepted step, `t_end`/`y_end` close it."""

    result: jax.Array  # STOPPED (the stop condition held at t_end), REACHED_T1 or MAX_STEPS
    t_end: jax.Array
    y_end: Any
    t_start: jax.Array
    y_start: Any
    saved: Any  # save_fn's outputs on the save grid, stacked along axis 0; NaN where the solve never got
    n_steps: jax.Array
    n_accepted: jax.Array
    n_rejected: jax.Array


class _Carry(NamedTuple):
    t: jax.Array
    t_next: jax.Array
    y: object
    solver_state: object
    controller_state: object
    t_start: jax.Array
    y_start: object
    stopped: jax.Array
    save_index: jax.Array
    saved: object
    n_steps: jax.Array
    n_accepted: jax.Array


def _save_within(interp, keep, t_end, ts, save_fn, index, saved):
    """Fill the save grid's points up to `t_end` from the step's dense output `interp` (only if the step is
    kept); `index` is the first point not yet saved. Returns the next such index and the buffers."""
    n_save = ts.shape[0]

    def cond(s):
        i, _ = s
        return keep & (i < n_save) & (ts[jnp.minimum(i, n_save - 1)] <= t_end)

    def body(s):
        i, out = s
        value = save_fn(ts[i], interp.evaluate(ts[i]), None)
        return i + 1, jax.tree.map(lambda buf, v: buf.at[i].set(v), out, value)

    return jax.lax.while_loop(cond, body, (index, saved))


def integrate(
    vector_field: Callable,
    solver: diffrax.AbstractAdaptiveSolver,
    controller: diffrax.AbstractStepSizeController,
    y0,
    *,
    t0,
    t1,
    max_steps: int,
    stop: Callable,
    ts: jax.Array,
    save_fn: Callable,
) -> Solution:
    """Integrate dy/dt = vector_field(t, y, None) from t0 until `stop(y)` holds at a step end (or at t0), t1, or max_steps.

    `ts` is an increasing save grid; `save_fn(t, y, None)` returns a pytree of arrays saved at each
    of its times that the solve passes (interpolated with the solver's dense output). Pure and unjitted.
    """
    terms = diffrax.ODETerm(vector_field)
    error_order = solver.error_order(terms)
    assert error_order is not None, "an adaptive solver has an error order"
    t0 = jnp.asarray(t0)
    t1 = jnp.asarray(t1, t0.dtype)
    t1_clip_floor = t1
    for _ in range(100):
        t1_clip_floor = eqxi.prevbefore(t1_clip_floor)
    # diffeqsolve wraps the terms before the controller sees them, so its initial-step heuristic (which
    # only applies to a bare ODETerm) always falls back to dt0 = 0.01; the same first step here
    t_next, controller_state = controller.init(
        terms, t0, t1, y0, jnp.asarray(FIRST_STEP, t0.dtype), None, solver.func, error_order
    )
    t_next = jnp.minimum(t_next, t1)
    solver_state = solver.init(terms, t0, t_next, y0, None)
    shape = jax.eval_shape(save_fn, t0, y0, None)
    saved = jax.tree.map(lambda s: jnp.full((ts.shape[0], *s.shape), jnp.nan, s.dtype), shape)

    def cond(c: _Carry):
        return (c.t < t1) & ~c.stopped & (c.n_steps < max_steps)

    def body(c: _Carry):
        y1, y_error, dense_info, solver_state, _ = solver.step(terms, c.t, c.t_next, c.y, None, c.solver_state, False)
        y_error = jax.tree.map(lambda e: jnp.where(jnp.isnan(e), jnp.inf, e), y_error)
        keep, t_prev, t_next, _, controller_state, _ = controller.adapt_step_size(
            c.t, c.t_next, c.y, y1, None, y_error, error_order, c.controller_state
        )
        t_prev = jnp.minimum(t_prev, t1)
        t_next = jnp.where(t_next > t1_clip_floor, jnp.where(keep, t1, t_prev + 0.5 * (t1 - t_prev)), t_next)

        interp = solver.interpolation_cls(t0=c.t, t1=c.t_next, **dense_info)
        save_index, saved = _save_within(interp, keep, c.t_next, ts, save_fn, c.save_index, c.saved)
        select = lambda new, old: jax.tree.map(lambda a, b: jnp.where(keep, a, b), new, old)  # noqa: E731
        y = select(y1, c.y)
        return _Carry(
            t=t_prev,
            t_next=t_next,
            y=y,
            solver_state=select(solver_state, c.solver_state),
            controller_state=controller_state,
            t_start=jnp.where(keep, c.t, c.t_start),
            y_start=select(c.y, c.y_start),
            stopped=keep & stop(y1),
            save_index=save_index,
            saved=saved,
            n_steps=c.n_steps + 1,
            n_accepted=c.n_accepted + jnp.asarray(keep).astype(jnp.int32),
        )

    init = _Carry(
        t=t0,
        t_next=t_next,
        y=y0,
        solver_state=solver_state,
        controller_state=controller_state,
        t_start=t0,
        y_start=y0,
        stopped=jnp.asarray(stop(y0)),
        save_index=jnp.int32(0),
        saved=saved,
        n_steps=jnp.int32(0),
        n_accepted=jnp.int32(0),
    )
    c = jax.lax.while_loop(cond, body, init)
    result = jnp.where(c.stopped, STOPPED, jnp.where(c.t < t1, MAX_STEPS, REACHED_T1))
    return Solution(
        result=result,
        t_end=c.t,
        y_end=c.y,
        t_start=c.t_start,
        y_start=c.y_start,
        saved=c.saved,
        n_steps=c.n_steps,
        n_accepted=c.n_accepted,
        n_rejected=c.n_steps - c.n_accepted,
    )
