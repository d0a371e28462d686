"""Config helpers shared by every generator: attrs validators and config files.

Every validator raises :class:`ConfigError` with one line that names the field, the value
and what is allowed, so a bad config fails at construction and the CLI prints that line.
:func:`load_config` reads a YAML or JSON file into the same attrs class, naming the file
(and the key) when something is wrong.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, TypeVar

import attrs

from .errors import DatacoreError

T = TypeVar("T")
Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


class ConfigError(DatacoreError):
    """A config value that is not allowed; the message names the field, the value and what is allowed."""


def _name(inst: Any, attr: attrs.Attribute[Any]) -> str:
    return f"{type(inst).__name__}.{attr.name}"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def integer(lo: int | None = None, hi: int | None = None) -> Validator:
    """An int (not a bool) in ``[lo, hi]`` (either bound optional)."""

    def check(inst: Any, attr: attrs.Attribute[Any], v: Any) -> None:
        if not _is_int(v) or (lo is not None and v < lo) or (hi is not None and v > hi):
            raise ConfigError(f"{_name(inst, attr)} = {v!r}: expected an integer {_range(lo, hi)}")

    return check


def number(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False) -> Validator:
    """A finite int or float in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``)."""

    def check(inst: Any, attr: attrs.Attribute[Any], v: Any) -> None:
        bad = not _is_number(v) or (hi is not None and v > hi)
        if lo is not None and _is_number(v):
            bad = bad or (v <= lo if lo_open else v < lo)
        if bad:
            rng = _range(lo, hi).replace(">=", ">") if lo_open else _range(lo, hi)
            raise ConfigError(f"{_name(inst, attr)} = {v!r}: expected a finite number {rng}")

    return check


def one_of(allowed: Collection[Any]) -> Validator:
    """One of ``allowed``."""

    def check(inst: Any, attr: attrs.Attribute[Any], v: Any) -> None:
        if v not in allowed:
            raise ConfigError(f"{_name(inst, attr)} = {v!r}: expected one of {', '.join(map(repr, allowed))}")

    return check


def of_type(*types: type) -> Validator:
    """An instance of one of ``types`` (bool is not accepted as an int)."""

    def check(inst: Any, attr: attrs.Attribute[Any], v: Any) -> None:
        if isinstance(v, bool) and bool not in types:
            ok = False
        else:
            ok = isinstance(v, types)
        if not ok:
            raise ConfigError(f"{_name(inst, attr)} = {v!r}: expected {' or '.join(t.__name__ for t in types)}")

    return check


def _range(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"in [{lo}, {hi}]"
    if lo is not None:
        return f">= {lo}"
    if hi is not None:
        return f"<= {hi}"
    return ""


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML or JSON mapping; one :class:`ConfigError` line naming the file (and line) on failure."""
    import yaml

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{p}: {e.strerror}") from None
    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        raise ConfigError(f"{where}: not valid YAML/JSON ({getattr(e, 'problem', None) or e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of field names to values, got {type(data).__name__}")
    return data


def load_config(cls: type[T], path: str | os.PathLike[str], **overrides: Any) -> T:
    """Build the attrs class ``cls`` from a YAML/JSON file (``overrides`` win); errors name the file."""
    data = {**read_config_file(path), **overrides}
    fields = {f.name for f in attrs.fields(cls) if f.init}  # type: ignore[misc, arg-type]
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ConfigError(f"{path}: unknown field {unknown[0]!r} for {cls.__name__} (allowed: {', '.join(sorted(fields))})")
    try:
        return cls(**data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{path}: {e}") from None
