"""gflow.config, the config base of both wings: validators, TOML load/dump, `--set`, variants, describe.

A toy two-section config exercises the base on its own; both wings' configs are checked to be built on it."""

import math
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field

import pytest

import gflow
from gflow import config as base
from gflow.config import ConfigError, SectionedConfig, config_field


@dataclass(frozen=True, kw_only=True)
class Alpha:
    rate: float = config_field(0.5, "a rate in (0, 1]")
    name: str = config_field("a", "a name")
    flag: bool = config_field(False, "a switch")
    sizes: tuple[float, ...] = config_field((1.0, 2.0), "a list of positive numbers, or {logspace = [lo, hi, num]}")

    def __post_init__(self):
        base.check_number("alpha.rate", self.rate, hi=1.0)
        base.check_bool("alpha.flag", self.flag)
        sizes = base.parse_axis("alpha.sizes", self.sizes)
        for v in sizes:
            base.check_positive_finite("alpha.sizes", v)
        object.__setattr__(self, "sizes", tuple(float(v) for v in sizes))


@dataclass(frozen=True, kw_only=True)
class Beta:
    count: int = config_field(3, "a count ≥ 1")
    limit: float = config_field(math.inf, "a limit (inf: none)")
    table: dict = config_field(None, "a table of name → list")

    def __post_init__(self):
        base.check_int_at_least("beta.count", self.count, 1)
        object.__setattr__(self, "table", {} if self.table is None else dict(self.table))


@dataclass(frozen=True, kw_only=True)
class Toy(SectionedConfig):
    VARIANTS = ("wide", "small")
    OVERRIDE_EXAMPLE = "beta.count=2"

    alpha: Alpha = field(default_factory=Alpha)
    beta: Beta = field(default_factory=Beta)


def test_importing_the_config_layer_loads_no_jax():
    """gflow.config, both wings' configs and the presets load without JAX (nor diffrax, equinox, matplotlib)."""
    code = (
        "import sys, gflow.config, gflow.twolayer.config, gflow.deep.config as d; d.load_preset('digits-mlp');"
        "d.preset_descriptions(); bad = [m for m in ('jax', 'diffrax', 'equinox', 'matplotlib') if m in sys.modules];"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_one_config_error_for_both_wings():
    from gflow.deep import config as deep
    from gflow.twolayer import config as twolayer

    assert gflow.ConfigError is ConfigError is twolayer.ConfigError is deep.ConfigError
    assert issubclass(ConfigError, ValueError)  # the CLI turns it into one line and exit status 2
    assert issubclass(twolayer.Config, SectionedConfig) and issubclass(deep.DeepConfig, SectionedConfig)
    assert list(twolayer.Config.sections()) == ["data", "model", "flow", "sweep"]
    assert list(deep.DeepConfig.sections()) == ["data", "model", "train", "sweep"]


@pytest.mark.parametrize(
    "check, value, message",
    [
        (lambda v: base.check_positive_finite("x.y", v), 0, "x.y: must be a finite number > 0, got 0"),
        (lambda v: base.check_positive_finite("x.y", v), math.inf, "x.y: must be a finite number > 0, got inf"),
        (lambda v: base.check_positive_finite("x.y", v), True, "x.y: must be a finite number > 0, got True"),
        (lambda v: base.check_int_at_least("x.y", v, 2), 1, "x.y: must be an integer ≥ 2, got 1"),
        (lambda v: base.check_int_at_least("x.y", v, 2), 2.0, "x.y: must be an integer ≥ 2, got 2.0"),
        (lambda v: base.check_number("x.y", v, hi=1.0), 1.5, "x.y: must be a finite number in (0, 1], got 1.5"),
        (lambda v: base.check_number("x.y", v, lo_open=False), -1, "x.y: must be a finite number in [0, ∞), got -1"),
        (lambda v: base.check_number("x.y", v), math.nan, "x.y: must be a finite number in (0, ∞), got nan"),
        (lambda v: base.check_choice("x.y", v, ("a", "b")), "c", "x.y: must be one of a, b, got 'c'"),
        (lambda v: base.check_bool("x.y", v), 1, "x.y: must be true or false, got 1"),
        (lambda v: base.check_seed("x.y", v), 2**32, "x.y: must be an integer in [0, 2**32), got 4294967296"),
        (lambda v: base.parse_axis("x.y", v), [], "x.y: must be a non-empty list, got []"),
        (lambda v: base.parse_axis("x.y", v), {"logspace": [0, 1]}, "x.y: use a list, {logspace"),
    ],
)
def test_validators_name_the_field(check, value, message):
    with pytest.raises(ConfigError) as e:
        check(value)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_validators_accept_the_edges():
    base.check_number("x", 1.0, hi=1.0)
    base.check_number("x", 0, lo_open=False)
    base.check_int_at_least("x", 2, 2)
    base.check_seed("x", 2**32 - 1)
    assert base.parse_axis("x", {"logspace": [-2, 0, 3]}) == pytest.approx((0.01, 0.1, 1.0))
    assert base.parse_axis("x", {"linspace": [1, 2, 3]}) == (1.0, 1.5, 2.0)


def test_from_dict_coerces_ints_and_rejects_unknown_names():
    cfg = Toy.from_dict({"alpha": {"rate": 1, "sizes": [3]}, "beta": {"limit": 7}})
    assert cfg.alpha.rate == 1.0 and isinstance(cfg.alpha.rate, float)
    assert isinstance(cfg.beta.limit, float) and cfg.alpha.sizes == (3.0,) and cfg.beta.count == 3
    with pytest.raises(ConfigError, match=r"^gamma: unknown config section; known: alpha, beta$"):
        Toy.from_dict({"gamma": {}})
    with pytest.raises(ConfigError, match=r"^alpha.rat: unknown config key; known: rate, name, flag, sizes$"):
        Toy.from_dict({"alpha": {"rat": 0.1}})
    with pytest.raises(ConfigError, match=r"^alpha: must be a table of key = value$"):
        Toy.from_dict({"alpha": 3})
    with pytest.raises(ConfigError, match=r"^alpha.rate: must be a finite number in \(0, 1\]"):
        Toy.from_dict({"alpha": {"rate": 2}})


def test_toml_round_trip_of_awkward_values(tmp_path):
    """Strings with quotes, backslashes and non-ASCII, inf, tuples and inline tables with dotted keys all
    come back equal from the TOML that to_toml writes."""
    cfg = Toy.from_dict(
        {
            "alpha": {"name": 'q"uo\\te ∞ C:\\data\nline', "flag": True, "sizes": [1e-5, 2.5e16, 3]},
            "beta": {"limit": math.inf, "count": 7, "table": {"data.n": [1, 2], "mode": ["x", "y"]}},
        }
    )
    text = cfg.to_toml()
    assert Toy.from_dict(tomllib.loads(text)) == cfg
    path = tmp_path / "toy.toml"
    path.write_text(text, encoding="utf-8")
    assert Toy.load(path) == cfg
    assert "table" not in Toy().to_toml()  # an empty table means the default and is left out


def test_load_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[alpha\nrate = ")
    with pytest.raises(ConfigError, match=r"bad.toml: malformed TOML"):
        Toy.load(bad)
    with pytest.raises(ConfigError, match=r"missing.toml: cannot read config: No such file"):
        Toy.load(tmp_path / "missing.toml")


def test_overrides_parse_toml_values_and_name_bad_items():
    cfg = Toy().with_overrides(
        [
            "alpha.rate=0.25",
            "alpha.name=plain text",
            "alpha.sizes=[4, 5]",
            "alpha.flag=true",
            'beta.table={ "k" = [1] }',
            "alpha.sizes={logspace = [0, 1, 2]}",
        ]
    )
    assert (cfg.alpha.rate, cfg.alpha.name, cfg.alpha.flag) == (0.25, "plain text", True)
    assert cfg.alpha.sizes == (1.0, 10.0) and cfg.beta.table == {"k": [1]}
    assert Toy().with_overrides([]) == Toy()
    assert base.parse_override(" beta.count = 4 ") == ("beta", "count", 4)
    assert base.parse_override("alpha.name=1e") == ("alpha", "name", "1e")  # not TOML: kept as a string
    with pytest.raises(ConfigError, match=r"^--set 'count=4': expected section.key=value, e.g. beta.count=2$"):
        Toy().with_overrides(["count=4"])
    with pytest.raises(ConfigError, match="^gamma: unknown config section"):
        Toy().with_overrides(["gamma.x=1"])
    with pytest.raises(ConfigError, match="^beta.cont: unknown config key; known: count, limit, table$"):
        Toy().with_overrides(["beta.cont=1"])
    with pytest.raises(ConfigError, match="^beta.count: must be an integer ≥ 1, got 0$"):
        Toy().with_overrides(["beta.count=0"])


def test_replace_validates_again():
    assert Toy().replace(beta={"count": 5}).beta.count == 5
    with pytest.raises(ConfigError, match="^beta.count"):
        Toy().replace(beta={"count": 0})
    with pytest.raises(ConfigError, match="^gamma: unknown config section"):
        Toy().replace(gamma={})


def test_variants_apply_in_declared_order_and_only_when_asked(tmp_path):
    path = tmp_path / "v.toml"
    path.write_text(
        'description = "a toy"\n[alpha]\nrate = 0.5\n[beta]\ncount = 2\n'
        '[small.beta]\ncount = 1\n[small.alpha]\nname = "s"\n[wide.beta]\ncount = 9\nlimit = 4.0\n'
    )
    assert Toy.load(path) == Toy.from_dict({"beta": {"count": 2}})
    assert Toy.load(path, ("small",)).beta.count == 1 and Toy.load(path, ("small",)).alpha.name == "s"
    assert Toy.load(path, ("wide",)).beta == Beta(count=9, limit=4.0)
    both = Toy.load(path, ("small", "wide"))  # applied in VARIANTS order (wide, then small), not the order asked
    assert both.beta == Beta(count=1, limit=4.0) and both == Toy.load(path, ("wide", "small"))
    sections, description, variants = Toy.split_file(tomllib.loads(path.read_text()))
    assert description == "a toy" and set(variants) == {"small", "wide"} and set(sections) == {"alpha", "beta"}
    with pytest.raises(ConfigError, match="^huge: unknown variant; known: wide, small$"):
        Toy.load(path, ("huge",))
    path.write_text("[alpha]\nrate = 0.5\n[small.beta]\ncount = 1\n")
    with pytest.raises(ConfigError, match=r"v.toml: has no \[wide\] table"):
        Toy.load(path, ("wide",))
    path.write_text("[alpha]\nrate = 0.5\n[small.beta]\ncont = 1\n")
    with pytest.raises(ConfigError, match=r"^small.beta.cont: unknown config key"):
        Toy.load(path)  # a misspelt key in a variant is caught even when the variant is not asked for
    path.write_text("[alpha]\nrate = 0.5\n[small.beta]\ncount = 0\n")
    with pytest.raises(ConfigError, match=r"^beta.count: must be an integer ≥ 1"):
        Toy.load(path, ("small",))


def test_describe_lists_every_field_with_default_and_help():
    text = Toy.describe()
    assert text.splitlines()[0] == "[alpha]"
    assert "  alpha.rate (default 0.5): a rate in (0, 1]" in text.splitlines()
    for name, section in Toy.sections().items():
        for key in section.__dataclass_fields__:
            assert f"  {name}.{key} (default " in text
    from gflow.deep.config import DeepConfig

    assert "sweep.multipliers (default 13 values 0.000976562 … 4): output multipliers c" in DeepConfig.describe()
