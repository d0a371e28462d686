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
    sys_text = body["system"] if isinstance(body["system"], str) else "".join(b["text"] for b in body["system"])
    assert "Policy" in sys_text and ("TOOLS:" in user or "TOOLS of the" in sys_text)
    h = int(hashlib.sha256(user.encode()).hexdigest()[:8], 16)
    d = REG.domain(domain)
    subj, ent = f"{d.subject}_id", f"{d.entity}_id"
    calls = []
    if h % 6 != 0:  # identity first
        calls.append(
            {
                "id": "call_1",
                "tool": d.roles["identity"],
                "arguments": {subj: facts["subject_id"], "date_of_birth": facts["dob"], "last4": facts["last4"]},
                "dependencies": [],
            }
        )
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
    text = (
        f"hello, this is {facts['name']} ({facts['subject_id']}, born {facts['dob']}, last four {facts['last4']}) - "
        f"please set {facts['field_key']} on {facts['entity_id']} (model #{h % 997})"
    )
    return {
        "content": [
            {"type": "tool_use", "id": f"toolu_{h % 100000}", "name": TOOL_NAME, "input": {"request": text, "calls": calls}}
        ]
    }


def _assert_key_nowhere(root, key):
    """Every file under root (dataset, report, telemetry, response cache) is free of the key."""
    n = 0
    for p in root.rglob("*"):
        if p.is_file():
            n += 1
            assert key.encode() not in p.read_bytes(), p
    assert n > 0


def test_oracle_through_fake_server_with_faults(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    with FakeMessagesServer(handler=fake_model, fault_rate=0.2, faults=("429", "529"), seed=1) as srv:
        cfg = GatlingConfig(
            oracle="anthropic",
            base_url=srv.base_url,
            cache_dir=str(tmp_path / "cache"),
            batch_size=8,
            fallback="procedural",
            negatives=0.2,
        )
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
        _assert_key_nowhere(tmp_path, "test-key")

        # same config again: the response cache answers everything, the dataset is byte-identical
        build_dataset(
            GatlingGenerator(cfg), tmp_path / "b", 60, seed=5, workers=1, executor="inline", shard_size=30, progress=False
        )
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


def test_malformed_model_references_are_counted_rejections():
    """A reply whose $ref is not a string, not '<call>.output.<path>', or points nowhere must not crash the shard."""
    bad_refs = [5, "nonsense", "call_1.output.0.x", None, ["call_1"]]

    def model(body):
        user = body["messages"][0]["content"]
        domain = re.search(r"Domain: (\w+)", user).group(1)
        facts = json.loads(re.search(r"FACTS: (\{.*\})", user).group(1))
        d = REG.domain(domain)
        ent = f"{d.entity}_id"
        h = int(hashlib.sha256(user.encode()).hexdigest()[:8], 16)
        calls = [
            {"id": "call_1", "tool": d.roles["get"], "arguments": {ent: facts["entity_id"]}, "dependencies": []},
            {
                "id": "call_2",
                "tool": d.roles["get"],
                "arguments": {ent: {"$ref": bad_refs[h % len(bad_refs)]}},
                "dependencies": ["call_1"],
            },
        ]
        return {
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": TOOL_NAME,
                    "input": {"request": f"please look at {facts['entity_id']} for me", "calls": calls},
                }
            ]
        }

    import random

    with FakeMessagesServer(handler=model) as srv, AnthropicClient(api_key="test-key", base_url=srv.base_url) as client:
        oracle = AnthropicOracle(REG, GatlingConfig(oracle="anthropic", fallback="procedural"), client=client)
        from datacore import Telemetry

        tel = Telemetry()
        traces = oracle.make_traces(random.Random(1), [f"m{i}" for i in range(30)], tel)
    assert len(traces) == 30 and all(t.meta["oracle"] == "procedural-fallback" for t in traces)
    assert tel.counters["anthropic.rejected"] == 30
    reasons = tel.histograms["anthropic.rejected_reason"]
    assert set(reasons) <= {"unusable:TraceFormatError", "unusable:AttributeError", "unusable:KeyError", "policy_or_schema"}
    assert reasons.get("unusable:TraceFormatError") and reasons.get("unusable:AttributeError")
    v = TraceValidator(REG)
    assert all(v.validate(t).ok for t in traces)


def test_budget_stops_the_run_and_resume_finishes_it(tmp_path, monkeypatch):
    """budget_usd spans the shards of a worker; once spent the run stops, finished shards and paid answers are kept."""
    from datacore import DatacoreError

    key = "sk-ant-budget-test-0123456789"
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    out = tmp_path / "d"
    with FakeMessagesServer(handler=fake_model) as srv:
        # Measure one call's price, then allow a bit more than two shards' worth (a shard = 4 calls at once).
        base = GatlingConfig(oracle="anthropic", base_url=srv.base_url, cache_dir=str(tmp_path / "cache"), batch_size=4)
        with AnthropicClient(base_url=srv.base_url) as probe:
            oracle = AnthropicOracle(REG, base, client=probe)
            import random

            oracle.make_traces(random.Random(0), ["probe"])
            per_call = probe.spent_usd
        assert per_call > 0
        calls0 = srv.calls
        cfg = GatlingConfig(
            oracle="anthropic",
            base_url=srv.base_url,
            cache_dir=str(tmp_path / "cache"),
            batch_size=4,
            budget_usd=per_call * 9,
            fallback="procedural",
        )
        with pytest.raises(DatacoreError, match=r"shard \d+: budget exceeded"):
            build_dataset(GatlingGenerator(cfg), out, 40, seed=2, workers=1, executor="inline", shard_size=4, progress=False)
        # A per-shard budget would have let all 10 shards (40+ calls) through; a silent fallback would have finished.
        assert 8 <= srv.calls - calls0 < 40
        assert not (out / "dataset.json").exists()
        done = [p for p in out.rglob("*.jsonl") if p.stat().st_size]
        assert done  # the shards made before the budget ran out are on disk
        paid = {r["hash"] for r in srv.requests[calls0:]}
        before = srv.calls
        # Resume with room to finish: the answers already paid for come from the cache.
        cfg2 = GatlingConfig(
            oracle="anthropic",
            base_url=srv.base_url,
            cache_dir=str(tmp_path / "cache"),
            batch_size=4,
            budget_usd=per_call * 1000,
            fallback="procedural",
        )
        res = build_dataset(
            GatlingGenerator(cfg2), out, 40, seed=2, workers=1, executor="inline", shard_size=4, progress=False, resume=True
        )
        assert res.records == 40
        assert not paid & {r["hash"] for r in srv.requests[before:]}  # nothing paid for was asked again
        recs = [r for p in sorted(out.rglob("*.jsonl")) for r in read_jsonl(p)]
        assert len(recs) == 40 and not [r for r in recs if r["meta"].get("fallback_reason") == "llm_error:budget"]
    _assert_key_nowhere(tmp_path, key)


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_base_url_fails_fast_with_one_line(tmp_path):
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    exe = Path(sys.executable).parent / "gatling-sid"
    env = {**os.environ, "ANTHROPIC_API_KEY": "test-key", "DATACORE_NO_PROGRESS": "1"}
    url = f"http://127.0.0.1:{_free_port()}"
    t0 = time.monotonic()
    res = subprocess.run(
        [
            str(exe),
            "generate",
            "--oracle",
            "anthropic",
            "--base-url",
            url,
            "--out",
            str(tmp_path / "o"),
            "-n",
            "10",
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode != 0 and "Traceback" not in res.stderr
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "unreachable" in lines[0] and url in lines[0] and "--fallback procedural" in lines[0]
    assert time.monotonic() - t0 < 30
    assert not (tmp_path / "o" / "dataset.json").exists()
    # allowed explicitly: the run finishes and the fallback is recorded in the manifest and in every record
    res = subprocess.run(
        [
            str(exe),
            "generate",
            "--oracle",
            "anthropic",
            "--base-url",
            url,
            "--out",
            str(tmp_path / "f"),
            "-n",
            "6",
            "--workers",
            "1",
            "--fallback",
            "procedural",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    man = json.loads((tmp_path / "f" / "dataset.json").read_text())
    assert json.dumps(man).count('"fallback": "procedural"') >= 1
    recs = [r for p in sorted((tmp_path / "f").rglob("*.jsonl")) for r in read_jsonl(p)]
    assert len(recs) == 6 and all(r["meta"]["oracle"] == "procedural-fallback" for r in recs)
    assert all(r["meta"]["fallback_reason"].startswith("llm_error:") for r in recs)


def test_without_fallback_rejected_replies_are_dropped_and_counted(tmp_path):
    import random

    from datacore import Telemetry

    with FakeMessagesServer(handler=fake_model) as srv, AnthropicClient(api_key="test-key", base_url=srv.base_url) as client:
        oracle = AnthropicOracle(REG, GatlingConfig(oracle="anthropic"), client=client)
        tel = Telemetry()
        traces = oracle.make_traces(random.Random(0), [f"x{i}" for i in range(24)], tel)
    assert traces and all(t.meta["oracle"] == "anthropic" for t in traces)
    assert len(traces) + tel.counters["anthropic.rejected"] == 24 and tel.counters["anthropic.rejected"] > 0


# the 0.2 manifest config of a procedural run, before the LLM-path settings were declared
_PROCEDURAL_KEYS = {
    "oracle",
    "negatives",
    "domains",
    "with_messages",
    "registry_dir",
    "model",
    "max_tokens",
    "batch_size",
    "base_url",
    "cache_dir",
    "fallback",
    "dialogues",
}


def test_llm_path_settings_are_config_fields(monkeypatch):
    from datacore import ConfigError

    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    from gatling_sid.anthropic_oracle import LLM_MODES
    from gatling_sid.generator import LLM_MODES as CONFIG_LLM_MODES

    assert CONFIG_LLM_MODES == LLM_MODES
    cfg = GatlingConfig()
    assert (cfg.concurrency, cfg.llm_mode, cfg.prompt_cache, cfg.batch_poll_s) == (None, "online", True, 30.0)
    # a procedural run's manifest is unchanged: the settings do nothing there
    assert set(GatlingGenerator(cfg).config_dict()) == _PROCEDURAL_KEYS
    d = GatlingGenerator(GatlingConfig(oracle="anthropic", concurrency=4, prompt_cache=False)).config_dict()
    assert (d["concurrency"], d["llm_mode"], d["prompt_cache"]) == (4, "online", False) and "batch_poll_s" not in d
    for bad in (
        {"concurrency": 0},
        {"concurrency": True},
        {"llm_mode": "bulk"},
        {"prompt_cache": "yes"},
        {"batch_poll_s": 0},
        {"batch_poll_s": float("nan")},
    ):
        with pytest.raises(ConfigError, match=f"GatlingConfig.{next(iter(bad))}"):
            GatlingConfig(**bad)
    from gatling_sid import GatlingError

    with pytest.raises(GatlingError, match="--cache-dir"):
        GatlingGenerator(GatlingConfig(oracle="anthropic", llm_mode="batch"))


def test_cli_passes_llm_path_settings_into_the_config(tmp_path, monkeypatch):
    from click.testing import CliRunner
    from gatling_sid.cli import main

    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.setenv("DATACORE_NO_PROGRESS", "1")
    systems = []

    def model(body):
        systems.append(body["system"])
        return fake_model(body)

    with FakeMessagesServer(handler=model) as srv:
        args = ["generate", "--oracle", "anthropic", "--base-url", srv.base_url, "-n", "6", "--workers", "1"]
        args += ["--fallback", "procedural", "--concurrency", "3", "--no-prompt-cache"]
        res = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "o")])
        assert res.exit_code == 0, res.output
    cfg = json.loads((tmp_path / "o" / "dataset.json").read_text())["spec"]["config"]
    assert (cfg["concurrency"], cfg["llm_mode"], cfg["prompt_cache"]) == (3, "online", False)
    assert systems and all(isinstance(s, str) for s in systems)  # no cache_control blocks without the prompt cache
    res = CliRunner().invoke(main, ["generate", "--concurrency", "0", "-n", "2", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "--concurrency" in res.output
