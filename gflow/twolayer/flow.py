"""Gradient flow dθ/dt = −∇L(θ), integrated with diffrax until the training loss first reaches η.

Time is gradient-flow time t. How a run stops:
1. A boolean diffrax `Event` (L(θ) ≤ η) ends the solve at the end of the first accepted step on
   which the loss is at or below η ("step-end detection").
2. A safeguarded Newton root finder then locates the crossing inside that last step: it solves
   L(θ(τ)) = η for τ ∈ [0, h], where θ(τ) is the cubic Hermite interpolant of the step's end states
   and velocities; the step's start is recorded by `RecordStepStart`. If it meets
   |L − η| ≤ stop_rtol·η, the run is `reached_target`; otherwise the step-end state is kept and the
   run is `reached_target_unrefined` (its loss is ≤ η, by at most one step's decrease). We do not
   use diffrax's built-in event root-finding: when its Newton fails it returns a state that is not
   at the target and the step end is lost (DESIGN.md, numerics).
3. Every other ending has its own status; see `STATUSES`.

Where things live: the solvers, the step-size controller and the step wrapper in `solvers`; the stop
refinement and the status vocabulary and decoding in `stop`; the loss and its gradient in `model`.
This module builds the ODE and runs it (`solve_lane`, `simulate`), and tightens it to a requested
accuracy (`_tighten`).
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import NamedTuple

import diffrax
import equinox as eqx
import optimistix as optx
import jax
import jax.numpy as jnp

from . import model
from .config import FlowConfig
from .data import Dataset, class_mean_direction, positive_class_mean
from .gm_error import tie_weight
from .observables import ObsArgs, observe
from ..numerics import all_finite as _all_finite, check_dtype, enable_float64  # noqa: F401 (re-exported)
from .solvers import BlockFloorController, make_solver
from .stop import OK_STATUSES, STATUS_CODE, STATUS_NAMES, STATUSES, decode_status, refine_stop  # noqa: F401  (re-exported)


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




def solve_lane(lane: Lane, data: Dataset, *, width: int, second_layer: str, flow: FlowConfig, keep_params: bool):
    """Initialize one net and integrate its gradient flow to the target loss. Pure and unjitted.

    Every matmul is traced at `flow.matmul_precision` ('highest' by default): on GPUs JAX's default
    precision runs float32 matmuls as TF32, which moved t_η by up to 10% and changed statuses on an
    H200 (benchmarks/README.md)."""
    with jax.default_matmul_precision(flow.matmul_precision):
        return _solve_lane(lane, data, width=width, second_layer=second_layer, flow=flow, keep_params=keep_params)


def _solve_lane(lane: Lane, data: Dataset, *, width: int, second_layer: str, flow: FlowConfig, keep_params: bool):
    dtype = data.x.dtype
    x, y, c, target = data.x, data.y, lane.multiplier, lane.target_loss
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

    # The ODE state is (u, m̃): the displacement u = θ − θ(0) and the training margins
    # m_i = y_i·c·f(x_i), carried along only for error control (m̃ = m·atol/rtol).
    # - Control relative to u, not θ: in the lazy regime θ barely moves relative to θ(0) while the
    #   outputs move by O(1), and control relative to θ lets the loss overshoot η by orders of
    #   magnitude in one step.
    # - The margins make the tolerance mean the same thing at every α: the loss is a function of
    #   the margins, and their error is held to rtol·(1 + |m|). Without them, an atol small enough
    #   for the lazy regime costs 5–10× more steps in the rich regime (measured; README numerics).
    # The step-size norm is the larger of the two blocks' RMS errors, and `BlockFloorController`
    # floors each component's tolerance at its block's RMS.
    rms0 = model.param_norm(p0) / jnp.sqrt(jnp.asarray(p0.W.size + p0.a.size, dtype))

    def params_at(u):
        return jax.tree.map(jnp.add, p0, u)

    gram = x @ x.T if x.shape[0] < x.shape[1] else None  # cheaper margin rate when n < d
    # A state whose velocity is NaN/inf cannot take a step (every step is rejected). Its velocity is
    # zeroed, at init and mid-run alike, so the solve runs to t_max in a few steps instead of
    # spinning at the last finite state until max_steps; the status says `nonfinite`.
    v0, dm0 = model.flow_velocity(p0, x, y, c, gram)
    finite0 = _all_finite((v0, dm0, model.loss(p0, x, y, c)))
    loss0 = model.loss(p0, x, y, c)
    at_init = loss0 <= target

    k = min(flow.n_test_grid, data.x_test.shape[0])
    grid_args = args._replace(data=data._replace(x_test=data.x_test[:k], y_test=data.y_test[:k]))

    def obs_fn(t, state, _):
        return observe(params_at(state[0]), grid_args, semi_analytic=flow.sa_grid)

    def below_target(t, state, _, **kwargs):  # the exact loss at the step end, set by RecordStepStart
        return state[2] <= target

    def block_norm(err):
        return jnp.maximum(optx.rms_norm(err[0]), optx.rms_norm(err[1]))

    ts = save_grid(flow.t_max, flow.n_save, flow.t_save_min, dtype)
    # flow.accuracy mode never floors the margin block (its lazy-regime error; README Numerics, point 4)
    floor_margins = flow.floor_margins and flow.accuracy is None

    def solve_at(rtol, dtmax=None, final=True):
        """One solve at controller tolerance `rtol` (steps ≤ `dtmax`): the run's result, observables and all
        (`final=False`: no final observables, `params` always kept; `_tighten` observes its last solve once)."""
        atol = rtol * rms0 if flow.atol is None else jnp.asarray(flow.atol, dtype)
        m_scale = atol / rtol

        def vector_field(t, state, _):
            p = params_at(state[0])
            v, dm = model.flow_velocity(p, x, y, c, gram)
            out = (v, m_scale * dm)
            ok = finite0 & _all_finite(out)
            # the loss leaf's "rate" is L(θ) itself: the FSAL stage hands it to the stop event (it
            # shares the forward pass x·Wᵀ with the velocity; XLA computes it once)
            return (*jax.tree.map(lambda z: jnp.where(ok, z, 0.0), out), model.loss(p, x, y, c))

        # State (u, m̃, ℓ); ℓ is not integrated: `RecordStepStart` sets it to L(θ) at each step end,
        # for the stop event. It has no weight in the error norm (`block_norm` reads u and m̃ only).
        state0 = (jax.tree.map(jnp.zeros_like, p0), jnp.where(finite0, m_scale * y * model.apply(p0, x, c), 0.0), loss0)

        def loss_error(y1, err):
            """Σ_i |∂L/∂m_i|·|δm_i| / L at the step end: a bound on the first-order relative change of L(θ)
            the step's margin errors δm can cause (flow.error_norm = 'loss'; the margins are m̃/m_scale)."""
            slope = model.loss_slope(y1[1] / m_scale)[1]
            return jnp.sum(jnp.abs(slope * err[1])) / (m_scale * x.shape[0] * jnp.maximum(y1[2], jnp.finfo(dtype).tiny))

        saveat = diffrax.SaveAt(
            subs=[diffrax.SubSaveAt(ts=ts, fn=obs_fn), diffrax.SubSaveAt(t1=True)], solver_state=True
        )
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(vector_field),
            make_solver(flow.solver, lambda st: model.loss(params_at(st[0]), x, y, c)),
            t0=jnp.asarray(0.0, dtype),
            t1=jnp.asarray(flow.t_max, dtype),
            dt0=None,
            y0=state0,
            saveat=saveat,
            stepsize_controller=BlockFloorController(rtol=rtol, atol=atol, norm=block_norm, use_floor=flow.tolerance_floor,
                                                         floor_margins=floor_margins, dtmax=dtmax,
                                                         loss_error=loss_error if flow.error_norm == "loss" else None),
            event=diffrax.Event(below_target),
            max_steps=flow.max_steps,
            throw=False,
        )
        traj_raw, end = sol.ys
        t_end = sol.ts[1][0]
        p_end = params_at(jax.tree.map(lambda v: v[0], end[0]))

        event_hit = model.loss(p_end, x, y, c) <= target
        _, t_start, (u_start, *_) = sol.solver_state
        tau, p_ref, refined, iters = refine_stop(params_at(u_start), p_end, t_end - t_start, target, x, y, c, flow.stop_rtol)
        refined = refined & event_hit
        # A run that overflows mid-way ends in the zero-velocity region above; a non-finite velocity there marks it.
        finite = finite0 & _all_finite((p_end, model.flow_velocity(p_end, x, y, c, gram)))
        status = decode_status(sol.result, event_hit, refined, at_init, finite)

        use_ref = refined & ~at_init
        p_stop = jax.tree.map(lambda a, b, c0: jnp.where(at_init, c0, jnp.where(use_ref, a, b)), p_ref, p_end, p0)
        t_stop = jnp.where(at_init, 0.0, jnp.where(use_ref, t_start + tau, t_end))

        after = (ts > t_stop) | ~jnp.isfinite(sol.ts[0])
        traj = {k: jnp.where(after, jnp.nan, v) for k, v in traj_raw.items()}
        stats = sol.stats
        return RunResult(
            status=status,
            t_stop=t_stop,
            n_steps=stats["num_steps"],
            n_accepted=stats["num_accepted_steps"],
            n_rejected=stats["num_rejected_steps"],
            newton_iters=iters,
            rtol=jnp.asarray(rtol, dtype),
            t_err_est=jnp.asarray(jnp.nan, dtype),
            n_solves=jnp.int32(1),
            ts=ts,
            traj=traj,
            final=observe(p_stop, args) if final else {},
            params=p_stop if keep_params or not final else None,
        )

    if flow.accuracy is None:
        return solve_at(lane.rtol)
    # The final observables once, at the accepted solve's stop, not in each of its ≥ 4 solves: their
    # semi-analytic test error sorts h breakpoints per test point (~110 ms a run at the default config on
    # a CPU core, most of a warm CLI sweep's time; benchmarks/sweep_profile.py).
    # jitted so that `_tighten`'s eval_shape and its loop body share one trace of the solve (it was traced
    # twice: ~1 s of every accuracy-mode process, measured on the default config)
    r = _tighten(jax.jit(partial(solve_at, final=False)), lane.accuracy, at_init, dtype)
    return r._replace(final=observe(r.params, args), params=r.params if keep_params else None)


# flow.accuracy mode (`_tighten`), calibrated in benchmarks/accuracy.py (README Numerics, "Accuracy").
_ACC_RTOL0 = 10.0  # rtol of the first (cheap) solve, as a multiple of the requested accuracy
_ACC_RHO0 = 1 / 3  # the next two solves tighten rtol by this factor each
_ACC_MIN_SOLVES = 4  # three loose solves agreed by chance while 2% off (benchmarks/accuracy.py): never accept before the 4th
_ACC_SAFETY = 0.5  # a run is accepted when its error estimate is ≤ _ACC_SAFETY × accuracy
_ACC_MAX_SOLVES = 7  # give up tightening after this many solves (t_err_est then says how far off)
_ACC_MIN_SHRINK, _ACC_MAX_SHRINK = 0.05, 0.5  # later solves tighten rtol by 2–20×


def _tighten(solve_at, accuracy, at_init, dtype):
    """Solve at rtol = _ACC_RTOL0·accuracy, then tighter, until the error estimate meets `accuracy`.

    The ReLU field makes the solver effectively first order (README Numerics), so t_η's error is
    taken ∝ rtol: solves k−1, k at rtol_{k−1} > rtol_k = ρ·rtol_{k−1} give the difference estimate
    d_k = |t_k − t_{k−1}|/t_k · ρ/(1 − ρ) of solve k's relative error. At loose tolerances (tens of
    steps) the error is erratic and two solves can agree by chance (measured: t_η equal to 2e-4 at
    rtol 3e-3 and 1e-3, both 3e-3 off), so the estimate also carries the previous one forward:
    e_k = max(d_k, e_{k−1}·ρ). A run is accepted after at least _ACC_MIN_SOLVES solves when
    e_k ≤ _ACC_SAFETY·accuracy; otherwise the next rtol is the one e_k predicts would give
    _ACC_SAFETY²·accuracy (a 2–20× shrink). A run that stops without reaching η (t_max, max_steps,
    nonfinite, …) is not tightened. One diffrax solve sits in a `lax.while_loop`, so the program holds
    one copy of the solver. The returned run is the last solve; n_steps, n_accepted, n_rejected and
    newton_iters sum all solves.
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
        rho = rtol / prev.rtol
        diff = jnp.abs(r.t_stop - prev.t_stop) / r.t_stop * rho / (1 - rho)
        est = jnp.where(i == 0, jnp.inf, jnp.where(i == 1, diff, jnp.maximum(diff, prev.t_err_est * rho)))
        est = jnp.where(jnp.isnan(est), jnp.inf, est)
        reached = jnp.any(r.status == ok)
        met = (i + 1 >= _ACC_MIN_SOLVES) & (est <= _ACC_SAFETY * accuracy)
        stop = ~reached | ~jnp.isfinite(r.t_stop) | met | at_init
        shrink = jnp.clip(_ACC_SAFETY**2 * accuracy / est, _ACC_MIN_SHRINK, _ACC_MAX_SHRINK)
        shrink = jnp.where(i + 1 < _ACC_MIN_SOLVES, _ACC_RHO0, shrink)
        r = r._replace(t_err_est=jnp.where(at_init, 0.0, est), n_solves=i + 1, **counts)
        return i + 1, stop, rtol * shrink, r

    init = (jnp.int32(0), jnp.asarray(False), _ACC_RTOL0 * accuracy, blank)
    return jax.lax.while_loop(cond, body, init)[3]


def static_flow(flow: FlowConfig) -> FlowConfig:
    """The flow settings that are compiled in: the per-run values (η, rtol) are traced from `Lane`,
    so they are normalized here and changing them never recompiles."""
    return dataclasses.replace(flow, target_loss=1.0, rtol=1.0, accuracy=None if flow.accuracy is None else 0.5)


@eqx.filter_jit
def _simulate_jit(lane, data, width, second_layer, flow):
    return solve_lane(lane, data, width=width, second_layer=second_layer, flow=flow, keep_params=True)


def simulate(*, init_scale, seed: int = 0, config=None, data: Dataset | None = None) -> RunResult:
    """One gradient-flow run from init scale α = `init_scale` and init seed `seed`.

    `config` (a `gflow.Config`) supplies the data, model (width, second layer, multiplier c) and flow
    settings (target η, solver, tolerances, dtype); `data` overrides the config's Gaussian mixture.
    Compiled once per shape and config: new α, seed, c or η values reuse the compiled program.
    """
    from .config import Config, ConfigError, _positive_finite
    from .data import check_arrays, make_dataset

    config = Config() if config is None else config
    try:
        _positive_finite("init_scale", float(init_scale))
    except (TypeError, ValueError) as e:
        raise ConfigError(str(e) if isinstance(e, ConfigError) else f"init_scale: must be a finite number > 0, got {init_scale!r}") from None
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
    return _simulate_jit(lane, data, config.model.width, config.model.second_layer, static_flow(config.flow))
