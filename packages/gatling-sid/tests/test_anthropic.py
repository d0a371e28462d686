"""AnthropicOracle through datacore's FakeMessagesServer (a real HTTP server speaking the Messages API)."""

import hashlib
import json
import re

import pytest

pytest.importorskip("datacore.llm.testing")

from datacore import build_dataset, read_jsonl  # noqa: E402
from datacore.llm import AnthropicClient  # noqa: E402
from datacore.llm.structured import TOOL_NAME  # noqa: E402
from datacore.llm.testing import FakeMessagesServer  # noqa: E402
from gatling_sid import DomainRegistry, GatlingConfig, GatlingGenerator, TraceValidator  # noqa: E402
from gatling_sid.anthropic_oracle import AnthropicOracle  # noqa: E402

REG = DomainRegistry.load()


def fake_model(body):
    """A 'model' that writes a compliant update graph 2 times in 3, skips identity 1 in 6, and babbles 1 in 6."""
    user = body["messages"][0]["content"]
    domain = re.search(r"Domain: (\w+)", user).group(1)
    facts = json.loads(re.search(r"FACTS: (\{.*\})", user).group(1))
    assert "TOOLS:" in user and "Policy" in body["system"]
    h = int(hashlib.sha256(user.encode()).hexdigest()[:8], 16)
    d = REG.domain(domain)
    subj, ent = f"{d.subject}_id", f"{d.entity}_id"
    calls = []
    if h % 6 != 0:  # identity first
        calls.append({"id": "call_1", "tool": d.roles["identity"],
                      "arguments": {subj: facts["subject_id"], "date_of_birth": facts["dob"], "last4": facts["last4"]},
                      "dependencies": []})
    n = len(calls)
    calls.append({"id": f"call_{n + 1}", "tool": d.roles["get"], "arguments": {ent: facts["entity_id"]}, "dependencies": []})
    args = {ent: {"$ref": f"call_{n + 1}.output.{ent}"}, facts["field_key"]: facts["value_raw"]}
    deps = [f"call_{n + 1}"]
    if n:
        args["verification_token"] = {"$ref": "call_1.output.session_token"}
        deps.insert(0, "call_1")
    calls.append({"id": f"call_{n + 2}", "tool": d.roles["update"], "arguments": args, "dependencies": deps})
    if h % 6 == 1:
        return "I would rather chat about the weather."  # not a tool call: repaired once, then rejected
    text = f"hello, this is {facts['name']} - please set {facts['field_key']} on {facts['entity_id']} (model #{h % 997})"
    return {"content": [{"type": "tool_use", "id": f"toolu_{h % 100000}", "name": TOOL_NAME,
                         "input": {"request": text, "calls": calls}}]}


def test_oracle_through_fake_server_with_faults(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    with FakeMessagesServer(handler=fake_model, fault_rate=0.2, faults=("429", "529"), seed=1) as srv:
        cfg = GatlingConfig(oracle="anthropic", base_url=srv.base_url, cache_dir=str(tmp_path / "cache"), batch_size=8,
                            negatives=0.2)
        gen = GatlingGenerator(cfg)
        res = build_dataset(gen, tmp_path / "a", 60, seed=5, workers=1, executor="inline", shard_size=30, progress=False)
        assert sum(srv.faults_injected.values()) > 0
        first_calls = srv.calls
        recs = [r for p in sorted((tmp_path / "a").rglob("*.jsonl")) for r in read_jsonl(p)]
        assert len(recs) == 60
        gold = [r for r in recs if r["label"] == "gold"]
        by_oracle = {}
        for r in gold:
            by_oracle.setdefault(r["meta"]["oracle"], []).append(r)
        assert by_oracle.get("anthropic") and by_oracle.get("procedural-fallback")
        for r in by_oracle["anthropic"]:
            assert r["request"]["text"].startswith("hello, this is") and r["meta"]["model"] == cfg.model
        reasons = {r["meta"]["fallback_reason"] for r in by_oracle["procedural-fallback"]}
        assert "policy_or_schema" in reasons  # the identity-skipping graphs were caught by the validator
        assert any(x.startswith("llm_error") for x in reasons)  # the babbling replies failed the JSON contract
        tel = res.telemetry.counters
        assert tel["anthropic.requests"] == tel["anthropic.accepted"] + tel["anthropic.rejected"]
        assert res.telemetry.histograms["anthropic.rejected_rule"].get("identity_before_write", 0) > 0
        assert "test-key" not in (tmp_path / "a" / "dataset.json").read_text()
        assert "test-key" not in (tmp_path / "a" / "telemetry.json").read_text()

        # same config again: the response cache answers everything, the dataset is byte-identical
        build_dataset(GatlingGenerator(cfg), tmp_path / "b", 60, seed=5, workers=1, executor="inline", shard_size=30,
                      progress=False)
        assert srv.calls == first_calls
        for p in sorted((tmp_path / "a").rglob("*.jsonl")):
            assert p.read_bytes() == (tmp_path / "b" / p.relative_to(tmp_path / "a")).read_bytes()


def test_every_model_trace_passes_the_validator(tmp_path):
    with FakeMessagesServer(handler=fake_model) as srv:
        client = AnthropicClient(api_key="test-key", base_url=srv.base_url)
        oracle = AnthropicOracle(REG, GatlingConfig(oracle="anthropic"), client=client)
        import random

        traces = oracle.make_traces(random.Random(0), [f"x{i}" for i in range(24)])
        v = TraceValidator(REG)
        assert all(v.validate(t).ok for t in traces)
        assert any(t.meta["oracle"] == "anthropic" for t in traces)
        client.close()
