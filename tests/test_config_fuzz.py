"""The fuzz of bad inputs kept as a test: every row is one `--set` a user might type, and the field its
one-line error must name. Each goes through the command line (`gflow config` / `gflow deep config`), so
it checks the whole path a user sees: exit status 2, exactly one line on stderr, `gflow: error: <field>`,
no traceback and no numpy warning. Nothing is computed: configs are validated before any work, so the
whole table takes about a second."""

import contextlib
import io
import time
import warnings

import pytest

from gflow import cli

TWO = [
 ("data.n=0", "data.n"), ("data.n=-1", "data.n"), ("data.n=1.5", "data.n"), ('data.n="x"', "data.n"), ("data.n=true", "data.n"),
 ("data.n_test=0", "data.n_test"), ("data.n_test=100000000", "data.n_test"), ("data.d=0", "data.d"), ("data.d=100000000", "data.d"),
 ("data.kappa=0", "data.kappa"), ("data.kappa=-1", "data.kappa"), ("data.kappa=nan", "data.kappa"), ("data.kappa=inf", "data.kappa"),
 ("data.kappa=1e300", "data.kappa"), ("data.sigma=0", "data.sigma"), ("data.sigma=1e300", "data.sigma"), ("data.sigma=1e-300", "data.sigma"),
 ("data.seed=-1", "data.seed"), ("data.seed=4294967296", "data.seed"), ("data.seed=1.5", "data.seed"), ('data.mode="x"', "data.mode"),
 ("data.separable=1", "data.separable"), ("data.max_draws=0", "data.max_draws"),
 ("model.width=0", "model.width"), ("model.width=1e8", "model.width"), ("model.width=100000000", "model.width"),
 ('model.second_layer="x"', "model.second_layer"), ("model.multiplier=0", "model.multiplier"), ("model.multiplier=1e300", "model.multiplier"),
 ("model.multiplier=1e-300", "model.multiplier"),
 ("flow.target_loss=0", "flow.target_loss"), ("flow.target_loss=-1", "flow.target_loss"), ("flow.target_loss=1e-300", "flow.target_loss"),
 ('flow.solver="x"', "flow.solver"), ("flow.rtol=0", "flow.rtol"), ("flow.rtol=2", "flow.rtol"), ("flow.rtol=1", "flow.rtol"),
 ("flow.rtol=1e-9", "flow.rtol"), ("flow.accuracy=1", "flow.accuracy"), ("flow.accuracy=0", "flow.accuracy"), ("flow.atol=0", "flow.atol"),
 ("flow.atol=1e300", "flow.atol"), ("flow.atol=1e-300", "flow.atol"), ("flow.t_max=0", "flow.t_max"), ("flow.t_max=1e300", "flow.t_max"),
 ("flow.max_steps=0", "flow.max_steps"), ("flow.n_save=1", "flow.n_save"), ("flow.n_save=10000000", "flow.n_save"),
 ("flow.t_save_min=0", "flow.t_save_min"), ("flow.t_save_min=1e7", "flow.t_save_min"), ("flow.n_test_grid=0", "flow.n_test_grid"),
 ("flow.sa_draws=0", "flow.sa_draws"), ('flow.ties="x"', "flow.ties"), ("flow.stop_rtol=0", "flow.stop_rtol"), ('flow.dtype="float16"', "flow.dtype"),
 ('flow.matmul_precision="x"', "flow.matmul_precision"), ('flow.error_norm="x"', "flow.error_norm"), ("flow.tolerance_floor=1", "flow.tolerance_floor"),
 ("sweep.init_scales=[]", "sweep.init_scales"), ("sweep.init_scales=[0]", "sweep.init_scales"), ("sweep.init_scales=[-1]", "sweep.init_scales"),
 ("sweep.init_scales=[1e300]", "sweep.init_scales"), ("sweep.init_scales=[1e-300]", "sweep.init_scales"), ("sweep.init_scales=[0.01, 0.01]", "sweep.init_scales"),
 ("sweep.init_scales={logspace=[-2, 0, 10000000]}", "sweep.init_scales"), ("sweep.init_scales={logspace=[-2, 0, 100000000]}", "sweep.init_scales"),
 ("sweep.init_scales={logspace=[400, 401, 2]}", "sweep.init_scales"), ("sweep.init_scales={logspace=[-2, 0]}", "sweep.init_scales"),
 ("sweep.init_scales={logspace=[-2, 0, 0]}", "sweep.init_scales"), ('sweep.init_scales={linspace=["a", 1, 2]}', "sweep.init_scales"),
 ("sweep.init_scales={foo=[1, 2, 3]}", "sweep.init_scales"), ('sweep.init_scales="x"', "sweep.init_scales"), ('sweep.init_scales=["a"]', "sweep.init_scales"),
 ("sweep.n_seeds=0", "sweep.n_seeds"), ("sweep.n_seeds=4294967297", "sweep.n_seeds"), ("sweep.data_seeds=0", "sweep.data_seeds"),
 ("sweep.data_seeds=[1, 1]", "sweep.data_seeds"), ("sweep.data_seeds=[-1]", "sweep.data_seeds"), ('sweep.grid="x"', "sweep.grid"),
 ('sweep.grid={"data.foo"=[1]}', "sweep.grid.data.foo"), ('sweep.grid={"data.n"=[0]}', "sweep.grid.data.n"), ('sweep.grid={"data.n"=[20, 20]}', "sweep.grid.data.n"),
 ('sweep.grid={"model.multiplier"=[1e-300]}', "sweep.grid.model.multiplier"), ('sweep.grid={"flow.rtol"=[2]}', "sweep.grid.flow.rtol"),
 ('sweep.grid={"model.width"=[20, 100000000]}', "sweep.grid.model.width"), ('sweep.grid={"data.sigma"=[1e300]}', "sweep.grid.data.sigma"),
 ("sweep.chunk_size=-1", "sweep.chunk_size"), ("sweep.memory_budget_mb=0", "sweep.memory_budget_mb"), ("sweep.batch_lanes=0", "sweep.batch_lanes"),
 ("sweep.batch_lanes=1000000", "sweep.batch_lanes"), ("sweep.max_runs=0", "sweep.max_runs"), ("sweep.max_runs=5", "sweep.max_runs"),
 ("sweep.max_memory_gb=0", "sweep.max_memory_gb"), ("sweep.shard=1", "sweep.shard"), ("foo.bar=1", "foo"), ("data.foo=1", "data.foo"),
 ("nodot", "--set 'nodot'"),
]
DEEP = [
 ('data.name="x"', "data.name"), ("data.n_train=-2", "data.n_train"), ("data.n_test=-1", "data.n_test"), ("data.seed=-1", "data.seed"),
 ("data.mnist1d_samples=5", "data.mnist1d_samples"), ("data.edim_dim=0", "data.edim_dim"),
 ("data.edim_size=1", "data.edim_size"), ("data.edim_channels=0", "data.edim_channels"), ("data.edim_classes=1", "data.edim_classes"),
 ("data.edim_features=0", "data.edim_features"), ("data.edim_noise=-1", "data.edim_noise"), ("data.path=5", "data.path"),
 ('data.name="cifar10"', "data.path"), ('model.arch="x"', "model.arch"), ("model.width=0", "model.width"), ("model.depth=-1", "model.depth"),
 ('model.norm="x"', "model.norm"), ('model.norm="group"', "model.norm"), ("model.norm_groups=0", "model.norm_groups"), ('model.init="x"', "model.init"),
 ("model.centered=1", "model.centered"), ("train.batch_size=-1", "train.batch_size"), ("train.target_acc=0", "train.target_acc"),
 ("train.target_acc=1.5", "train.target_acc"), ("train.target_loss=-1", "train.target_loss"), ("train.check_every=0", "train.check_every"),
 ("train.max_steps=0", "train.max_steps"), ("train.max_steps=15", "train.max_steps"), ("train.momentum=1", "train.momentum"),
 ("train.budget_power=-1", "train.budget_power"), ("train.budget_power=10", "train.budget_power"), ("train.budget_c=0", "train.budget_c"),
 ("train.l2=-1", "train.l2"), ("train.decoupled_decay=0.6", "train.decoupled_decay"), ("train.diverge_factor=1", "train.diverge_factor"),
 ("train.eval_batch_size=0", "train.eval_batch_size"), ('train.dtype="float16"', "train.dtype"),
 ("sweep.multipliers=[]", "sweep.multipliers"), ("sweep.multipliers=[0]", "sweep.multipliers"), ("sweep.multipliers=[1e-300]", "sweep.multipliers"),
 ("sweep.multipliers=[1e300]", "sweep.multipliers"), ("sweep.multipliers=[1, 1]", "sweep.multipliers"),
 ("sweep.multipliers={logspace=[-2, 0, 100000000]}", "sweep.multipliers"), ("sweep.multipliers={logspace=[400, 401, 2]}", "sweep.multipliers"),
 ("sweep.lrs=[1e300]", "sweep.lrs"), ("sweep.lrs=[1e-300]", "sweep.lrs"), ("sweep.lrs=[0.1, 0.1]", "sweep.lrs"), ('sweep.lrs="x"', "sweep.lrs"),
 ("sweep.n_seeds=0", "sweep.n_seeds"), ("sweep.n_seeds=4294967297", "sweep.n_seeds"), ("sweep.n_seeds=2000000", "sweep.max_runs"),
 ("sweep.memory_budget_mb=0", "sweep.memory_budget_mb"), ("sweep.max_lanes=-1", "sweep.max_lanes"), ("sweep.sync_every=0", "sweep.sync_every"),
 ('sweep.loop="x"', "sweep.loop"), ("sweep.max_runs=0", "sweep.max_runs"), ("sweep.max_memory_gb=0", "sweep.max_memory_gb"),
 ("foo.bar=1", "foo"), ("train.foo=1", "train.foo"),
]


CASES = [([], item, field) for item, field in TWO] + [(["deep"], item, field) for item, field in DEEP]


def test_the_table_covers_both_wings():
    assert len(CASES) >= 100 and len(TWO) >= 50 and len(DEEP) >= 50


@pytest.mark.parametrize("wing, item, field", CASES, ids=[f"{'deep:' if w else ''}{i}" for w, i, _ in CASES])
def test_a_bad_input_gets_one_line_naming_its_field(wing, item, field):
    err, out = io.StringIO(), io.StringIO()
    t0 = time.perf_counter()
    with warnings.catch_warnings(), contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        warnings.simplefilter("error")  # e.g. numpy's overflow RuntimeWarning before the error
        rc = cli.main([*wing, "config", "--set", item])
    lines = err.getvalue().strip().splitlines()
    assert rc == 2 and out.getvalue() == "", (rc, out.getvalue())
    assert len(lines) == 1 and lines[0].startswith(f"gflow: error: {field}"), lines
    assert time.perf_counter() - t0 < 2.0, "refused before anything is allocated"
