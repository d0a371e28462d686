"""Weighted context-free grammars (PCFGs) whose terminals may hold slots.

Grammar text format (the ``grammar:`` section of a recipe)::

    start: ticket
    rules:
      ticket:
        - "<greeting> my {product} stopped working."          # weight 1
        - {text: "I want a refund for my {product}.", weight: 2, set: {intent: refund}}
      greeting: ["Hi,", "Hello team,"]
    slots:
      product: [laptop, phone]                 # uniform
      tone: {values: [calm, angry], weights: [3, 1]}

``<name>`` refers to a non-terminal, ``{name}`` to a slot (``{{``/``}}`` and ``<<``/``>>``
are literal braces).  A sample is one derivation from ``start``: its text, the value of every
slot used (one value per slot per sample, reused if the slot occurs twice) and the constant
fields ``set`` by the productions chosen.  Those are also the output fields, so the JSON
Schema of the output can be derived from the grammar (:meth:`Grammar.derived_schema`).

Loading checks (each a :class:`~routergen.errors.GrammarError` naming the rule and line):
undefined non-terminals and slots, non-terminals unreachable from ``start``, unused slots,
non-terminals with no finite derivation (a left-recursive loop with no way out), and weights
under which the expected derivation is infinite (the branching process is not subcritical).
A recipe's output schema is checked against the grammar too (:meth:`Grammar.check_schema`,
:meth:`Grammar.check_satisfiable`).
"""

from __future__ import annotations

import bisect
import random
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import jsonschema
import numpy as np

from .errors import GrammarError

_TOKEN = re.compile(r"<<|>>|\{\{|\}\}|<([A-Za-z_][\w\-]*)>|\{([A-Za-z_]\w*)\}")
_SPACES = re.compile(r"[ \t]{2,}")
_NAME = re.compile(r"^[A-Za-z_][\w\-]*$")
_SLOT_NAME = re.compile(r"^[A-Za-z_]\w*$")
# In the text between valid tokens: a brace, or something shaped like a <reference>.
_STRAY = re.compile(r"[{}]|<[^<>\n]{0,60}>")
RESERVED_FIELDS = ("id", "meta")
MAX_STEPS = 20_000
#: Records :meth:`Grammar.check_satisfiable` expands before declaring a schema unsatisfiable.
SATISFY_TRIES = 200
WEIGHTINGS = ("grammar", "uniform")

LineOf = Callable[[tuple[Any, ...]], "int | None"]


def _positive(inst: Any, attr: attrs.Attribute, value: float) -> None:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0):
        raise ValueError(f"{attr.name}={value!r}: must be a number > 0")


@attrs.frozen
class Production:
    """One right-hand side: literal text with ``<nonterminal>`` and ``{slot}`` references."""

    text: str
    weight: float = attrs.field(default=1.0, validator=_positive)
    sets: Mapping[str, Any] = attrs.field(factory=dict)
    line: int | None = None

    def parts(self) -> list[tuple[str, str]]:
        """Split into ``("lit", text)``, ``("nt", name)`` and ``("slot", name)`` parts."""
        out: list[tuple[str, str]] = []
        pos = 0
        buf = ""
        for m in _TOKEN.finditer(self.text):
            buf += self.text[pos : m.start()]
            tok = m.group(0)
            if tok in ("<<", ">>", "{{", "}}"):
                buf += tok[0]
            else:
                if buf:
                    out.append(("lit", buf))
                    buf = ""
                out.append(("nt", m.group(1)) if m.group(1) else ("slot", m.group(2)))
            pos = m.end()
        buf += self.text[pos:]
        if buf:
            out.append(("lit", buf))
        return out


@attrs.frozen
class Slot:
    """A slot: the values it may take offline and their weights.

    A dependent slot (``given``) draws from the case of its parent slot's value: ``cases`` maps
    ``str(parent value)`` to ``(values, weights)``; ``values`` is then the union of the cases'
    values (for typing and examples) and ``weights`` are unused.
    """

    name: str
    values: tuple[Any, ...]
    weights: tuple[float, ...]
    line: int | None = None
    seed_file: str | None = None  # the file the values were read from, if any
    given: str | None = None
    cases: tuple[tuple[str, tuple[Any, ...], tuple[float, ...]], ...] = ()


@attrs.frozen
class Derivation:
    """One expansion: template parts (literals and slot names), slots used, fields set."""

    parts: tuple[tuple[str, str], ...]
    slots: tuple[str, ...]
    sets: Mapping[str, Any]

    def template(self) -> str:
        """The template text with ``{slot}`` placeholders."""
        return "".join(p if k == "lit" else "{" + p + "}" for k, p in self.parts)

    def render(self, values: Mapping[str, Any]) -> str:
        """Fill the slots with ``values`` (every slot of the derivation must be present).

        Whitespace is tidied (runs of spaces/tabs collapse to one space, the ends are stripped)
        so that empty productions such as an optional greeting leave no stray blanks.
        """
        text = "".join(p if k == "lit" else _as_text(values[p]) for k, p in self.parts)
        return _SPACES.sub(" ", text).strip()


def _as_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


class DerivationTooLong(Exception):
    """An expansion exceeded :data:`MAX_STEPS` (possible only with critical weights)."""


@attrs.frozen
class Grammar:
    """A checked PCFG with slots.  Build with :func:`grammar_from_dict`."""

    start: str
    rules: Mapping[str, tuple[Production, ...]]
    slots: Mapping[str, Slot]
    source: str = "<grammar>"
    rule_lines: Mapping[str, int | None] = attrs.field(factory=dict)
    _compiled: Any = attrs.field(default=None, init=False, repr=False, eq=False)

    # -- compilation -----------------------------------------------------------------------
    def _compile(self) -> Any:
        if self._compiled is None:
            rules = {}
            for name, prods in self.rules.items():
                plist = [tuple(p.parts()) for p in prods]
                cum_g = list(np.cumsum([p.weight for p in prods]))
                rules[name] = (plist, cum_g, [dict(p.sets) for p in prods])
            slots: dict[str, Any] = {}
            for sl in self.slots.values():
                if sl.given is None:
                    slots[sl.name] = (sl.values, list(np.cumsum(sl.weights)))
                else:
                    slots[sl.name] = (sl.given, {k: (v, list(np.cumsum(w))) for k, v, w in sl.cases})
            object.__setattr__(self, "_compiled", (rules, slots))
        return self._compiled

    # -- expansion -------------------------------------------------------------------------
    def derive(self, rng: random.Random, weighting: str = "grammar") -> Derivation:
        """Expand ``start`` once, choosing productions by weight (or uniformly)."""
        rules, _ = self._compile()
        out: list[tuple[str, str]] = []
        used: dict[str, None] = {}
        sets: dict[str, Any] = {}
        stack: list[tuple[str, str]] = [("nt", self.start)]
        steps = 0
        while stack:
            kind, val = stack.pop()
            if kind == "nt":
                steps += 1
                if steps > MAX_STEPS:
                    raise DerivationTooLong(f"derivation exceeded {MAX_STEPS} expansions")
                plist, cum, psets = rules[val]
                if weighting == "uniform":
                    i = rng.randrange(len(plist))
                else:
                    i = bisect.bisect_right(cum, rng.random() * cum[-1])
                    i = min(i, len(plist) - 1)
                sets.update(psets[i])
                stack.extend(reversed(plist[i]))
            else:
                if kind == "slot":
                    used[val] = None
                if kind == "lit" and out and out[-1][0] == "lit":
                    out[-1] = ("lit", out[-1][1] + val)
                else:
                    out.append((kind, val))
        return Derivation(tuple(out), tuple(used), sets)

    def fill(self, derivation: Derivation, rng: random.Random) -> dict[str, Any]:
        """Choose a value for every slot of ``derivation`` from the slot's value list.

        A dependent slot draws from the case of its parent's value; the parent is drawn first
        (and is part of the sample even when the template does not show it).
        """
        _, slots = self._compile()
        values: dict[str, Any] = {}

        def draw(name: str) -> None:
            if name in values:
                return
            spec = slots[name]
            if isinstance(spec[1], dict):
                parent, cases = spec
                draw(parent)
                vals, cum = cases[str(values[parent])]
            else:
                vals, cum = spec
            i = min(bisect.bisect_right(cum, rng.random() * cum[-1]), len(vals) - 1)
            values[name] = vals[i]

        for name in derivation.slots:
            draw(name)
        return values

    # -- analysis --------------------------------------------------------------------------
    def fields(self) -> dict[str, str]:
        """Output fields the grammar can produce: ``text``, slots and ``set`` fields -> origin."""
        out = {"text": "text"}
        for s in self.slots:
            out[s] = "slot"
        for prods in self.rules.values():
            for p in prods:
                for k in p.sets:
                    out[k] = "set"
        return out

    def always_present(self) -> set[str]:
        """Fields present in every finite derivation (greatest fixpoint over the rules)."""
        universe = set(self.fields())
        must = {name: set(universe) for name in self.rules}
        changed = True
        while changed:
            changed = False
            for name, prods in self.rules.items():
                acc: set[str] | None = None
                for p in prods:
                    have = set(p.sets)
                    for kind, val in p.parts():
                        if kind == "slot":
                            have.add(val)
                        elif kind == "nt":
                            have |= must[val]
                    acc = have if acc is None else acc & have
                acc = acc or set()
                if acc != must[name]:
                    must[name] = acc
                    changed = True
        return must[self.start] | {"text"}

    def branching_factor(self, weighting: str = "grammar") -> float:
        """Spectral radius of the expected-offspring matrix; < 1 means finite expected length."""
        names = list(self.rules)
        idx = {n: i for i, n in enumerate(names)}
        m = np.zeros((len(names), len(names)))
        for n, prods in self.rules.items():
            total = sum(p.weight for p in prods) if weighting == "grammar" else len(prods)
            for p in prods:
                w = (p.weight if weighting == "grammar" else 1.0) / total
                for kind, val in p.parts():
                    if kind == "nt":
                        m[idx[n], idx[val]] += w
        return float(max(abs(np.linalg.eigvals(m)))) if len(names) else 0.0

    def derived_schema(self) -> dict[str, Any]:
        """The JSON Schema of the records this grammar produces (slots typed by their values)."""
        props: dict[str, Any] = {"text": {"type": "string", "minLength": 1}}
        for s in self.slots.values():
            props[s.name] = {"type": _json_type(s.values)}
        set_values: dict[str, list[Any]] = {}
        for prods in self.rules.values():
            for p in prods:
                for k, v in p.sets.items():
                    if v not in set_values.setdefault(k, []):
                        set_values[k].append(v)
        for k, vals in set_values.items():
            props[k] = {"type": _json_type(vals), "enum": vals}
        return {
            "type": "object",
            "properties": props,
            "required": sorted(self.always_present()),
            "additionalProperties": False,
        }

    def check_schema(self, schema: Mapping[str, Any], where: str = "output.schema") -> None:
        """Raise :class:`GrammarError` if no record of this grammar can satisfy ``schema``."""
        fields = self.fields()
        if schema.get("type", "object") != "object":
            raise GrammarError(f"{where}: type must be 'object' for a grammar recipe, got {schema.get('type')!r}")
        props = schema.get("properties", {}) or {}
        present = self.always_present()
        for req in schema.get("required", []) or []:
            if req not in fields:
                raise GrammarError(
                    f"{where}: requires field '{req}' but the grammar never produces it "
                    f"(it produces: {', '.join(sorted(fields))})"
                )
            if req not in present:
                raise GrammarError(f"{where}: requires field '{req}' but only some derivations of the grammar set it")
        if schema.get("additionalProperties") is False:
            extra = sorted(set(fields) - set(props))
            if extra:
                raise GrammarError(f"{where}: additionalProperties is false but the grammar produces field(s) {', '.join(extra)}")
        text_schema = props.get("text")
        if isinstance(text_schema, Mapping) and "type" in text_schema:
            allowed = text_schema["type"] if isinstance(text_schema["type"], list) else [text_schema["type"]]
            if "string" not in allowed:
                raise GrammarError(
                    f"{where}.properties.text: type {text_schema['type']!r} cannot hold the grammar's text (a string)"
                )
        for name, sub in props.items():
            origin = fields.get(name)
            if origin == "slot":
                slot = self.slots[name]
                bad = [v for v in slot.values if not jsonschema.Draft202012Validator(sub).is_valid(v)]
                if bad:
                    raise GrammarError(
                        f"{self.source}:{slot.line or '?'}: grammar.slots.{name}: value {bad[0]!r} does not "
                        f"satisfy {where}.properties.{name} ({_brief(sub)})"
                    )
            elif origin == "set":
                for rule, prods in self.rules.items():
                    for p in prods:
                        if name in p.sets and not jsonschema.Draft202012Validator(sub).is_valid(p.sets[name]):
                            raise GrammarError(
                                f"{self.source}:{p.line or '?'}: grammar.rules.{rule}: sets {name}={p.sets[name]!r}, "
                                f"which does not satisfy {where}.properties.{name} ({_brief(sub)})"
                            )

    def check_satisfiable(self, schema: Mapping[str, Any], where: str = "output.schema", tries: int = SATISFY_TRIES) -> None:
        """Raise :class:`GrammarError` if none of ``tries`` records expanded from the grammar
        (seeded, offline slot values, both weightings) satisfies ``schema``.

        :meth:`check_schema` proves the field-level conflicts; this catches the rest (a text
        ``maxLength`` every derivation exceeds, a ``pattern`` no template matches, ...), which
        would otherwise only show as a run that stalls with every sample failing ``schema``.
        """
        validator = jsonschema.Draft202012Validator(schema)
        rng = random.Random(0)
        first: jsonschema.ValidationError | None = None
        for i in range(tries):
            try:
                d = self.derive(rng, "grammar" if i % 2 == 0 else "uniform")
            except DerivationTooLong:
                continue
            values = self.fill(d, rng)
            record = {"text": d.render(values), **values, **d.sets}
            err = next(iter(validator.iter_errors(record)), None)
            if err is None:
                return
            first = first or err
        if first is not None:
            at = ".".join(str(p) for p in first.absolute_path)
            raise GrammarError(
                f"{where}: none of {tries} records expanded from the grammar satisfies it "
                f"(e.g. {'field ' + at + ': ' if at else ''}{_brief_text(first.message)})"
            )


def _seed_values(spec: Mapping[str, Any], source: str, fail: Callable[..., GrammarError]) -> list[Any]:
    """A slot's values from a seed file or a Hugging Face dataset.

    ``{from: FILE.csv, column: NAME}``, ``{from: FILE.jsonl, field: NAME}``, ``{from: DIR,
    column: NAME[, split: S]}`` (a ``datasets`` dataset saved with ``save_to_disk``) or
    ``{hf: BUILDER, data_files: FILES, column: NAME[, split: S]}`` (``datasets.load_dataset`` of
    local files, e.g. ``hf: json``; offline).  Paths are relative to the recipe's folder.
    Values keep their order, duplicates and empty cells dropped; CSV cells are strings, JSONL and
    dataset values scalars."""
    import csv
    import json
    from pathlib import Path

    base = Path(source).parent if source and not source.startswith("<") else Path.cwd()
    if "hf" in spec or ("from" in spec and isinstance(spec["from"], str) and (base / spec["from"]).is_dir()):
        return _dataset_values(spec, base, fail)
    bad = sorted(set(spec) - {"from", "column", "field"})
    if bad:
        raise fail("unknown key (allowed: from, column for CSV, field for JSONL)", (bad[0],))
    name = spec.get("column", spec.get("field"))
    if not isinstance(spec["from"], str) or not isinstance(name, str):
        raise fail("a seed file slot is {from: FILE.csv, column: NAME} or {from: FILE.jsonl, field: NAME}")
    p = (base / spec["from"]).resolve()
    values: list[Any] = []
    try:
        with open(p, encoding="utf-8", newline="") as f:
            if p.suffix == ".csv":
                reader = csv.DictReader(f)
                if name not in (reader.fieldnames or []):
                    raise fail(f"{p.name} has no column {name!r} (columns: {', '.join(reader.fieldnames or [])})", ("column",))
                values = [row[name] for row in reader]
            elif p.suffix in (".jsonl", ".ndjson"):
                for i, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as e:
                        raise fail(f"{p.name}:{i}: not JSON ({e.msg})") from None
                    v = row.get(name) if isinstance(row, dict) else None
                    if v is not None and not isinstance(v, (str, int, float, bool)):
                        raise fail(f"{p.name}:{i}: field {name!r} is not a scalar", ("field",))
                    values.append(v)
            else:
                raise fail(f"{p.name}: seed files are .csv or .jsonl (or a datasets directory)", ("from",))
    except OSError as e:
        raise fail(f"cannot read seed file {p}: {e.strerror or e}", ("from",)) from None
    out = list(dict.fromkeys(v for v in values if v is not None and v != ""))
    if not out:
        raise fail(f"{p.name}: no values in {name!r}", ("from",))
    return out


def _dataset_values(spec: Mapping[str, Any], base: Any, fail: Callable[..., GrammarError]) -> list[Any]:
    """A slot's values from one column of a Hugging Face dataset on this machine (no network)."""
    import os

    allowed = {"hf", "data_files", "column", "split"} if "hf" in spec else {"from", "column", "split"}
    bad = sorted(set(spec) - allowed)
    if bad:
        raise fail(f"unknown key (allowed: {', '.join(sorted(allowed))})", (bad[0],))
    column, split = spec.get("column"), spec.get("split")
    if not isinstance(column, str):
        raise fail("a dataset slot names its column: column: NAME", ())
    if split is not None and not isinstance(split, str):
        raise fail("split: must be a split name such as train", ("split",))
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # seeds are local: never reach for the Hub
    try:
        import datasets
    except ImportError:
        raise fail("a Hugging Face dataset slot needs the datasets package: pip install 'routergen[hf]'") from None
    where = "hf" if "hf" in spec else "from"
    try:
        if "hf" in spec:
            files = spec.get("data_files")
            if not isinstance(spec["hf"], str) or not (
                isinstance(files, str) or (isinstance(files, list) and all(isinstance(f, str) for f in files))
            ):
                raise fail("{hf: BUILDER, data_files: FILE or [FILES]} (local files, e.g. hf: json)", ())
            local = [str(base / f) for f in ([files] if isinstance(files, str) else files)]
            missing = [f for f in local if not os.path.exists(f)]
            if missing:
                raise fail(f"data file {missing[0]} does not exist", ("data_files",))
            ds: Any = datasets.load_dataset(spec["hf"], data_files=local, split=split or "train")
            label = f"{spec['hf']} dataset of {', '.join(os.path.basename(f) for f in local)}"
        else:
            ds = datasets.load_from_disk(str(base / spec["from"]))
            label = str(spec["from"])
            if isinstance(ds, datasets.DatasetDict):
                if split is None or split not in ds:
                    raise fail(f"{label} has splits {', '.join(ds)}: name one with split:", ("split",))
                ds = ds[split]
            elif split is not None:
                raise fail(f"{label} is a single dataset (no splits); remove split:", ("split",))
    except GrammarError:
        raise
    except Exception as e:  # datasets raises many types (FileNotFoundError, DatasetNotFoundError, ValueError, ...)
        raise fail(f"cannot load the dataset: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", (where,)) from None
    if column not in ds.column_names:
        raise fail(f"{label} has no column {column!r} (columns: {', '.join(ds.column_names)})", ("column",))
    values = ds[column]
    for i, v in enumerate(values):
        if v is not None and not isinstance(v, (str, int, float, bool)):
            raise fail(f"{label} row {i}: column {column!r} is not a scalar ({type(v).__name__})", ("column",))
    out = list(dict.fromkeys(v for v in values if v is not None and v != ""))
    if not out:
        raise fail(f"{label}: no values in {column!r}", (where,))
    return out


def _value_list(s: Any, path: tuple[Any, ...], err: Callable[..., GrammarError]) -> tuple[list[Any], list[float]]:
    """(values, weights) of a value list: ``[v, ...]`` or ``{values: [...], weights: [...]}``."""
    if isinstance(s, list):
        values, weights = s, [1.0] * len(s)
    elif isinstance(s, Mapping) and "values" in s:
        bad = sorted(set(s) - {"values", "weights"})
        if bad:
            raise err(path + (bad[0],), "unknown key (allowed: values, weights)")
        values = s["values"]
        weights = s.get("weights", [1.0] * len(values) if isinstance(values, list) else [])
    else:
        raise err(path, "must be a list of values or a mapping with values (and optional weights)")
    if not isinstance(values, list) or not values:
        raise err(path, "needs at least one value")
    for j, v in enumerate(values):
        if not isinstance(v, (str, int, float, bool)):
            raise err(path + (j,), f"slot values are scalars (string, number, boolean); got {type(v).__name__}")
    if (
        not isinstance(weights, list)
        or len(weights) != len(values)
        or not all(isinstance(w, (int, float)) and not isinstance(w, bool) and w > 0 for w in weights)
    ):
        raise err(path + ("weights",), f"needs {len(values)} numbers > 0, one per value")
    return values, [float(w) for w in weights]


def _dependent_slot(
    name: str, s: Mapping[str, Any], path: tuple[Any, ...], line: int | None, err: Callable[..., GrammarError]
) -> Slot:
    """``{given: PARENT, cases: {parent value: value list, ...}}``: a slot's distribution given another's value."""
    bad = sorted(set(s) - {"given", "cases"})
    if bad:
        raise err(path + (bad[0],), "unknown key (a dependent slot has given and cases)")
    parent = s["given"]
    if not isinstance(parent, str) or not _SLOT_NAME.match(parent):
        raise err(path + ("given",), f"given: must name another slot, got {parent!r}")
    cases_in = s.get("cases")
    if not isinstance(cases_in, Mapping) or not cases_in:
        raise err(path + ("cases",), f"cases: a mapping of each value of {parent} -> the values of {name} for it")
    cases = []
    union: dict[Any, None] = {}
    for key, case in cases_in.items():
        vals, ws = _value_list(case, path + ("cases", key), err)
        cases.append((str(key), tuple(vals), tuple(ws)))
        union.update(dict.fromkeys(vals))
    return Slot(name, tuple(union), tuple(1.0 for _ in union), line, None, parent, tuple(cases))


def _check_dependencies(slots: Mapping[str, Slot], err: Callable[..., GrammarError]) -> None:
    """Every ``given`` names a slot, no dependency cycle, and the cases cover the parent's values exactly."""
    for name, sl in slots.items():
        if sl.given is None:
            continue
        if sl.given not in slots:
            raise err(("slots", name, "given"), f"given: {sl.given!r} is not a slot (slots: {', '.join(slots)})")
        seen = [name]
        cur: str | None = sl.given
        while cur is not None:
            if cur in seen:
                raise err(("slots", name, "given"), f"dependency cycle: {' -> '.join([*seen, cur])}")
            seen.append(cur)
            cur = slots[cur].given
        parent_values = [str(v) for v in slots[sl.given].values]
        keys = [k for k, _, _ in sl.cases]
        missing = [v for v in parent_values if v not in keys]
        if missing:
            raise err(("slots", name, "cases"), f"no case for {sl.given} value {missing[0]!r} (every value needs one)")
        extra = [k for k in keys if k not in parent_values]
        if extra:
            raise err(("slots", name, "cases", extra[0]), f"{extra[0]!r} is not a value of {sl.given}")


def _stray_reference(text: str) -> str | None:
    """Why ``text`` holds a malformed ``<non-terminal>`` / ``{slot}`` reference, or None.

    A typo such as ``{my-slot}`` or ``<  greet>`` would otherwise be kept as literal text and
    reach every sample; literal braces and angle brackets are written doubled.
    """
    pos = 0
    gaps = []
    for m in _TOKEN.finditer(text):
        gaps.append((pos, text[pos : m.start()]))
        pos = m.end()
    gaps.append((pos, text[pos:]))
    for start, gap in gaps:
        stray = _STRAY.search(gap)
        if stray is None:
            continue
        tok = stray.group(0)
        col = start + stray.start() + 1
        if tok in "{}":
            close = gap.find("}", stray.start()) if tok == "{" else -1
            shown = gap[stray.start() : close + 1] if 0 <= close < stray.start() + 60 else tok
            return (
                f"{shown!r} at column {col} is not a slot reference (a slot is {{name}}, name = letters, digits "
                "and _); write {{ or }} for a literal brace"
            )
        return (
            f"{tok!r} at column {col} is not a non-terminal reference (a non-terminal is <name>, no spaces; "
            "name = letters, digits, _ and -); write << or >> for a literal angle bracket"
        )
    return None


def _brief_text(s: str) -> str:
    return s if len(s) <= 120 else s[:117] + "..."


def _brief(schema: Any) -> str:
    s = repr(schema)
    return s if len(s) <= 80 else s[:77] + "..."


def _json_type(values: Sequence[Any]) -> str | list[str]:
    """The JSON Schema type of a list of YAML scalars: one name, or a list for mixed values
    (YAML reads ``yes`` as a boolean and ``7`` as an integer beside strings)."""
    kinds: set[str] = set()
    for v in values:
        if isinstance(v, bool):
            kinds.add("boolean")
        elif isinstance(v, int):
            kinds.add("integer")
        elif isinstance(v, float):
            kinds.add("number")
        else:
            kinds.add("string")
    if "number" in kinds:
        kinds.discard("integer")  # JSON Schema numbers include the integers
    if not kinds:
        return "string"
    order = ["boolean", "integer", "number", "string"]
    names = [k for k in order if k in kinds]
    return names[0] if len(names) == 1 else names


# -- building and checking ------------------------------------------------------------------
def grammar_from_dict(
    data: Any,
    source: str = "<grammar>",
    line_of: LineOf | None = None,
    base: tuple[Any, ...] = ("grammar",),
) -> Grammar:
    """Build and check a :class:`Grammar` from its YAML/JSON form.

    ``line_of(path)`` maps a key path (``("grammar", "rules", "x", 0)``) to its source line,
    so errors name the line; ``source`` names the file.
    """
    lo: LineOf = line_of or (lambda _p: None)

    def err(path: tuple[Any, ...], msg: str) -> GrammarError:
        line = lo(base + path)
        label = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in base + path).replace(".[", "[")
        return GrammarError(f"{source}:{line if line is not None else '?'}: {label}: {msg}")

    if not isinstance(data, Mapping):
        raise err((), f"must be a mapping with start, rules and slots; got {type(data).__name__}")
    unknown = sorted(set(data) - {"start", "rules", "slots"})
    if unknown:
        raise err((unknown[0],), "unknown key (allowed: start, rules, slots)")
    rules_in = data.get("rules")
    if not isinstance(rules_in, Mapping) or not rules_in:
        raise err(("rules",), "must be a non-empty mapping of non-terminal -> list of productions")
    start = data.get("start", next(iter(rules_in)))
    if not isinstance(start, str):
        raise err(("start",), f"must be a non-terminal name, got {start!r}")

    rules: dict[str, tuple[Production, ...]] = {}
    for name, prods_in in rules_in.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise err(("rules", name), "non-terminal names are letters, digits, _ and -, starting with a letter or _")
        if isinstance(prods_in, (str, Mapping)):
            prods_in = [prods_in]
        if not isinstance(prods_in, list) or not prods_in:
            raise err(("rules", name), "must be a non-empty list of productions")
        prods = []
        for i, p in enumerate(prods_in):
            path = ("rules", name, i)
            if isinstance(p, (str, int, float)) and not isinstance(p, bool):
                prods.append(Production(str(p), 1.0, {}, lo(base + path)))
                continue
            if not isinstance(p, Mapping) or "text" not in p:
                raise err(path, "a production is a string or a mapping with text (and optional weight, set)")
            bad = sorted(set(p) - {"text", "weight", "set"})
            if bad:
                raise err(path + (bad[0],), "unknown key (allowed: text, weight, set)")
            w = p.get("weight", 1.0)
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not w > 0:
                raise err(path + ("weight",), f"weight={w!r}: must be a number > 0")
            sets = p.get("set", {}) or {}
            if not isinstance(sets, Mapping):
                raise err(path + ("set",), "must be a mapping of field -> constant value")
            for k in sets:
                if not isinstance(k, str) or not _SLOT_NAME.match(k) or k in RESERVED_FIELDS or k == "text":
                    raise err(path + ("set", k), f"field name {k!r} is not allowed (identifier; not text, id, meta)")
            prods.append(Production(str(p["text"]), float(w), dict(sets), lo(base + path)))
        for i, prod in enumerate(prods):
            bad_ref = _stray_reference(prod.text)
            if bad_ref is not None:
                raise err(("rules", name, i), bad_ref)
        rules[name] = tuple(prods)

    slots_in = data.get("slots", {}) or {}
    if not isinstance(slots_in, Mapping):
        raise err(("slots",), "must be a mapping of slot -> list of values")
    slots: dict[str, Slot] = {}
    for name, s in slots_in.items():
        spath: tuple[Any, ...] = ("slots", name)
        path = spath
        if not isinstance(name, str) or not _SLOT_NAME.match(name) or name in RESERVED_FIELDS or name == "text":
            raise err(path, f"slot name {name!r} is not allowed (identifier; not text, id, meta)")
        seed_file = None
        if isinstance(s, Mapping) and ("from" in s or "hf" in s):
            seed_file = str(s["from"]) if "from" in s else f"hf:{s['hf']}:{s.get('data_files')}"
            s = {"values": _seed_values(s, source, lambda msg, sub=(), at=path: err(at + sub, msg))}
        if isinstance(s, Mapping) and "given" in s:
            slots[name] = _dependent_slot(name, s, path, lo(base + path), err)
            continue
        values, weights = _value_list(s, path, err)
        slots[name] = Slot(name, tuple(values), tuple(weights), lo(base + path), seed_file)

    _check_dependencies(slots, err)
    set_fields = {k for prods in rules.values() for p in prods for k in p.sets}
    for clash in sorted(set_fields & set(slots)):
        raise err(("slots", clash), f"'{clash}' is both a slot and a field set by a production")

    # Undefined references.
    for name, rprods in rules.items():
        for i, p in enumerate(rprods):
            for kind, val in p.parts():
                if kind == "nt" and val not in rules:
                    raise err(("rules", name, i), f"undefined non-terminal <{val}> (defined: {', '.join(sorted(rules))})")
                if kind == "slot" and val not in slots:
                    raise err(
                        ("rules", name, i),
                        f"undefined slot {{{val}}} (declared slots: {', '.join(sorted(slots)) or 'none'})",
                    )
    if start not in rules:
        raise err(("start",), f"start symbol <{start}> is not defined (defined: {', '.join(sorted(rules))})")

    # Reachability from start.
    reach = {start}
    todo = [start]
    used_slots: set[str] = set()
    while todo:
        n = todo.pop()
        for p in rules[n]:
            for kind, val in p.parts():
                if kind == "nt" and val not in reach:
                    reach.add(val)
                    todo.append(val)
                elif kind == "slot":
                    used_slots.add(val)
    for name in rules:
        if name not in reach:
            raise err(("rules", name), f"non-terminal <{name}> is unreachable from start <{start}>")
    for name in list(used_slots):  # a used dependent slot uses its parent (drawn first, part of the sample)
        while name in slots and slots[name].given is not None:
            name = str(slots[name].given)
            used_slots.add(name)
    for name in slots:
        if name not in used_slots:
            raise err(("slots", name), f"slot {{{name}}} is declared but no reachable production uses it")

    # Productive non-terminals: those with at least one finite derivation.
    productive: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, rprods in rules.items():
            if name in productive:
                continue
            if any(all(k != "nt" or v in productive for k, v in p.parts()) for p in rprods):
                productive.add(name)
                changed = True
    for name in rules:
        if name not in productive:
            loop = next((v for p in rules[name] for k, v in p.parts() if k == "nt" and v not in productive), name)
            raise err(
                ("rules", name),
                f"non-terminal <{name}> never terminates: every production refers to a non-terminating "
                f"non-terminal (e.g. <{loop}>), a recursive loop with no way out",
            )

    # Non-terminals that can render non-blank text (a literal, a slot with a non-blank value, or
    # such a non-terminal); a start symbol outside that set makes only empty samples.
    slot_text = {n: any(_as_text(v).strip() for v in s.values) for n, s in slots.items()}
    wordy: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, rprods in rules.items():
            if name in wordy:
                continue
            if any(
                (k == "lit" and v.strip()) or (k == "slot" and slot_text[v]) or (k == "nt" and v in wordy)
                for p in rprods
                for k, v in p.parts()
            ):
                wordy.add(name)
                changed = True
    if start not in wordy:
        raise err(
            ("rules", start),
            f"every derivation of <{start}> renders as empty text (no production reaches a non-blank literal "
            "or a slot with a non-blank value), so no sample could ever be accepted",
        )

    g = Grammar(start, rules, slots, source, {n: lo(base + ("rules", n)) for n in rules})
    rho = g.branching_factor("grammar")
    if rho >= 1.0 - 1e-9:
        recursive = sorted({n for n, ps in rules.items() for p in ps for k, v in p.parts() if k == "nt"})
        raise err(
            ("rules",),
            f"the expected derivation length is infinite (mean branching factor {rho:.3f} >= 1): "
            f"lower the weights of the recursive productions (non-terminals used: {', '.join(recursive)})",
        )
    return g
