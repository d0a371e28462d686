"""OpenAIClient through the real openai SDK against the loopback FakeMessagesServer (/v1/chat/completions).

The oracles are written here by hand, sharing no code with the client: the exact request bodies
the server received (chat-completions JSON), token counts the server reports, prices multiplied
out, and jsonschema validation of structured answers.
"""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("openai")
pytest.importorskip("jsonschema")

import jsonschema  # noqa: E402
from datacore.llm import (  # noqa: E402
    AnthropicClient,
    BudgetExceeded,
    BudgetLedger,
    LLMClient,
    LLMConfigError,
    LLMRequest,
    OpenAIClient,
)
from datacore.llm.testing import FakeMessagesServer  # noqa: E402

KEY = "sk-proj-test-0123456789abcdef"
MODEL = "llama-3.1-8b-instruct"
PRICES = {"llama-3.1": (2.0, 10.0)}  # USD per MTok, a made-up price for a local model


def make_client(srv, **kw):
    opts = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, "cooldown_s": 0.05, "timeout": 5, "prices": PRICES}
    opts.update(kw)
    return OpenAIClient(api_key=KEY, base_url=srv.openai_base_url, **opts)


def req(i, **kw):
    return LLMRequest(MODEL, [{"role": "user", "content": f"question {i}"}], max_tokens=16, **kw)


def chat_bodies(srv):
    return [r["body"] for r in srv.requests if r["path"] == "/v1/chat/completions"]


def test_plain_completion_wire_format_usage_and_protocol():
    with FakeMessagesServer() as srv, make_client(srv) as c:
        assert isinstance(c, LLMClient)
        r = c.complete(req(1, system="be brief", temperature=0.3))
        assert r.ok and r.text.startswith("echo: question 1 #") and not r.cached
        assert r.model == MODEL and r.stop_reason == "end_turn" and r.attempts == 1
        assert r.content == [{"type": "text", "text": r.text}]
        body = chat_bodies(srv)[0]
        assert body == {
            "model": MODEL,
            "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "question 1"}],
            "max_tokens": 16,
            "temperature": 0.3,
        }
        assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0


def test_tools_tool_choice_and_tool_results_translate_both_ways():
    seen = []

    def handler(body):
        seen.append(body)
        if len(body["messages"]) == 1:
            return {"content": "calling", "tool_calls": [{"id": "call_1", "name": "lookup", "arguments": {"q": "x"}}]}
        return "done"

    tools = [{"name": "lookup", "description": "d", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}]
    with FakeMessagesServer(handler=handler) as srv, make_client(srv) as c:
        first = req(0, tools=tools, tool_choice={"type": "tool", "name": "lookup"})
        r = c.complete(first)
        assert r.ok and r.stop_reason == "tool_use" and r.text == "calling"
        assert r.tool_uses == [{"id": "call_1", "name": "lookup", "input": {"q": "x"}}]
        assert seen[0]["tools"] == [
            {
                "type": "function",
                "function": {"name": "lookup", "description": "d", "parameters": tools[0]["input_schema"]},
            }
        ]
        assert seen[0]["tool_choice"] == {"type": "function", "function": {"name": "lookup"}}
        # The assistant turn goes back as it came (Anthropic-style blocks), with a tool result.
        follow = LLMRequest(
            MODEL,
            [
                *first.messages,
                {"role": "assistant", "content": r.content},
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "call_1", "content": "42"},
                        {"type": "text", "text": "and now?"},
                    ],
                },
            ],
            tools=tools,
            tool_choice={"type": "any"},
        )
        assert c.complete(follow).text == "done"
        assert seen[1]["messages"][1:] == [
            {
                "role": "assistant",
                "content": "calling",
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "42"},
            {"role": "user", "content": "and now?"},
        ]
        assert seen[1]["tool_choice"] == "required"


def test_untranslatable_request_is_refused_before_sending():
    with FakeMessagesServer() as srv, make_client(srv) as c:
        bad = LLMRequest(MODEL, [{"role": "user", "content": [{"type": "document", "source": {}}]}])
        with pytest.raises(LLMConfigError, match=r"messages\[0\]\.content\[0\]\.type: 'document'"):
            c.complete(bad)
        with pytest.raises(LLMConfigError, match=r"tools\[0\]"):
            c.complete_many([req(1, tools=[{"name": "web_search", "type": "web_search_20250305"}])])
        assert srv.calls == 0


@pytest.mark.parametrize(
    "fault,kind", [("429", "rate_limit"), ("503", "overloaded"), ("500", "server"), ("malformed", "malformed")]
)
def test_transient_faults_are_retried_then_succeed(fault, kind):
    with FakeMessagesServer(fault_fn=lambda body, n: fault if n < 2 else None) as srv, make_client(srv) as c:
        r = c.complete(req(1))
        assert r.ok and r.attempts == 3 and srv.calls == 3
        t = c.telemetry()
        assert t.counters["llm.retries"] == 2 and t.histograms["llm.attempt_errors"] == {kind: 2}


@pytest.mark.parametrize("fault", ["429", "503"])
def test_retry_after_is_honoured_and_throttles_admission(fault):
    with (
        FakeMessagesServer(fault_fn=lambda body, n: fault if n == 0 else None, retry_after=0.4) as srv,
        make_client(srv) as c,
    ):
        r = c.complete(req(1))
        assert r.ok and r.attempts == 2
        assert srv.requests[1]["t"] - srv.requests[0]["t"] >= 0.4
        assert c.limiter.decreases == 1  # 429 and 503 are push-back: the in-flight limit shrank


def test_retries_are_bounded_and_client_errors_are_final():
    with FakeMessagesServer(fault_rate=1.0, faults=("503",)) as srv, make_client(srv, max_retries=2) as c:
        r = c.complete(req(1))
        assert not r.ok and r.error_kind == "overloaded" and r.attempts == 3 and srv.calls == 3
        assert "HTTP 503: injected service unavailable" in r.error
    with FakeMessagesServer() as srv, make_client(srv) as c:
        r = c.complete(LLMRequest(MODEL, [{"role": "user", "content": "x"}], tools=[{"name": "t", "input_schema": {}}]))
        assert r.ok  # sanity: the server accepts tools
    with FakeMessagesServer(handler=lambda b: 1 / 0) as srv, make_client(srv, max_retries=1) as c:
        r = c.complete(req(2))
        assert r.error_kind == "server" and "ZeroDivisionError" in r.error and r.attempts == 2


def test_insufficient_quota_is_not_retried():
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    hits = []

    class H(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["content-length"]))
            hits.append(self.path)
            body = json.dumps(
                {"error": {"message": f"quota gone for {KEY}", "type": "insufficient_quota", "code": "insufficient_quota"}}
            )
            self.send_response(429)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *a):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with OpenAIClient(api_key=KEY, base_url=f"http://127.0.0.1:{httpd.server_address[1]}/v1", backoff_base_s=0.01) as c:
            r = c.complete(req(1))
        assert r.error_kind == "quota" and r.attempts == 1 and hits == ["/v1/chat/completions"]
        assert KEY not in r.error and "[redacted]" in r.error
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_timeout_is_retried_and_bounded():
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


def test_many_under_faults_keeps_order_and_loses_nothing():
    n = 120
    with (
        FakeMessagesServer(fault_rate=0.25, faults=("429", "503", "500"), latency=0.002, seed=5) as srv,
        make_client(srv, max_in_flight=12, max_retries=10) as c,
    ):
        rs = c.complete_many([req(i) for i in range(n)])
        assert [r.text.split(" #")[0] for r in rs] == [f"echo: question {i}" for i in range(n)]
        assert all(r.ok for r in rs)
        assert srv.replied == n and srv.calls == n + sum(srv.faults_injected.values())
        assert c.limiter.peak_in_flight <= 12


def test_cache_rerun_makes_zero_calls_and_prices_the_same(tmp_path):
    usage = {"prompt_tokens": 1000, "completion_tokens": 300}

    def handler(body):
        return {"content": "answer to " + body["messages"][-1]["content"], "usage": usage}

    expect_each = (1000 * 2.0 + 300 * 10.0) / 1e6  # tokens x PRICES, by hand
    reqs = [req(i) for i in range(6)]
    once = lambda body, n: ("429", "503")[len(body["messages"][-1]["content"]) % 2] if n == 0 else None  # noqa: E731
    with FakeMessagesServer(handler=handler, fault_fn=once) as srv:
        with make_client(srv, cache_dir=tmp_path / "cache") as c:
            first = c.complete_many(reqs)
            t1 = c.telemetry().counters
            calls = srv.calls
        assert calls == 12  # every request was throttled once, then answered
        with make_client(srv, cache_dir=tmp_path / "cache") as c2:
            again = c2.complete_many(reqs)
            t2 = c2.telemetry().counters
        assert srv.calls == calls  # zero calls on the re-run
    assert [r.text for r in again] == [r.text for r in first] and all(r.cached for r in again)
    assert [r.cost_usd for r in first] == [r.cost_usd for r in again] == [pytest.approx(expect_each)] * 6
    assert t1["llm.cost_usd"] == pytest.approx(6 * expect_each) and "llm.cost_usd" not in t2  # money spent: once
    assert t1["llm.priced_usd"] == pytest.approx(t2["llm.priced_usd"]) == pytest.approx(6 * expect_each)
    assert t2["llm.saved_usd"] == pytest.approx(6 * expect_each) and t2["llm.cache_hits"] == 6 and "llm.calls" not in t2
    assert c2.priced_usd == pytest.approx(c.priced_usd) and c2.spent_usd == 0.0


def test_backends_do_not_share_cache_entries(tmp_path):
    r = LLMRequest("claude-haiku-4-5", [{"role": "user", "content": "same request"}], max_tokens=8)
    with FakeMessagesServer() as srv:
        with make_client(srv, cache_dir=tmp_path) as oa:
            assert oa.complete(r).ok
        with AnthropicClient(api_key=KEY, base_url=srv.base_url, cache_dir=tmp_path) as an:
            a = an.complete(r)
        assert a.ok and not a.cached and srv.calls == 2
        assert [q["path"] for q in srv.requests] == ["/v1/chat/completions", "/v1/messages"]


def test_budget_refusal_and_ledger(tmp_path):
    prices = {"toy-model": (1e6, 0.0)}  # 1 USD per input token: every call costs >= 1 USD
    reqs = [LLMRequest("toy-model", [{"role": "user", "content": f"q{i}"}], max_tokens=4) for i in range(10)]
    with (
        FakeMessagesServer(handler=lambda b: {"content": "ok", "usage": {"prompt_tokens": 1, "completion_tokens": 1}}) as srv,
        make_client(srv, budget_usd=3.5, prices=prices, max_in_flight=1) as c,
    ):
        rs = c.complete_many(reqs)
        assert [r.ok for r in rs] == [True] * 4 + [False] * 6  # 1 USD each: the 4th call passes 3.5, then refusal
        assert all(r.error_kind == "budget" for r in rs[4:]) and srv.calls == 4
        assert c.spent_usd == pytest.approx(4.0)
        with pytest.raises(BudgetExceeded):
            c.complete(reqs[-1])
        with pytest.raises(LLMConfigError, match="no price"):
            c.complete(LLMRequest("unpriced-local", [{"role": "user", "content": "x"}]))
        assert srv.calls == 4
    led = BudgetLedger.create(tmp_path / "ledger.json", 2.0)
    with (
        FakeMessagesServer(handler=lambda b: {"content": "ok", "usage": {"prompt_tokens": 1, "completion_tokens": 1}}) as srv,
        make_client(srv, prices=prices, max_in_flight=1, ledger=led) as a,
        make_client(srv, prices=prices, max_in_flight=1, ledger=led) as b,
    ):
        assert a.complete(reqs[0]).ok and b.complete(reqs[1]).ok
        assert b.complete_many([reqs[2]])[0].error_kind == "budget"  # the run's ledger, both clients together
        assert led.spent_usd == pytest.approx(2.0) and srv.calls == 2


SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("method", ["tool", "json_schema"])
def test_structured_output_with_one_repair_round(method):
    def handler(body):
        repairing = len(body["messages"]) > 1
        obj = {"name": "Ada", "age": 36} if repairing else {"name": "Ada", "age": -1}
        if method == "tool":
            assert body["tool_choice"] == {"type": "function", "function": {"name": "emit_json"}}
            assert body["tools"][0]["function"]["parameters"] == SCHEMA
            return {"tool_calls": [{"name": "emit_json", "arguments": obj}]}
        assert body["response_format"] == {
            "type": "json_schema",
            "json_schema": {"name": "emit_json", "schema": SCHEMA, "strict": False},
        }
        return json.dumps(obj)

    with FakeMessagesServer(handler=handler) as srv, make_client(srv) as c:
        obj, resp = c.complete_json(req(1), SCHEMA, method=method)
        jsonschema.validate(obj, SCHEMA)
        assert obj == {"name": "Ada", "age": 36} and resp.ok and srv.calls == 2
        repair = chat_bodies(srv)[1]["messages"]
        if method == "tool":  # the invalid call went back as the assistant's tool call, the complaint as a tool message
            assert json.loads(repair[1]["tool_calls"][0]["function"]["arguments"]) == {"name": "Ada", "age": -1}
            assert repair[2]["role"] == "tool" and "age: -1 is less than the minimum of 0" in repair[2]["content"]
        else:
            assert repair[1] == {"role": "assistant", "content": '{"name": "Ada", "age": -1}'}
            assert "age: -1 is less than the minimum of 0" in repair[2]["content"]
        t = c.telemetry().counters
        assert t["llm.json.repairs"] == 1 and t["llm.json.repaired"] == 1


def test_structured_output_still_invalid_and_unparsable_arguments():
    def handler(body):
        return {"tool_calls": [{"name": "emit_json", "arguments": '{"name": "Ada", "age": '}]}  # truncated JSON

    with FakeMessagesServer(handler=handler) as srv, make_client(srv) as c:
        obj, resp = c.complete_json(req(1), SCHEMA, method="tool")
        assert obj is None and resp.error_kind == "schema" and srv.calls == 2
        assert chat_bodies(srv)[1]["messages"][1]["tool_calls"][0]["function"]["arguments"] == '{"name": "Ada", "age": '
        assert c.telemetry().counters["llm.json.failed"] == 1
        with pytest.raises(LLMConfigError, match="method"):
            c.complete_json(req(2), SCHEMA, method="xml")
    with FakeMessagesServer() as srv, AnthropicClient(api_key=KEY, base_url=srv.base_url) as an:
        with pytest.raises(LLMConfigError, match="json_schema"):
            an.complete_json(req(1), SCHEMA, method="json_schema")
        assert srv.calls == 0


def test_switching_backend_is_one_argument():
    # The same requests and the same calls on either backend: only the class differs.
    reqs = [req(i, system="s") for i in range(4)]
    with FakeMessagesServer(handler=lambda b: "same answer") as srv:
        outs = {}
        for cls, url in ((AnthropicClient, srv.base_url), (OpenAIClient, srv.openai_base_url)):
            with cls(api_key=KEY, base_url=url, prices=PRICES) as c:
                outs[cls.__name__] = [(r.ok, r.text, r.stop_reason) for r in c.complete_many(reqs)]
        assert outs["AnthropicClient"] == outs["OpenAIClient"] == [(True, "same answer", "end_turn")] * 4


def test_config_key_and_secrets(monkeypatch, tmp_path, capfd):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(LLMConfigError, match="OPENAI_API_KEY"):
        OpenAIClient()
    with pytest.raises(LLMConfigError, match="OpenAIClient.timeout"):
        OpenAIClient(api_key=KEY, timeout=0)
    with FakeMessagesServer() as srv:
        with OpenAIClient(base_url=srv.openai_base_url) as local:  # a local server needs no key
            assert local.complete(req(1)).ok
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        with OpenAIClient(base_url=srv.openai_base_url, cache_dir=tmp_path, prices=PRICES) as c:
            assert KEY not in repr(c)
            c.complete_many([req(i) for i in range(3)])
            with pytest.raises(TypeError, match="pickled"):
                import pickle

                pickle.dumps(c)
            tel = json.dumps(c.telemetry().to_dict())
    written = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    out, err = capfd.readouterr()
    assert KEY not in written + tel + out + err
    assert all(KEY not in json.dumps(r["body"]) for r in srv.requests)


@pytest.mark.parametrize("backend", ["anthropic", "openai"])
def test_cache_hits_and_duplicates_are_priced_like_the_network_reply_on_both_backends(backend, tmp_path):
    # Usage the server reports, priced by hand: a cache hit or an in-flight duplicate costs what its reply cost.
    if backend == "anthropic":
        reply = {"content": [{"type": "text", "text": "x"}], "usage": {"input_tokens": 500, "output_tokens": 100}}
    else:
        reply = {"content": "x", "usage": {"prompt_tokens": 500, "completion_tokens": 100}}
    each = (500 * 2.0 + 100 * 10.0) / 1e6
    reqs = [req(i % 3) for i in range(6)]  # each of 3 requests twice, at once: 3 calls, 3 duplicates
    with FakeMessagesServer(handler=lambda b: reply, latency=0.05) as srv:
        url = srv.base_url if backend == "anthropic" else srv.openai_base_url
        cls = AnthropicClient if backend == "anthropic" else OpenAIClient
        with cls(api_key=KEY, base_url=url, prices=PRICES, cache_dir=tmp_path) as c:
            first = c.complete_many(reqs)
            assert srv.calls == 3 and c.telemetry().counters["llm.dedup_hits"] == 3
            assert c.spent_usd == pytest.approx(3 * each) and c.priced_usd == pytest.approx(6 * each)
        with cls(api_key=KEY, base_url=url, prices=PRICES, cache_dir=tmp_path) as c2:
            again = c2.complete_many(reqs)
            assert srv.calls == 3 and c2.spent_usd == 0.0 and c2.priced_usd == pytest.approx(6 * each)
    assert [r.cost_usd for r in first] == [r.cost_usd for r in again] == [pytest.approx(each)] * 6


def test_batch_runner_refuses_the_openai_backend(tmp_path):
    from datacore.llm import BatchRunner

    with FakeMessagesServer() as srv, make_client(srv) as c:
        with pytest.raises(LLMConfigError, match="BatchRunner.client: Message Batches are an Anthropic API"):
            BatchRunner(c, tmp_path / "state.json")
    assert not (tmp_path / "state.json").exists()


def test_reply_without_usage_is_counted_not_silent():
    from datacore.llm.testing import FakeMessagesServer as Srv

    class NoUsage(Srv):
        def build_chat_completion(self, body, h):
            out = super().build_chat_completion(body, h)
            del out["usage"]
            return out

    with NoUsage() as srv, make_client(srv) as c:
        r = c.complete(req(1))
        assert r.ok and r.usage.input_tokens == 0 and r.cost_usd == 0.0
        assert c.telemetry().counters["llm.usage_missing"] == 1


def test_cache_keys_written_out_by_hand(tmp_path):
    import hashlib

    r = LLMRequest(MODEL, [{"role": "user", "content": "q"}], max_tokens=8, temperature=0.5)
    fields = {
        "model": MODEL,
        "system": None,
        "messages": [{"role": "user", "content": "q"}],
        "max_tokens": 8,
        "temperature": 0.5,
        "tools": None,
        "tool_choice": None,
    }

    def sha(obj):
        return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    assert r.cache_key() == sha(fields)  # the Anthropic key is what it was before the OpenAI backend
    with FakeMessagesServer() as srv, make_client(srv, cache_dir=tmp_path) as c:
        assert c.complete(r).ok
    want = sha({"protocol": "openai-chat-completions", "request": fields})
    assert [p.stem for p in tmp_path.glob("??/*.json")] == [want]
    fmt = {"type": "json_object"}
    assert LLMRequest(MODEL, r.messages, response_format=fmt).key_fields()["response_format"] == fmt


def test_async_and_many_structured_calls():
    import asyncio

    with FakeMessagesServer(handler=lambda b: json.dumps({"name": "x", "age": len(b["messages"][-1]["content"])})) as srv:
        with make_client(srv) as c:
            outs = c.complete_json_many([req(i) for i in range(3)], SCHEMA, method="json_schema")
            assert [o for o, _ in outs] == [{"name": "x", "age": len("question 0")}] * 3

            async def main():
                return await asyncio.gather(c.acomplete(req(7)), c.acomplete_json(req(8), SCHEMA, method="json_schema"))

            plain, (obj, _) = asyncio.run(main())
            assert plain.text == json.dumps({"name": "x", "age": len("question 7")}) and obj["age"] == len("question 8")
