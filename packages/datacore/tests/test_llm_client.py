"""AnthropicClient through the real anthropic SDK against the loopback FakeMessagesServer."""

from __future__ import annotations

import asyncio
import collections
import time

import pytest

pytest.importorskip("anthropic")
pytest.importorskip("jsonschema")

from datacore.llm import AnthropicClient, BudgetExceeded, LLMClient, LLMConfigError, LLMRequest  # noqa: E402
from datacore.llm.testing import FakeMessagesServer  # noqa: E402

KEY = "sk-ant-test-0123456789abcdef"
MODEL = "claude-haiku-4-5"


def make_client(srv, **kw):
    opts = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, "cooldown_s": 0.05, "timeout": 5}
    opts.update(kw)
    return AnthropicClient(api_key=KEY, base_url=srv.base_url, **opts)


def req(i, **kw):
    return LLMRequest(MODEL, [{"role": "user", "content": f"question {i}"}], max_tokens=16, metadata={"i": i}, **kw)


def test_plain_completion_text_usage_and_protocol():
    with FakeMessagesServer() as srv, make_client(srv) as c:
        assert isinstance(c, LLMClient)
        r = c.complete(req(1, system="be brief"))
        assert r.ok and r.text.startswith("echo: question 1 #") and not r.cached
        assert r.model == MODEL and r.stop_reason == "end_turn" and r.attempts == 1
        assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0
        assert srv.calls == 1
        sent = srv.requests[0]["body"]
        assert sent["system"] == "be brief" and sent["max_tokens"] == 16 and "temperature" not in sent
        t = c.telemetry().counters
        assert t["llm.calls"] == 1 and t["llm.input_tokens"] == r.usage.input_tokens
        expect = (r.usage.input_tokens * 1.0 + r.usage.output_tokens * 5.0) / 1e6  # haiku-4-5 list price
        assert t["llm.cost_usd"] == pytest.approx(expect)
        assert t[f"llm.cost_usd.{MODEL}"] == pytest.approx(expect)


def test_tool_use_blocks_are_parsed():
    def handler(body):
        assert body["tools"][0]["name"] == "lookup"
        return {
            "content": [
                {"type": "text", "text": "calling"},
                {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "x"}},
            ]
        }

    tools = [{"name": "lookup", "description": "d", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}]
    with FakeMessagesServer(handler=handler) as srv, make_client(srv) as c:
        r = c.complete(req(0, tools=tools, tool_choice={"type": "any"}))
        assert r.ok and r.stop_reason == "tool_use" and r.text == "calling"
        assert r.tool_uses == [{"id": "toolu_1", "name": "lookup", "input": {"q": "x"}}]
        assert r.content[1]["type"] == "tool_use"
        assert srv.requests[0]["body"]["tool_choice"] == {"type": "any"}


def test_send_temperature_for_older_api_versions():
    with FakeMessagesServer() as srv, make_client(srv, send_temperature=True, api_version="2023-06-01") as c:
        c.complete(req(1, temperature=0.25))
        assert srv.requests[0]["body"]["temperature"] == 0.25


def test_complete_many_keeps_order():
    with FakeMessagesServer(latency=0.005, latency_jitter=0.02) as srv, make_client(srv, max_in_flight=8) as c:
        rs = c.complete_many([req(i) for i in range(60)])
        assert [r.text.split(" #")[0] for r in rs] == [f"echo: question {i}" for i in range(60)]
        assert srv.calls == 60 and c.limiter.peak_in_flight <= 8


@pytest.mark.parametrize(
    "fault, kind", [("500", "server"), ("529", "overloaded"), ("429", "rate_limit"), ("malformed", "malformed")]
)
def test_transient_fault_is_retried_then_succeeds(fault, kind):
    # The first two attempts of every request fail, the third succeeds.
    with FakeMessagesServer(fault_fn=lambda body, n: fault if n < 2 else None) as srv, make_client(srv) as c:
        r = c.complete(req(7))
        assert r.ok and r.attempts == 3 and srv.calls == 3
        t = c.telemetry()
        assert t.counters["llm.retries"] == 2 and t.histograms["llm.attempt_errors"] == {kind: 2}


def test_retries_are_bounded_and_failure_is_reported():
    with FakeMessagesServer(fault_rate=1.0, faults=("500",)) as srv, make_client(srv, max_retries=3) as c:
        rs = c.complete_many([req(1), req(2)])
        assert [r.ok for r in rs] == [False, False]
        assert all(r.error_kind == "server" and r.attempts == 4 and "HTTP 500" in r.error for r in rs)
        assert srv.calls == 8
        t = c.telemetry()
        assert t.counters["llm.failed"] == 2 and t.histograms["llm.failures"] == {"server": 2}


def test_client_errors_are_not_retried():
    # A 400 (here: the server's answer to a body without "messages" is impossible via the SDK, so
    # use an unknown path via a bad base_url prefix -> 404) is final on the first attempt.
    with FakeMessagesServer() as srv:
        with AnthropicClient(api_key=KEY, base_url=srv.base_url + "/nope", backoff_base_s=0.01) as c:
            r = c.complete(req(1))
        assert r.error_kind == "bad_request" and r.attempts == 1 and "HTTP 404" in r.error


def test_retry_after_is_honoured():
    with FakeMessagesServer(fault_fn=lambda body, n: "429" if n == 0 else None, retry_after=0.4) as srv, make_client(srv) as c:
        t0 = time.monotonic()
        r = c.complete(req(1))
        assert r.ok and r.attempts == 2
        gap = srv.requests[1]["t"] - srv.requests[0]["t"]
        assert gap >= 0.4, gap
        assert time.monotonic() - t0 < 3


def test_timeout_is_retried_and_bounded():
    # First attempt stalls past the client's timeout, the retry answers at once.
    with (
        FakeMessagesServer(fault_fn=lambda body, n: "slow" if n == 0 else None, slow_s=3) as srv,
        make_client(srv, timeout=0.3) as c,
    ):
        r = c.complete(req(1))
        assert r.ok and r.attempts == 2
        assert c.telemetry().histograms["llm.attempt_errors"] == {"timeout": 1}
    with FakeMessagesServer(fault_rate=1.0, faults=("slow",), slow_s=3) as srv, make_client(srv, timeout=0.2, max_retries=1) as c:
        t0 = time.monotonic()
        r = c.complete(req(2))
        assert r.error_kind == "timeout" and r.attempts == 2 and "timeout=0.2s" in r.error
        assert time.monotonic() - t0 < 2.5


def test_admission_control_under_20pct_throttling_loses_and_duplicates_nothing():
    n = 200
    with (
        FakeMessagesServer(fault_rate=0.2, faults=("429", "529"), latency=0.005, seed=3) as srv,
        make_client(srv, max_in_flight=16, cooldown_s=0.25) as c,
    ):
        rs = c.complete_many([req(i) for i in range(n)])
        assert len(rs) == n and all(r.ok for r in rs), [r.error for r in rs if not r.ok][:3]
        # Each output answers its own request: the echo names the request's index.
        assert [r.text.split(" #")[0] for r in rs] == [f"echo: question {i}" for i in range(n)]
        # Every request got exactly one successful reply from the server; retries were the faulted calls.
        injected = sum(srv.faults_injected.values())
        assert injected > 0.1 * n
        assert srv.replied == n and srv.calls == n + injected
        t = c.telemetry()
        # A refused TCP connect never reaches the server's counter but is a (retried) call for the client.
        lost_connects = t.histograms["llm.attempt_errors"].get("connection", 0)
        assert t.counters["llm.calls"] == srv.calls + lost_connects
        assert t.counters["llm.retries"] == injected + lost_connects
        assert t.counters["llm.admission.decreases"] >= 1 and c.limiter.min_seen < 16
        seen = collections.Counter(r["hash"] for r in srv.requests if r["fault"] is None)
        assert len(seen) == n and set(seen.values()) == {1}


def test_complete_many_returns_every_failure_in_place():
    fails = {3, 5}

    def fault_fn(body, n):
        i = int(body["messages"][0]["content"].split()[-1])
        return "500" if i in fails else None

    with FakeMessagesServer(fault_fn=fault_fn) as srv, make_client(srv, max_retries=1) as c:
        rs = c.complete_many([req(i) for i in range(8)])
        assert [i for i, r in enumerate(rs) if not r.ok] == sorted(fails)
        assert srv.calls == 8 + len(fails)


def test_acomplete_from_another_event_loop():
    with FakeMessagesServer() as srv, make_client(srv) as c:

        async def main():
            return await asyncio.gather(*(c.acomplete(req(i)) for i in range(5)))

        rs = asyncio.run(main())
        assert [r.text.split(" #")[0] for r in rs] == [f"echo: question {i}" for i in range(5)]


def test_budget_stops_cleanly_and_keeps_results(tmp_path):
    # Price 1 USD per input token makes every call cost >= 1 USD; a 3.5 USD budget allows a few calls.
    prices = {"toy-model": (1e6, 0.0)}
    with (
        FakeMessagesServer(handler=lambda b: "ok") as srv,
        make_client(srv, budget_usd=3.5, prices=prices, max_in_flight=1, cache_dir=tmp_path / "cache") as c,
    ):
        reqs = [LLMRequest("toy-model", [{"role": "user", "content": f"q{i}"}], max_tokens=4) for i in range(10)]
        rs = c.complete_many(reqs)
        done = [r for r in rs if r.ok]
        refused = [r for r in rs if r.error_kind == "budget"]
        assert len(done) + len(refused) == 10 and 1 <= len(done) < 10
        assert srv.calls == len(done)
        assert c.spent_usd >= 3.5 and c.spent_usd - done[-1].usage.input_tokens < 3.5  # stopped at the first call past it
        assert all("budget" in r.error for r in refused)
        with pytest.raises(BudgetExceeded):
            c.complete(reqs[-1])
        # What was done is kept: the same requests on a fresh client come from the cache, free.
    with FakeMessagesServer() as srv2, make_client(srv2, budget_usd=0.0, prices=prices, cache_dir=tmp_path / "cache") as c2:
        again = c2.complete_many(reqs[: len(done)])
        assert all(r.ok and r.cached for r in again) and srv2.calls == 0


def test_budget_needs_a_price_for_the_model():
    with FakeMessagesServer() as srv, make_client(srv, budget_usd=1.0) as c:
        with pytest.raises(LLMConfigError, match="no price"):
            c.complete_many([LLMRequest("mystery-model", [{"role": "user", "content": "x"}])])
        assert srv.calls == 0


def test_client_config_errors_name_the_option(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(LLMConfigError, match="ANTHROPIC_API_KEY"):
        AnthropicClient()
    with pytest.raises(LLMConfigError, match="timeout"):
        AnthropicClient(api_key=KEY, timeout=0)
    with pytest.raises(LLMConfigError, match="max_retries"):
        AnthropicClient(api_key=KEY, max_retries=-1)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with AnthropicClient(base_url="http://127.0.0.1:9") as c:
        assert KEY not in repr(c)


def test_telemetry_reset_hands_out_each_count_once():
    from datacore import Telemetry

    with FakeMessagesServer(fault_fn=lambda b, n: "429" if n == 0 else None) as srv, make_client(srv) as c:
        total = Telemetry()
        for shard in range(3):
            c.complete_many([req(10 * shard + i) for i in range(4)])
            total.merge(c.telemetry(reset=True))
        assert total.counters["llm.calls"] == srv.calls == 24
        assert total.counters["llm.ok"] == 12 and total.counters["llm.retries"] == 12
        assert total.counters["llm.admission.decreases"] == c.limiter.decreases
        assert c.telemetry().counters == {}


def test_cost_from_reported_usage_matches_price_table():
    # The server reports usage; cost must be exactly tokens x list price (haiku-4-5: $1 in, $5 out per MTok).
    usage = {"input_tokens": 1000, "output_tokens": 2000}
    with (
        FakeMessagesServer(handler=lambda b: {"content": [{"type": "text", "text": "x"}], "usage": usage}) as srv,
        make_client(srv) as c,
    ):
        c.complete_many([req(i) for i in range(3)])
        t = c.telemetry().counters
        assert t["llm.input_tokens"] == 3000 and t["llm.output_tokens"] == 6000
        assert t["llm.cost_usd"] == pytest.approx(3 * (1000 * 1.0 + 2000 * 5.0) / 1e6)
        assert c.spent_usd == pytest.approx(0.033)


def test_prompt_cache_tokens_are_priced_and_replayed(tmp_path):
    # Anthropic reports cached prompt tokens beside input_tokens; writes cost 1.25x, reads 0.1x the input price.
    usage = {"input_tokens": 100, "output_tokens": 10, "cache_creation_input_tokens": 2000, "cache_read_input_tokens": 0}
    read = {"input_tokens": 100, "output_tokens": 10, "cache_read_input_tokens": 2000}
    replies = iter([usage, read])
    with (
        FakeMessagesServer(handler=lambda b: {"content": [{"type": "text", "text": "x"}], "usage": next(replies)}) as srv,
        make_client(srv, cache_dir=tmp_path / "cache", max_in_flight=1) as c,
    ):
        a, b = c.complete_many([req(1), req(2)])
        assert a.usage.cache_creation_input_tokens == 2000 and b.usage.cache_read_input_tokens == 2000
        # haiku-4-5: $1 in, $5 out per MTok; by hand: (100 + 2000 * 1.25) * 1 + 10 * 5, then (100 + 2000 * 0.1) * 1 + 10 * 5
        assert a.cost_usd == pytest.approx(2650 / 1e6) and b.cost_usd == pytest.approx(350 / 1e6)
        t = c.telemetry().counters
        assert t["llm.cache_write_tokens"] == 2000 and t["llm.cache_read_tokens"] == 2000
        assert c.spent_usd == pytest.approx(3000 / 1e6)
        again = c.complete_many([req(1)])[0]  # from the disk cache: the same usage, priced the same
        assert again.cached and again.usage == a.usage and again.cost_usd == pytest.approx(a.cost_usd)
