"""Compact operation specs -> tools and state-dependent policy rules.

Besides the twelve planner tools of its YAML file, a domain may list *operations* in
``<registry>/ops/*.yaml`` (a mapping ``domain -> [op, ...]``).  An op is a few lines of data:

```yaml
- {name: schedule_standing_order, kind: write, target: entity,
   in: "amount:money frequency:enum(weekly|monthly) end_date?:date payee:{name:str(2,60) iban:pat(^[A-Z]{2}[0-9]{14}$)}",
   out: "standing_order_id:id(SOR,8) next_run:date",
   errors: [closed], guard: {tier: preferred, limit: 3/month, window: [8, 20], owner: true}}
```

Field language (space separated at each level): ``name[?]:type`` where ``?`` marks an optional
field and a type is ``str(lo,hi)``, ``int(lo,hi)``, ``num(lo,hi)@unit``, ``money`` (a number
with the domain's currency), ``date``, ``datetime``, ``email``, ``uri``, ``bool``,
``enum(a|b|c)``, ``pat(regex)``, ``id(PFX,n)`` (``^PFX-[0-9]{n}$``), ``subject_id`` /
``entity_id`` (the domain's id formats), ``[type]`` or ``[type](lo,hi)`` (an array) and
``{fields}`` (a nested object).  ``page: true`` adds ``page_size``/``page_token`` inputs and a
``next_page_token`` output; ``errors`` adds an ``error`` object whose ``code`` is one of them.

``target`` says what the op acts on (``entity``: it takes the domain's record id; ``subject``: the
subject id); write, destructive and transfer ops also take the ``verification_token`` of an
identity check.  ``guard`` becomes policy rules checked against the domain's state by
:mod:`gatling_sid.state`: ``tier`` (minimum subject tier), ``limit`` (``N/day|week|month``
per subject), ``window`` (hours ``[from, to)`` of the request's local time), ``owner`` (the
record belongs to the verified subject) and ``terminal`` (statuses the record must not be in).
"""

from __future__ import annotations

import re
from typing import Any

from .errors import RegistryError

__all__ = ["GUARD_TYPES", "expand_ops", "parse_fields"]

GUARD_TYPES = ("state_tier", "state_period_limit", "state_time_window", "state_ownership", "state_terminal")
_OP_KINDS = ("read", "write", "destructive", "transfer", "notify")
_PERIODS = ("day", "week", "month")
_SCALAR = re.compile(r"(str|int|num|enum|pat|id)\(")


class _Parser:
    """Recursive descent over the field language."""

    def __init__(self, text: str, where: str, ids: dict[str, str], currencies: list[str]) -> None:
        self.s, self.i, self.where, self.ids, self.cur = text, 0, where, ids, currencies

    def fail(self, why: str) -> RegistryError:
        return RegistryError(f"{self.where}: {why} at character {self.i + 1} of {self.s!r}")

    def ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i] == " ":
            self.i += 1

    def fields(self, close: str = "") -> dict[str, Any]:
        props: dict[str, Any] = {}
        req: list[str] = []
        while True:
            self.ws()
            if self.i >= len(self.s) or (close and self.s[self.i] == close):
                break
            m = re.compile(r"([a-z][a-z0-9_]*)(\??):").match(self.s, self.i)
            if m is None:
                raise self.fail("expected 'name:type' or 'name?:type'")
            self.i = m.end()
            if m.group(1) in props:
                raise self.fail(f"field {m.group(1)!r} given twice")
            props[m.group(1)] = self.type_()
            if not m.group(2):
                req.append(m.group(1))
        out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
        if req:
            out["required"] = req
        return out

    def args(self) -> str:
        """The text up to the matching ``)`` (regexes may hold parentheses)."""
        depth, start = 1, self.i
        while self.i < len(self.s):
            ch = self.s[self.i]
            if ch == "\\":
                self.i += 2
                continue
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0:
                self.i += 1
                return self.s[start : self.i - 1]
            self.i += 1
        raise self.fail("unclosed '('")

    def bounds(self, raw: str, kind: type) -> tuple[Any, Any]:
        try:
            lo, hi = (kind(x) for x in raw.split(","))
        except ValueError:
            raise self.fail(f"expected two numbers 'lo,hi', got {raw!r}") from None
        if hi < lo:
            raise self.fail(f"bounds {raw!r} have max < min")
        return lo, hi

    def type_(self) -> dict[str, Any]:
        s = self.s
        if s.startswith("[", self.i):
            self.i += 1
            items = self.type_()
            if not s.startswith("]", self.i):
                raise self.fail("expected ']'")
            self.i += 1
            arr: dict[str, Any] = {"type": "array", "items": items, "minItems": 1, "maxItems": 5}
            if s.startswith("(", self.i):
                self.i += 1
                arr["minItems"], arr["maxItems"] = self.bounds(self.args(), int)
            return arr
        if s.startswith("{", self.i):
            self.i += 1
            obj = self.fields("}")
            if not s.startswith("}", self.i):
                raise self.fail("expected '}'")
            self.i += 1
            return obj
        for word, schema in (
            ("money", {"type": "number", "minimum": 0, "maximum": 1000000, "description": "amount in the record's currency"}),
            ("datetime", {"type": "string", "format": "date-time"}),
            ("date", {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}),
            ("email", {"type": "string", "format": "email"}),
            ("uri", {"type": "string", "format": "uri"}),
            ("bool", {"type": "boolean"}),
            ("subject_id", {"type": "string", "pattern": self.ids["subject"]}),
            ("entity_id", {"type": "string", "pattern": self.ids["entity"]}),
            ("currency", {"type": "string", "enum": list(self.cur)}),
        ):
            if s.startswith(word, self.i) and not s[self.i + len(word) : self.i + len(word) + 1].isalnum():
                self.i += len(word)
                return dict(schema)
        m = _SCALAR.match(s, self.i)
        if m is None:
            raise self.fail("unknown type")
        self.i = m.end()
        kind, raw = m.group(1), self.args()
        out = self.scalar(kind, raw)
        if s.startswith("@", self.i):
            m2 = re.compile(r"@([A-Za-z%/_0-9]+)").match(s, self.i)
            if m2 is None:
                raise self.fail("expected a unit after '@'")
            self.i = m2.end()
            out["description"] = f"in {m2.group(1)}"
            out["x-unit"] = m2.group(1)
        return out

    def scalar(self, kind: str, raw: str) -> dict[str, Any]:
        if kind == "str":
            lo, hi = self.bounds(raw, int)
            return {"type": "string", "minLength": lo, "maxLength": hi}
        if kind == "int":
            lo, hi = self.bounds(raw, int)
            return {"type": "integer", "minimum": lo, "maximum": hi}
        if kind == "num":
            lo, hi = self.bounds(raw, float)
            return {"type": "number", "minimum": lo, "maximum": hi}
        if kind == "enum":
            vals = [v for v in raw.split("|") if v]
            if not vals or len(set(vals)) != len(vals):
                raise self.fail(f"enum({raw}) needs distinct values separated by '|'")
            return {"type": "string", "enum": vals}
        if kind == "pat":
            try:
                re.compile(raw)
            except re.error as e:
                raise self.fail(f"pattern {raw!r} is not a regular expression ({e})") from None
            return {"type": "string", "pattern": raw}
        parts = raw.split(",")
        if len(parts) != 2 or not re.fullmatch(r"[A-Z]{2,5}", parts[0]) or not parts[1].isdigit():
            raise self.fail(f"id({raw}) needs a 2-5 letter prefix and a digit count, e.g. id(SOR,8)")
        return {"type": "string", "pattern": f"^{parts[0]}-[0-9]{{{int(parts[1])}}}$"}


def parse_fields(text: str, where: str, ids: dict[str, str], currencies: list[str]) -> dict[str, Any]:
    """The object schema a field-language string describes (raises RegistryError naming ``where``)."""
    p = _Parser(text, where, ids, currencies)
    out = p.fields()
    if p.i != len(text):
        raise p.fail("unexpected text")
    return out


def _guard_rules(op: dict[str, Any], tool: str, where: str) -> list[dict[str, Any]]:
    g = op.get("guard") or {}
    if not isinstance(g, dict):
        raise RegistryError(f"{where}: guard must be a mapping")
    rules: list[dict[str, Any]] = []
    short = op["name"]
    for key, val in g.items():
        base = {"id": f"{short}.{key}", "applies_to": [tool]}
        if key == "tier":
            if not isinstance(val, str):
                raise RegistryError(f"{where}: guard.tier must be a tier name")
            rules.append({**base, "type": "state_tier", "min_tier": val, "description": f"{short} needs tier {val} or above"})
        elif key == "limit":
            m = re.fullmatch(r"([0-9]+)/(day|week|month)", str(val))
            if m is None:
                raise RegistryError(f"{where}: guard.limit must look like '3/month' (got {val!r})")
            rules.append(
                {
                    **base,
                    "type": "state_period_limit",
                    "max": int(m.group(1)),
                    "period": m.group(2),
                    "description": f"at most {m.group(1)} {short} per subject per {m.group(2)}",
                }
            )
        elif key == "window":
            if not (isinstance(val, list) and len(val) == 2 and all(isinstance(h, int) and 0 <= h <= 24 for h in val)):
                raise RegistryError(f"{where}: guard.window must be [from_hour, to_hour] (got {val!r})")
            rules.append(
                {
                    **base,
                    "type": "state_time_window",
                    "hours": list(val),
                    "description": f"{short} only between {val[0]}:00 and {val[1]}:00 local time",
                }
            )
        elif key == "owner":
            rules.append({**base, "type": "state_ownership", "description": f"{short} only on records of the verified subject"})
        elif key == "terminal":
            if not (isinstance(val, list) and val and all(isinstance(x, str) for x in val)):
                raise RegistryError(f"{where}: guard.terminal must be a list of statuses")
            rules.append(
                {
                    **base,
                    "type": "state_terminal",
                    "statuses": list(val),
                    "description": f"{short} is refused on a record that is {' or '.join(val)}",
                }
            )
        else:
            raise RegistryError(f"{where}: unknown guard {key!r} (tier, limit, window, owner, terminal)")
    return rules


def expand_ops(
    domain: str, subject: str, entity: str, ops: Any, file: str, ids: dict[str, str], currencies: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(tool entries as in a domain YAML, policy rules) for one domain's op specs."""
    if not isinstance(ops, list):
        raise RegistryError(f"{file}: {domain}: expected a list of operations")
    tools: list[dict[str, Any]] = []
    rules: list[dict[str, Any]] = []
    for i, op in enumerate(ops):
        where = f"{file}: {domain}[{i}]"
        if not isinstance(op, dict) or not isinstance(op.get("name"), str) or not re.fullmatch(r"[a-z][a-z0-9_]*", op["name"]):
            raise RegistryError(f"{where}: expected a mapping with a snake_case 'name'")
        where = f"{file}: {domain}[{i}] ({op['name']})"
        kind = op.get("kind")
        if kind not in _OP_KINDS:
            raise RegistryError(f"{where}: kind {kind!r} is not one of {', '.join(_OP_KINDS)}")
        on = op.get("target", "entity")
        if on not in ("entity", "subject", "none"):
            raise RegistryError(f"{where}: target must be entity, subject or none")
        name = f"{domain}__{op['name']}"
        ins = parse_fields(str(op.get("in", "")), f"{where}: in", ids, currencies)
        outs = parse_fields(str(op.get("out", "")), f"{where}: out", ids, currencies)
        lead: dict[str, Any] = {}
        if on != "none":
            key = f"{entity}_id" if on == "entity" else f"{subject}_id"
            lead[key] = {"type": "string", "pattern": ids[on]}
        if kind in ("write", "destructive", "transfer"):
            lead["verification_token"] = {"type": "string", "pattern": "^tok_[0-9a-f]{16}$"}
        ins["properties"] = {**lead, **ins["properties"]}
        ins["required"] = list(lead) + ins.get("required", [])
        if op.get("page"):
            ins["properties"]["page_size"] = {"type": "integer", "minimum": 1, "maximum": 100}
            ins["properties"]["page_token"] = {"type": "string", "pattern": "^pg_[0-9]{1,6}$"}
            outs["properties"]["next_page_token"] = {"type": "string", "pattern": "^pg_[0-9]{1,6}$"}
        if on == "entity":
            outs["properties"] = {f"{entity}_id": {"type": "string", "pattern": ids["entity"]}, **outs["properties"]}
            outs["required"] = [f"{entity}_id"] + outs.get("required", [])
        errs = op.get("errors") or []
        if errs:
            if not (isinstance(errs, list) and all(isinstance(e, str) and re.fullmatch(r"[a-z_]+", e) for e in errs)):
                raise RegistryError(f"{where}: errors must be a list of snake_case codes")
            codes = sorted({*errs, "not_found"}) if on == "entity" else sorted(set(errs))
            outs["properties"]["error"] = {
                "type": "object",
                "properties": {"code": {"type": "string", "enum": codes}, "message": {"type": "string", "maxLength": 200}},
                "required": ["code", "message"],
                "additionalProperties": False,
            }
            outs.pop("required", None)  # an error reply carries only the error (and the id asked about)
        outs.pop("additionalProperties", None)
        desc = str(op.get("desc") or op["name"].replace("_", " ").capitalize() + f" ({kind} on the {on}).")
        tools.append(
            {
                "name": name,
                "role": op["name"],
                "kind": kind,
                "description": desc,
                "input_schema": ins,
                "output_schema": outs,
                "x-op": {"on": on, "page": bool(op.get("page")), "errors": list(errs)},
            }
        )
        rules += _guard_rules(op, name, where)
    return tools, rules
