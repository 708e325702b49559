"""Gradient flow dθ/dt = −∇L(θ), integrated with diffrax until the training loss first reaches η.

Time is gradient-flow time t. How a run stops:
1. A boolean diffrax `Event` (L(θ) ≤ η) ends the solve at the end of the first accepted step on
   which the loss is at or below η ("step-end detection").
2. A safeguarded Newton root finder then locates the crossing inside that last step: it solves
   L(θ(τ)) = η for τ ∈ [0, h], where θ(τ) is the cubic Hermite interpolant of the step's end states
   and velocities; the step's start is recorded by `_RecordStepStart`. If it meets
   |L − η| ≤ stop_rtol·η, the run is `reached_target`; otherwise the step-end state is kept and the
   run is `reached_target_unrefined` (its loss is ≤ η, by at most one step's decrease). We do not
   use diffrax's built-in event root-finding: when its Newton fails it returns a state that is not
   at the target and the step end is lost (DESIGN.md, numerics).
3. Every other ending has its own status; see `STATUSES`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

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
from .solvers import SOLVERS, hermite

STATUSES = {
    "reached_target": "the loss reached η; the stop was refined so that |L(θ_stop) − η| ≤ stop_rtol·η",
    "reached_target_unrefined": "the loss crossed η in the last step but refinement failed; θ_stop is the step end (L ≤ η)",
    "target_at_init": "L(θ(0)) ≤ η already; t_stop = 0",
    "t_max": "t_max was reached before the loss reached η",
    "max_steps": "max_steps solver steps were taken before the loss reached η",
    "nonfinite": "the state or the loss became NaN or inf",
    "solver_error": "diffrax reported another failure (e.g. dt_min reached); see the manifest",
}
STATUS_NAMES = tuple(STATUSES)
STATUS_CODE = {name: i for i, name in enumerate(STATUS_NAMES)}
OK_STATUSES = ("reached_target", "reached_target_unrefined", "target_at_init")

_NEWTON_MAX_ITERS = 16


class _BlockFloorController(diffrax.PIDController):
    """PID control with each component's tolerance floored at its block's RMS size.

    diffrax scales the error of component i by atol + rtol·|y_i|. Here |y_i| is replaced by
    max(|y_i|, rms(y_block)) for each leaf (W, a, margins) — a mixed componentwise/normwise
    tolerance. In the rich regime most neurons stay tiny while a few grow to O(1); tiny neurons
    that cross data hyperplanes would otherwise set the step size through errors that are
    negligible for the network function.
    """

    use_floor: bool = eqx.field(static=True, default=True)
    floor_margins: bool = eqx.field(static=True, default=True)

    def adapt_step_size(self, t0, t1, y0, y1_candidate, args, y_error, error_order, controller_state):
        def floor(a, b, e):
            b = jnp.where(jnp.isnan(b), a, b)
            size = jnp.maximum(jnp.abs(a), jnp.abs(b))
            rms = jnp.sqrt(jnp.mean(size**2))
            return e * (self.atol + self.rtol * size) / (self.atol + self.rtol * jnp.maximum(size, rms))

        if self.use_floor and self.floor_margins:
            y_error = jax.tree.map(floor, y0, y1_candidate, y_error)
        elif self.use_floor:  # the state is (params, margins): floor the parameter blocks only
            y_error = (jax.tree.map(floor, y0[0], y1_candidate[0], y_error[0]), *y_error[1:])
        return super().adapt_step_size(t0, t1, y0, y1_candidate, args, y_error, error_order, controller_state)


class _RecordStepStart(diffrax.AbstractAdaptiveSolver, diffrax.AbstractWrappedSolver):
    """Wraps a solver; keeps (t, y) at the start of the step just taken in the solver state, and sets
    the state's last leaf (the loss leaf, see `_solve_lane`) to the exact loss L(θ) at the step end.

    diffrax keeps a step's solver state only when the step is accepted, so after the solve the
    state holds the start of the last accepted step: the bracket for the stop refinement.

    The loss at the step end comes from work already done when the solver is FSAL and keeps the
    vector field at the step end as its state (`FusedBosh3.state_is_end_vf`): the vector field
    returns L(θ) in its last leaf, and its forward pass is the one the velocity needs anyway. Other
    solvers get it from `loss_fn(y1)` (one extra forward pass per step, as the stop event cost before).
    """

    solver: diffrax.AbstractSolver
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
        loss1 = inner[-1] if getattr(self.solver, "state_is_end_vf", False) else self.loss_fn(y1)
        return (*y1[:-1], loss1), y_error, dense_info, (inner, t0, y0), result

    def func(self, terms, t0, y0, args):
        return self.solver.func(terms, t0, y0, args)


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


def _refine_stop(p_start: model.Params, p_end: model.Params, h, target, x, y, c, stop_rtol):
    """Locate the stop inside the last accepted step [t_start, t_start + h].

    θ(τ) on the step is the cubic Hermite interpolant of its end states and velocities (third order,
    like Bosh3's own interpolation; two extra gradient evaluations). Safeguarded Newton on
    g(τ) = log L(θ(τ)) − log η over [0, h], where g(0) > 0 (the step started above η) and g(h) ≤ 0
    (the event fired at its end); each iteration costs one forward pass and its tangent. The log
    keeps g nearly linear even when the step overshoots η by orders of magnitude (lazy regime,
    L ~ exp(−margin)). A Newton step that leaves the bracket is replaced by bisection. Returns
    (τ, θ(τ), converged, iterations); converged means |L − η| ≤ stop_rtol·η.
    """
    log_target = jnp.log(target)
    # increments over the step: h × the velocities −∇L at its two ends
    k0 = jax.tree.map(lambda g: -h * g, model.loss_and_grad(p_start, x, y, c)[1])
    k1 = jax.tree.map(lambda g: -h * g, model.loss_and_grad(p_end, x, y, c)[1])

    def path(tau):
        return hermite(p_start, p_end, k0, k1, tau / h)

    def g(tau):
        return jnp.log(model.loss(path(tau), x, y, c)) - log_target

    tol = jnp.log1p(stop_rtol)  # |log L − log η| ≤ log(1 + r) implies |L − η| ≤ r·η

    def cond(state):
        tau, lo, hi, val, it = state
        return (jnp.abs(val) > tol) & (it < _NEWTON_MAX_ITERS) & jnp.isfinite(val)

    def body(state):
        tau, lo, hi, _, it = state
        val, slope = jax.jvp(g, (tau,), (jnp.ones_like(tau),))
        lo = jnp.where(val > 0, tau, lo)
        hi = jnp.where(val > 0, hi, tau)
        newton = tau - val / jnp.where(slope < 0, slope, -jnp.inf)
        inside = (newton > lo) & (newton < hi) & jnp.isfinite(newton)
        new_tau = jnp.where(inside, newton, 0.5 * (lo + hi))
        return new_tau, lo, hi, g(new_tau), it + 1

    g0, gh = g(jnp.zeros_like(h)), g(h)
    bracketed = (g0 > 0) & (gh <= 0)
    # start from the secant guess inside the bracket
    tau0 = jnp.where(bracketed, h * g0 / (g0 - jnp.where(bracketed, gh, g0 - 1.0)), h)
    init = (tau0, jnp.zeros_like(h), h, g(tau0), jnp.int32(0))
    tau, _, _, val, iters = jax.lax.while_loop(cond, body, init)
    converged = bracketed & (jnp.abs(val) <= tol)
    return tau, path(tau), converged, iters


def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.asarray([jnp.all(jnp.isfinite(v)) for v in jax.tree.leaves(tree)]))


def _decode_status(result, event_hit, refined, at_init, finite):
    """Map diffrax's result code (plus our own checks) to a code into STATUS_NAMES."""
    code = jnp.int32(STATUS_CODE["solver_error"])
    code = jnp.where(result == diffrax.RESULTS.max_steps_reached, STATUS_CODE["max_steps"], code)
    code = jnp.where(result == diffrax.RESULTS.successful, STATUS_CODE["t_max"], code)
    hit = event_hit & (result == diffrax.RESULTS.event_occurred)
    code = jnp.where(hit, jnp.where(refined, STATUS_CODE["reached_target"], STATUS_CODE["reached_target_unrefined"]), code)
    code = jnp.where(finite, code, STATUS_CODE["nonfinite"])
    return jnp.where(at_init, STATUS_CODE["target_at_init"], code).astype(jnp.int32)


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
    # The step-size norm is the larger of the two blocks' RMS errors, and `_BlockFloorController`
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

    def below_target(t, state, _, **kwargs):  # the exact loss at the step end, set by _RecordStepStart
        return state[2] <= target

    def block_norm(err):
        return jnp.maximum(optx.rms_norm(err[0]), optx.rms_norm(err[1]))

    ts = save_grid(flow.t_max, flow.n_save, flow.t_save_min, dtype)
    # flow.accuracy mode never floors the margin block (its lazy-regime error; README Numerics, point 4)
    floor_margins = flow.floor_margins and flow.accuracy is None

    def solve_at(rtol, dtmax=None):
        """One solve at controller tolerance `rtol` (steps ≤ `dtmax`): the run's result, observables and all."""
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

        # State (u, m̃, ℓ); ℓ is not integrated: `_RecordStepStart` sets it to L(θ) at each step end,
        # for the stop event. It has no weight in the error norm (`block_norm` reads u and m̃ only).
        state0 = (jax.tree.map(jnp.zeros_like, p0), jnp.where(finite0, m_scale * y * model.apply(p0, x, c), 0.0), loss0)
        saveat = diffrax.SaveAt(
            subs=[diffrax.SubSaveAt(ts=ts, fn=obs_fn), diffrax.SubSaveAt(t1=True)], solver_state=True
        )
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(vector_field),
            _RecordStepStart(SOLVERS[flow.solver](), lambda st: model.loss(params_at(st[0]), x, y, c)),
            t0=jnp.asarray(0.0, dtype),
            t1=jnp.asarray(flow.t_max, dtype),
            dt0=None,
            y0=state0,
            saveat=saveat,
            stepsize_controller=_BlockFloorController(rtol=rtol, atol=atol, norm=block_norm, use_floor=flow.tolerance_floor,
                                                         floor_margins=floor_margins, dtmax=dtmax),
            event=diffrax.Event(below_target),
            max_steps=flow.max_steps,
            throw=False,
        )
        traj_raw, end = sol.ys
        t_end = sol.ts[1][0]
        p_end = params_at(jax.tree.map(lambda v: v[0], end[0]))

        event_hit = model.loss(p_end, x, y, c) <= target
        _, t_start, (u_start, *_) = sol.solver_state
        tau, p_ref, refined, iters = _refine_stop(params_at(u_start), p_end, t_end - t_start, target, x, y, c, flow.stop_rtol)
        refined = refined & event_hit
        # A run that overflows mid-way ends in the zero-velocity region above; a non-finite velocity there marks it.
        finite = finite0 & _all_finite((p_end, model.flow_velocity(p_end, x, y, c, gram)))
        status = _decode_status(sol.result, event_hit, refined, at_init, finite)

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
            final=observe(p_stop, args),
            params=p_stop if keep_params else None,
        )

    return solve_at(lane.rtol) if flow.accuracy is None else _tighten(solve_at, lane.accuracy, at_init, dtype)


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


def check_dtype(dtype: str) -> None:
    """float64 needs JAX's 64-bit mode; say how to turn it on instead of silently computing in float32."""
    if dtype == "float64" and not jax.config.jax_enable_x64:
        raise ValueError(
            "flow.dtype: float64 requested but JAX runs in 32-bit mode; call gflow.enable_float64() "
            "(or set JAX_ENABLE_X64=1) before any JAX computation"
        )


def enable_float64() -> None:
    """Switch JAX to 64-bit mode (needed for flow.dtype = 'float64'). Call before any JAX work."""
    jax.config.update("jax_enable_x64", True)


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
