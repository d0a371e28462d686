"""The LLM user simulator (issue 17 item 4) through datacore's loopback fake server (Messages and chat-completions).

The fake 'user model' reads the note of each request (what the turn must get across) and the hidden facts in the
system prompt, and answers in its own words most of the time; sometimes it invents a detail, reveals a hidden fact
early, leaves out a detail a call needs, or says nothing useful.  Checked here: accepted dialogues carry the model's turns and still validate and
grade by re-execution; every failure is counted and keeps procedural turns with its reason in the lineage; a
re-run with the cache asks nothing and writes the same bytes; an unreachable server fails with one line.
"""

import hashlib
import json
import random
import re

import pytest

pytest.importorskip("datacore.llm.testing")

from datacore import Telemetry, build_dataset, read_jsonl  # noqa: E402
from datacore.llm import OpenAIClient  # noqa: E402
from datacore.llm.testing import FakeMessagesServer  # noqa: E402
from gatling_sid import GatlingConfig, GatlingError, GatlingGenerator, GoldTrace, TraceValidator  # noqa: E402
from gatling_sid.dialogue import BEHAVIOURS, DialogueMaker  # noqa: E402
from gatling_sid.state import grade  # noqa: E402
from gatling_sid.user_sim import LLMUserSimulator  # noqa: E402

NOTE = re.compile(r"\(Note for your next message: it must get across: (.*)\)\s*$", re.S)


def _system(body):
    if "system" in body:  # Messages API
        s = body["system"]
        return s if isinstance(s, str) else "".join(b["text"] for b in s)
    return next(m["content"] for m in body["messages"] if m["role"] == "system")  # chat completions


def _last_user(body):
    m = [x for x in body["messages"] if x["role"] == "user"][-1]["content"]
    return m if isinstance(m, str) else "".join(b.get("text", "") for b in m)


def fake_user(body):
    sys_text = _system(body)
    assert "You play a customer" in sys_text and "Hidden facts" in sys_text
    facts = json.loads(re.search(r"Hidden facts \(.*?\): (\{.*?\})\n", sys_text).group(1))
    note = NOTE.search(_last_user(body)).group(1)
    h = int(hashlib.sha256(_last_user(body).encode()).hexdigest()[:8], 16) % 10
    if h == 7:  # invents a date of birth (or a reference) that is nowhere in the facts
        return (
            re.sub(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", "1901-01-01", note)
            if re.search(r"\d{4}-\d\d-\d\d", note)
            else note + " Ref REF-99999."
        )
    if h == 8 and facts.get("date_of_birth") and facts["date_of_birth"] not in note:
        return f"{note} (born {facts['date_of_birth']})"  # a hidden fact before it is asked for
    if h == 9:
        return "Hmm, let me think about it."  # drops whatever the turn had to say
    if h in (5, 6) and facts.get("last4") and facts["last4"] in note:
        return "Hello there - " + note.replace(facts["last4"], "(I forget)")  # a detail a call needs goes missing
    return f"Hello there - {note}"


def _golds(root):
    recs = [r for p in sorted(root.rglob("*.jsonl")) for r in read_jsonl(p)]
    return [r for r in recs if r["label"] == "gold"]


def test_llm_user_turns_are_kept_checked_and_cached(tmp_path, monkeypatch, registry):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    with FakeMessagesServer(handler=fake_user, fault_rate=0.1, faults=("429",), seed=2) as srv:
        cfg = GatlingConfig(dialogues=1.0, user_simulator="anthropic", base_url=srv.base_url, cache_dir=str(tmp_path / "c"))
        res = build_dataset(GatlingGenerator(cfg), tmp_path / "a", 48, seed=4, workers=1, executor="inline", progress=False)
        calls = srv.calls
        assert calls > 48
        golds = _golds(tmp_path / "a")
        assert len(golds) == 48
        kinds = {}
        for r in golds:
            us = r["meta"]["user_simulator"]
            kinds.setdefault(us["kind"], []).append(r)
        assert set(kinds) == {"anthropic", "procedural-fallback"}
        v = TraceValidator(registry)
        for r in kinds["anthropic"]:
            tr = GoldTrace.from_dict(r)
            users = [t["text"] for t in r["meta"]["dialogue"]["turns"] if t["role"] == "user"]
            assert r["request"]["text"] == users[0]
            assert all(u.startswith("Hello there - ") or "(born " in u for u in users), users
            assert v.validate(tr).ok and grade(registry, tr).ok, r["trace_id"]
        reasons = {r["meta"]["user_simulator"]["reason"].split(":", 1)[0] for r in kinds["procedural-fallback"]}
        assert {"invented_detail", "validator"} <= reasons and reasons & {"off_topic", "wrong_answer"}, reasons
        for r in kinds["procedural-fallback"]:  # procedural turns, still gold
            assert v.validate(GoldTrace.from_dict(r)).ok
        tel = res.telemetry
        c = tel.counters
        assert c["user_sim.requests"] == 48 == c["user_sim.accepted"] + c["user_sim.rejected"]
        assert c["user_sim.rejected"] == len(kinds["procedural-fallback"])
        assert set(tel.histograms["user_simulator"]) == {"anthropic", "procedural-fallback"}
        # the same config again: every answer from the cache, byte-identical files
        build_dataset(GatlingGenerator(cfg), tmp_path / "b", 48, seed=4, workers=1, executor="inline", progress=False)
        assert srv.calls == calls
        for p in sorted((tmp_path / "a").rglob("*.jsonl")):
            assert p.read_bytes() == (tmp_path / "b" / p.relative_to(tmp_path / "a")).read_bytes()


def test_revealing_a_hidden_fact_early_is_caught(registry, oracle):
    """ask_missing: the user model gives the date of birth in the first message, before the agent asks."""
    dm = DialogueMaker(oracle)
    rng = random.Random(3)
    traces = [dm.make(rng, f"am{i}", "ask_missing") for i in range(6)]

    def early(body):
        sys_text = _system(body)
        facts = json.loads(re.search(r"Hidden facts \(.*?\): (\{.*?\})\n", sys_text).group(1))
        return f"{NOTE.search(_last_user(body)).group(1)} By the way I was born {facts['date_of_birth']}."

    with FakeMessagesServer(handler=early) as srv:
        from datacore.llm import AnthropicClient

        sim = LLMUserSimulator(
            registry, GatlingConfig(), client=AnthropicClient(api_key="k", base_url=srv.base_url), kind="anthropic"
        )
        tel = Telemetry()
        out = sim.rewrite_many(traces, tel)
        sim.close(tel)
    assert all(t.meta["user_simulator"]["reason"].startswith("revealed_early") for t in out)
    assert tel.counters["user_sim.rejected"] == 6 and tel.histograms["user_sim.rejected_reason"] == {"revealed_early": 6}


def test_openai_compatible_backend(registry, oracle):
    dm = DialogueMaker(oracle)
    rng = random.Random(8)
    traces = [dm.make(rng, f"o{i}", b) for i, b in enumerate(BEHAVIOURS)]
    with FakeMessagesServer(handler=lambda body: f"Hello there - {NOTE.search(_last_user(body)).group(1)}") as srv:
        client = OpenAIClient(api_key="k", base_url=srv.openai_base_url, prices={"m": (0.0, 0.0)})
        sim = LLMUserSimulator(registry, GatlingConfig(model="m"), client=client, kind="openai")
        out = sim.rewrite_many(traces)
    v = TraceValidator(registry)
    for t in out:
        n_user = sum(1 for x in t.meta["dialogue"]["turns"] if x["role"] == "user")
        assert t.meta["user_simulator"] == {"kind": "openai", "model": "m", "turns": n_user}
        assert v.validate(t).ok and grade(registry, t).ok
        assert t.request.text.startswith("Hello there - ")


def test_unreachable_simulator_fails_fast(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    with pytest.raises(GatlingError, match="unreachable"):
        GatlingGenerator(GatlingConfig(dialogues=0.5, user_simulator="anthropic", base_url="http://127.0.0.1:9"))
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(GatlingError, match="ANTHROPIC_API_KEY"):
        GatlingGenerator(GatlingConfig(dialogues=0.5, user_simulator="anthropic"))


def test_procedural_runs_keep_their_manifest_config():
    assert "user_simulator" not in GatlingGenerator(GatlingConfig(dialogues=0.3)).config_dict()
