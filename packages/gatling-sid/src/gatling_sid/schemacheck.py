"""Compiled, cached JSON Schema validators: closures for the verdict, ``jsonschema`` for the message.

The registry's schemas use a small part of JSON Schema (draft-07): ``type``, ``enum``,
``properties``/``required``/``additionalProperties``/``minProperties``, string length,
``pattern`` and ``format`` (date, email), numeric bounds, ``items``/``minItems``/``maxItems``.
:func:`compiled` turns such a schema into nested Python closures once (microseconds, no code
generation), which then check an instance far faster than ``jsonschema``'s interpreter.  A
schema using any other keyword is checked by ``jsonschema`` itself.  Failures are explained by
``jsonschema`` (path + message), and tests check that both engines agree on valid and
corrupted instances.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable
from typing import Any

import jsonschema
import orjson

__all__ = ["CompiledSchema", "compiled", "ecma_regex"]

_JS_FORMATS = jsonschema.FormatChecker(formats=("date", "email"))
_KNOWN = {
    "type",
    "enum",
    "properties",
    "required",
    "additionalProperties",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "items",
    "minItems",
    "maxItems",
    "description",
    "title",
    "$schema",
    "default",
}
Check = Callable[[Any], bool]


def _unknown_keys(s: dict[str, Any]) -> bool:
    """True if ``s`` uses a keyword the compiled checks do not implement (``x-...`` annotations are ignored)."""
    return any(k not in _KNOWN and not (type(k) is str and k.startswith("x-")) for k in s)


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _ecma_to_python(pattern: str) -> str:
    """Rewrite an ECMA-262 pattern (JSON Schema's dialect) so Python's ``re`` means the same by it.

    * ``$`` (outside a class) matches only at the very end in ECMA-262 (no ``m`` flag); Python's
      ``$`` also matches before a final newline, so it becomes ``\\Z``.
    * ``\\d`` / ``\\w`` are ASCII in ECMA-262; Python's match any Unicode digit / letter.
    """
    out: list[str] = []
    i, in_class, n = 0, False, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt == "d":
                out.append("0-9" if in_class else "[0-9]")
            elif nxt == "w":
                out.append("A-Za-z0-9_" if in_class else "[A-Za-z0-9_]")
            elif nxt == "D" and not in_class:
                out.append("[^0-9]")
            elif nxt == "W" and not in_class:
                out.append("[^A-Za-z0-9_]")
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
        elif ch == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "^":
                out.append("[^")
                i += 2
                if pattern[i : i + 1] == "]":  # a leading ] is literal in Python, an empty class in ECMA: rare; keep
                    out.append("\\]")
                    i += 1
                continue
        elif ch == "$":
            out.append(r"\Z")
            i += 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


_rx_cache: dict[str, re.Pattern[str]] = {}


def ecma_regex(pattern: str) -> re.Pattern[str]:
    """The compiled Python regex that matches what ``pattern`` matches under ECMA-262 (cached)."""
    rx = _rx_cache.get(pattern)
    if rx is None:
        rx = _rx_cache[pattern] = re.compile(_ecma_to_python(pattern))
    return rx


def _ecma_pattern(validator: Any, patrn: str, instance: Any, schema: Any) -> Any:
    if validator.is_type(instance, "string") and ecma_regex(patrn).search(instance) is None:
        yield jsonschema.ValidationError(f"{instance!r} does not match {patrn!r}")


def _strict_date(checker: Any, instance: Any) -> bool:
    return not isinstance(instance, str) or _is_date(instance)


# jsonschema with JSON Schema's own regex dialect (its default uses Python's ``re`` as is).
EcmaValidator = jsonschema.validators.extend(jsonschema.Draft7Validator, {"pattern": _ecma_pattern})
_JS_FORMATS.checks("date")(lambda x: _strict_date(None, x))


def _is_date(s: str) -> bool:
    """RFC 3339 full-date: ``YYYY-MM-DD`` and a real day (``fromisoformat`` alone also takes ``20240101``)."""
    if _DATE.fullmatch(s) is None:
        return False
    try:
        _dt.date.fromisoformat(s)
    except ValueError:
        return False
    return True


_TYPES: dict[str, Check] = {
    "object": lambda x: type(x) is dict,
    "array": lambda x: type(x) is list,
    "string": lambda x: type(x) is str,
    "boolean": lambda x: type(x) is bool,
    "null": lambda x: x is None,
    "number": lambda x: type(x) in (int, float),
    # jsonschema counts 3.0 as an integer; so do we
    "integer": lambda x: type(x) is int or (type(x) is float and x.is_integer()),
}


class _Unsupported(Exception):
    pass


def _bound_check(op: Callable[[Any, Any], bool], bound: Any) -> Check:
    return lambda x: type(x) not in (int, float) or op(x, bound)


def _compile(s: Any) -> Check:
    if s is True or s == {}:
        return lambda x: True
    if s is False:
        return lambda x: False
    if not isinstance(s, dict) or _unknown_keys(s):
        raise _Unsupported
    checks: list[Check] = []
    t = s.get("type")
    scalar_only = t in ("string", "number", "integer", "boolean")
    if "enum" in s:
        options = s["enum"]
        if all(type(o) is str for o in options):
            opts = frozenset(options)
            checks.append(lambda x: type(x) is str and x in opts)
        else:  # 1 == True in Python but not in JSON Schema; compare type and value
            checks.append(lambda x: any(type(x) is type(o) and x == o for o in options))
    if t is not None and not (t == "string" and "enum" in s and checks):
        if isinstance(t, list):
            fs = [_TYPES[x] for x in t]
            checks.append(lambda x: any(f(x) for f in fs))
        elif t == "string":
            lo, hi = s.get("minLength", 0), s.get("maxLength")
            rx = ecma_regex(s["pattern"]).search if "pattern" in s else None
            fmt = {"date": _is_date, "email": lambda v: "@" in v}.get(s.get("format", ""))

            def string(x: Any) -> bool:
                if type(x) is not str or len(x) < lo or (hi is not None and len(x) > hi):
                    return False
                if rx is not None and rx(x) is None:
                    return False
                return fmt is None or fmt(x)

            plain = type(lo) is int and lo <= 0 and fmt is None
            if plain and hi is None and rx is not None:  # the common cases, with fewer steps (same verdicts)
                rxs = rx
                checks.append(lambda x: type(x) is str and rxs(x) is not None)
            elif plain and rx is None and hi is not None:
                hi_: int = hi
                checks.append(lambda x: type(x) is str and len(x) <= hi_)
            elif plain and rx is None and hi is None:
                checks.append(_TYPES["string"])
            else:
                checks.append(string)
        elif t in ("number", "integer"):
            base = _TYPES[t]
            mn, mx = s.get("minimum"), s.get("maximum")
            xmn, xmx = s.get("exclusiveMinimum"), s.get("exclusiveMaximum")

            def number(x: Any) -> bool:
                if not base(x):
                    return False
                return (
                    (mn is None or x >= mn) and (mx is None or x <= mx) and (xmn is None or x > xmn) and (xmx is None or x < xmx)
                )

            checks.append(number)
        else:
            checks.append(_TYPES[t])
    is_str = lambda x: type(x) is str  # noqa: E731
    if not scalar_only or t == "boolean":
        if "minLength" in s:
            min_len: int = s["minLength"]
            checks.append(lambda x: not is_str(x) or len(x) >= min_len)
        if "maxLength" in s:
            max_len: int = s["maxLength"]
            checks.append(lambda x: not is_str(x) or len(x) <= max_len)
        if "pattern" in s:
            rx2 = ecma_regex(s["pattern"])
            checks.append(lambda x: not is_str(x) or rx2.search(x) is not None)
        if s.get("format") == "date":
            checks.append(lambda x: not is_str(x) or _is_date(x))
        elif s.get("format") == "email":
            checks.append(lambda x: not is_str(x) or "@" in x)
        ops: tuple[tuple[str, Callable[[Any, Any], bool]], ...] = (
            ("minimum", lambda a, b: a >= b),
            ("maximum", lambda a, b: a <= b),
            ("exclusiveMinimum", lambda a, b: a > b),
            ("exclusiveMaximum", lambda a, b: a < b),
        )
        for key, op in ops:
            if key in s:
                checks.append(_bound_check(op, s[key]))
    elif "enum" in s and t == "string":
        # enum already pins the value; length/pattern/format still apply
        lo, hi = s.get("minLength", 0), s.get("maxLength")
        rx3 = ecma_regex(s["pattern"]).search if "pattern" in s else None
        if lo or hi is not None or rx3 is not None or "format" in s:
            fmt2 = {"date": _is_date, "email": lambda v: "@" in v}.get(s.get("format", ""))
            checks.append(
                lambda x: (
                    len(x) >= lo
                    and (hi is None or len(x) <= hi)
                    and (rx3 is None or rx3(x) is not None)
                    and (fmt2 is None or fmt2(x))
                )
            )
    if "properties" in s or "required" in s or "additionalProperties" in s or "minProperties" in s or "maxProperties" in s:
        props = {k: _compile(v) for k, v in s.get("properties", {}).items()}
        req = tuple(s.get("required", ()))
        addl = s.get("additionalProperties", True)
        extra: Check | None = None if addl is True else _compile(addl)
        mn, mx = s.get("minProperties", 0), s.get("maxProperties")

        non_dict = True  # the verdict on a non-object (False once merged with a "type: object" check)

        def obj(x: Any) -> bool:
            if type(x) is not dict:
                return non_dict
            if len(x) < mn or (mx is not None and len(x) > mx):
                return False
            for r in req:
                if r not in x:
                    return False
            for k, v in x.items():
                f = props.get(k)
                if f is not None:
                    if not f(v):
                        return False
                elif extra is not None and not extra(v):
                    return False
            return True

        if t == "object" and checks and checks[-1] is _TYPES["object"]:  # "type: object" + properties: one step
            checks[-1] = obj
            non_dict = False
        else:
            checks.append(obj)
    if "items" in s or "minItems" in s or "maxItems" in s:
        if isinstance(s.get("items", {}), list):
            raise _Unsupported
        item = _compile(s.get("items", {}))
        lo, hi = s.get("minItems", 0), s.get("maxItems")

        def arr(x: Any) -> bool:
            if type(x) is not list:
                return True
            if len(x) < lo or (hi is not None and len(x) > hi):
                return False
            return all(item(v) for v in x)

        checks.append(arr)
    if not checks:
        return lambda x: True
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        f1, f2 = checks
        return lambda x: f1(x) and f2(x)
    return lambda x: all(f(x) for f in checks)


class CompiledSchema:
    """One schema: ``is_valid(x)`` (fast) and ``first_error(x)`` (None or ``"path: message"``)."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self._slow: Any = None
        try:
            self._fast: Check | None = _compile(schema)
        except _Unsupported:
            self._fast = None

    def _jsonschema(self) -> Any:
        if self._slow is None:
            self._slow = EcmaValidator(self.schema, format_checker=_JS_FORMATS)
        return self._slow

    def is_valid(self, instance: Any) -> bool:
        """True if ``instance`` satisfies the schema."""
        if self._fast is not None:
            return self._fast(instance)
        return bool(self._jsonschema().is_valid(instance))

    def first_error(self, instance: Any) -> str | None:
        """None if valid, else the first error (by path) as ``"path: message"``."""
        fast = self._fast
        if fast(instance) if fast is not None else self.is_valid(instance):
            return None
        errs = sorted(self._jsonschema().iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
        if not errs:  # the engines disagree: keep the compiled verdict, say so
            return "(root): rejected by the compiled check (jsonschema accepts it)"
        e = errs[0]
        where = "/".join(str(p) for p in e.absolute_path) or "(root)"
        return f"{where}: {e.message[:200]}"


_cache: dict[bytes, CompiledSchema] = {}


def compiled(schema: dict[str, Any]) -> CompiledSchema:
    """The cached :class:`CompiledSchema` of ``schema`` (keyed by its canonical JSON)."""
    key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    c = _cache.get(key)
    if c is None:
        c = _cache[key] = CompiledSchema(schema)
    return c
