"""The compiled checks cover every registry schema (``x-`` annotations such as ``x-unit`` included) and
give jsonschema's verdicts on them and on hand-written edge cases (mixed enums, type lists, bools vs
numbers, 3.0 as an integer, nested extras, the shortcut closures for common string/object shapes)."""

import math
import random

import jsonschema
import pytest
from gatling_sid.schemacheck import CompiledSchema, EcmaValidator, compiled
from gatling_sid.values import value_for

FMT = jsonschema.FormatChecker(formats=("date", "email"))
JUNK = [None, True, False, 0, 1, -1, 3.5, 3.0, 10**9, math.nan, math.inf, "", "x", "a b", "2024-02-30", "2024-01-05",
        "a@b", "ABC-123", [], {}, [1], ["x", "y"], {"k": 1}, {"x": "y"}]  # fmt: skip


def _corrupt(rng, v):
    if isinstance(v, dict) and v:
        k = rng.choice(sorted(v))
        r = rng.random()
        w = dict(v)
        if r < 0.25:
            del w[k]
        elif r < 0.4:
            w["unexpected_" + k] = rng.choice(JUNK)
        else:
            w[k] = _corrupt(rng, v[k])
        return w
    if isinstance(v, list) and v and rng.random() < 0.7:
        w = list(v)
        i = rng.randrange(len(w))
        w[i] = _corrupt(rng, w[i])
        return w
    return rng.choice(JUNK)


def test_every_registry_schema_is_compiled(registry):
    """No registry schema falls back to jsonschema's interpreter (failed before for the 76 with x-unit)."""
    slow = [
        (t.name, which)
        for t in registry.tools.values()
        for which, s in (("in", t.input_schema), ("out", t.output_schema))
        if compiled(s)._fast is None
    ]
    assert slow == []


def test_compiled_agrees_with_jsonschema_on_every_tool(registry):
    rng = random.Random(7)
    checked = 0
    for name in sorted(registry.tools):
        tool = registry.tools[name]
        for schema in (tool.input_schema, tool.output_schema):
            fast = compiled(schema)
            ref = jsonschema.Draft7Validator(schema, format_checker=FMT)
            good = value_for(rng, schema)
            assert fast.is_valid(good) and ref.is_valid(good), (name, good)
            for _ in range(12):
                bad = _corrupt(rng, good)
                if any(isinstance(x, float) and math.isnan(x) for x in _leaves(bad)):
                    continue  # NaN is no JSON value
                assert fast.is_valid(bad) == ref.is_valid(bad), (name, bad)
                assert (fast.first_error(bad) is None) == ref.is_valid(bad), (name, bad)
                checked += 1
    assert checked > 10_000


def _leaves(v):
    if isinstance(v, dict):
        for x in v.values():
            yield from _leaves(x)
    elif isinstance(v, list):
        for x in v:
            yield from _leaves(x)
    else:
        yield v


EDGE_SCHEMAS = [
    {"enum": [1, "1", True, None, 2.5]},
    {"type": "string", "enum": ["a", "bb"], "minLength": 2},
    {"type": "string", "enum": ["a", "bb"], "pattern": "^b"},
    {"type": "string", "enum": ["2024-01-05", "x"], "format": "date"},
    {"type": "string", "enum": []},
    {"type": ["number", "null"], "minimum": 0},
    {"type": ["integer", "string"], "maximum": 3, "maxLength": 1},
    {"type": "integer", "minimum": 1, "exclusiveMaximum": 5},
    {"type": "number", "exclusiveMinimum": 0, "maximum": 10},
    {"type": "boolean", "minLength": 2},
    {"type": "string", "format": "email", "minLength": 3},
    {"type": "string", "format": "date"},
    {"type": "string", "format": "uri", "maxLength": 5},
    {"minLength": 2, "maximum": 3, "pattern": "x$", "format": "date"},
    {"format": "email"},
    {"type": "object", "properties": {"a": {"type": "integer"}, "b": {}}, "required": ["a"], "additionalProperties": False},
    {"type": "object", "additionalProperties": {"type": "string", "maxLength": 1}, "minProperties": 1, "maxProperties": 2},
    {"properties": {"a": {"type": "object", "properties": {"b": {"enum": [1, 2]}}, "additionalProperties": False}}},
    {"type": "array", "items": {"type": "array", "items": {"type": "integer"}, "maxItems": 2}, "minItems": 1},
    {"items": {"type": "string"}},
    {"type": "object", "x-unit": "kg", "properties": {"w": {"type": "number", "x-unit": "kg", "minimum": 0}}},
    {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{2}$"},
    {"type": "array", "minItems": 0, "maxItems": 0},
    {"type": "object", "required": ["z"]},
    True,
    False,
    {},
]
INSTANCES = [*JUNK, -0.0, 2.5, 4, 5, 4.0, "bb", "1", "kg", "b", "xx", "ABC-12", "ABC-12\n", {"a": 1}, {"a": 1.0},
             {"a": True}, {"a": 1, "b": None}, {"a": 1, "c": 1}, {"a": {"b": 1}}, {"a": {"b": 3}}, {"a": {"c": 1}},
             {"p": "x", "q": "yy"}, {"p": "x"}, {"w": -1}, {"w": 2}, {"z": None}, [[1, 2]], [[1, 2, 3]], [[]], [[1.0]],
             [[True]], ["a"], [1]]  # fmt: skip


@pytest.mark.parametrize("i", range(len(EDGE_SCHEMAS)))
def test_edge_schemas_agree_with_jsonschema(i):
    schema = EDGE_SCHEMAS[i]
    ref = EcmaValidator(schema, format_checker=FMT)  # jsonschema with ECMA-262 patterns ("$" is the very end)
    c = CompiledSchema(schema) if isinstance(schema, dict) else None
    for x in INSTANCES:
        if isinstance(x, float) and math.isnan(x):
            continue
        want = ref.is_valid(x)
        if c is not None:
            assert c.is_valid(x) == want, (schema, x)
            assert (c.first_error(x) is None) == want, (schema, x)
