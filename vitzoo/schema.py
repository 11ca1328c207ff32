"""One validation path for every config: model configs, training recipes, ``--set`` overrides and registry names.

Configs are dataclasses whose annotations are the schema. :func:`build` makes one from a (nested) mapping and
:func:`replace` copies one with changed fields; both check every key (unknown keys raise :class:`ConfigError`
with the closest known names), every value against its annotation (``int``, ``float``, ``bool``, ``str``,
``Literal[...]`` choices, ``X | None``, fixed-length tuples, mappings, nested dataclasses), then call the
dataclass's own ``validate()`` for cross-field rules. Lossless conversions are made (int -> float, list ->
tuple, ``"1e-3"`` -> float: YAML 1.1 reads ``1e-3`` as a string). :func:`did_you_mean` is the one
close-match helper (the model registry uses it too); :func:`check_range` and :func:`check_min_max` are the one
range check (configs, data options, method options, loss arguments).

Why not OmegaConf or pydantic (both tried on these dataclasses, 2026-12): OmegaConf 2.4 structured configs take
every annotation used here and also suggest a close key, and would replace about 100 lines of this module, but
they add two runtime dependencies (omegaconf, antlr4) and their errors span several lines with the dotted key on
a later one, so they would still need wrapping for the CLI's one-line errors. pydantic dataclasses validate
the same types but report an unknown key as "Unexpected keyword argument" with no suggestion, and print a
multi-line report with a documentation link. Neither made the result clearer, so the schema stays here.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Iterable
from typing import Any

import yaml

from vitzoo.errors import VitzooError


class ConfigError(VitzooError, ValueError, TypeError):
    """A config that does not fit its schema: unknown key, wrong type, bad choice or out-of-range value.

    A ``ValueError`` (a bad value) and a ``TypeError`` (a bad keyword), so either ``except`` catches it.
    """


def did_you_mean(name: str, known: Iterable[str], *, prefix: str = "", cutoff: float = 0.5) -> str:
    """`` (did you mean a, b?)`` for an unknown ``name`` among ``known`` (each shown with ``prefix``).

    When nothing is close, the known names are listed (up to 30) instead.
    """
    known = sorted({str(k) for k in known})
    close = difflib.get_close_matches(str(name), known, n=3, cutoff=cutoff)
    if close:
        return f" (did you mean {', '.join(prefix + c for c in close)}?)"
    shown = ", ".join(prefix + k for k in known[:30])
    return f" (known: {shown}{', ...' if len(known) > 30 else ''})"


def check_choice(key: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices``, else :class:`ConfigError` naming the choices and the closest one."""
    choices = tuple(choices)
    if value in choices:
        return value
    hint = did_you_mean(str(value), [str(c) for c in choices]) if isinstance(value, str) else ""
    if hint.startswith(" (known"):
        hint = ""
    raise ConfigError(f"{key}={value!r}; expected one of {', '.join(map(repr, choices))}{hint}")


def range_text(
    *, low: float | None = None, high: float | None = None, low_open: bool = False, high_open: bool = False
) -> str:
    """The range in words: ``> 0``, ``>= 0``, ``<= 1``, ``in [0, 1)``."""
    if high is None:
        return f"{'>' if low_open else '>='} {low}"
    if low is None:
        return f"{'<' if high_open else '<='} {high}"
    return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"


def check_range(
    key: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    optional: bool = False,
    error: type[Exception] = ConfigError,
) -> Any:
    """``value`` if ``low <(=) value <(=) high`` (``_open``: strict), else ``error`` in one line:
    ``"{key} must be {range}, got {value}"``. NaN is out of every range; ``None`` passes when ``optional``."""
    if value is None and optional:
        return value
    try:
        above = low is None or (value > low if low_open else value >= low)
        below = high is None or (value < high if high_open else value <= high)
    except TypeError:  # None or a string where a number belongs
        above = below = False
    if not (above and below):  # also catches NaN
        wanted = range_text(low=low, high=high, low_open=low_open, high_open=high_open)
        raise error(f"{key} must be {wanted}, got {value}")
    return value


def check_min_max(
    key: str, value: Any, *, upper: float | None = None, meaning: str = "", error: type[Exception] = ConfigError
) -> tuple[float, float]:
    """A ``(min, max)`` pair with ``0 < min <= max`` (``<= upper`` when given), as floats; else ``error`` in one
    line: ``"{key}={value} must be (min, max) with 0 < min <= max <= {upper} ({meaning})"``."""
    bound = "" if upper is None else f" <= {upper:g}"
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        low = high = math.nan
    if not (0 < low <= high < math.inf and (upper is None or high <= upper)):
        shown = list(value) if isinstance(value, tuple | list) else value
        about = f" ({meaning})" if meaning else ""
        raise error(f"{key}={shown!r} must be (min, max) with 0 < min <= max{bound}{about}")
    return low, high


def type_name(tp: Any) -> str:
    """A readable name of an annotation (``int | None``, ``Literal['a', 'b']``)."""
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert where lossless; raises :class:`ConfigError`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        for option in (o for o in options if o is not type(None)):
            try:
                return coerce(value, option, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: {value!r} is not a valid {type_name(tp)}")
    if origin is typing.Literal:
        return check_choice(key, value, typing.get_args(tp))
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return value if isinstance(value, tp) else build(tp, value, f"{key}.")
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            if not isinstance(value, list | tuple):
                raise ConfigError(f"{key}: expected a list, got {value!r}")
            return tuple(coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if not isinstance(value, list | tuple) or len(value) != len(args):
            raise ConfigError(f"{key}: expected a list of {len(args)} values, got {value!r}")
        return tuple(coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int | str | float):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
        if not number.is_integer():
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return int(number)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise TypeError(f"{key}: unsupported annotation {tp!r}")  # a programming error in a config class


def _fields(cls: type) -> tuple[list[str], dict[str, Any]]:
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    return names, typing.get_type_hints(cls)


def _validated(obj: Any) -> Any:
    validate = getattr(obj, "validate", None)
    if validate is not None:
        try:
            validate()
        except ConfigError:
            raise
        except ValueError as exc:  # validate() of a config class may raise plain ValueError
            raise ConfigError(str(exc)) from None
    return obj


def build(cls: type, data: dict[str, Any] | None, prefix: str = "", *, validate: bool = False) -> Any:
    """An instance of the dataclass ``cls`` from a (nested) mapping, every key and value checked.

    ``prefix`` (e.g. ``"train."``) is prepended to key names in errors. With ``validate`` the instance's
    ``validate()`` runs too (nested dataclasses are validated by their parent's ``validate``).
    """
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'the config'}: expected a mapping, got {data!r}")
    names, hints = _fields(cls)
    values = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(f"unknown config key {dotted!r}{did_you_mean(str(key), names, prefix=prefix)}")
        values[key] = coerce(value, hints[key], dotted)
    obj = cls(**values)
    return _validated(obj) if validate else obj


def replace(cfg: Any, *, prefix: str = "", **changes: Any) -> Any:
    """A validated copy of the dataclass ``cfg`` with ``changes`` (names and values checked like :func:`build`)."""
    names, hints = _fields(type(cfg))
    unknown = [k for k in changes if k not in names]
    if unknown:
        detail = "; ".join(f"{prefix}{k!r}{did_you_mean(k, names, prefix=prefix)}" for k in unknown)
        raise ConfigError(f"{type(cfg).__name__} has no option {detail}")
    values = {k: coerce(v, hints[k], f"{prefix}{k}") for k, v in changes.items()}
    return _validated(dataclasses.replace(cfg, **values))


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain nested dict (tuples as lists) of a config dataclass, ready for YAML or JSON."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return {k: plain(v) for k, v in dataclasses.asdict(cfg).items()}


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.lr=3e-4"`` -> ``(["train", "lr"], "3e-4")``; the value is parsed as a YAML scalar or list."""
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set: malformed key {key!r} in {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: cannot parse value {raw!r}: {exc}") from None
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str], cls: type) -> dict[str, Any]:
    """Apply ``key=value`` overrides (dotted keys) to a nested mapping; unknown keys raise with close matches.

    Keys are checked against the dataclass ``cls`` as they are walked, so ``train.lrr=1`` fails here with
    "did you mean train.lr?". Below a free mapping field (``model.options``) any key is accepted.
    """
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for text in overrides:
        parts, value = parse_override(text)
        node, node_cls = data, cls
        for depth, part in enumerate(parts):
            dotted = ".".join(parts[: depth + 1])
            last = depth == len(parts) - 1
            if node_cls is not None:
                names, hints = _fields(node_cls)
                if part not in names:
                    parent = ".".join(parts[:depth])
                    hint = did_you_mean(part, names, prefix=parent + "." if parent else "")
                    raise ConfigError(f"unknown config key {dotted!r}{hint}")
                tp = hints[part]
                next_cls = tp if dataclasses.is_dataclass(tp) else None
                is_mapping = next_cls is not None or tp is dict or typing.get_origin(tp) is dict
            else:
                next_cls, is_mapping = None, True
            if last:
                node[part] = value
                break
            if not is_mapping:
                raise ConfigError(f"{dotted!r} is a value, it has no sub-key {parts[depth + 1]!r}")
            child = node.get(part)
            node[part] = dict(child) if isinstance(child, dict) else {}
            node, node_cls = node[part], next_cls
    return data
