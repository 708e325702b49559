"""Frozen, validated configuration of the two-layer wing: data, model, flow, sweep.

Built on `gflow.config` (validators, TOML load/dump, `--set` overrides, describe; shared with the deep wing).
Every field carries a one-line help text (shown by `gflow sweep --help`). Invalid values raise
`ConfigError` with a one-line message that names the field, e.g. `flow.target_loss: must be a finite
number > 0, got 0`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from ..config import (
    SEED_LIMIT,
    ConfigError,
    SectionedConfig,
    check_bool,
    check_choice,
    check_distinct,
    check_in_dtype,
    check_int_at_least,
    check_memory,
    check_positive_finite,
    check_seed,
    config_field,
    dtype_range,
    parse_axis,
)

SOLVER_NAMES = ("bosh3", "rkc2", "tsit5", "dopri5", "dopri8", "heun", "ralston", "midpoint")
DTYPES = ("float32", "float64")
DATA_MODES = ("gaussian", "separable", "high_dim")
ERROR_NORMS = ("margins", "loss")
INTEGRATORS = ("lean", "diffrax")
TIE_CONVENTIONS = ("error", "half", "correct")  # weights 1, 1/2, 0 (gflow.twolayer.gm_error.TIE_WEIGHTS)


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    n: int = config_field(40, "number of training points")
    n_test: int = config_field(4000, "held-out points for the Monte-Carlo test error of the network")
    d: int = config_field(100, "input dimension")
    kappa: float = config_field(1.0, "signal strength κ in x = κ·y·s + σ·z")
    sigma: float = config_field(0.5, "noise level σ in x = κ·y·s + σ·z; Bayes error Φ(−κ/σ)")
    seed: int = config_field(0, "data seed: key fold_in(DATA_ROOT, seed); independent of the init seeds")
    mode: str = config_field(
        "gaussian",
        "'gaussian'; 'separable': conditioned on λ = min y_i y_k cos(x_i, x_k) > 0 by redrawing the training set; "
        "'high_dim': d ≥ 10·n, noise σ/√d per coordinate (‖noise‖ ≈ σ, nearly orthogonal x_i)",
    )
    separable: bool = config_field(
        False, "also condition on λ > 0 by redrawing in the 'gaussian'/'high_dim' modes ('separable' mode always does)"
    )
    max_draws: int = config_field(
        200, "training-set draws tried before a separable dataset is declared impossible (a one-line error)"
    )

    def __post_init__(self):
        check_choice("data.mode", self.mode, DATA_MODES)
        check_bool("data.separable", self.separable)
        check_int_at_least("data.max_draws", self.max_draws, 1)
        check_int_at_least("data.n", self.n, 1)
        check_int_at_least("data.n_test", self.n_test, 1)
        check_int_at_least("data.d", self.d, 1)
        check_positive_finite("data.kappa", self.kappa)
        check_positive_finite("data.sigma", self.sigma)
        check_seed("data.seed", self.seed)


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    width: int = config_field(100, "number of hidden ReLU neurons h")
    second_layer: str = config_field("balanced", "'balanced': a_j(0) = ±‖w_j(0)‖; 'gaussian': a_j(0) ~ α·N(0, 1/h)")
    multiplier: float = config_field(1.0, "output multiplier c: the model is c·f (c = α² from unit init is equivalent)")

    def __post_init__(self):
        check_int_at_least("model.width", self.width, 1)
        if self.second_layer not in ("balanced", "gaussian"):
            raise ConfigError(f"model.second_layer: must be 'balanced' or 'gaussian', got {self.second_layer!r}")
        check_positive_finite("model.multiplier", self.multiplier)


MATMUL_PRECISIONS = ("highest", "high", "default")


@dataclass(frozen=True, kw_only=True)
class FlowConfig:
    target_loss: float = config_field(0.01, "target training risk η: a run stops at the first time L(θ) ≤ η")
    solver: str = config_field(
        "bosh3",
        f"explicit RK solver (bosh3: gflow.twolayer.solvers.FusedBosh3; rkc2: gflow.twolayer.rkc.RKC2, Runge–Kutta–Chebyshev for "
        f"the stiff lazy regime; the others diffrax's), one of {', '.join(SOLVER_NAMES)}",
    )
    integrator: str = config_field(
        "lean",
        "the loop that drives the solver: 'lean' (a plain lax.while_loop over the solver's steps, gflow.twolayer.integrate) "
        "or 'diffrax' (diffrax.diffeqsolve: the reference path; the same steps, bit for bit, at about the same cost a step)",
    )
    rtol: float = config_field(
        1e-3, "relative tolerance of the PID step-size controller (experts; ignored when flow.accuracy is set)"
    )
    accuracy: float | None = config_field(
        None,
        "target relative error of t_η, in (0, 1): each run picks and tightens its own rtol until its a-posteriori "
        "error estimate meets it (docs/numerics.md, 'Accuracy'); unset: one fixed flow.rtol",
    )
    atol: float | None = config_field(
        None, "absolute tolerance; default rtol × rms(θ(0)), i.e. relative to the init scale"
    )
    t_max: float = config_field(1e6, "give up at this gradient-flow time (status 't_max')")
    max_steps: int = config_field(100_000, "give up after this many solver steps (status 'max_steps')")
    n_save: int = config_field(48, "number of saved time points: t = 0 and a log grid from t_save_min to t_max")
    t_save_min: float = config_field(1e-2, "first nonzero time of the log-spaced save grid")
    n_test_grid: int = config_field(
        512, "test points used for test_err on the save grid (the stop uses all data.n_test)"
    )
    sa_final: bool = config_field(
        False,
        "compute the semi-analytic test error at the stop (final_test_err_sa, final_test_tie_sa; NaN when off); off by "
        "default: it sorts h breakpoints per draw and was 71% of the default sweep's CPU time (5.18 s against 1.48 s, "
        "benchmarks/studies/observables_cost.py, docs/numerics.md); the Monte-Carlo final_test_err is always computed",
    )
    sa_grid: bool = config_field(
        False,
        "also compute the semi-analytic test error (test_err_sa) on the save grid, from n_test_grid draws; off by default: "
        "it costs 30–140 Monte-Carlo errors per save point (about 20 ms at h = 100, 512 draws, 2 shared CPU cores; docs/concepts.md)",
    )
    sa_draws: int = config_field(
        4096,
        "draws of the semi-analytic error: the orthogonal parts of the first sa_draws test points (its memory and time grow "
        "like sa_draws × width; fewer on the save grid if n_test_grid is smaller)",
    )
    ties: str = config_field(
        "error", "test errors count f = 0 (a tie) as 'error' (default), 'half' an error, or 'correct'"
    )
    tolerance_floor: bool = config_field(
        True, "floor each component's tolerance at rtol × its block's RMS (W, a, margins); false: plain componentwise"
    )
    floor_margins: bool = config_field(
        True,
        "with tolerance_floor: floor the margin block too (fewer steps in the lazy regime, where it costs accuracy: "
        "t_η was off by 4.8–15.7% in measured cases at rtol 1e-3, docs/numerics.md); false: floor W and a only",
    )
    error_norm: str = config_field(
        "margins",
        "what the step-size control holds to rtol besides the parameters: 'margins' (each training margin to "
        "rtol·(1 + |m_i|), the default) or 'loss' (the relative change of L(θ) the margin errors can cause, "
        "Σ|ℓ′(m_i)||δm_i|/(n·L); far fewer steps in the lazy regime; docs/numerics.md, 'Error norm')",
    )
    stop_rtol: float = config_field(1e-6, "the refined stop must satisfy |L(θ_stop) − η| ≤ stop_rtol·η")
    dtype: str = config_field("float32", "'float32' (default) or 'float64' (enables 64-bit JAX in the CLI)")
    matmul_precision: str = config_field(
        "highest",
        "matmul precision inside the solve: 'highest' (full float32; default), or 'high'/'default', which let "
        "GPUs use TF32/bf16 passes and change trajectories (benchmarks/gpu/README.md)",
    )

    def __post_init__(self):
        check_positive_finite("flow.target_loss", self.target_loss)
        if self.solver not in SOLVER_NAMES:
            raise ConfigError(f"flow.solver: unknown solver {self.solver!r}; choose one of {', '.join(SOLVER_NAMES)}")
        check_choice("flow.integrator", self.integrator, INTEGRATORS)
        check_positive_finite("flow.rtol", self.rtol)
        if self.rtol >= 1:
            raise ConfigError(f"flow.rtol: must be a number in (0, 1) (a relative tolerance), got {self.rtol!r}")
        if self.accuracy is not None:
            a = self.accuracy
            if not isinstance(a, (int, float)) or isinstance(a, bool) or not math.isfinite(a) or not 0 < a < 1:
                raise ConfigError(f"flow.accuracy: must be a number in (0, 1) (relative error of t_η), got {a!r}")
            object.__setattr__(self, "accuracy", float(a))
        check_choice("flow.error_norm", self.error_norm, ERROR_NORMS)
        for name in ("tolerance_floor", "floor_margins", "sa_grid", "sa_final"):
            check_bool(f"flow.{name}", getattr(self, name))
        if self.atol is not None:
            check_positive_finite("flow.atol", self.atol)
        check_positive_finite("flow.t_max", self.t_max)
        check_int_at_least("flow.max_steps", self.max_steps, 1)
        check_int_at_least("flow.n_save", self.n_save, 2)
        check_positive_finite("flow.t_save_min", self.t_save_min)
        check_int_at_least("flow.n_test_grid", self.n_test_grid, 1)
        check_int_at_least("flow.sa_draws", self.sa_draws, 1)
        check_choice("flow.ties", self.ties, TIE_CONVENTIONS)
        if self.t_save_min >= self.t_max:
            raise ConfigError(f"flow.t_save_min: must be < flow.t_max = {self.t_max}, got {self.t_save_min}")
        check_positive_finite("flow.stop_rtol", self.stop_rtol)
        if self.dtype not in DTYPES:
            raise ConfigError(f"flow.dtype: must be 'float32' or 'float64', got {self.dtype!r}")
        check_choice("flow.matmul_precision", self.matmul_precision, MATMUL_PRECISIONS)

    def compiled(self) -> CompiledFlow:
        """The settings compiled into a program (the per-run values η, rtol and accuracy are left out:
        they travel as traced arrays in `gflow.twolayer.flow.Lane`, so changing them never recompiles)."""
        kept = {f: getattr(self, f) for f in COMPILED_FLOW_FIELDS}
        return CompiledFlow(**kept, accuracy_mode=self.accuracy is not None)


# The flow settings that are per-run values (traced, one per lane); every other FlowConfig field is compiled in.
PER_RUN_FLOW_FIELDS = ("target_loss", "rtol", "accuracy")


@dataclass(frozen=True, kw_only=True)
class CompiledFlow:
    """The compiled half of `FlowConfig` (`FlowConfig.compiled()`): hashable, a static argument of the jitted
    solves. Each field means what the FlowConfig field of the same name means; `accuracy_mode` says whether
    runs tighten to a requested accuracy (`flow.accuracy` set; its value is per run)."""

    solver: str
    integrator: str
    accuracy_mode: bool
    atol: float | None
    t_max: float
    max_steps: int
    n_save: int
    t_save_min: float
    n_test_grid: int
    sa_final: bool
    sa_grid: bool
    sa_draws: int
    ties: str
    tolerance_floor: bool
    floor_margins: bool
    error_norm: str
    stop_rtol: float
    dtype: str
    matmul_precision: str


COMPILED_FLOW_FIELDS = tuple(f for f in CompiledFlow.__dataclass_fields__ if f != "accuracy_mode")

# Config fields that can be sweep axes (`[sweep.grid]`). Shape axes (data.n, data.d, data.n_test,
# model.width) compile one program per value; the others are traced values or data draws.
GRID_KEYS = {
    "data.n": int,
    "data.d": int,
    "data.n_test": int,
    "data.kappa": float,
    "data.sigma": float,
    "data.mode": str,
    "data.separable": bool,
    "model.width": int,
    "model.multiplier": float,
    "flow.target_loss": float,
    "flow.rtol": float,
    "flow.accuracy": float,
}
SHAPE_KEYS = ("data.n", "data.d", "data.n_test", "model.width")


@dataclass(frozen=True, kw_only=True)
class SweepConfig:
    init_scales: tuple[float, ...] = config_field(
        tuple(float(v) for v in np.logspace(-5, 1, 13)),
        "init scales α: a list, or {logspace = [lo_exp, hi_exp, num]} for 10^lo … 10^hi",
    )
    n_seeds: int = config_field(8, "init seeds 0 … n_seeds−1 per α (key fold_in(INIT_ROOT, seed))")
    data_seeds: tuple[int, ...] = config_field(
        (), "data seeds to sweep (an axis 'data_seed'); empty: the one dataset data.seed"
    )
    grid: dict = config_field(
        None,
        'more axes, a table of config key → list/space, e.g. "data.n" = [20, 40]; keys: ' + ", ".join(GRID_KEYS),
    )
    chunk_size: int = config_field(
        0,
        "runs per chunk (the unit saved and resumed; computed in batches of sweep.batch_lanes); 0 = automatic: the runs that "
        "differ only by seed, capped by memory_budget_mb",
    )
    memory_budget_mb: float = config_field(
        2048.0, "estimated working memory allowed per batch, which caps the automatic chunk size"
    )
    shard: bool = config_field(True, "split each batch over all local devices (jax.sharding); false: one device")
    batch_lanes: int = config_field(
        2,
        "runs per device in every compiled batch; chunks are cut into batches of this size, so a run's arithmetic "
        "(and result) never depends on the number of seeds, the chunking or its neighbours. GPUs want 64–256",
    )
    max_runs: int = config_field(
        1_000_000, "refuse sweeps with more runs than this (checked before anything is planned or allocated)"
    )
    max_memory_gb: float = config_field(
        16.0,
        "refuse configs whose estimated memory (the datasets, a batch's working memory, the "
        "assembled results) is above this many GiB, before anything is allocated",
    )

    def __post_init__(self):
        check_int_at_least("sweep.max_runs", self.max_runs, 1)
        scales = parse_axis("sweep.init_scales", self.init_scales, self.max_runs, "sweep.max_runs")
        for v in scales:
            check_positive_finite("sweep.init_scales", v)
        check_distinct("sweep.init_scales", scales)
        object.__setattr__(self, "init_scales", tuple(float(v) for v in scales))
        check_int_at_least("sweep.n_seeds", self.n_seeds, 1)
        if not isinstance(self.data_seeds, (list, tuple)):
            raise ConfigError(
                f"sweep.data_seeds: must be a list of seeds (empty: the one dataset data.seed), got {self.data_seeds!r}"
            )
        seeds = tuple(self.data_seeds)
        for v in seeds:
            check_seed("sweep.data_seeds", v)
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"sweep.data_seeds: values must be distinct, got {list(seeds)}")
        object.__setattr__(self, "data_seeds", seeds)
        if self.grid is not None and not isinstance(self.grid, dict):
            raise ConfigError(
                f'sweep.grid: must be a table of config key → list/space, e.g. {{"data.n" = [20, 40]}}, '
                f"got {self.grid!r}"
            )
        grid = {} if self.grid is None else dict(self.grid)
        for key, values in grid.items():
            if key not in GRID_KEYS:
                raise ConfigError(f"sweep.grid.{key}: not a sweepable key; choose from {', '.join(GRID_KEYS)}")
            values = parse_axis(f"sweep.grid.{key}", values, self.max_runs, "sweep.max_runs")
            kind = GRID_KEYS[key]
            if kind is float:
                values = tuple(float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in values)
            section, field_name = key.split(".")
            for v in values:  # validate each value with the section's own checks
                try:
                    SECTIONS[section](**{field_name: v})
                except ConfigError as e:
                    raise ConfigError(f"sweep.grid.{key}: {str(e).split(': ', 1)[1]}") from None
            if len(set(values)) != len(values):
                raise ConfigError(f"sweep.grid.{key}: values must be distinct, got {list(values)}")
            grid[key] = values
        object.__setattr__(self, "grid", grid)
        check_int_at_least("sweep.chunk_size", self.chunk_size, 0)
        check_positive_finite("sweep.memory_budget_mb", self.memory_budget_mb)
        check_positive_finite("sweep.max_memory_gb", self.max_memory_gb)
        check_bool("sweep.shard", self.shard)
        check_int_at_least("sweep.batch_lanes", self.batch_lanes, 1)
        if self.n_seeds > SEED_LIMIT:
            raise ConfigError(f"sweep.n_seeds: seeds 0 … n_seeds−1 must be < 2**32, got n_seeds = {self.n_seeds}")
        sizes = {"sweep.init_scales": len(self.init_scales), "sweep.n_seeds": self.n_seeds}
        if self.data_seeds:
            sizes["sweep.data_seeds"] = len(self.data_seeds)
        sizes.update({f"sweep.grid.{k}": len(v) for k, v in grid.items()})
        n_runs = math.prod(sizes.values())
        if n_runs > self.max_runs:
            shown = " × ".join(f"{v:,} ({k})" for k, v in sizes.items())
            raise ConfigError(
                f"sweep.max_runs: the sweep has {n_runs:,} runs = {shown}, above the limit {self.max_runs:,}; "
                "raise sweep.max_runs to allow it"
            )

    def __hash__(self):
        return hash((self.init_scales, self.n_seeds, self.data_seeds, tuple(self.grid.items()), self.chunk_size))


@dataclass(frozen=True, kw_only=True)
class Config(SectionedConfig):
    """The two-layer wing's config: data, model, flow, sweep (TOML, `--set`, describe: `gflow.config`)."""

    OVERRIDE_EXAMPLE = "flow.target_loss=0.01"

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)

    def __post_init__(self):
        _check_whole(self)

    def values_of(self, key: str) -> tuple:
        """Every value a swept field takes: its grid axis, else the section's one value."""
        section, name = key.split(".")
        return tuple(self.sweep.grid.get(key, (getattr(getattr(self, section), name),)))

    @classmethod
    def from_fields(cls, **fields) -> Config:
        """A Config from flat field names, each in the one section that has it (no name is in two), e.g.
        `Config.from_fields(n=40, seed=0, width=100, target_loss=0.01, init_scales=[1e-3, 1e-1], n_seeds=8)`;
        `seed` is data.seed; numpy arrays are taken as lists. Other fields keep their defaults; an unknown name
        raises ConfigError."""
        owner = {f: name for name, section in cls.sections().items() for f in section.__dataclass_fields__}
        raw: dict[str, dict] = {}
        for key, value in fields.items():
            if key not in owner:
                raise ConfigError(f"{key}: unknown config field; known: {', '.join(owner)}")
            raw.setdefault(owner[key], {})[key] = value.tolist() if isinstance(value, np.ndarray) else value
        return cls.from_dict(raw)


SECTIONS = Config.sections()


@functools.lru_cache(maxsize=256)
def _check_whole(cfg: Config) -> None:
    """The checks that need several sections (cached: a sweep builds one config per lane, most of them equal)."""
    check_dtype_ranges(cfg)
    check_memory(estimate_memory(cfg), cfg.sweep.max_memory_gb, "sweep.max_memory_gb")


def check_dtype_ranges(cfg: Config) -> None:
    """Refuse values the run's dtype (flow.dtype) cannot represent, or with which no run can train in it
    (docs/run-directories.md: bounded plans). The init scale enters the output as c·α² (squared again in
    losses and error norms), so α·√c must keep (α·√c)² within [√tiny, √max]; κ, σ and the multiplier c
    within [√tiny, √max]; the stop tolerance stop_rtol·η must be a normal number; atol, t_max and
    t_save_min representable; rtol at least the dtype's epsilon."""
    dt = cfg.flow.dtype
    r = dtype_range(dt)
    cs = cfg.values_of("model.multiplier")
    check_in_dtype(
        "model.multiplier" if "model.multiplier" not in cfg.sweep.grid else "sweep.grid.model.multiplier",
        cs,
        r["sqrt_tiny"],
        r["sqrt_max"],
        dt,
        "the range of an output multiplier that can train",
    )
    lo, hi = r["sqrt_tiny"] ** 0.5, r["sqrt_max"] ** 0.5
    for c in cs:
        check_in_dtype(
            "sweep.init_scales",
            [a * math.sqrt(c) for a in cfg.sweep.init_scales],
            lo,
            hi,
            dt,
            f"the range of α·√c (c = {c:g}) that can train" if c != 1 else "the range of α that can train",
        )
    for key in ("data.kappa", "data.sigma"):
        where = f"sweep.grid.{key}" if key in cfg.sweep.grid else key
        check_in_dtype(
            where, cfg.values_of(key), r["sqrt_tiny"], r["sqrt_max"], dt, "the range of data scales that can train"
        )
    where = "sweep.grid.flow.target_loss" if "flow.target_loss" in cfg.sweep.grid else "flow.target_loss"
    check_in_dtype(
        where,
        cfg.values_of("flow.target_loss"),
        r["tiny"] / cfg.flow.stop_rtol,
        r["sqrt_max"],
        dt,
        "the range a stop at L ≤ η can be refined in (η·flow.stop_rtol a normal number)",
    )
    where = "sweep.grid.flow.rtol" if "flow.rtol" in cfg.sweep.grid else "flow.rtol"
    check_in_dtype(
        where, cfg.values_of("flow.rtol"), r["eps"], 1.0 - r["eps"], dt, "the relative tolerances that can be met"
    )
    if cfg.flow.atol is not None:
        check_in_dtype(
            "flow.atol", cfg.flow.atol, r["tiny"], r["sqrt_max"], dt, "the absolute tolerances that can be met"
        )
    check_in_dtype("flow.t_max", cfg.flow.t_max, r["tiny"], r["sqrt_max"], dt, "the times it can represent")
    check_in_dtype("flow.t_save_min", cfg.flow.t_save_min, r["tiny"], r["sqrt_max"], dt, "the times it can represent")


TRAJ_PER_SAVE = 24  # values a run saves per save point: its observables (18 today) and the time, with room


def estimate_memory(cfg: Config) -> dict[str, tuple[float, str]]:
    """The memory a config implies, from its numbers alone (nothing is built): {what: (bytes, the field most
    responsible)}. The datasets held at once, one compiled batch's working memory (sweep.batch_lanes runs:
    solver state copies, forward passes over the training and test points, the save grid), and the
    assembled results (every run's trajectories on the save grid, in float64, twice: the chunks and the
    assembled arrays are in memory together)."""
    b = np.dtype(cfg.flow.dtype).itemsize
    big = {k: max(cfg.values_of(k)) for k in ("data.n", "data.d", "data.n_test", "model.width")}
    n, d, n_test, h = big["data.n"], big["data.d"], big["data.n_test"], big["model.width"]
    n_data = math.prod(len(v) for k, v in cfg.sweep.grid.items() if k.startswith("data.")) * max(
        1, len(cfg.sweep.data_seeds)
    )
    n_runs = (
        len(cfg.sweep.init_scales)
        * cfg.sweep.n_seeds
        * n_data
        * math.prod(len(v) for k, v in cfg.sweep.grid.items() if not k.startswith("data."))
    )
    fl = cfg.flow
    # values per run in a batch: the state (W, a, margins) copied by the solver's stages, controller and stop;
    # forward passes over the training and test points; the semi-analytic draws; the save grid
    lane = (
        20 * (h * (d + 1) + n)
        + 3 * (n + max(n_test, fl.n_test_grid)) * h
        + 3 * fl.sa_draws * h
        + fl.n_save * TRAJ_PER_SAVE
    )
    blame = _largest(cfg, ("model.width", "data.d", "data.n_test", "flow.n_save", "flow.sa_draws", "sweep.batch_lanes"))
    data_blame = _largest(cfg, ("data.d", "data.n_test", "data.n"))
    return {
        f"the {n_data} dataset(s) held at once": (n_data * (n + n_test) * (d + 1) * b, data_blame),
        f"a batch of {cfg.sweep.batch_lanes:,} runs": (cfg.sweep.batch_lanes * lane * b, blame),
        f"the assembled results of {n_runs:,} runs": (
            2 * n_runs * (fl.n_save * TRAJ_PER_SAVE + 64) * 8.0,
            _largest(cfg, ("flow.n_save", "sweep.n_seeds")),
        ),
    }


_DEFAULTS = {
    "model.width": 100,
    "data.d": 100,
    "data.n_test": 4000,
    "data.n": 40,
    "flow.n_save": 48,
    "flow.sa_draws": 4096,
    "sweep.batch_lanes": 2,
    "sweep.n_seeds": 8,
}


def _largest(cfg: Config, keys) -> str:
    """Of `keys`, the field furthest above its default (the one to blame for a size)."""

    def ratio(key):
        if key.startswith("sweep."):
            return getattr(cfg.sweep, key.split(".")[1]) / _DEFAULTS[key]
        return max(cfg.values_of(key)) / _DEFAULTS[key]

    key = max(keys, key=ratio)
    return f"sweep.grid.{key}" if key in cfg.sweep.grid else key


# the module-level API (gflow.cli, scripts and tests use these)
from_dict = Config.from_dict
load = Config.load
describe = Config.describe


def with_overrides(cfg: Config, items: list[str]) -> Config:
    """Apply `--set section.key=value` overrides on top of a config."""
    return cfg.with_overrides(items)


def to_toml(cfg: Config) -> str:
    """Serialize a Config as TOML (None values are omitted: they mean 'default')."""
    return cfg.to_toml()
