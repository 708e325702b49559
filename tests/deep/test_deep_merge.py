"""experiments/deep_merge.py: joining a supplementary η sweep to a main one (synthetic run Datasets)."""

import numpy as np
import pytest

import gflow
from experiments import deep_merge
from gflow.deep.analysis import best_over_lr, cell_table
from gflow.runs.status import CODE, RUNNING
from gflow.runs.store import arrays_of, to_dataset

CONFIG = {"data": {"name": "digits"}, "model": {"arch": "cnn", "depth": 5}, "train": {"max_steps": 100}, "sweep": {}}
VARS = ("status", "steps", "budget", "peak_step", "peak_test_acc")


def _run(cs, lrs, acc, status, config=CONFIG):
    shape = (len(cs), len(lrs), 2)
    arrays = {
        "multiplier": np.asarray(cs),
        "lr": np.asarray(lrs),
        "seed": np.arange(2),
        "status": np.full(shape, status, np.int32),
        "steps": np.full(shape, 50),
        "budget": np.full(shape, 100),
        "peak_step": np.full(shape, 40),
        "peak_test_acc": np.broadcast_to(np.asarray(acc)[..., None], shape).copy(),
    }
    dims = {k: ["multiplier", "lr", "seed"] for k in VARS} | {
        "multiplier": ["multiplier"],
        "lr": ["lr"],
        "seed": ["seed"],
    }
    return to_dataset(arrays, dims, {"config": config, "data": {"name": "digits"}})


def test_a_supplementary_eta_fills_the_cells_the_main_grid_could_not(monkeypatch):
    main = _run([0.25, 1.0], [0.1, 0.3], [[0.5, 0.5], [0.9, 0.8]], CODE["reached_target"])
    main["status"][0] = CODE["max_steps"]  # nothing trained at c = 0.25
    extra = _run([0.25], [0.01], [[0.7]], CODE["reached_target"])
    runs = {"main": main, "extra": extra}
    monkeypatch.setattr(gflow, "load_run", lambda d: runs[d])
    merged = deep_merge.merge(["main", "extra"])
    a = arrays_of(merged)
    assert list(a["lr"]) == [0.01, 0.1, 0.3] and list(a["multiplier"]) == [0.25, 1.0]
    assert (a["status"][1, 0] == RUNNING).all()  # (c = 1, η = 0.01): run by neither sweep
    mean, se, valid = cell_table(a)
    best, _, idx = best_over_lr(mean, se)
    np.testing.assert_allclose(best, [0.7, 0.9])  # c = 0.25 now has a valid η: the supplement's
    assert list(idx) == [0, 1] and merged.attrs["config"] == CONFIG
    from gflow.deep.plot import _cell_labels

    labels = _cell_labels(a, mean, valid)
    assert labels[1, 0] == "not run" and labels[0, 1] == "budget 2/2" and labels[0, 0] == "70.0"


def test_sweeps_of_other_nets_or_conflicting_cells_are_refused(monkeypatch):
    main = _run([1.0], [0.1], [[0.9]], CODE["reached_target"])
    other = _run([1.0], [0.01], [[0.8]], CODE["reached_target"], config={**CONFIG, "model": {"arch": "mlp"}})
    clash = _run([1.0], [0.1], [[0.8]], CODE["reached_target"])  # the same cell with another result
    runs = {"main": main, "other": other, "clash": clash}
    monkeypatch.setattr(gflow, "load_run", lambda d: runs[d])
    with pytest.raises(SystemExit, match="another model config"):
        deep_merge.merge(["main", "other"])
    with pytest.raises(Exception, match="conflicting values"):
        deep_merge.merge(["main", "clash"])
