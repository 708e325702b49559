"""Chunk identity and fingerprints as each wing builds them, and the drill's reproductions end to end
through the command line (those compile, so they are slow)."""

import json
import shutil

import numpy as np
import pytest
from reference import DEEP_TINY

from gflow import cli
from gflow.runs import store


def test_two_layer_chunk_identity_names_each_runs_plan_index_alpha_and_seeds():
    from gflow.twolayer.config import Config
    from gflow.twolayer.sweep import chunk_identity, lane_config, make_plan

    cfg = Config().with_overrides(["sweep.init_scales=[0.01, 0.1, 1.0]", "sweep.n_seeds=2", "sweep.data_seeds=[3, 5]"])
    plan = make_plan(cfg)
    seen = []
    for _, _, lanes in plan.chunks():
        ident = chunk_identity(cfg, plan, lanes)
        for k, lane in enumerate(lanes):
            c, alpha, seed = lane_config(cfg, plan.axes, np.unravel_index(lane, plan.shape))
            assert (ident["lane"][k], ident["init_scale"][k], ident["seed"][k], ident["data_seed"][k]) == (
                lane,
                alpha,
                seed,
                c.data.seed,
            )
        seen += list(ident["lane"])
    assert sorted(seen) == list(range(plan.n_lanes))


def test_deep_fingerprint_and_chunk_identity():
    from gflow.deep.config import DeepConfig
    from gflow.deep.sweep import chunk_identity, deep_fingerprint

    cfg = DeepConfig().with_overrides(["sweep.multipliers=[0.5, 2]", "sweep.lrs=[0.1, 0.2]", "sweep.n_seeds=3"])
    fp0, fp1 = deep_fingerprint(cfg), deep_fingerprint(cfg.replace(data={"seed": 1}))
    assert set(fp0) == {"config", "data", "dtype", "numerics", "all"}
    assert store.fingerprint_diff(fp0, fp1) == ["config", "data"] and fp0["all"] != fp1["all"]
    assert deep_fingerprint(cfg.replace(sweep={"max_runs": 99, "max_memory_gb": 1.0})) == fp0, "result-neutral fields"
    ident = [chunk_identity(cfg, i, 5) for i in range(3)]  # 12 lanes in chunks of 5, 5, 2
    assert [len(d["lane"]) for d in ident] == [5, 5, 2]
    lanes = np.concatenate([d["lane"] for d in ident])
    c = np.concatenate([d["multiplier"] for d in ident])
    lr = np.concatenate([d["lr"] for d in ident])
    seed = np.concatenate([d["seed"] for d in ident])
    assert lanes.tolist() == list(range(12))
    assert list(zip(c, lr, seed)) == [(a, b, s) for a in (0.5, 2.0) for b in (0.1, 0.2) for s in range(3)]  # c-major


S = [
    "--set",
    "sweep.init_scales=[0.01, 0.1, 1.0, 10.0]",
    "--set",
    "sweep.n_seeds=2",
    "--set",
    "data.n=20",
    "--set",
    "model.width=20",
    "--set",
    "data.n_test=200",
    "--no-plot",
    "--quiet",
]


def _arrays(out):
    return store.arrays_of(store.load_run(out))


@pytest.mark.slow  # three small two-layer sweeps through the CLI (compiles): ~30 s on 2 shared cores
def test_two_layer_drill_misnamed_chunk_and_result_neutral_field(tmp_path, capfd):
    """Drill 1 and 5 through `gflow sweep`: a chunk copied under another's name is moved aside and
    recomputed (the α = 0.01 row was NaN with the manifest complete); a new sweep.max_runs keeps every
    chunk. Both end with the clean run's results."""
    ref = tmp_path / "ref4"
    assert cli.main(["sweep", *S, "--out", str(ref)]) == 0
    clean = _arrays(ref)
    shutil.copy(ref / "chunks" / "chunk-000002.npz", ref / "chunks" / "chunk-000001.npz")
    capfd.readouterr()
    assert cli.main(["sweep", *S, "--out", str(ref)]) == 0
    captured = capfd.readouterr()
    moved = [line for line in captured.err.splitlines() if line.startswith("gflow: chunk")]
    assert len(moved) == 1 and "holds the runs of chunk 2, not of chunk 1" in moved[0]
    assert "1 of 4 chunks computed now" in captured.out
    for name, want in clean.items():
        if name != "time" and np.issubdtype(np.asarray(want).dtype, np.number):
            np.testing.assert_array_equal(_arrays(ref)[name], want, err_msg=name)
    assert cli.main(["sweep", *S, "--set", "sweep.max_runs=5000", "--out", str(ref)]) == 0
    captured = capfd.readouterr()
    assert "0 of 4 chunks computed now" in captured.out and "is bad" not in captured.err


@pytest.mark.slow  # two tiny deep sweeps through the CLI (compiles): ~25 s on 2 shared cores
def test_deep_drill_other_data_seed_and_unfinished_directory(tmp_path, capfd):
    """Drill 2 and 3 through `gflow deep sweep`: a chunk of a data.seed = 1 run copied into a data.seed = 0
    directory is refused by its fingerprint and recomputed; an unfinished deep directory gives one line."""
    tiny = [*DEEP_TINY, "--quiet", "--no-plot"]
    d0, d1 = tmp_path / "d0", tmp_path / "d1"
    assert cli.main(["deep", "sweep", *tiny, "--out", str(d0)]) == 0
    assert cli.main(["deep", "sweep", *tiny, "--set", "data.seed=1", "--out", str(d1)]) == 0
    assert json.loads((d0 / "manifest.json").read_text())["fingerprint"]["data"].startswith("config:")
    clean = _arrays(d0)
    shutil.copy(d1 / "chunks" / "chunk-000001.npz", d0 / "chunks" / "chunk-000001.npz")
    (d0 / "results.nc").unlink()
    store.write_json(d0 / "manifest.json", {**store.read_manifest(d0), "complete": False})
    (d0 / "chunks" / "chunk-000003.npz").unlink()
    capfd.readouterr()
    assert cli.main(["deep", "plot", str(d0)]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "run incomplete (2 of 4 chunks done, 1 corrupt or from other inputs" in err[0]
    assert cli.main(["deep", "sweep", *tiny, "--out", str(d0)]) == 0
    err = [line for line in capfd.readouterr().err.splitlines() if line.startswith("gflow: chunk")]
    assert len(err) == 1 and "different inputs" in err[0]
    got = _arrays(d0)
    from gflow.deep.train import RECORDS

    for name in RECORDS:  # every per-run record (none of them is a timing)
        np.testing.assert_array_equal(got[name], clean[name], err_msg=name)


def test_both_wings_share_one_sweep_contract():
    """`run_sweep` and `run_deep_sweep` take the same keywords and return the same result type."""
    import inspect

    import gflow
    from gflow.deep import run_deep_sweep
    from gflow.runs.result import SweepResult

    two, deep = (inspect.signature(f).parameters for f in (gflow.run_sweep, run_deep_sweep))
    shared = ["data", "out", "force", "progress", "lease_s", "time_limit_s"]
    for params in (two, deep):
        assert all(params[k].kind is inspect.Parameter.KEYWORD_ONLY for k in shared)
        assert params["out"].default is None and params["time_limit_s"].default is None
    assert two["lease_s"].default == deep["lease_s"].default
    assert gflow.SweepResult is SweepResult and not hasattr(gflow.deep, "DeepSweepResult")


@pytest.mark.slow  # over ~4.5 s (compiles its own programs); runs in .ci/run's slow pass
def test_two_layer_time_limit_keeps_finished_chunks_and_a_rerun_resumes(tmp_path):
    """run_sweep's time limit reaches the chunk loop: no chunk is started past it, and a rerun completes."""
    import gflow
    from gflow.runs.loop import TimeLimit

    cfg = gflow.Config().with_overrides(
        [
            "data.n=8",
            "data.d=6",
            "data.n_test=50",
            "model.width=4",
            "sweep.init_scales=[0.1, 1.0]",
            "sweep.n_seeds=2",
            "sweep.chunk_size=2",
            "flow.n_save=4",
            "flow.n_test_grid=8",
            "flow.sa_draws=8",
        ]
    )
    with pytest.raises(TimeLimit, match="0 of 2 chunks done"):
        gflow.run_sweep(cfg, out=tmp_path / "run", progress=False, time_limit_s=-1.0)
    res = gflow.run_sweep(cfg, out=tmp_path / "run", progress=False)
    assert res.dir == tmp_path / "run" and res.arrays["status"].shape == (2, 2)
    assert gflow.run_sweep(cfg, progress=False).dir is None
