"""Command line: `gflow sweep | run | plot | config` (the two-layer wing) and `gflow deep sweep | plot |
presets | config` (deep nets). Bad input exits with status 2 and one line
`gflow: error: <field or path>: <problem>`, before anything is written. Exit statuses: 0 done; 2 bad input
or a fault (one line naming it); 3 deep sweep stopped at --time-limit; 4 superseded: the run directory was
started over (`--force`) by another run while this worker ran; 130 / 143 interrupted by SIGINT / SIGTERM
(claims released, finished chunks kept; one line saying how many and how to resume).

Arguments and configs are parsed and checked before JAX is imported, so `--help` and config errors
answer at once."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

import numpy as np

from .config import check_positive_finite
from .deep import config as deepcfg
from .runs.runner import DEFAULT_LEASE_S
from .twolayer import config as cfgmod

_CONFIG_EPILOG = "config fields (set in a TOML file or with --set section.key=value):\n" + cfgmod.describe()
_DEEP_EPILOG = "config fields (set in a TOML file or with --set section.key=value):\n" + deepcfg.DeepConfig.describe()


def _load_config(path, overrides) -> cfgmod.Config:
    cfg = cfgmod.load(path) if path else cfgmod.Config()
    return cfgmod.with_overrides(cfg, overrides or [])


def _prepare_jax(cfg: cfgmod.Config) -> None:
    if cfg.flow.dtype == "float64":
        from .numerics import enable_float64

        enable_float64()


def _summary_table(ds) -> str:
    """The seed-mean table of a two-layer run's Dataset (`gflow.load_run`), one block per grid combination."""
    from .runs import status
    from .runs.store import arrays_of
    from .twolayer.plot import errors_by_tie_convention, leading_combos, ok_mask, seed_stats

    arrays = arrays_of(ds)
    names = status.names_of(arrays["status"])
    rows = []
    for label, index in leading_combos(ds):
        ok = ok_mask(ds)[index]
        by_tie = errors_by_tie_convention(ds, arrays, index)
        m, se, cnt = seed_stats(by_tie["error"], ok)
        hm, _, _ = seed_stats(by_tie["half"], ok)
        ties, _, _ = seed_stats(by_tie["tie"], ok)
        lm, lse, _ = seed_stats(arrays["final_lin_err"][index], ok)
        tm, _, _ = seed_stats(arrays["t_stop"][index], ok)
        if label:
            rows.append(f"[{label}]")
        rows.append(
            f"{'alpha':>9} {'ok':>4} {'err(ties=error)':>16} {'ties=half':>9} {'tie mass':>8} {'E(w_hat)':>16} {'t_eta':>10}  "
            f"other statuses"
        )
        for i, a in enumerate(arrays["init_scale"]):
            bad: dict[str, int] = {}
            for name in names[index][i]:
                if name != "reached_target":
                    bad[name] = bad.get(name, 0) + 1
            rows.append(
                f"{a:9.2e} {cnt[i]:4d} {m[i]:8.4f}±{se[i]:<7.4f} {hm[i]:9.4f} {ties[i]:8.4f} {lm[i]:8.4f}±{lse[i]:<7.4f} {tm[i]:10.3g}  "
                + (", ".join(f"{k}×{v}" for k, v in bad.items()) or "-")
            )
        # the best α among those whose runs trained (runs that stop at init say nothing about α)
        trained = np.isin(names[index], ("reached_target", "reached_target_unrefined")).any(axis=1)
        if np.any(np.isfinite(m) & trained):
            rows.append(f"best α = {arrays['init_scale'][int(np.nanargmin(np.where(trained, m, np.nan)))]:.3g}")
    rows.append(
        "test errors are Monte-Carlo; ties (f = 0) counted as errors (err) or half an error (ties=half); tie mass = fraction of "
        "test points with f = 0"
    )
    rows.append("status counts per axis value:")
    for axis, per in ds.attrs["status_by_axis"].items():
        for value, counts in per.items():
            rows.append(f"  {axis} = {value}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return "\n".join(rows)


def cmd_sweep(args) -> int:
    cfg = _load_config(args.config, args.set)
    out = Path(args.out) if args.out else Path("runs") / time.strftime("sweep-%Y%m%d-%H%M%S")
    from .runs.store import check_out_dir

    check_out_dir(out)
    check_positive_finite("--lease", args.lease)
    _prepare_jax(cfg)
    if args.distributed:
        import jax

        jax.distributed.initialize()
    from .runs.store import load_run
    from .twolayer.sweep import run_sweep

    args.run_dir_in_use = out
    result = run_sweep(cfg, out=out, force=args.force, progress=not args.quiet, lease_s=args.lease)
    if result is None:
        print(f"all chunks are done; another worker assembled {out}")
    ds = load_run(out)
    manifest = ds.attrs
    print(_summary_table(ds))
    print(f"status counts: {manifest['status_counts']}")
    resumed = manifest["chunks_computed"] < manifest["n_chunks"] and manifest.get("compute_s") is not None
    every = f"; {manifest['compute_s']:.1f}s of chunk compute in all sessions" if resumed else ""
    print(
        f"wall {manifest['wall_s']:.1f}s (compile {manifest['compile_s']:.1f}s, {manifest['chunks_computed']} of "
        f"{manifest['n_chunks']} chunks computed now{every}), results in {out}"
    )
    if not args.no_plot:
        from .twolayer.plot import plot_sweep

        print(f"figure: {plot_sweep(out)}")
    return 0


def cmd_run(args) -> int:
    cfg = _load_config(args.config, args.set)
    check_positive_finite("--alpha", args.alpha)
    cfgmod.check_seed("--seed", args.seed)
    _prepare_jax(cfg)
    import numpy as np

    from .runs.status import OK
    from .twolayer.flow import simulate
    from .twolayer.stop import STATUS_NAMES
    from .twolayer.sweep import check_target_vs_init, make_plan

    one = cfgmod.with_overrides(
        cfg, [f"sweep.init_scales=[{args.alpha!r}]", "sweep.n_seeds=1", "sweep.data_seeds=[]", "sweep.grid={}"]
    )
    check_target_vs_init(one, make_plan(one), lambda g, b: _dataset(cfg), seeds=[args.seed])
    t0 = time.perf_counter()
    r = simulate(init_scale=args.alpha, seed=args.seed, config=cfg)
    status = STATUS_NAMES[int(r.status)]
    wall = time.perf_counter() - t0
    print(f"alpha={args.alpha:g} seed={args.seed} status={status} t_stop={float(r.t_stop):.6g}")
    print(
        f"steps={int(r.n_steps)} accepted={int(r.n_accepted)} rejected={int(r.n_rejected)} newton={int(r.newton_iters)}"
    )
    for k, v in r.final.items():
        print(f"  {k:16s} {float(np.asarray(v)):.6g}")
    print(f"wall {wall:.2f}s including compile")
    return 0 if status in OK else 1


def _dataset(cfg):
    import jax.numpy as jnp

    from .twolayer.data import make_dataset

    return make_dataset(cfg.data, jnp.dtype(cfg.flow.dtype))


def cmd_plot(args) -> int:
    from .twolayer.plot import plot_sweep

    print(plot_sweep(args.run_dir, args.out))
    return 0


def cmd_config(args) -> int:
    print(cfgmod.to_toml(_load_config(args.config, args.set)))
    return 0


def _load_deep_config(args) -> deepcfg.DeepConfig:
    if args.config and args.preset:
        raise deepcfg.ConfigError(f"{args.config}: give a config file or --preset {args.preset}, not both")
    cfg = deepcfg.load_preset(
        args.config or args.preset or deepcfg.DEFAULT_PRESET, quick=args.quick, full_grid=args.full_grid
    )
    return cfg.with_overrides(args.set or [])


def _deep_figures(run_dir) -> list[Path]:
    """The figures experiments/deep_fls_sweep.py draws: the (c, η) heatmap against η and against η/c, and
    the best accuracy vs c."""
    from .runs.store import load_run, read_manifest

    if read_manifest(run_dir).get("kind") != "deep_fls_sweep":
        raise ValueError(f"{run_dir}: not a deep sweep's run directory (`gflow plot` draws a two-layer sweep)")
    load_run(run_dir)  # an unfinished directory: one line, 'run incomplete (k of N chunks done)'
    from .deep.plot import plot_best_vs_c, plot_heatmap

    return [plot_heatmap(run_dir), plot_heatmap(run_dir, y="step_size"), plot_best_vs_c(run_dir)]


def cmd_deep_sweep(args) -> int:
    cfg = _load_deep_config(args)
    out = Path(args.out) if args.out else Path("runs") / time.strftime("deep-%Y%m%d-%H%M%S")
    from .runs.store import check_out_dir

    check_out_dir(out)
    if args.time_limit is not None:
        check_positive_finite("--time-limit", args.time_limit)
    if cfg.train.dtype == "float64":
        import jax

        jax.config.update("jax_enable_x64", True)
    from .deep.analysis import summary_table, u_shape_summary
    from .deep.sweep import SweepTimeLimit, run_deep_sweep
    from .runs.store import write_json

    args.run_dir_in_use = out
    try:
        res = run_deep_sweep(cfg, out=out, progress=not args.quiet, force=args.force, time_limit_s=args.time_limit)
    except SweepTimeLimit as stop:
        print(f"{stop} ({out})")
        return 3
    if res is None:
        print(f"all chunks are done; another worker assembled {out}")
        from .runs.result import SweepResult
        from .runs.store import arrays_of, load_run

        ds = load_run(out)
        res = SweepResult(arrays=arrays_of(ds), dims={}, meta=ds.attrs, dir=out)
    summary = u_shape_summary(res.arrays)  # accuracies in percent, NaN → null
    write_json(Path(out) / "summary.json", summary)
    print(summary_table(summary))
    print(f"status counts: {res.meta['status_counts']}")
    print(
        f"{res.meta['n_runs']} runs, training {res.meta['wall_s']:.1f}s (compile {res.meta['compile_s']:.1f}s), "
        f"results in {out}"
    )
    if not args.no_plot:
        print("figures:", ", ".join(map(str, _deep_figures(out))))
    return 0


def _cell(text: str) -> tuple[float, float]:
    """'C,ETA' of --curves as two positive numbers."""
    parts = text.split(",")
    try:
        c, lr = (float(v) for v in parts)
    except ValueError:
        raise ValueError(f"--curves: expected C,ETA (two numbers, e.g. 0.25,0.1), got {text!r}") from None
    check_positive_finite("--curves", c)
    check_positive_finite("--curves", lr)
    return c, lr


def cmd_deep_plot(args) -> int:
    cells = [_cell(v) for v in args.curves or []]
    for path in _deep_figures(args.run_dir):
        print(path)
    if cells:
        from .deep.plot import plot_curves

        for c, lr in cells:
            print(plot_curves(args.run_dir, c, lr))
    return 0


def cmd_deep_presets(args) -> int:
    descriptions = deepcfg.preset_descriptions()
    timings = deepcfg.preset_timings()
    width = max(map(len, descriptions))
    for name, text in descriptions.items():
        print(f"{name:<{width}}  {text}")
        print(f"{'':<{width}}    {deepcfg.timing_line(name, timings)}")
    if timings:
        print(
            f"Estimates from step rates measured on {timings['measured']} ({timings['machine']}; jax "
            f"{timings['jax']}) by experiments/deep_preset_times.py, not from full runs."
        )
    return 0


def cmd_deep_config(args) -> int:
    print(_load_deep_config(args).to_toml())
    return 0


def _add_deep_parser(sub, fmt) -> None:
    d = sub.add_parser(
        "deep", help="deep-net sweeps (SGD with output multiplier c and step η/c): sweep, plot, presets, config"
    )
    dsub = d.add_subparsers(dest="deep_command", required=True)
    cfg_args = argparse.ArgumentParser(add_help=False)  # how a deep config is chosen (sweep and config)
    cfg_args.add_argument("config", nargs="?", help=f"TOML config file (default: the {deepcfg.DEFAULT_PRESET} preset)")
    cfg_args.add_argument(
        "--preset", help="a shipped preset by name (see `gflow deep presets`) or the path of a TOML file"
    )
    cfg_args.add_argument(
        "--quick", action="store_true", help="apply the config's [quick] table: a seconds-long smoke run"
    )
    cfg_args.add_argument(
        "--full-grid",
        action="store_true",
        help="apply the config's [full_grid] table (presets: the whole c grid 2⁻¹⁰…2², 4 seeds)",
    )
    cfg_args.add_argument(
        "--set", action="append", metavar="SECTION.KEY=VALUE", help="override a config field; repeatable"
    )

    s = dsub.add_parser(
        "sweep",
        parents=[cfg_args],
        epilog=_DEEP_EPILOG,
        formatter_class=fmt,
        help="run a c × η × seed sweep, write a run directory, its summary and figures",
        description="Run (or resume) a deep-net sweep. Exit status 0: done; 2: bad input; "
        "3: stopped at --time-limit (rerun with the same --out to resume).",
    )
    s.add_argument("--out", help="run directory (default runs/deep-<timestamp>); a rerun on it resumes")
    s.add_argument("--force", action="store_true", help="discard every result --out holds and start over")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument("--no-plot", action="store_true", help="do not draw the figures")
    s.add_argument(
        "--time-limit",
        type=float,
        metavar="SECONDS",
        help="start no new chunk after this many seconds (finished chunks are kept; exit status 3)",
    )
    s.set_defaults(func=cmd_deep_sweep)

    pl = dsub.add_parser("plot", help="draw a deep sweep's figures: heatmap.png, heatmap_step_size.png, best_vs_c.png")
    pl.add_argument("run_dir")
    pl.add_argument(
        "--curves",
        action="append",
        metavar="C,ETA",
        help="also draw the learning curves (train/validation/test loss and accuracy at every check, every "
        "seed) of the cell c = C, η = ETA as RUN_DIR/curves_c<C>_lr<ETA>.png; repeatable",
    )
    pl.set_defaults(func=cmd_deep_plot)

    pr = dsub.add_parser("presets", help="list the shipped presets, one line each")
    pr.set_defaults(func=cmd_deep_presets)

    c = dsub.add_parser(
        "config",
        parents=[cfg_args],
        epilog=_DEEP_EPILOG,
        formatter_class=fmt,
        help="print the effective deep config as TOML",
    )
    c.set_defaults(func=cmd_deep_config)


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(
        prog="gflow", description="Gradient flow of two-layer ReLU nets across feature-learning strength."
    )
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser(
        "sweep",
        help="run an α × seed sweep, write a run directory and its figure",
        epilog=_CONFIG_EPILOG,
        formatter_class=fmt,
    )
    s.add_argument("config", nargs="?", help="TOML config file (default: the built-in U-curve sweep)")
    s.add_argument("--out", help="run directory (default runs/sweep-<timestamp>)")
    s.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a config field; repeatable")
    s.add_argument("--no-plot", action="store_true", help="do not draw the figure")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument("--force", action="store_true", help="discard every result --out holds and start over")
    s.add_argument(
        "--lease",
        type=float,
        default=DEFAULT_LEASE_S,
        metavar="SECONDS",
        help=f"how long a silent worker's chunk claim lasts before another worker takes it over (default {DEFAULT_LEASE_S:g})",
    )
    s.add_argument(
        "--distributed", action="store_true", help="call jax.distributed.initialize() first (multi-host JAX)"
    )
    s.set_defaults(func=cmd_sweep)

    r = sub.add_parser("run", help="one simulation; prints its summary", epilog=_CONFIG_EPILOG, formatter_class=fmt)
    r.add_argument("config", nargs="?", help="TOML config file")
    r.add_argument("--alpha", type=float, default=1e-2, help="init scale α (default 1e-2)")
    r.add_argument("--seed", type=int, default=0, help="init seed (default 0)")
    r.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a config field; repeatable")
    r.set_defaults(func=cmd_run)

    pl = sub.add_parser("plot", help="draw the sweep figure of a run directory")
    pl.add_argument("run_dir")
    pl.add_argument("--out", help="PNG path (default RUN_DIR/u_curve.png)")
    pl.set_defaults(func=cmd_plot)

    c = sub.add_parser("config", help="print the effective config as TOML", epilog=_CONFIG_EPILOG, formatter_class=fmt)
    c.add_argument("config", nargs="?")
    c.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE")
    c.set_defaults(func=cmd_config)

    _add_deep_parser(sub, fmt)
    return p


def _one_line(e: BaseException) -> str:
    if isinstance(e, OSError) and e.filename is not None and e.strerror:
        return f"{e.filename}: {e.strerror}"
    if isinstance(e, OSError) and e.errno in (28, 122) and not e.filename:  # ENOSPC, EDQUOT without a path
        return f"{e.strerror or e}: the disk is full"
    return " ".join(str(e).split()) or type(e).__name__


class Interrupted(BaseException):
    """SIGTERM (or SIGINT) arrived: unwinds like KeyboardInterrupt, so claims are released on the way out."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_interrupted(signum, frame):
    raise Interrupted(signum)


def _interrupted(args, signum: int) -> int:
    """One line for a sweep stopped by a signal: the chunks it keeps and how to resume; 128 + signum."""
    name = signal.Signals(signum).name
    out = getattr(args, "run_dir_in_use", None)
    kept = ""
    if out is not None:
        from .runs.store import chunk_summary, read_manifest

        try:
            kept = f"; {chunk_summary(out, read_manifest(out)).replace(' done', ' kept')} in {out}"
        except (OSError, ValueError):
            kept = f"; nothing kept in {out}"
        kept += "; rerun the same command to resume"
    print(f"gflow: interrupted by {name}{kept}", file=sys.stderr)
    return 128 + signum


def main(argv=None) -> int:
    from .runs.runner import Superseded

    args = build_parser().parse_args(argv)
    try:
        previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    except ValueError:  # not the main thread: leave signals alone
        previous = None
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return _interrupted(args, signal.SIGINT)
    except Interrupted as e:
        return _interrupted(args, e.signum)
    except Superseded as e:
        print(f"gflow: stopped: {_one_line(e)}", file=sys.stderr)
        return 4
    except (ValueError, OSError, RuntimeError) as e:
        print(f"gflow: error: {_one_line(e)}", file=sys.stderr)
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
