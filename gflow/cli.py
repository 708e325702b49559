"""Command line: `gflow sweep | run | plot | config`. Bad input exits with status 2 and one line
`gflow: error: <field>: <problem>`, before anything is written."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import config as cfgmod

_CONFIG_EPILOG = "config fields (set in a TOML file or with --set section.key=value):\n" + cfgmod.describe()


def _load_config(path, overrides) -> cfgmod.Config:
    cfg = cfgmod.load(path) if path else cfgmod.Config()
    return cfgmod.with_overrides(cfg, overrides or [])


def _prepare_jax(cfg: cfgmod.Config) -> None:
    if cfg.flow.dtype == "float64":
        from .flow import enable_float64

        enable_float64()


def _summary_table(manifest: dict, arrays: dict) -> str:
    import numpy as np

    from .plot import ok_mask, seed_stats

    ok = ok_mask(manifest, arrays)
    m, se, cnt = seed_stats(arrays["final_test_err"], ok)
    lm, lse, _ = seed_stats(arrays["final_lin_err"], ok)
    tm, _, _ = seed_stats(arrays["t_stop"], ok)
    names = list(manifest["statuses"])
    rows = [f"{'alpha':>9} {'ok':>4} {'test_err':>16} {'E(w_hat)':>16} {'t_eta':>10}  other statuses"]
    for i, a in enumerate(arrays["init_scale"]):
        bad = {}
        for code in arrays["status"][i]:
            if names[code] not in ("reached_target",):
                bad[names[code]] = bad.get(names[code], 0) + 1
        rows.append(
            f"{a:9.2e} {cnt[i]:4d} {m[i]:8.4f}±{se[i]:<7.4f} {lm[i]:8.4f}±{lse[i]:<7.4f} {tm[i]:10.3g}  "
            + (", ".join(f"{k}×{v}" for k, v in bad.items()) or "-")
        )
    if np.any(np.isfinite(m)):
        rows.append(f"best α = {arrays['init_scale'][int(np.nanargmin(m))]:.3g}")
    return "\n".join(rows)


def cmd_sweep(args) -> int:
    cfg = _load_config(args.config, args.set)
    out = Path(args.out) if args.out else Path("runs") / time.strftime("sweep-%Y%m%d-%H%M%S")
    _prepare_jax(cfg)
    from .store import load_run, save_run
    from .sweep import run_sweep

    print(f"gflow sweep: {len(cfg.sweep.init_scales)} scales × {cfg.sweep.n_seeds} seeds → {out}", file=sys.stderr)
    result = run_sweep(cfg, progress=not args.quiet)
    save_run(out, cfg.to_dict(), result)
    manifest, arrays = load_run(out)
    print(_summary_table(manifest, arrays))
    print(f"status counts: {manifest['status_counts']}")
    print(f"wall {manifest['wall_s']:.1f}s (compile {manifest['compile_s']:.1f}s), results in {out}")
    if not args.no_plot:
        from .plot import plot_sweep

        print(f"figure: {plot_sweep(out)}")
    return 0


def cmd_run(args) -> int:
    cfg = _load_config(args.config, args.set)
    cfgmod._positive_finite("--alpha", args.alpha)
    _prepare_jax(cfg)
    import numpy as np

    from .flow import STATUS_NAMES, simulate

    t0 = time.perf_counter()
    r = simulate(init_scale=args.alpha, seed=args.seed, config=cfg)
    status = STATUS_NAMES[int(r.status)]
    wall = time.perf_counter() - t0
    print(f"alpha={args.alpha:g} seed={args.seed} status={status} t_stop={float(r.t_stop):.6g}")
    print(f"steps={int(r.n_steps)} accepted={int(r.n_accepted)} rejected={int(r.n_rejected)} newton={int(r.newton_iters)}")
    for k, v in r.final.items():
        print(f"  {k:16s} {float(np.asarray(v)):.6g}")
    print(f"wall {wall:.2f}s including compile")
    return 0 if status in ("reached_target", "reached_target_unrefined", "target_at_init") else 1


def cmd_plot(args) -> int:
    from .plot import plot_sweep

    print(plot_sweep(args.run_dir, args.out))
    return 0


def cmd_config(args) -> int:
    print(cfgmod.to_toml(_load_config(args.config, args.set)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(prog="gflow", description="Gradient flow of two-layer ReLU nets across feature-learning strength.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("sweep", help="run an α × seed sweep, write a run directory and its figure", epilog=_CONFIG_EPILOG, formatter_class=fmt)
    s.add_argument("config", nargs="?", help="TOML config file (default: the built-in U-curve sweep)")
    s.add_argument("--out", help="run directory (default runs/sweep-<timestamp>)")
    s.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a config field; repeatable")
    s.add_argument("--no-plot", action="store_true", help="do not draw the figure")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
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
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"gflow: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
