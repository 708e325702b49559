import os
import subprocess
import sys

import matplotlib.pyplot as plt
import numpy as np
import pytest
from reference import TINY_SETS, cli_sets

from gflow import cli
from gflow.runs.status import OK
from gflow.runs.store import load_run
from gflow.twolayer.plot import sweep_figure

TINY = cli_sets(*TINY_SETS, "sweep.init_scales=[1e-3, 0.1, 2.0]", "sweep.n_seeds=2", "flow.n_save=12")


def test_sweep_writes_run_directory_and_figure(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["sweep", "--out", str(out), "--quiet", *TINY]) == 0
    ds = load_run(out)
    assert ds.final_test_err.shape == (3, 2) and ds.final_test_err.dims == ("init_scale", "seed")
    assert plt.imread(out / "u_curve.png").shape[:2] == (960, 1320)  # a PNG of the 11 × 8 in figure at 120 dpi
    text = capsys.readouterr().out
    assert "best α" in text and "status counts" in text
    assert cli.main(["plot", str(out), "--out", str(tmp_path / "again.png")]) == 0
    assert plt.imread(tmp_path / "again.png").shape[:2] == (960, 1320)
    # what the figure shows: the seed-mean test error of the ok runs against α, the best α marked, the axes named
    fig = sweep_figure(ds)
    ax = fig.axes[0]
    alpha, ok = (
        ds.init_scale.values,
        np.isin(ds.status.values, [c["code"] for n, c in ds.attrs["statuses"].items() if n in OK]),
    )
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    err = lines["network, ties = error (f = 0 counted as an error)"]
    tie_w = {"error": 1.0, "half": 0.5, "correct": 0.0}[ds.attrs["config"]["flow"]["ties"]]
    err_w = ds.final_test_err.values.astype(float) + (1 - tie_w) * ds.final_test_tie.values.astype(float)
    want = [np.mean(err_w[i][ok[i]]) if ok[i].any() else np.nan for i in range(len(alpha))]
    np.testing.assert_allclose(err.get_xdata(), alpha)
    np.testing.assert_allclose(err.get_ydata(), want, rtol=1e-12)
    best = [ln for label, ln in lines.items() if label.startswith("best α = ")]
    assert len(best) == 1 and best[0].get_xdata()[0] == alpha[np.nanargmin(want)]
    assert ax.get_xlabel().startswith("init scale α") and ax.get_ylabel() == "test error at the stop"
    assert ax.get_xscale() == "log" and [a.get_ylabel() for a in fig.axes[1:]] == [
        "cosine",
        "t_η (gradient-flow time to reach η)",
        "runs",
    ]
    bars = fig.axes[3].patches  # the status panel: one bar per α and status, counting every run
    assert sum(b.get_height() for b in bars) == ds.status.size
    plt.close(fig)


@pytest.mark.slow  # over ~4.5 s (compiles its own programs); runs in .ci/run's slow pass
def test_run_prints_summary(capsys):
    assert cli.main(["run", "--alpha", "0.01", *TINY[:8]]) == 0
    text = capsys.readouterr().out
    assert "status=reached_target" in text and "test_err" in text


@pytest.mark.parametrize(
    "args, match",
    [
        (["sweep", "--set", "sweep.init_scales=[0.1, -1]"], "sweep.init_scales: must be a finite number > 0"),
        (["sweep", "--set", "sweep.init_scales=[nan]"], "sweep.init_scales"),
        (["sweep", "--set", "model.width=0"], "model.width"),
        (["sweep", "--set", "flow.target_loss=0"], "flow.target_loss"),
        (["sweep", "--set", "flow.solver=euler"], "flow.solver: unknown solver"),
        (["sweep", "--set", "flow.bogus=1"], "flow.bogus: unknown config key"),
        (["run", "--alpha", "-1"], "--alpha: must be a finite number > 0"),
        (["run", "--alpha", "inf"], "--alpha"),
        (["plot", "/nonexistent/dir"], "not a gflow run directory"),
    ],
)
def test_bad_input_is_one_line_error_and_writes_nothing(args, match, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    extra = ["--out", str(out)] if args[0] == "sweep" else []
    assert cli.main([*args, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gflow: error: ") and match in err[0]
    assert not out.exists() and not (tmp_path / "runs").exists()


def test_malformed_toml_file(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[data\nn = ")
    assert cli.main(["sweep", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "malformed TOML" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_help_explains_every_field():
    out = subprocess.run(
        [sys.executable, "-m", "gflow.cli", "sweep", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for field in (
        "data.kappa",
        "model.second_layer",
        "flow.target_loss",
        "flow.rtol",
        "sweep.init_scales",
        "sweep.n_seeds",
    ):
        assert field in out


def test_summary_best_alpha_ignores_runs_that_stopped_at_init():
    """η ≥ L(θ(0)) at small α: those runs end target_at_init with the init's test error, which says
    nothing about α; the best α is taken among α whose runs trained."""
    import numpy as np

    from gflow.runs import status
    from gflow.runs.store import to_dataset

    manifest = {"statuses": status.table("twolayer"), "status_by_axis": {}, "config": {"flow": {"ties": "error"}}}
    arrays = {
        "init_scale": np.asarray([1e-3, 10.0]),
        "status": np.asarray([[2, 2], [0, 1]]),
        "final_test_err": np.asarray([[0.1, 0.1], [0.3, 0.3]]),
        "final_test_tie": np.zeros((2, 2)),
        "final_lin_err": np.zeros((2, 2)),
        "t_stop": np.asarray([[0.0, 0.0], [1.0, 1.0]]),
    }
    dims = {k: ["scale", "seed"] for k in arrays} | {"init_scale": ["scale"]}
    assert "best α = 10" in cli._summary_table(to_dataset(arrays, dims, manifest))


@pytest.mark.parametrize("stored_as, weight", [("error", 1.0), ("half", 0.5), ("correct", 0.0)])
def test_summary_table_shows_the_error_under_error_and_half_beside_the_tie_mass(stored_as, weight):
    """Whatever convention a run stored its test error in (flow.ties), the table shows it with ties counted as
    errors and as half an error, and the tie mass: err(w') = stored − (w − w')·tie, checked by hand."""
    import numpy as np

    from gflow.runs import status
    from gflow.runs.store import to_dataset

    tie = np.asarray([[0.04, 0.06], [0.0, 0.0]])
    clean = np.asarray([[0.10, 0.12], [0.30, 0.32]])  # errors without the ties
    manifest = {"statuses": status.table("twolayer"), "status_by_axis": {}, "config": {"flow": {"ties": stored_as}}}
    arrays = {
        "init_scale": np.asarray([1e-3, 10.0]),
        "status": np.zeros((2, 2), int),
        "final_test_err": clean + weight * tie,
        "final_test_tie": tie,
        "final_lin_err": np.zeros((2, 2)),
        "t_stop": np.ones((2, 2)),
    }
    dims = {k: ["scale", "seed"] for k in arrays} | {"init_scale": ["scale"]}
    table = cli._summary_table(to_dataset(arrays, dims, manifest))
    assert "err(ties=error)" in table and "ties=half" in table and "tie mass" in table
    row = next(line for line in table.splitlines() if line.startswith(" 1.00e-03"))
    cells = row.replace("±", " ").split()
    assert [float(c) for c in (cells[2], cells[4], cells[5])] == pytest.approx([0.11 + 0.05, 0.11 + 0.025, 0.05])


def test_float64_config_switches_jax_to_64_bit():
    """flow.dtype = float64 turns on JAX's 64-bit mode before the run (in a fresh process: conftest turns it on)."""
    code = (
        "import jax; from gflow import cli; from gflow.twolayer.config import Config, FlowConfig; "
        "cli._prepare_jax(Config(flow=FlowConfig(dtype='float64'))); print(jax.config.jax_enable_x64)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "True"


def test_a_binary_config_file_and_an_out_path_that_refuses_files_are_one_line(tmp_path, capsys):
    """Drill, minor: a binary TOML file gave an error naming no field; `--out /proc/x` passed the early check."""
    binary = tmp_path / "cfg.toml"
    binary.write_bytes(bytes(range(256)))
    assert cli.main(["sweep", str(binary), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"gflow: error: {binary}: not a TOML file (not UTF-8 text)"]
    if os.path.isdir("/proc/self"):
        assert cli.main(["sweep", "--out", "/proc/x", "--quiet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("gflow: error: /proc: cannot create files here")


def test_a_superseded_worker_exits_4_with_one_line(tmp_path, capsys, monkeypatch):
    """A worker whose directory was started over by another run (--force) stops: exit 4, one line."""
    import gflow.twolayer.sweep as sweep
    from gflow.runs.runner import Superseded

    def superseded(*a, **k):
        raise Superseded(f"{tmp_path}: the directory was started over by another run (--force) while this worker ran")

    monkeypatch.setattr(sweep, "run_sweep", superseded)
    assert cli.main(["sweep", "--out", str(tmp_path / "o"), "--quiet", "--no-plot"]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gflow: stopped: ") and "started over" in err[0]
