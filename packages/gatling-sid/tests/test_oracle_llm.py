"""Issue 17 item 8: the Anthropic oracle at scale, through datacore's fake server: prompt caching of the static
system + tools block, Message Batches mode, concurrency decoupled from the group size."""

import json
import random
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("datacore.llm.testing")

from datacore.llm import AnthropicClient  # noqa: E402
from datacore.llm.testing import FakeMessagesServer  # noqa: E402
from gatling_sid import GatlingError  # noqa: E402
from gatling_sid.anthropic_oracle import AnthropicOracle  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from llm_path import REG, Model  # noqa: E402  (the bench's fake model: a compliant identity -> get -> update graph)


def cfg(srv, tmp_path, **kw):
    base = dict(
        model="claude-3-5-haiku-latest",
        max_tokens=1024,
        batch_size=8,
        concurrency=None,
        base_url=srv.base_url,
        cache_dir=str(tmp_path / "cache"),
        budget_usd=None,
        fallback=None,
        prompt_cache=True,
        llm_mode="online",
        batch_poll_s=0.01,
    )
    return SimpleNamespace(**{**base, **kw})


def test_prompt_cache_marks_the_static_block_and_keeps_facts_out_of_it(tmp_path):
    model = Model()
    with FakeMessagesServer(handler=model, seed=1) as srv:
        with AnthropicClient(api_key="k", base_url=srv.base_url, max_in_flight=4) as client:
            oracle = AnthropicOracle(REG, cfg(srv, tmp_path), client=client)
            traces = oracle.make_traces(random.Random(3), [f"t{i}" for i in range(12)])
        bodies = [r["body"] for r in srv.requests if r["path"] == "/v1/messages"]
    assert len(traces) == 12 and all(t.meta["oracle"] == "anthropic" for t in traces)
    by_domain = {}
    for b in bodies:
        user = b["messages"][0]["content"]
        assert "TOOLS" not in user and "FACTS:" in user  # the per-trace part only
        sys_blocks = b["system"]
        assert isinstance(sys_blocks, list) and sys_blocks[-1]["cache_control"] == {"type": "ephemeral"}
        assert all("cache_control" not in x for x in sys_blocks[:-1])
        dom = re.search(r"Domain: (\w+)", user).group(1)
        assert f"TOOLS of the {dom} domain" in sys_blocks[-1]["text"]
        facts = json.loads(re.search(r"FACTS: (\{.*\})", user).group(1))
        assert facts["subject_id"] not in json.dumps(sys_blocks)  # nothing per-trace in the cached prefix
        by_domain.setdefault(dom, set()).add(json.dumps([b.get("tools"), sys_blocks], sort_keys=True))
    assert all(len(v) == 1 for v in by_domain.values())  # one byte-identical prefix per domain: cacheable


def test_without_prompt_cache_the_old_layout_is_kept(tmp_path):
    with FakeMessagesServer(handler=Model(), seed=1) as srv:
        with AnthropicClient(api_key="k", base_url=srv.base_url) as client:
            oracle = AnthropicOracle(REG, cfg(srv, tmp_path, prompt_cache=False), client=client)
            oracle.make_traces(random.Random(3), ["a", "b"])
        body = srv.requests[0]["body"]
    assert isinstance(body["system"], str) and "TOOLS:" in body["messages"][0]["content"]


def test_batch_mode_uses_message_batches_at_half_price_and_resumes(tmp_path):
    ids = [f"t{i}" for i in range(10)]
    costs = {}
    for mode in ("online", "batch"):
        with FakeMessagesServer(handler=Model(), seed=1, batch_ready_after_polls=1) as srv:
            with AnthropicClient(api_key="k", base_url=srv.base_url, cache_dir=None) as client:
                oracle = AnthropicOracle(REG, cfg(srv, tmp_path / mode, llm_mode=mode), client=client)
                traces = oracle.make_traces(random.Random(5), ids)
                costs[mode] = client.telemetry().counters.get("llm.cost_usd", 0.0)
            calls, batch_calls = srv.calls, srv.batch_calls
        assert len(traces) == 10 and all(t.meta["oracle"] == "anthropic" for t in traces)
        if mode == "batch":
            assert calls == 0 and batch_calls >= 3  # create, poll, results: no single-message call
            batch_traces = traces
        else:
            online_traces = traces
    assert [t.to_dict() for t in batch_traces] == [t.to_dict() for t in online_traces]  # same prompts, same traces
    assert costs["batch"] == pytest.approx(costs["online"] / 2, rel=1e-6)
    # the batch state under cache_dir: a re-run submits nothing new
    with FakeMessagesServer(handler=Model(), seed=1, batch_ready_after_polls=1) as srv:
        with AnthropicClient(api_key="k", base_url=srv.base_url) as client:
            oracle = AnthropicOracle(REG, cfg(srv, tmp_path / "batch", llm_mode="batch"), client=client)
            again = oracle.make_traces(random.Random(5), ids)
        assert srv.calls == 0 and srv.batch_calls == 0
    assert [t.to_dict() for t in again] == [t.to_dict() for t in batch_traces]


def test_batch_mode_rejects_an_invalid_reply_without_repair(tmp_path):
    with FakeMessagesServer(handler=lambda body: "no tool call here", seed=1, batch_ready_after_polls=1) as srv:
        with AnthropicClient(api_key="k", base_url=srv.base_url) as client:
            oracle = AnthropicOracle(REG, cfg(srv, tmp_path, llm_mode="batch", fallback="procedural"), client=client)
            out = oracle.make_traces(random.Random(1), ["x", "y"])
    assert [t.meta["oracle"] for t in out] == ["procedural-fallback"] * 2
    assert all(t.meta["fallback_reason"].startswith("llm_error") for t in out)


def test_settings_are_checked(tmp_path):
    srv = SimpleNamespace(base_url="http://127.0.0.1:9")
    with pytest.raises(GatlingError, match="llm_mode"):
        AnthropicOracle(REG, cfg(srv, tmp_path, llm_mode="bulk"))
    with pytest.raises(GatlingError, match="cache_dir"):
        AnthropicOracle(REG, cfg(srv, tmp_path, llm_mode="batch", cache_dir=None))


def test_concurrency_is_the_clients_in_flight_limit(tmp_path, monkeypatch):
    from gatling_sid import anthropic_oracle as ao

    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    with FakeMessagesServer(handler=Model(), seed=1, latency=0.05) as srv:
        c = cfg(srv, tmp_path, batch_size=24, concurrency=6)
        oracle = AnthropicOracle(REG, c)
        try:
            oracle.make_traces(random.Random(2), [f"t{i}" for i in range(24)])
            client = oracle.client
            assert client.limiter.peak_in_flight <= 6 and client.limiter.peak_in_flight >= 2
        finally:
            ao._close_clients()
