import random

import jsonschema
from gatling_sid.schemacheck import compiled
from gatling_sid.values import value_for
from hypothesis import given, settings
from hypothesis import strategies as st

FMT = jsonschema.FormatChecker(formats=("date", "email"))
JUNK = [None, True, False, 0, -1, 3.5, 10**9, "", "x", "2024-02-30", "2024-13-01", "a@b", [], {}, [1], {"k": 1}, 1.0]


def _corrupt(rng, v):
    if isinstance(v, dict) and v:
        k = rng.choice(sorted(v))
        r = rng.random()
        w = dict(v)
        if r < 0.3:
            del w[k]
        elif r < 0.45:
            w["unexpected_" + k] = 1
        else:
            w[k] = _corrupt(rng, v[k])
        return w
    if isinstance(v, list) and v and rng.random() < 0.7:
        w = list(v)
        i = rng.randrange(len(w))
        w[i] = _corrupt(rng, w[i])
        return w
    return rng.choice(JUNK)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32))
def test_compiled_agrees_with_jsonschema(registry, seed):
    rng = random.Random(seed)
    tool = registry.tools[rng.choice(sorted(registry.tools))]
    for schema in (tool.input_schema, tool.output_schema):
        ref = jsonschema.Draft7Validator(schema, format_checker=FMT)
        fast = compiled(schema)
        good = value_for(rng, schema)
        assert fast.is_valid(good) and ref.is_valid(good)
        for _ in range(8):
            bad = _corrupt(rng, good)
            assert fast.is_valid(bad) == ref.is_valid(bad), (tool.name, bad)
            if not ref.is_valid(bad):
                assert fast.first_error(bad)


def test_unsupported_keyword_falls_back():
    s = {"type": "object", "properties": {"a": {"anyOf": [{"type": "string"}, {"type": "integer"}]}}}
    c = compiled(s)
    assert c.is_valid({"a": 3}) and c.is_valid({"a": "x"}) and not c.is_valid({"a": 1.5})
    assert "a" in c.first_error({"a": 1.5})
