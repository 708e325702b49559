"""Gradient flow dθ/dt = −∇L(θ), integrated until the training loss first reaches η.

Time is gradient-flow time t. How a run stops:
1. The solve ends at the end of the first accepted step on which the loss is at or below η
   ("step-end detection"; `gflow.twolayer.integrate`, or a boolean diffrax `Event` on the
   `flow.integrator = 'diffrax'` path).
2. A safeguarded Newton root finder then locates the crossing inside that last step: it solves
   L(θ(τ)) = η for τ ∈ [0, h], where θ(τ) is the cubic Hermite interpolant of the step's end states
   and velocities; the step's start is recorded by `RecordStepStart`. If it meets
   |L − η| ≤ stop_rtol·η, the run is `reached_target`; otherwise the step-end state is kept and the
   run is `reached_target_unrefined` (its loss is ≤ η, by at most one step's decrease). We do not
   use diffrax's built-in event root-finding: when its Newton fails it returns a state that is not
   at the target and the step end is lost (measured: Newton at rtol = atol = 1e-8 failed in about half
   the runs of a sweep, one of them returned with L = 0.077 against η = 0.01).
3. Every other ending has its own status; see `STATUSES`.

Where things live: the solvers, the step-size controller and the step wrapper in `solvers`; the loop
that drives them in `integrate`; the stop refinement and the status vocabulary and decoding in `stop`;
the loss and its gradient in `model`. This module builds the ODE (`setup`), runs one solve
(`solve_once`: integrate, then `_finish`), runs a lane (`solve_lane`, `simulate`), and tightens it
to a requested accuracy (`_tighten`).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from ..numerics import all_finite as _all_finite
from ..numerics import check_dtype
from . import model
from .config import CompiledFlow
from .data import Dataset, class_mean_direction, positive_class_mean
from .gm_error import tie_weight
from .integrate import MAX_STEPS, REACHED_T1, STOPPED, Solution, integrate
from .observables import ObsArgs, observe
from .solvers import BlockFloorController, make_solver
from .stop import STATUS_CODE, decode_status, refine_stop


class Lane(NamedTuple):
    """The per-run values that vary within one compiled batch (all traced, so new values never recompile)."""

    init_scale: jax.Array
    multiplier: jax.Array
    target_loss: jax.Array
    rtol: jax.Array
    init_key: jax.Array
    accuracy: jax.Array | None = None  # requested relative error of t_η (flow.accuracy mode), else None


class RunResult(NamedTuple):
    """One run's outcome. Under a sweep every field gains leading [scale, seed] axes.

    `traj[name]` is observable `name` on the save grid `ts` (NaN after the stop); `final[name]` is
    its value at the stop.
    """

    status: jax.Array  # int32 code into STATUS_NAMES
    t_stop: jax.Array  # gradient-flow time of the stop
    n_steps: jax.Array  # solver steps (accepted + rejected)
    n_accepted: jax.Array
    n_rejected: jax.Array
    newton_iters: jax.Array  # Newton iterations used by the stop refinement
    rtol: jax.Array  # the controller's rtol of the returned solve (flow.accuracy mode: the run's own choice)
    t_err_est: jax.Array  # a-posteriori estimate of |t_stop − t_η|/t_η (flow.accuracy mode; NaN otherwise)
    theta_err_est: jax.Array  # … of ‖θ(t_stop) − θ_GF(t_η)‖/‖θ_GF(t_η) − θ(0)‖ (flow.accuracy mode; NaN otherwise)
    n_solves: jax.Array  # solves taken (flow.accuracy mode tightens; n_steps etc. count all of them)
    ts: jax.Array  # (n_save,) save grid
    traj: dict  # name -> (n_save,)
    final: dict  # name -> ()
    params: model.Params | None  # θ at the stop (dropped in sweeps)


def save_grid(t_max, n_save: int, t_save_min: float, dtype) -> jax.Array:
    """t = 0 followed by n_save − 1 log-spaced times from t_save_min to t_max."""
    lo = jnp.log10(jnp.asarray(t_save_min, dtype))
    hi = jnp.log10(jnp.asarray(t_max, dtype))
    grid = 10.0 ** (lo + (hi - lo) * jnp.linspace(0.0, 1.0, n_save - 1, dtype=dtype))
    return jnp.concatenate([jnp.zeros((1,), dtype), grid.at[-1].set(t_max)])


def solve_lane(lane: Lane, data: Dataset, *, width: int, second_layer: str, flow: CompiledFlow, keep_params: bool):
    """Initialize one net and integrate its gradient flow to the target loss. Pure and unjitted.

    `flow` holds the compiled settings (`FlowConfig.compiled()`); η, rtol and the accuracy come from `lane`.

    Every matmul is traced at `flow.matmul_precision` ('highest' by default): on GPUs JAX's default
    precision runs float32 matmuls as TF32, which moved t_η by up to 10% and changed statuses on an
    H200 (benchmarks/gpu/README.md)."""
    with jax.default_matmul_precision(flow.matmul_precision):
        problem = setup(lane, data, width=width, second_layer=second_layer, flow=flow)
        if not flow.accuracy_mode:
            r = solve_once(problem, flow, lane.rtol)
        else:
            # jitted so that `_tighten`'s eval_shape and its loop body share one trace of the solve
            r = _tighten(
                jax.jit(partial(solve_once, problem, flow)), lane.accuracy, problem.at_init, problem.p0, data.x.dtype
            )
        # The final observables once per run, after the solves (the semi-analytic test error, opt-in with
        # flow.sa_final, sorts h breakpoints per test point: ~110 ms a run at the default config on a CPU core).
        assert r.params is not None  # solve_once returns θ at the stop
        return r._replace(
            final=observe(r.params, problem.args, semi_analytic=flow.sa_final), params=r.params if keep_params else None
        )


class Problem(NamedTuple):
    """What every solve of one run shares (built once by `setup`)."""

    p0: model.Params  # θ(0)
    data: Dataset
    multiplier: jax.Array
    target: jax.Array  # η
    gram: jax.Array | None  # x·xᵀ when n < d (a cheaper margin rate)
    finite0: jax.Array  # the velocity at θ(0) is finite
    loss0: jax.Array
    at_init: jax.Array  # L(θ(0)) ≤ η
    rms0: jax.Array  # rms(θ(0)): the default atol is rtol·rms0
    args: ObsArgs  # the final observables' arguments
    grid_args: ObsArgs  # the save grid's (the first n_test_grid test points)
    ts: jax.Array  # the save grid


def setup(lane: Lane, data: Dataset, *, width: int, second_layer: str, flow: CompiledFlow) -> Problem:
    """θ(0) and everything a solve of this run needs besides the tolerance."""
    dtype = data.x.dtype
    x, y, c = data.x, data.y, lane.multiplier
    p0 = model.init_params(
        key=lane.init_key, d=x.shape[1], width=width, init_scale=lane.init_scale, second_layer=second_layer, dtype=dtype
    )
    args = ObsArgs(
        data=data,
        multiplier=c,
        xplus=class_mean_direction(x, y),
        mu_plus=positive_class_mean(x, y),
        inv0=model.balance_invariant(p0),
        tie_weight=jnp.asarray(tie_weight(flow.ties), dtype),
        sa_draws=flow.sa_draws,
    )
    gram = x @ x.T if x.shape[0] < x.shape[1] else None
    # A state whose velocity is NaN/inf cannot take a step (every step is rejected). Its velocity is
    # zeroed, at init and mid-run alike, so the solve runs to t_max in a few steps instead of
    # spinning at the last finite state until max_steps; the status says `nonfinite`.
    loss0 = model.loss(p0, x, y, c)
    finite0 = _all_finite((model.flow_velocity(p0, x, y, c, gram), loss0))
    k = min(flow.n_test_grid, data.x_test.shape[0])
    return Problem(
        p0=p0,
        data=data,
        multiplier=c,
        target=lane.target_loss,
        gram=gram,
        finite0=finite0,
        loss0=loss0,
        at_init=loss0 <= lane.target_loss,
        rms0=model.param_norm(p0) / jnp.sqrt(jnp.asarray(p0.W.size + p0.a.size, dtype)),
        args=args,
        grid_args=args._replace(data=data._replace(x_test=data.x_test[:k], y_test=data.y_test[:k])),
        ts=save_grid(flow.t_max, flow.n_save, flow.t_save_min, dtype),
    )


# The ODE state is (u, m̃, ℓ): the displacement u = θ − θ(0), the training margins m_i = y_i·c·f(x_i)
# carried along only for error control (m̃ = m·atol/rtol), and ℓ = L(θ), which is not integrated.
# - Control relative to u, not θ: in the lazy regime θ barely moves relative to θ(0) while the
#   outputs move by O(1), and control relative to θ lets the loss overshoot η by orders of
#   magnitude in one step.
# - The margins make the tolerance mean the same thing at every α: the loss is a function of
#   the margins, and their error is held to rtol·(1 + |m|). Without them, an atol small enough
#   for the lazy regime costs 5–10× more steps in the rich regime (measured; docs/numerics.md).
# - ℓ: `RecordStepStart` sets it to L(θ) at each step end, for the stop event; it has no weight in
#   the error norm (`_block_norm` reads u and m̃ only).
# The step-size norm is the larger of the two blocks' RMS errors, and `BlockFloorController`
# floors each component's tolerance at its block's RMS.


def _block_norm(err):
    return jnp.maximum(optx.rms_norm(err[0]), optx.rms_norm(err[1]))


def _vector_field(problem: Problem, m_scale):
    x, y, c, p0, gram, finite0 = (
        problem.data.x,
        problem.data.y,
        problem.multiplier,
        problem.p0,
        problem.gram,
        problem.finite0,
    )

    def vector_field(t, state, _):
        p = jax.tree.map(jnp.add, p0, state[0])
        v, dm = model.flow_velocity(p, x, y, c, gram)
        out = (v, m_scale * dm)
        ok = finite0 & _all_finite(out)
        # the loss leaf's "rate" is L(θ) itself: the FSAL stage hands it to the stop event (it
        # shares the forward pass x·Wᵀ with the velocity; XLA computes it once)
        return (*jax.tree.map(lambda z: jnp.where(ok, z, 0.0), out), model.loss(p, x, y, c))

    return vector_field


def _loss_error(problem: Problem, m_scale):
    """Σ_i |∂L/∂m_i|·|δm_i| / L at the step end: a bound on the first-order relative change of L(θ)
    the step's margin errors δm can cause (flow.error_norm = 'loss'; the margins are m̃/m_scale)."""
    n, tiny = problem.data.x.shape[0], jnp.finfo(problem.data.x.dtype).tiny

    def loss_error(y1, err):
        slope = model.loss_slope(y1[1] / m_scale)[1]
        return jnp.sum(jnp.abs(slope * err[1])) / (m_scale * n * jnp.maximum(y1[2], tiny))

    return loss_error


def solve_once(problem: Problem, flow: CompiledFlow, rtol) -> RunResult:
    """One solve at controller tolerance `rtol`: the run's result with `params` = θ at the stop and no
    final observables (`solve_lane` adds them once per run)."""
    dtype = problem.data.x.dtype
    x, y, c, p0, target = problem.data.x, problem.data.y, problem.multiplier, problem.p0, problem.target
    rtol = jnp.asarray(rtol, dtype)
    # flow.accuracy mode holds u to rtol relative to its own size (the block floor with a vanishing atol):
    # with atol = rtol·rms(θ(0)) the lazy regime's u, far smaller than θ(0), is held only through the n
    # margins, and its error in the directions they do not see reached 10–100× rtol (benchmarks/studies/accuracy_ladder.py)
    atol_scale = _ACC_ATOL_FRACTION if flow.accuracy_mode else 1.0
    atol = rtol * problem.rms0 * atol_scale if flow.atol is None else jnp.asarray(flow.atol, dtype)
    m_scale = atol / rtol

    def params_at(u):
        return jax.tree.map(jnp.add, p0, u)

    state0 = (
        jax.tree.map(jnp.zeros_like, p0),
        jnp.where(problem.finite0, m_scale * y * model.apply(p0, x, c), 0.0),
        problem.loss0,
    )
    # flow.accuracy mode never floors the margin block (its lazy-regime error; docs/numerics.md, point 4)
    controller = BlockFloorController(
        rtol=rtol,
        atol=atol,
        norm=_block_norm,
        use_floor=flow.tolerance_floor,
        floor_margins=flow.floor_margins and not flow.accuracy_mode,
        loss_error=_loss_error(problem, m_scale) if flow.error_norm == "loss" else None,
    )
    solver = make_solver(flow.solver, lambda st: model.loss(params_at(st[0]), x, y, c))

    def save_fn(t, state, _):
        return observe(params_at(state[0]), problem.grid_args, semi_analytic=flow.sa_grid)

    run = integrate if flow.integrator == "lean" else _diffeqsolve
    sol = run(
        _vector_field(problem, m_scale),
        solver,
        controller,
        state0,
        t0=jnp.zeros((), dtype),
        t1=jnp.asarray(flow.t_max, dtype),
        max_steps=flow.max_steps,
        stop=lambda st: st[2] <= target,
        ts=problem.ts,
        save_fn=save_fn,
    )
    return _finish(problem, flow, sol, rtol)


def _diffeqsolve(vector_field, solver, controller, y0, *, t0, t1, max_steps, stop, ts, save_fn) -> Solution:
    """The reference path (`flow.integrator = 'diffrax'`): `diffrax.diffeqsolve` with a boolean stop event."""
    saveat = diffrax.SaveAt(subs=[diffrax.SubSaveAt(ts=ts, fn=save_fn), diffrax.SubSaveAt(t1=True)], solver_state=True)
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(vector_field),
        solver,
        t0=t0,
        t1=t1,
        dt0=None,
        y0=y0,
        saveat=saveat,
        stepsize_controller=controller,
        event=diffrax.Event(lambda t, st, _, **kw: stop(st)),
        max_steps=max_steps,
        throw=False,
    )
    saved, end = sol.ys
    saved = jax.tree.map(
        lambda v: jnp.where(jnp.isfinite(sol.ts[0]).reshape((-1,) + (1,) * (v.ndim - 1)), v, jnp.nan), saved
    )
    _, t_start, y_start = sol.solver_state
    result = jnp.where(
        sol.result == diffrax.RESULTS.event_occurred,
        STOPPED,
        jnp.where(
            sol.result == diffrax.RESULTS.max_steps_reached,
            MAX_STEPS,
            jnp.where(sol.result == diffrax.RESULTS.successful, REACHED_T1, -1),
        ),
    )
    stats = sol.stats
    return Solution(
        result=result,
        t_end=sol.ts[1][0],
        y_end=jax.tree.map(lambda v: v[0], end),
        t_start=t_start,
        y_start=y_start,
        saved=saved,
        n_steps=stats["num_steps"],
        n_accepted=stats["num_accepted_steps"],
        n_rejected=stats["num_rejected_steps"],
    )


def _finish(problem: Problem, flow: CompiledFlow, sol: Solution, rtol) -> RunResult:
    """The stop inside the last step, the status and the save grid's trajectories of one solve."""
    x, y, c, p0, target, at_init = (
        problem.data.x,
        problem.data.y,
        problem.multiplier,
        problem.p0,
        problem.target,
        problem.at_init,
    )
    dtype = x.dtype
    p_end = jax.tree.map(jnp.add, p0, sol.y_end[0])
    event_hit = model.loss(p_end, x, y, c) <= target
    tau, p_ref, refined, iters = refine_stop(
        jax.tree.map(jnp.add, p0, sol.y_start[0]), p_end, sol.t_end - sol.t_start, target, x, y, c, flow.stop_rtol
    )
    refined = refined & event_hit
    # A run that overflows mid-way ends in the zero-velocity region; a non-finite velocity there marks it.
    finite = problem.finite0 & _all_finite((p_end, model.flow_velocity(p_end, x, y, c, problem.gram)))
    status = decode_status(sol.result, event_hit, refined, at_init, finite)
    use_ref = refined & ~at_init
    p_stop = jax.tree.map(lambda a, b, c0: jnp.where(at_init, c0, jnp.where(use_ref, a, b)), p_ref, p_end, p0)
    t_stop = jnp.where(at_init, 0.0, jnp.where(use_ref, sol.t_start + tau, sol.t_end))
    after = problem.ts > t_stop
    return RunResult(
        status=status,
        t_stop=t_stop,
        n_steps=sol.n_steps,
        n_accepted=sol.n_accepted,
        n_rejected=sol.n_rejected,
        newton_iters=iters,
        rtol=jnp.asarray(rtol, dtype),
        t_err_est=jnp.asarray(jnp.nan, dtype),
        theta_err_est=jnp.asarray(jnp.nan, dtype),
        n_solves=jnp.int32(1),
        ts=problem.ts,
        traj={k: jnp.where(after, jnp.nan, v) for k, v in sol.saved.items()},
        final={},
        params=p_stop,
    )


# flow.accuracy mode (`_tighten`): the rule and its constants were chosen by replaying rules on ladders of
# single solves against float64 references (benchmarks/studies/accuracy_ladder.py, the calibration set of
# benchmarks/accuracy.py) and checked on other sets (docs: numerics, "Accuracy").
_ACC_RTOL0 = 0.25  # rtol of the first solve, as a multiple of the requested accuracy
_ACC_ATOL_FRACTION = 1e-6  # atol = rtol·rms(θ(0))·this: u held relative to itself (solve_once)
_ACC_RHO = 0.5  # each next solve halves rtol at least
_ACC_SAFETY = 1.0  # a run is accepted when its estimates are ≤ _ACC_SAFETY × accuracy
_ACC_MAX_SOLVES = 6  # give up tightening after this many solves (the estimates then say how far off)
_ACC_MIN_SHRINK = 0.25  # a later solve tightens rtol by at most 4×: two solves on different branches of a
# kink (the benchmarks' heldout problem, α = 1e-3) disagree by percents, and a 20× shrink then overshot to
# 432,002 steps where 3,633 sufficed; on the calibration ladder the limit never binds


def _rel_dist(p, q, p0):
    """‖p − q‖ / ‖p − θ(0)‖ over all parameters."""
    sq = lambda t: sum(jnp.sum(v**2) for v in jax.tree.leaves(t))  # noqa: E731
    return jnp.sqrt(sq(jax.tree.map(jnp.subtract, p, q)) / sq(jax.tree.map(jnp.subtract, p, p0)))


def _tighten(solve_at, accuracy, at_init, p0, dtype):
    """Solve at rtol = _ACC_RTOL0·accuracy, then tighter, until two successive solves agree to `accuracy`.

    The promise (the contract of `flow.accuracy` = ε): |t_η − t_GF|/t_GF ≤ ε for the stop time, and
    ‖θ(t_η) − θ_GF(t_η)‖ ≤ ε·‖θ_GF(t_η) − θ(0)‖ for the state there.

    Solve k's error estimates are its distances to solve k − 1, at an rtol at least twice as loose:
    t_err_est = |t_k − t_{k−1}|/t_k and theta_err_est = ‖θ_k − θ_{k−1}‖/‖θ_k − θ(0)‖. They are not scaled
    down by a convergence order: the ReLU field's kinks make the errors erratic in rtol (not ∝ rtol), and the
    state's error is often 10–100× the stop time's. Comparing the whole state, not t_η alone, is what lets
    two solves suffice: t_η of two loose solves can agree by chance, thousands of parameters do not. A run
    is accepted when both estimates are ≤ _ACC_SAFETY·accuracy; otherwise the next rtol is rtol·ε/est,
    clipped to a 2–4× shrink. A run that stops without reaching η (t_max, max_steps, nonfinite, …) is not
    tightened. One solve sits in a `lax.while_loop`, so the program holds one copy of the solver. The
    returned run is the last solve; n_steps, n_accepted, n_rejected and newton_iters sum all solves.
    """
    accuracy = jnp.asarray(accuracy, dtype)
    blank = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(solve_at, accuracy))
    ok = jnp.asarray([STATUS_CODE[n] for n in ("reached_target", "reached_target_unrefined")], jnp.int32)

    def cond(carry):
        i, done, *_ = carry
        return (~done) & (i < _ACC_MAX_SOLVES)

    def body(carry):
        i, _, rtol, prev = carry
        r = solve_at(rtol)
        counts = {f: getattr(prev, f) + getattr(r, f) for f in ("n_steps", "n_accepted", "n_rejected", "newton_iters")}
        first = i == 0
        t_est = jnp.where(first, jnp.inf, jnp.abs(r.t_stop - prev.t_stop) / r.t_stop)
        theta_est = jnp.where(first, jnp.inf, _rel_dist(r.params, prev.params, p0))
        t_est, theta_est = (jnp.where(jnp.isnan(e), jnp.inf, e) for e in (t_est, theta_est))
        est = jnp.maximum(t_est, theta_est)
        reached = jnp.any(r.status == ok)
        stop = ~reached | ~jnp.isfinite(r.t_stop) | (est <= _ACC_SAFETY * accuracy) | at_init
        shrink = jnp.where(first, _ACC_RHO, jnp.clip(_ACC_SAFETY * accuracy / est, _ACC_MIN_SHRINK, _ACC_RHO))
        r = r._replace(
            t_err_est=jnp.where(at_init, 0.0, t_est),
            theta_err_est=jnp.where(at_init, 0.0, theta_est),
            n_solves=i + 1,
            **counts,
        )
        return i + 1, stop, rtol * shrink, r

    init = (jnp.int32(0), jnp.asarray(False), _ACC_RTOL0 * accuracy, blank)
    return jax.lax.while_loop(cond, body, init)[3]


@eqx.filter_jit
def _simulate_jit(lane, data, width, second_layer, flow):
    return solve_lane(lane, data, width=width, second_layer=second_layer, flow=flow, keep_params=True)


def simulate(*, init_scale, seed: int = 0, config=None, data: Dataset | None = None) -> RunResult:
    """One gradient-flow run from init scale α = `init_scale` and init seed `seed`.

    `config` (a `gflow.Config`) supplies the data, model (width, second layer, multiplier c) and flow
    settings (target η, solver, tolerances, dtype); `data` overrides the config's Gaussian mixture.
    Compiled once per shape and config: new α, seed, c or η values reuse the compiled program.
    """
    from .config import Config, ConfigError, check_positive_finite, check_seed
    from .data import check_arrays, make_dataset

    config = Config() if config is None else config
    check_seed("seed", int(seed) if isinstance(seed, np.integer) else seed)
    try:
        check_positive_finite("init_scale", float(init_scale))
    except (TypeError, ValueError) as e:
        raise ConfigError(
            str(e) if isinstance(e, ConfigError) else f"init_scale: must be a finite number > 0, got {init_scale!r}"
        ) from None
    check_dtype(config.flow.dtype)
    dtype = jnp.dtype(config.flow.dtype)
    if data is None:
        data = make_dataset(config.data, dtype)
    else:
        check_arrays(data.x, data.y, data.x_test, data.y_test)
        data = jax.tree.map(lambda v: jnp.asarray(v, dtype), data)
    lane = Lane(
        init_scale=jnp.asarray(init_scale, dtype),
        multiplier=jnp.asarray(config.model.multiplier, dtype),
        target_loss=jnp.asarray(config.flow.target_loss, dtype),
        rtol=jnp.asarray(config.flow.rtol, dtype),
        init_key=model.init_key(seed),
        accuracy=None if config.flow.accuracy is None else jnp.asarray(config.flow.accuracy, dtype),
    )
    return _simulate_jit(lane, data, config.model.width, config.model.second_layer, config.flow.compiled())
