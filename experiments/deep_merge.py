"""Merge deep sweeps of one preset that ran different η (or c) grids into one run's figures and summary.

    python experiments/deep_merge.py runs/deep_digits-cnn-full runs/deep_digits-cnn-eta0.01 --out runs/deep_digits-cnn-merged

A supplementary sweep (say η = 0.01 at the smallest c, where the preset's η grid trained no seed) is joined
to the main one along the η axis; cells that neither sweep ran get status "running" (code −1: not run) and
count as invalid. Writes OUT/{results.nc, summary.json, heatmap.png, heatmap_step_size.png, best_vs_c.png}
and prints the per-c table. The sweeps must share their data, net and seeds (checked on the config).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import gflow
from gflow.deep.analysis import json_safe, summary_table, u_shape_summary
from gflow.deep.plot import best_vs_c_figure, heatmap_figure
from gflow.runs.status import RUNNING


def merge(dirs):
    import xarray as xr

    sets = [gflow.load_run(d) for d in dirs]
    base = sets[0].attrs["config"]
    for d, ds in zip(dirs[1:], sets[1:]):
        for section in ("data", "model", "train"):
            if ds.attrs["config"][section] != base[section]:
                raise SystemExit(f"deep_merge: {d} has another {section} config than {dirs[0]}")
    merged = xr.merge(
        sets, join="outer", compat="no_conflicts", combine_attrs="drop"
    )  # a cell run by two sweeps must agree
    merged["status"] = merged["status"].fillna(RUNNING).astype("int32")
    for name in ("budget", "steps", "peak_step"):  # integer records of cells not run: 0
        merged[name] = merged[name].fillna(0).astype("int64")
    merged.attrs = {**sets[0].attrs, "merged_from": [str(d) for d in dirs]}
    return merged


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="+", help="deep run directories (the first one's attrs are kept)")
    ap.add_argument("--out", required=True, help="directory for the merged results and figures")
    args = ap.parse_args(argv)
    ds = merge(args.dirs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plain = ds.copy()
    plain.attrs = {}  # the numbers; the provenance (configs, sources) is in summary.json
    plain.to_netcdf(out / "results.nc")
    summary = json_safe({**u_shape_summary(ds), "merged_from": [str(d) for d in args.dirs]})
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(summary_table(summary))
    for name, fig in (
        ("heatmap.png", heatmap_figure(ds)),
        ("heatmap_step_size.png", heatmap_figure(ds, y="step_size")),
        ("best_vs_c.png", best_vs_c_figure(ds)),
    ):
        fig.savefig(out / name, dpi=120)
    print("figures:", ", ".join(str(out / n) for n in ("heatmap.png", "heatmap_step_size.png", "best_vs_c.png")))
    return ds, summary


if __name__ == "__main__":
    main()
