import math

import numpy as np
import pytest

from gflow.twolayer import config as C


@pytest.mark.parametrize(
    "section, kwargs, match",
    [
        ("sweep", dict(init_scales=(1e-2, 0.0)), "sweep.init_scales: must be a finite number > 0"),
        ("sweep", dict(init_scales=(-1.0,)), "sweep.init_scales"),
        ("sweep", dict(init_scales=(math.nan,)), "sweep.init_scales"),
        ("sweep", dict(init_scales=(math.inf,)), "sweep.init_scales"),
        ("sweep", dict(init_scales=()), "sweep.init_scales: must be a non-empty list"),
        ("model", dict(width=0), "model.width: must be an integer ≥ 1"),
        ("flow", dict(target_loss=0.0), "flow.target_loss: must be a finite number > 0"),
        ("flow", dict(target_loss=-1.0), "flow.target_loss"),
        ("flow", dict(solver="rk45"), "flow.solver: unknown solver 'rk45'"),
        ("flow", dict(dtype="float16"), "flow.dtype"),
        ("flow", dict(matmul_precision="tf32"), "flow.matmul_precision: must be one of highest, high, default"),
        ("flow", dict(t_save_min=10.0, t_max=1.0), "flow.t_save_min"),
        ("flow", dict(tolerance_floor="yes"), "flow.tolerance_floor: must be true or false"),
        ("flow", dict(floor_margins=1), "flow.floor_margins: must be true or false"),
        ("flow", dict(error_norm="state"), "flow.error_norm: must be one of margins, loss"),
        ("data", dict(n=0), "data.n"),
        ("data", dict(sigma=0.0), "data.sigma"),
        ("model", dict(second_layer="uniform"), "model.second_layer"),
        ("model", dict(multiplier=math.nan), "model.multiplier"),
    ],
)
def test_bad_values_name_the_field(section, kwargs, match):
    with pytest.raises(C.ConfigError, match=match):
        C.SECTIONS[section](**kwargs)


def test_toml_round_trip_and_logspace(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text(
        '[flow]\ntarget_loss = 0.02\nsolver = "tsit5"\n[sweep]\ninit_scales = {logspace = [-3, 0, 4]}\nn_seeds = 3\n'
        "[model]\nmultiplier = 2\n"
    )
    cfg = C.load(p)
    assert cfg.flow.target_loss == 0.02 and cfg.flow.solver == "tsit5"
    assert cfg.sweep.init_scales == pytest.approx((1e-3, 1e-2, 1e-1, 1.0))
    assert cfg.model.multiplier == 2.0 and isinstance(cfg.model.multiplier, float)
    q = tmp_path / "back.toml"
    q.write_text(C.to_toml(cfg))
    assert C.load(q) == cfg


def test_unknown_keys_and_sections(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[flow]\ntarget_los = 0.1\n")
    with pytest.raises(C.ConfigError, match="flow.target_los: unknown config key"):
        C.load(p)
    p.write_text("[flows]\ntarget_loss = 0.1\n")
    with pytest.raises(C.ConfigError, match="flows: unknown config section"):
        C.load(p)


def test_malformed_toml(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[flow\ntarget_loss = ")
    with pytest.raises(C.ConfigError, match="malformed TOML"):
        C.load(p)
    with pytest.raises(C.ConfigError, match="cannot read config"):
        C.load(tmp_path / "missing.toml")


def test_overrides():
    cfg = C.with_overrides(
        C.Config(), ["flow.target_loss=0.05", "flow.solver=tsit5", "sweep.init_scales=[0.1, 1]", "data.n=10"]
    )
    assert cfg.flow.target_loss == 0.05 and cfg.flow.solver == "tsit5" and cfg.data.n == 10
    assert cfg.sweep.init_scales == (0.1, 1.0)
    with pytest.raises(C.ConfigError, match="model.widht: unknown config key"):
        C.with_overrides(C.Config(), ["model.widht=3"])
    with pytest.raises(C.ConfigError, match="expected section.key=value"):
        C.with_overrides(C.Config(), ["width=3"])
    with pytest.raises(C.ConfigError, match="model.width: must be an integer"):
        C.with_overrides(C.Config(), ["model.width=2.5"])


def test_describe_covers_every_field():
    text = C.describe()
    for name, cls in C.SECTIONS.items():
        for field in cls.__dataclass_fields__:
            assert f"{name}.{field} " in text


def test_from_fields_places_each_flat_name_in_its_section():
    cfg = C.Config.from_fields(
        n=20,
        seed=3,
        kappa=1,
        width=16,
        multiplier=0.5,
        target_loss=0.05,
        n_save=2,
        init_scales=np.array([1e-2, 1.0]),
        n_seeds=2,
        data_seeds=(0, 1),
    )
    want = C.Config(
        data=C.DataConfig(n=20, seed=3, kappa=1.0),
        model=C.ModelConfig(width=16, multiplier=0.5),
        flow=C.FlowConfig(target_loss=0.05, n_save=2),
        sweep=C.SweepConfig(init_scales=(1e-2, 1.0), n_seeds=2, data_seeds=(0, 1)),
    )
    assert cfg == want and isinstance(cfg.data.kappa, float)
    assert C.Config.from_fields() == C.Config()
    with pytest.raises(C.ConfigError, match="^widht: unknown config field"):
        C.Config.from_fields(widht=3)
    with pytest.raises(C.ConfigError, match="model.width: must be an integer"):
        C.Config.from_fields(width=2.5)


def test_flow_config_splits_into_compiled_settings_and_per_run_values():
    """Every FlowConfig field is either compiled in (CompiledFlow) or a per-run value (a Lane field), never both,
    and the compiled half of two configs that differ only in per-run values is the same (so no recompile)."""
    from gflow.twolayer.flow import Lane

    flow_fields = set(C.FlowConfig.__dataclass_fields__)
    assert set(C.COMPILED_FLOW_FIELDS) | set(C.PER_RUN_FLOW_FIELDS) == flow_fields
    assert not set(C.COMPILED_FLOW_FIELDS) & set(C.PER_RUN_FLOW_FIELDS)
    assert set(C.PER_RUN_FLOW_FIELDS) <= set(Lane._fields)
    a = C.FlowConfig(target_loss=0.01, rtol=1e-3, accuracy=1e-2, solver="tsit5", n_save=7)
    b = C.FlowConfig(target_loss=0.2, rtol=1e-5, accuracy=1e-3, solver="tsit5", n_save=7)
    assert a.compiled() == b.compiled() and hash(a.compiled()) == hash(b.compiled())
    assert a.compiled().accuracy_mode and not C.FlowConfig().compiled().accuracy_mode
    assert a.compiled().solver == "tsit5" and a.compiled().n_save == 7
    assert C.FlowConfig(n_save=8).compiled() != a.compiled()
    with pytest.raises(C.ConfigError, match="flow.rtol"):
        C.FlowConfig(rtol=1.0)
