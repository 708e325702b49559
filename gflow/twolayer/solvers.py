"""The ODE solvers gflow can use, by name (`SOLVERS`, with their stage counts), gflow's own
Bogacki–Shampine 3(2) step, the step-size controller and the step wrapper the flow uses.

- `BlockFloorController`: PID control with per-block tolerance floors (why: its docstring).
- `RecordStepStart`: keeps the start of the last accepted step, the bracket of the stop refinement
  (`gflow.twolayer.stop`).

`FusedBosh3` is the default ("bosh3"). It takes the same step as `diffrax.Bosh3` (same tableau, FSAL,
same error estimate, cubic Hermite dense output), written out stage by stage instead of through
diffrax's generic Runge–Kutta loop, which keeps the stages in one stacked buffer and updates it by
dynamic index. Written out, XLA fuses each stage's state update into a single pass, and the
interpolant is evaluated from (y0, y1, k0, k1) directly instead of stacking four coefficient arrays
every step. On the CPU this made whole runs 1.17–1.18× faster (a loop of `simulate` and a sweep) at
equal step counts (benchmarks/studies/README.md, `solver_step`). Agreement with `diffrax.Bosh3` is tested step by step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, NamedTuple

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp

from .rk_parts import HermiteInterpolation
from .rk_parts import combine as _combine
from .rkc import RKC2

# Bogacki–Shampine 3(2): nodes 1/2, 3/4, 1; weights of the 3rd-order solution; error weights
# (3rd-order minus embedded 2nd-order solution), the last one on the FSAL stage.
_A21, _A32 = 1 / 2, 3 / 4
_B = (2 / 9, 1 / 3, 4 / 9)
_E = (2 / 9 - 7 / 24, 1 / 3 - 1 / 4, 4 / 9 - 1 / 3, -1 / 8)


class FusedBosh3(diffrax.AbstractAdaptiveSolver):
    """Bogacki–Shampine 3(2) with FSAL, as `diffrax.Bosh3`, stages written out. ODE terms only.

    Solver state: the vector field at the current point (the first stage of the next step)."""

    term_structure: ClassVar = diffrax.AbstractTerm
    interpolation_cls: ClassVar[Callable[..., HermiteInterpolation]] = HermiteInterpolation
    state_is_end_vf: ClassVar[bool] = True  # end_vf(state) after a step is vf(t1, y1) (RecordStepStart reads it)

    @staticmethod
    def end_vf(solver_state):
        return solver_state

    def order(self, terms):
        return 3

    def init(self, terms, t0, t1, y0, args):
        return terms.vf(t0, y0, args)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        f1 = solver_state
        if made_jump is not False:  # only with jumps in the vector field; gflow never makes any
            f1 = jax.lax.cond(made_jump, lambda: terms.vf(t0, y0, args), lambda: f1)
        dt = t1 - t0
        f2 = terms.vf(t0 + _A21 * dt, _combine(dt, y0, (_A21,), (f1,)), args)
        f3 = terms.vf(t0 + _A32 * dt, _combine(dt, y0, (_A32,), (f2,)), args)
        y1 = _combine(dt, y0, _B, (f1, f2, f3))
        f4 = terms.vf(t1, y1, args)
        y_error = _combine(dt, None, _E, (f1, f2, f3, f4))
        dense_info = dict(y0=y0, y1=y1, k0=_combine(dt, None, (1.0,), (f1,)), k1=_combine(dt, None, (1.0,), (f4,)))
        return y1, y_error, dense_info, f4, diffrax.RESULTS.successful

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)


class SolverSpec(NamedTuple):
    """A solver gflow can use: its class and the vector-field stages it keeps per step (the memory model
    in `gflow.twolayer.sweep` counts state-sized buffers from them)."""

    cls: Callable[[], diffrax.AbstractSolver]
    stages: int


# The one solver registry; `gflow.twolayer.config.SOLVER_NAMES` lists the same names without importing
# diffrax (tested).
SOLVERS = {
    "bosh3": SolverSpec(FusedBosh3, 4),
    "rkc2": SolverSpec(RKC2, 7),  # y0, Y_{j-1}, Y_{j-2}, F(Y0), a stage, the power iterate and its image
    "tsit5": SolverSpec(diffrax.Tsit5, 7),
    "dopri5": SolverSpec(diffrax.Dopri5, 7),
    "dopri8": SolverSpec(diffrax.Dopri8, 14),
    "heun": SolverSpec(diffrax.Heun, 2),
    "ralston": SolverSpec(diffrax.Ralston, 2),
    "midpoint": SolverSpec(diffrax.Midpoint, 2),
}


def make_solver(name: str, loss_fn: Callable) -> diffrax.AbstractAdaptiveSolver:
    """The named solver, wrapped so that the start of its last accepted step is kept and the state's loss
    leaf holds the loss at the step end (`RecordStepStart`; `loss_fn(y)` serves solvers that are not FSAL)."""
    return RecordStepStart(SOLVERS[name].cls(), loss_fn)


class BlockFloorController(diffrax.PIDController):
    """PID control with each component's tolerance floored at its block's RMS size.

    diffrax scales the error of component i by atol + rtol·|y_i|. Here |y_i| is replaced by
    max(|y_i|, rms(y_block)) for each leaf (W, a, margins) — a mixed componentwise/normwise
    tolerance. In the rich regime most neurons stay tiny while a few grow to O(1); tiny neurons
    that cross data hyperplanes would otherwise set the step size through errors that are
    negligible for the network function.
    """

    use_floor: bool = eqx.field(static=True, default=True)
    floor_margins: bool = eqx.field(static=True, default=True)
    # error_norm = 'loss': (y1, y_error) -> the relative error of L the margin errors can cause; it replaces
    # the margin block's error, so that block is held to rtol in that sense (gflow.twolayer.flow)
    loss_error: Callable | None = eqx.field(static=True, default=None)

    def adapt_step_size(self, t0, t1, y0, y1_candidate, args, y_error, error_order, controller_state):
        def floor(a, b, e):
            b = jnp.where(jnp.isnan(b), a, b)
            size = jnp.maximum(jnp.abs(a), jnp.abs(b))
            rms = jnp.sqrt(jnp.mean(size**2))
            return e * (self.atol + self.rtol * size) / (self.atol + self.rtol * jnp.maximum(size, rms))

        if self.loss_error is not None:  # the state is (params, margins, loss): margins replaced by the loss error
            rel = self.loss_error(y1_candidate, y_error)
            size = jnp.maximum(jnp.abs(y0[1]), jnp.abs(y1_candidate[1]))
            # diffrax divides by atol + rtol·size componentwise: every component then reads rel/rtol
            margin_err = rel / self.rtol * (self.atol + self.rtol * size)
            params_err = jax.tree.map(floor, y0[0], y1_candidate[0], y_error[0]) if self.use_floor else y_error[0]
            y_error = (params_err, margin_err, *y_error[2:])
        elif self.use_floor and self.floor_margins:
            y_error = jax.tree.map(floor, y0, y1_candidate, y_error)
        elif self.use_floor:  # the state is (params, margins): floor the parameter blocks only
            y_error = (jax.tree.map(floor, y0[0], y1_candidate[0], y_error[0]), *y_error[1:])
        return super().adapt_step_size(t0, t1, y0, y1_candidate, args, y_error, error_order, controller_state)


class RecordStepStart(diffrax.AbstractAdaptiveSolver, diffrax.AbstractWrappedSolver):
    """Wraps a solver; keeps (t, y) at the start of the step just taken in the solver state, and sets
    the state's last leaf (the loss leaf, see `gflow.twolayer.flow`) to the exact loss L(θ) at the step end.

    diffrax keeps a step's solver state only when the step is accepted, so after the solve the
    state holds the start of the last accepted step: the bracket for the stop refinement.

    The loss at the step end comes from work already done when the solver is FSAL and keeps the
    vector field at the step end as its state (`FusedBosh3.state_is_end_vf`): the vector field
    returns L(θ) in its last leaf, and its forward pass is the one the velocity needs anyway. Other
    solvers get it from `loss_fn(y1)` (one extra forward pass per step, as the stop event cost before).
    """

    solver: diffrax.AbstractSolver  # type: ignore[misc]  # a field, as in diffrax's own wrapped solvers
    loss_fn: Callable

    @property
    def term_structure(self):
        return self.solver.term_structure

    @property
    def interpolation_cls(self):  # pyright: ignore
        return self.solver.interpolation_cls

    def order(self, terms):
        return self.solver.order(terms)

    def error_order(self, terms):
        return self.solver.error_order(terms)

    def init(self, terms, t0, t1, y0, args):
        return self.solver.init(terms, t0, t1, y0, args), t0, y0

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        inner, _, _ = solver_state
        y1, y_error, dense_info, inner, result = self.solver.step(terms, t0, t1, y0, args, inner, made_jump)
        loss1 = self.solver.end_vf(inner)[-1] if getattr(self.solver, "state_is_end_vf", False) else self.loss_fn(y1)
        return (*y1[:-1], loss1), y_error, dense_info, (inner, t0, y0), result

    def func(self, terms, t0, y0, args):
        return self.solver.func(terms, t0, y0, args)
