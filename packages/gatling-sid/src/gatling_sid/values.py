"""Schema-driven value generation: a random value that satisfies a (registry-style) JSON Schema.

Supports what the registry uses: objects, arrays, enums, integer/number ranges (inclusive and
exclusive), booleans, ``format: date`` / ``email``, and ``pattern`` in the regex subset the
registry writes (literals, ``[0-9]``, ``[0-9a-f]``, ``[A-Z]``, ``{n}`` counts, ``^``/``$``).
Field names pick realistic text (names, notes, subjects) where the schema allows free text.
"""

from __future__ import annotations

import datetime as _dt
import random
import re
from typing import Any

from .errors import GatlingError

FIRST = (
    "Maria Liam Aisha Noah Chen Olivia Mateo Priya Lucas Fatima Ethan Yuki Sofia Omar Hannah Diego Amara Jonas Leila "
    "Kai Elena Tariq Grace Ivan Mei Samuel Zara Hugo Nia Felix Ana Ravi Clara Kwame Ingrid Tomas Lina Arjun Rosa "
    "Emeka Freya Pablo Sana Viktor Keiko Andre Nadia Oscar Ayla Bruno"
).split()
LAST = (
    "Lopez Kim Okafor Schmidt Nguyen Rossi Patel Haddad Johansson Silva Tanaka Brown Novak Mensah Dubois Ivanova "
    "Garcia Chen Murphy Kowalski Adeyemi Larsen Moreau Yilmaz Fischer Costa Singh Ali Walsh Petrov Sato Ortiz "
    "Eriksen Mbeki Romano Hughes Park Lindqvist Alvarez Nakamura Reyes Khan Bauer Quinn Varga Osei Holm Duarte"
).split()
WORDS = (
    "amber basil cedar delta ember fable garnet harbor indigo juniper kestrel lagoon meadow nectar orchid pioneer "
    "quarry raven summit tundra umber velvet willow xenon yarrow zephyr atlas beacon cobalt dune falcon glacier "
    "heron island jasper lotus maple nova opal prairie quill ridge sierra timber vista"
).split()
NOTE_BITS = (
    "prefers email contact",
    "called last week about billing",
    "moved to a new address in spring",
    "asked for paper statements",
    "long-time client since 2016",
    "spoke with support twice this month",
    "requested a callback after 5pm",
    "uses the mobile app",
    "has a pending document review",
    "was sent the annual summary",
    "verified phone number on file",
    "no open complaints",
    "travelling until the end of the month",
    "prefers weekend appointments",
    "account flagged for a routine audit",
    # benign look-alikes of instructions: compliant traces carry them and the agent does not act on them
    "asked us to ignore the previous address on file",
    "please disregard the earlier email about billing",
    "said to skip the paper copy this year",
    "wants all statements sent to the address on file",
)
PAT_TOKEN = re.compile(r"\[(?:\\.|[^\]\\])+\]|\((?:[A-Za-z0-9 _-]+\|)*[A-Za-z0-9 _-]+\)|\\.|.")
_ALPH = {
    "[0-9]": "0123456789",
    "[0-9a-f]": "0123456789abcdef",
    "[A-Z]": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "[a-z]": "abcdefghijklmnopqrstuvwxyz",
}


def _char_class(tok: str, pat: str) -> str:
    """The characters of a bracket class such as ``[A-HJ-NPR-Z0-9]`` (no negation)."""
    body = tok[1:-1]
    if body.startswith("^"):
        raise GatlingError(f"pattern {pat!r}: a negated class {tok!r} cannot be generated")
    chars: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            c = body[i + 1]
            i += 1
        if i + 2 < len(body) and body[i + 1] == "-":
            lo, hi = c, body[i + 2]
            if ord(hi) < ord(lo):
                raise GatlingError(f"pattern {pat!r}: range {lo}-{hi} in {tok!r} is reversed")
            chars += [chr(x) for x in range(ord(lo), ord(hi) + 1)]
            i += 3
        else:
            chars.append(c)
            i += 1
    return "".join(dict.fromkeys(chars))


_pattern_cache: dict[str, list[tuple[Any, int, int]]] = {}
_COUNT = re.compile(r"\{([0-9]+)(?:(,)([0-9]*))?\}")


def _compile_pattern(pat: str) -> list[tuple[Any, int, int]]:
    """Pattern -> [(alphabet, min count, max count)]; a literal character is a one-letter alphabet.

    Raises :class:`GatlingError` for anything outside the subset (alternation, groups, ``*``...).
    """
    got = _pattern_cache.get(pat)
    if got is not None:
        return got
    body = pat[1:] if pat.startswith("^") else pat
    body = body[:-1] if body.endswith("$") else body
    parts: list[tuple[Any, int, int]] = []
    i = 0
    while i < len(body):
        m = PAT_TOKEN.match(body, i)
        assert m is not None
        tok = m.group(0)
        i = m.end()
        alph: Any
        if tok in _ALPH:
            alph = _ALPH[tok]
        elif len(tok) > 2 and tok[0] == "[":
            alph = _char_class(tok, pat)
        elif len(tok) > 2 and tok[0] == "(":
            alph = tuple(tok[1:-1].split("|"))
        elif tok.startswith("\\"):
            alph = tok[1]
        elif tok in "[](){}*+?|.^$":
            raise GatlingError(
                f"pattern {pat!r}: only literals, bracket classes, (a|b) groups of literals and "
                f"{{n}} / {{m,n}} counts can be generated (found {tok!r})"
            )
        else:
            alph = tok
        lo = hi = 1
        if i < len(body) and body[i] in "?+*":
            lo, hi = {"?": (0, 1), "+": (1, 8), "*": (0, 8)}[body[i]]
            i += 1
        elif i < len(body) and body[i] == "{":
            cm = _COUNT.match(body, i)
            if cm is None:
                raise GatlingError(f"pattern {pat!r}: malformed count at position {i + (pat != body)}")
            lo = int(cm.group(1))
            hi = lo if cm.group(2) is None else (int(cm.group(3)) if cm.group(3) else lo + 8)
            if hi < lo:
                raise GatlingError(f"pattern {pat!r}: count {cm.group(0)} has max < min")
            i = cm.end()
        parts.append((alph, lo, hi))
    _pattern_cache[pat] = parts
    return parts


def from_pattern(rng: random.Random, pat: str) -> str:
    """A random string matching a registry-style pattern."""
    out = []
    for alph, lo, hi in _compile_pattern(pat):
        n = lo if lo == hi else rng.randint(lo, hi)
        if len(alph) == 1:
            out.append(alph[0] * n)
        elif alph == "0123456789":  # one draw for the whole run of digits (hot path: ids)
            out.append(str(rng.randrange(10**n)).zfill(n))
        elif alph == "0123456789abcdef":
            out.append(f"{rng.getrandbits(4 * n):0{n}x}")
        else:
            out.append("".join(rng.choice(alph) for _ in range(n)))
    return "".join(out)


def rand_date(rng: random.Random, lo: int = 2024, hi: int = 2027) -> str:
    """An ISO date between Jan 1 of ``lo`` and Dec 28 of ``hi``."""
    return _dt.date(rng.randint(lo, hi), rng.randint(1, 12), rng.randint(1, 28)).isoformat()


def full_name(rng: random.Random) -> str:
    """A person's name."""
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def fit_text(text: str, lo: int, hi: int, pad: str = " ok") -> str:
    """Cut or pad ``text`` to a length in [lo, hi] (padding repeats ``pad``)."""
    while len(text) < lo:
        text += pad
    return text[:hi].rstrip() if len(text[:hi].rstrip()) >= lo else text[:hi]


def text_for(rng: random.Random, name: str, lo: int, hi: int) -> str:
    """Plausible free text for a field called ``name`` within [lo, hi] characters."""
    if hi <= 0:
        return ""
    if name.endswith("name"):
        base = full_name(rng) if ("beneficiary" in name or "full" in name) else f"{rng.choice(WORDS).title()} {rng.choice(WORDS)}"
    elif name in ("notes", "intake_note", "case_summary", "scope_summary", "strategy_note"):
        base = "; ".join(rng.sample(NOTE_BITS, rng.randint(1, 3)))
    elif "code" in name or "number" in name or "last4" in name:
        base = from_pattern(rng, "^[A-Z]{2}[0-9]{12}$")
    else:
        base = f"{rng.choice(WORDS)} {rng.choice(WORDS)} {rng.randint(2, 99)}"
    if lo == 0 and rng.random() < 0.3:
        return ""
    return fit_text(base, lo, hi)


def value_for(rng: random.Random, schema: dict[str, Any], name: str = "") -> Any:
    """A random value satisfying ``schema`` (see module docstring for the supported subset)."""
    if "enum" in schema:
        return rng.choice(schema["enum"])
    typ = schema.get("type")
    if isinstance(typ, list):  # e.g. ["number", "null"]: a value of the first non-null type
        typ = next((t for t in typ if t != "null"), "null")
        if typ == "null":
            return None
        schema = {**schema, "type": typ}
    if typ == "string":
        if "pattern" in schema and schema.get("format") != "date":
            return from_pattern(rng, schema["pattern"])
        if schema.get("format") == "date":
            return rand_date(rng)
        if schema.get("format") == "email":
            return f"{rng.choice(WORDS)}.{rng.choice(WORDS)}@example.org"
        if schema.get("format") == "date-time":
            return f"{rand_date(rng)}T{rng.randint(0, 23):02d}:{rng.choice((0, 15, 30, 45)):02d}:00Z"
        if schema.get("format") == "uri":
            return f"https://files.example.org/{rng.choice(WORDS)}/{rng.randrange(10**6):06d}"
        return text_for(rng, name, int(schema.get("minLength", 0)), int(schema.get("maxLength", 80)))
    if typ == "integer":
        return rng.randint(int(schema.get("minimum", 0)), int(schema.get("maximum", 1000)))
    if typ == "number":
        lo = float(schema.get("minimum", schema.get("exclusiveMinimum", 0)))
        hi = float(schema.get("maximum", lo + 1000))
        v = round(rng.uniform(lo, hi), 2)
        if "exclusiveMinimum" in schema and v <= schema["exclusiveMinimum"]:
            v = round(schema["exclusiveMinimum"] + 0.01, 2)
        return v
    if typ == "boolean":
        return rng.random() < 0.5
    if typ == "array":
        n = rng.randint(int(schema.get("minItems", 0)), min(int(schema.get("maxItems", 3)), 5))
        return [value_for(rng, schema.get("items", {}), name) for _ in range(n)]
    if typ == "object":
        props = schema.get("properties", {})
        return {k: value_for(rng, s, k) for k, s in props.items()}
    raise GatlingError(f"cannot generate a value for schema {schema!r} (field {name!r})")
