"""Unit tests of the LLM layer's value types: request validation, cache keys, prices, limiter."""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("anthropic")
pytest.importorskip("jsonschema")

from datacore import DatacoreError  # noqa: E402
from datacore.llm import (  # noqa: E402
    AdaptiveLimiter,
    BudgetExceeded,
    LLMConfigError,
    LLMRequest,
    LLMResponse,
    PriceTable,
    Usage,
    extract_json,
)

MSG = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"model": ""}, "model"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"temperature": 1.5}, "temperature"),
        ({"tools": [{"description": "no name"}]}, "tools[0]"),
        ({"tool_choice": {"name": "x"}}, "tool_choice"),
        ({"system": 5}, "system"),
    ],
)
def test_request_validation_names_the_field(kwargs, field):
    base = {"model": "claude-haiku-4-5", "messages": MSG}
    base.update(kwargs)
    with pytest.raises(LLMConfigError) as ei:
        LLMRequest(**base)
    assert f"LLMRequest.{field}" in str(ei.value)
    assert isinstance(ei.value, DatacoreError)


def test_cache_key_is_sha256_of_canonical_fields_and_ignores_metadata():
    a = LLMRequest("m", [{"role": "user", "content": "hi", "x": 1}], system="s", metadata={"i": 1})
    b = LLMRequest("m", [{"x": 1, "content": "hi", "role": "user"}], system="s", metadata={"i": 2})
    assert a.cache_key() == b.cache_key()
    # Independent oracle: hash the documented field set by hand.
    fields = {
        "model": "m",
        "system": "s",
        "messages": [{"role": "user", "content": "hi", "x": 1}],
        "max_tokens": 1024,
        "temperature": 1.0,
        "tools": None,
        "tool_choice": None,
    }
    expect = hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert a.cache_key() == expect
    for change in (
        {"model": "m2"},
        {"system": "t"},
        {"max_tokens": 5},
        {"temperature": 0.5},
        {"tools": [{"name": "t", "input_schema": {"type": "object"}}]},
        {"tool_choice": {"type": "any"}},
    ):
        kw = {"model": "m", "messages": a.messages, "system": "s", **change}
        assert LLMRequest(**kw).cache_key() != a.cache_key(), change


def test_api_params_omit_temperature_unless_asked():
    r = LLMRequest("m", MSG, temperature=0.3, system="s")
    assert "temperature" not in r.to_api_params()
    assert r.to_api_params(send_temperature=True)["extra_body"] == {"temperature": 0.3}
    assert r.to_api_params()["system"] == "s" and "tools" not in r.to_api_params()


def test_response_round_trip():
    r = LLMResponse(
        text="t",
        tool_uses=[{"id": "1", "name": "f", "input": {"a": 1}}],
        usage=Usage(3, 4),
        model="m",
        stop_reason="tool_use",
        content=[{"type": "text", "text": "t"}],
    )
    back = LLMResponse.from_dict(json.loads(json.dumps(r.to_dict())), cached=True)
    assert back.cached and back.text == "t" and back.tool_uses == r.tool_uses and back.usage == Usage(3, 4)


def test_price_table_longest_prefix_and_overrides():
    t = PriceTable()
    assert t.cost("claude-opus-4-5-20251101", Usage(1_000_000, 0)) == pytest.approx(5.0)
    assert t.cost("claude-opus-4-20250514", Usage(1_000_000, 0)) == pytest.approx(15.0)
    assert t.cost("claude-haiku-4-5", Usage(0, 2_000_000)) == pytest.approx(10.0)
    assert t.cost("claude-haiku-4-5", Usage(0, 2_000_000), batch=True) == pytest.approx(5.0)
    assert t.cost("unknown-model", Usage(1, 1)) is None
    t2 = PriceTable({"my-model": (2.0, 4.0)}, replace_defaults=True)
    assert t2.cost("my-model-v1", Usage(500_000, 250_000)) == pytest.approx(2.0)
    assert t2.price_for("claude-haiku-4-5") is None
    with pytest.raises(LLMConfigError, match=r"prices\['bad'\]"):
        PriceTable({"bad": (1.0,)})
    with pytest.raises(LLMConfigError, match=r"prices\['neg'\]"):
        PriceTable({"neg": (-1.0, 1.0)})


def test_budget_exceeded_message():
    e = BudgetExceeded(1.25, 1.0)
    assert "budget_usd" in str(e) and isinstance(e, DatacoreError)


def test_extract_json_variants():
    assert extract_json('{"a": 1}') == {"a": 1}
    assert extract_json('Here you go:\n```json\n{"a": [1, 2]}\n```') == {"a": [1, 2]}
    assert extract_json('The answer is {"b": true} as asked.') == {"b": True}
    with pytest.raises(ValueError):
        extract_json("no json here")


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_limiter_multiplicative_decrease_cooldown_and_additive_growth():
    clock = FakeClock()
    lim = AdaptiveLimiter(16, cooldown_s=1.0, clock=clock)
    assert lim.limit == 16
    assert lim.on_throttle() and lim.limit == 12
    assert not lim.on_throttle() and lim.limit == 12  # same cool-down: an echo of the same overload
    for _ in range(11):
        lim.on_success()
    assert lim.limit == 12  # a run of `limit` successes is needed
    lim.on_success()
    assert lim.limit == 13
    clock.t = 1.5
    assert lim.on_throttle() and lim.limit == 9  # floor(13 * 0.75)
    clock.t = 3.0
    for _ in range(8):
        lim.on_success()
    assert lim.limit == 9  # a run of `limit` successes is needed
    lim.on_success()
    assert lim.limit == 10
    for _ in range(10 + 11 + 12 + 13 + 14 + 15 + 100):
        lim.on_success()
    assert lim.limit == 16  # capped at max
    for i in range(20):
        clock.t = 10 + 2 * i
        lim.on_throttle()
    assert lim.limit == 1  # floor at min_limit
    d = lim.decreases
    clock.t = 100
    assert not lim.on_throttle() and lim.decreases == d  # nothing left to shrink: not counted


def test_limiter_bounds_concurrency():
    lim = AdaptiveLimiter(3, cooldown_s=0.0)
    active = 0
    peak = 0

    async def worker():
        nonlocal active, peak
        await lim.acquire()
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.001)
        active -= 1
        lim.on_success()
        await lim.release()

    async def main():
        await asyncio.gather(*(worker() for _ in range(50)))

    asyncio.run(main())
    assert peak == 3 and lim.in_flight == 0


def test_limiter_validation():
    with pytest.raises(LLMConfigError, match="max_in_flight"):
        AdaptiveLimiter(0)
    with pytest.raises(LLMConfigError, match="min_in_flight"):
        AdaptiveLimiter(4, min_limit=5)


def test_datacore_does_not_import_the_llm_layer():
    import subprocess
    import sys

    code = "import sys, datacore; bad = [m for m in ('datacore.llm', 'anthropic', 'jsonschema') if m in sys.modules]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_retry_after_parsing():
    import email.utils
    import time

    from datacore.llm.client import _parse_retry_after

    assert _parse_retry_after({"retry-after": "2"}) == 2.0
    assert _parse_retry_after({"retry-after": "0.25"}) == 0.25
    assert _parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5  # ms wins, as in the SDK
    assert _parse_retry_after({"retry-after": "-1"}) is None
    assert _parse_retry_after({"retry-after": "soon"}) is None
    assert _parse_retry_after({}) is None
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= _parse_retry_after({"retry-after": when}) <= 31


def _reorder(v, rnd):
    """The same JSON value with every dict's keys in a shuffled order."""
    if isinstance(v, dict):
        items = list(v.items())
        rnd.shuffle(items)
        return {k: _reorder(x, rnd) for k, x in items}
    if isinstance(v, list):
        return [_reorder(x, rnd) for x in v]
    return v


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(
    extra=st.dictionaries(st.text(min_size=1, max_size=5).filter(lambda k: k not in ("role", "content")), JSON, max_size=3),
    tool_input=JSON,
    seed=st.integers(0, 2**16),
)
def test_cache_key_ignores_dict_key_order(extra, tool_input, seed):
    import random

    rnd = random.Random(seed)
    msgs = [{"role": "user", "content": "x", **extra}]
    tools = [{"name": "t", "input_schema": {"type": "object"}, "example": tool_input}]
    a = LLMRequest("m", msgs, tools=tools)
    b = LLMRequest("m", _reorder(msgs, rnd), tools=_reorder(tools, rnd))
    assert a.cache_key() == b.cache_key()
