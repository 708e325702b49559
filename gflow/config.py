"""The config base both wings build on: field help, validators, TOML load/dump, `--set` overrides, describe.

A wing's config (`gflow.twolayer.config.Config`, `gflow.deep.config.DeepConfig`) is a frozen dataclass
deriving from `SectionedConfig` whose fields are its sections (`data`, `model`, …), each a frozen,
keyword-only dataclass whose fields carry a one-line help text (`config_field`) and are validated on construction.
Invalid values raise `ConfigError` with a one-line message naming the field, e.g.
`flow.target_loss: must be a finite number > 0, got 0`.

A config file is TOML: one table per section, plus, optionally,
- `description = "…"`: one line saying what the config is for (shown by `gflow deep presets`);
- variant tables named in the config class's `VARIANTS` (e.g. `[quick.train]` of a deep preset): overrides
  of the sections, applied in `VARIANTS` order when asked for (`load(path, variants=("quick",))`).

This module imports neither JAX nor the engines (numpy only, for log/lin spaces).
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import field
from typing import Any, ClassVar, cast

import numpy as np


class ConfigError(ValueError):
    """A bad configuration value; the message names the field."""


def config_field(default, help: str, **kw):
    """A config field with its one-line help text (shown by `describe` and `--help`)."""
    return field(default=default, metadata={"help": help}, **kw)


# ---- validators: each raises ConfigError naming the field ----


def check_positive_finite(name: str, v) -> None:
    """A finite number > 0 (not a bool); `name` is the field named in the ConfigError."""
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v <= 0:
        raise ConfigError(f"{name}: must be a finite number > 0, got {v!r}")


def check_int_at_least(name: str, v, lo: int) -> None:
    """An integer (not a bool) ≥ `lo`."""
    if not isinstance(v, int) or isinstance(v, bool) or v < lo:
        raise ConfigError(f"{name}: must be an integer ≥ {lo}, got {v!r}")


def check_number(name: str, v, *, lo: float = 0.0, lo_open: bool = True, hi: float = math.inf) -> None:
    """A finite number in (lo, hi] (or [lo, hi] with lo_open=False)."""
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v <= hi
    ok = ok and (v > lo if lo_open else v >= lo)
    if not ok:
        rng = f"{'(' if lo_open else '['}{lo:g}, {'∞)' if hi == math.inf else f'{hi:g}]'}"
        raise ConfigError(f"{name}: must be a finite number in {rng}, got {v!r}")


def check_choice(name: str, v, choices) -> None:
    """One of `choices`."""
    if v not in choices:
        raise ConfigError(f"{name}: must be one of {', '.join(map(str, choices))}, got {v!r}")


def check_bool(name: str, v) -> None:
    """True or False (not 0 or 1)."""
    if not isinstance(v, bool):
        raise ConfigError(f"{name}: must be true or false, got {v!r}")


SEED_LIMIT = 2**32  # seeds are folded into PRNG keys as uint32


def check_seed(name: str, v) -> None:
    """A data or init seed: an integer in [0, 2**32)."""
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < SEED_LIMIT:
        raise ConfigError(f"{name}: must be an integer in [0, 2**32), got {v!r}")


MAX_AXIS = 1_000_000  # values one sweep axis may hold (checked before a space is generated)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def parse_axis(name: str, value, max_count: int = MAX_AXIS, limit: str = "the axis limit") -> tuple:
    """A list, or {logspace = [lo_exp, hi_exp, num]} (10^lo … 10^hi), or {linspace = [lo, hi, num]}; a space
    holds at most `max_count` values (`limit` names that bound), checked before its array is made."""
    if isinstance(value, dict):
        spec = next(iter(value.values()), None)
        if (
            len(value) != 1
            or next(iter(value)) not in ("logspace", "linspace")
            or not isinstance(spec, (list, tuple))
            or len(spec) != 3
        ):
            raise ConfigError(
                f"{name}: use a list, {{logspace = [lo_exp, hi_exp, num]}} or {{linspace = [lo, hi, num]}}"
            )
        kind, (lo, hi, num) = next(iter(value.items()))
        if not isinstance(num, int) or isinstance(num, bool) or num < 1:
            raise ConfigError(f"{name}: {kind} count must be an integer ≥ 1, got {num!r}")
        if num > max_count:
            raise ConfigError(f"{name}: {kind} count {num:,} is above {limit} = {max_count:,}")
        if not (_is_number(lo) and _is_number(hi) and math.isfinite(lo) and math.isfinite(hi)):
            raise ConfigError(f"{name}: {kind} bounds must be finite numbers, got {lo!r}, {hi!r}")
        if kind == "logspace" and not -320 < min(lo, hi) <= max(lo, hi) < 308:
            raise ConfigError(
                f"{name}: logspace exponents must lie in (-320, 308) (10^x in float64), got {lo!r}, {hi!r}"
            )
        return tuple(float(v) for v in (np.logspace(lo, hi, num) if kind == "logspace" else np.linspace(lo, hi, num)))
    if not isinstance(value, (list, tuple)) or len(value) == 0:
        raise ConfigError(f"{name}: must be a non-empty list, got {value!r}")
    return tuple(value)


def check_distinct(name: str, values) -> None:
    """Axis values must be distinct (each labels one coordinate)."""
    if len(set(values)) != len(values):
        seen, dup = set(), None
        for v in values:
            if v in seen:
                dup = v
                break
            seen.add(v)
        raise ConfigError(f"{name}: values must be distinct, {dup!r} appears twice")


def dtype_range(dtype: str) -> dict[str, float]:
    """What a float dtype can hold: tiny (smallest normal), max, eps; and sqrt_tiny / sqrt_max, the range
    of a value whose square must stay a finite normal number."""
    fi = np.finfo(np.dtype(dtype))
    tiny, big = float(fi.tiny), float(fi.max)
    return {"tiny": tiny, "max": big, "eps": float(fi.eps), "sqrt_tiny": math.sqrt(tiny), "sqrt_max": math.sqrt(big)}


def check_in_dtype(name: str, values, lo: float, hi: float, dtype: str, why: str) -> None:
    """Refuse values outside [lo, hi], the range in which they can be represented or train in `dtype`."""
    for v in values if isinstance(values, (list, tuple)) else (values,):
        if not lo <= v <= hi:
            raise ConfigError(f"{name}: {v!r} is outside [{lo:.3g}, {hi:.3g}], {why} in {dtype}")


def check_memory(estimates: dict[str, tuple[float, str]], limit_gb: float, limit_field: str) -> None:
    """Refuse a config whose estimated memory is above `limit_gb`: `estimates` maps what is allocated
    (e.g. 'a batch of 2 runs') to (bytes, the field most responsible)."""
    for what, (nbytes, blame) in estimates.items():
        if nbytes > limit_gb * 2**30:
            raise ConfigError(
                f"{blame}: {what} would need ~{_fmt_bytes(nbytes)} (estimated from the config before "
                f"anything is allocated), above {limit_field} = {limit_gb:g} GiB"
            )


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"  # pragma: no cover


# ---- TOML ----


def read_toml(path) -> dict[str, Any]:
    """A TOML file as a dict; a malformed or unreadable file raises ConfigError naming it."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: malformed TOML: {e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a TOML file (not UTF-8 text)") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config: {e.strerror}") from None


def toml_value(v) -> str:
    """One value as TOML: booleans, numbers (inf and nan included), strings, lists, inline tables."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (int, float)):
        return repr(v)  # Python's float repr ('1e-05', 'inf', 'nan') is valid TOML
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(v, (tuple, list)):
        return f"[{', '.join(toml_value(x) for x in v)}]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} {v!r} as TOML")


def parse_override(item: str, example: str = "section.key=value") -> tuple[str, str, Any]:
    """'section.key=value' → (section, key, value); the value is parsed as TOML, else kept as a string."""
    if "=" not in item or "." not in item.split("=", 1)[0]:
        raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. {example}")
    path, text = item.split("=", 1)
    section, key = path.strip().split(".", 1)
    try:
        value = tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = text.strip()
    return section, key, value


class SectionedConfig:
    """Base of a wing's top-level config: a frozen dataclass whose fields are its sections, each given by
    `field(default_factory=SectionClass)`. Provides dict/TOML conversion, overrides and help text."""

    VARIANTS: ClassVar[tuple[str, ...]] = ()  # names of the override tables a config file may hold
    OVERRIDE_EXAMPLE: ClassVar[str] = "section.key=value"  # shown when a --set item is malformed

    @classmethod
    def sections(cls) -> dict[str, Any]:
        """{section name: section class}, in field order."""
        return {f.name: f.default_factory for f in dataclasses.fields(cast(Any, cls))}

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {name: dataclasses.asdict(getattr(self, name)) for name in self.sections()}

    @classmethod
    def _check_keys(cls, raw: dict, prefix: str = "") -> None:
        sections = cls.sections()
        for name, values in raw.items():
            if name not in sections:
                raise ConfigError(f"{prefix}{name}: unknown config section; known: {', '.join(sections)}")
            if not isinstance(values, dict):
                raise ConfigError(f"{prefix}{name}: must be a table of key = value")
            known = sections[name].__dataclass_fields__
            for key in values:
                if key not in known:
                    raise ConfigError(f"{prefix}{name}.{key}: unknown config key; known: {', '.join(known)}")

    @classmethod
    def _coerce(cls, section: str, key: str, value):
        """Turn TOML values into field values: ints where floats are expected."""
        hint = cls.sections()[section].__dataclass_fields__[key].type
        if "float" in str(hint) and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value

    @classmethod
    def from_dict(cls, raw: dict[str, Any]):
        """Build a config from nested dicts {section: {key: value}}; unknown sections or keys raise ConfigError."""
        cls._check_keys(raw)
        sections = {}
        for name, values in raw.items():
            try:
                sections[name] = cls.sections()[name](**{k: cls._coerce(name, k, v) for k, v in values.items()})
            except TypeError as e:  # pragma: no cover - dataclass signature errors
                raise ConfigError(f"{name}: {e}") from None
        return cls(**sections)

    @classmethod
    def split_file(cls, raw: dict[str, Any], source="config") -> tuple[dict, str, dict[str, dict]]:
        """A config file's dict → (sections, description, {variant: its override sections})."""
        raw = dict(raw)
        description = raw.pop("description", "")
        if not isinstance(description, str):
            raise ConfigError(f"{source}: description must be a string, got {description!r}")
        variants = {v: raw.pop(v) for v in cls.VARIANTS if v in raw}
        for name, table in variants.items():
            if not isinstance(table, dict):
                raise ConfigError(f"{source}: {name} must be a table of sections")
            cls._check_keys(table, prefix=f"{name}.")
        return raw, description, variants

    @classmethod
    def from_file_dict(cls, raw: dict[str, Any], variants=(), source="config"):
        """A config from a config file's dict, with the named variant tables applied (in VARIANTS order)."""
        sections, _, tables = cls.split_file(raw, source)
        for name in variants:
            if name not in cls.VARIANTS:
                raise ConfigError(f"{name}: unknown variant; known: {', '.join(cls.VARIANTS) or 'none'}")
            if name not in tables:
                raise ConfigError(f"{source}: has no [{name}] table, so it has no {name} variant")
        for name in cls.VARIANTS:
            if name in variants:
                for section, values in tables[name].items():
                    sections[section] = {**sections.get(section, {}), **values}
        return cls.from_dict(sections)

    @classmethod
    def load(cls, path, variants=()):
        """Read a TOML config file (with the named variants applied); a malformed file raises ConfigError naming it."""
        return cls.from_file_dict(read_toml(path), variants, source=path)

    def with_overrides(self, items):
        """Apply `--set section.key=value` overrides on top of this config."""
        raw = self.to_dict()
        sections = self.sections()
        for item in items:
            section, key, value = parse_override(item, self.OVERRIDE_EXAMPLE)
            if section not in raw:
                raise ConfigError(f"{section}: unknown config section; known: {', '.join(sections)}")
            if key not in raw[section]:
                raise ConfigError(f"{section}.{key}: unknown config key; known: {', '.join(raw[section])}")
            raw[section][key] = value
        # Drop None-valued defaults (e.g. flow.atol) so from_dict sees only set keys.
        return self.from_dict({s: {k: v for k, v in vals.items() if v is not None} for s, vals in raw.items()})

    def replace(self, **sections: dict):
        """A copy with some fields changed: `cfg.replace(train={"max_steps": 100})` (validated again)."""
        known = self.sections()
        new = {}
        for name, changes in sections.items():
            if name not in known:
                raise ConfigError(f"{name}: unknown config section; known: {', '.join(known)}")
            new[name] = dataclasses.replace(getattr(self, name), **changes)
        return dataclasses.replace(cast(Any, self), **new)

    def to_toml(self) -> str:
        """The config as TOML, one table per section (None values are omitted: they mean 'default')."""
        lines = []
        for name, values in self.to_dict().items():
            lines.append(f"[{name}]")
            for k, v in values.items():
                if v is None or v == {}:
                    continue
                lines.append(f"{k} = {toml_value(v)}")
            lines.append("")
        return "\n".join(lines)

    @classmethod
    def describe(cls) -> str:
        """Help text for every config field, by section."""
        out = []
        for name, section in cls.sections().items():
            out.append(f"[{name}]")
            for fname, f in section.__dataclass_fields__.items():
                default = f.default if f.default is not dataclasses.MISSING else None
                if isinstance(default, tuple) and len(default) > 4:
                    default = f"{len(default)} values {default[0]:g} … {default[-1]:g}"
                out.append(f"  {name}.{fname} (default {default}): {f.metadata['help']}")
        return "\n".join(out)
