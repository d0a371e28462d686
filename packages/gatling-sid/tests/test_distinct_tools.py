"""Structural distinctness of the registry's tools, measured without the package's own code.

A tool's *shape* is its kind plus its input and output schema with everything a renaming
template would change normalised away: property names lose the domain's subject/entity nouns
and digits, enum values become their count, patterns become their character-class skeleton
(``^ACC-[0-9]{8}$`` and ``^CUS-[0-9]{6}$`` are both ``L-D``), numbers (bounds, lengths) are
dropped.  Two tools with the same shape are one template renamed; the issue's bar is 245 shapes.
"""

import re

import yaml
from gatling_sid.registry import DEFAULT_DOMAINS_DIR

_CLASS = re.compile(r"\[[^\]]*\]|\\.|\(.*?\)|.")


def _pattern_skeleton(p: str) -> str:
    p = re.sub(r"\{[0-9,]*\}|[?+*]", "", p.strip("^$"))
    out = []
    for tok in _CLASS.findall(p):
        if tok.isalpha() and tok.isupper() or tok in ("[A-Z]",):
            out.append("L")
        elif tok.isdigit() or tok == "[0-9]":
            out.append("D")
        elif tok.isalpha():
            out.append("l")
        else:
            out.append(tok if len(tok) == 1 else "C")
    return re.sub(r"(.)\1+", r"\1", "".join(out))


def _norm_name(name: str, nouns: list[str]) -> str:
    for n in sorted(nouns, key=len, reverse=True):
        name = name.replace(n, "X")
    return re.sub(r"[0-9]+", "#", name)


def _shape(s, nouns):
    if not isinstance(s, dict):
        return "?"
    if "enum" in s:
        return f"enum{len(s['enum'])}"
    t = s.get("type")
    if t == "object":
        req = set(s.get("required", ()))
        return (
            "obj",
            tuple(sorted((_norm_name(k, nouns), k in req, _shape(v, nouns)) for k, v in (s.get("properties") or {}).items())),
        )
    if t == "array":
        return ("arr", _shape(s.get("items"), nouns))
    if t == "string":
        return ("str", s.get("format"), _pattern_skeleton(s["pattern"]) if "pattern" in s else None)
    return t


def _all_tools():
    rows = []
    docs = {p.stem: yaml.safe_load(p.read_text()) for p in sorted(DEFAULT_DOMAINS_DIR.glob("*.yaml"))}
    ops = {}
    for p in sorted((DEFAULT_DOMAINS_DIR / "ops").glob("*.yaml")):
        ops.update(yaml.safe_load(p.read_text()))
    for doc in docs.values():
        nouns = [doc["domain"], doc["subject"], doc["entity"]]
        for t in doc["tools"]:
            rows.append((t["name"], (t["kind"], _shape(t["input_schema"], nouns), _shape(t["output_schema"], nouns))))
    return rows, docs, ops


def test_at_least_245_structurally_distinct_tools(registry):
    # the packaged YAML (twelve planner tools per domain), measured from the files ...
    rows, docs, ops = _all_tools()
    base = {shape for _, shape in rows}
    # ... plus the registry's expanded operations (loaded tools, same normalisation)
    shapes = set(base)
    for t in registry.tools.values():
        d = docs[t.domain]
        nouns = [d["domain"], d["subject"], d["entity"]]
        shapes.add((t.kind, _shape(t.input_schema, nouns), _shape(t.output_schema, nouns)))
    n_ops = sum(len(v) for v in ops.values())
    assert len(registry.domains) >= 50
    assert len(registry.tools) == len(rows) + n_ops
    print(f"distinct shapes: planner tools {len(base)} of {len(rows)}; with operations {len(shapes)} of {len(registry.tools)}")
    assert len(shapes) >= 245


def test_operations_use_the_promised_structures(registry):
    feats = {"nested_object": 0, "array": 0, "enum": 0, "optional": 0, "format": 0, "unit": 0, "pagination": 0, "errors": 0}

    def walk(s, top=True):
        if not isinstance(s, dict):
            return
        if "enum" in s:
            feats["enum"] += 1
        if "format" in s:
            feats["format"] += 1
        if "x-unit" in s:
            feats["unit"] += 1
        if s.get("type") == "array":
            feats["array"] += 1
            walk(s.get("items"), False)
        if s.get("type") == "object":
            if not top:
                feats["nested_object"] += 1
            props = s.get("properties") or {}
            if set(props) - set(s.get("required", props)):
                feats["optional"] += 1
            for v in props.values():
                walk(v, False)

    for t in registry.tools.values():
        walk(t.input_schema)
        walk(t.output_schema)
        feats["pagination"] += "page_token" in t.input_schema["properties"]
        feats["errors"] += "error" in t.output_schema["properties"]
    assert all(v >= 20 for v in feats.values()), feats
    guards = {r.type for d in registry.domains.values() for r in d.policy.rules if r.type.startswith("state_")}
    assert guards == {"state_tier", "state_period_limit", "state_time_window", "state_ownership", "state_terminal"}
    per_domain = {tuple(sorted(r.id for r in d.policy.rules)) for d in registry.domains.values()}
    assert len(per_domain) == len(registry.domains)  # no two domains share one rule set
