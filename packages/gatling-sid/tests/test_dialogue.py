"""Multi-turn gold dialogues: each behaviour exists, validates, executes, and means what it says."""

import random
import re

import attrs
import pytest
from gatling_sid import GoldTrace
from gatling_sid.dialogue import BEHAVIOURS, DialogueMaker
from gatling_sid.state import grade


@pytest.fixture(scope="module")
def made(registry):
    dm = DialogueMaker()
    rng = random.Random(5)
    return {b: [dm.make(rng, f"{b}{i}", b) for i in range(25)] for b in BEHAVIOURS}


def _user_turns(t):
    return [x["text"] for x in t.meta["dialogue"]["turns"] if x["role"] == "user"]


def test_every_behaviour_validates_and_executes(registry, validator, made):
    for b, traces in made.items():
        for t in traces:
            assert validator.validate(t).ok, (b, validator.validate(t).violations)
            assert grade(registry, t).ok, b
            rt = GoldTrace.from_dict(t.to_dict())  # the record round-trips
            assert rt.meta["dialogue"] == t.meta["dialogue"]
            roles = [m["role"] for m in t.to_training_format(registry.tools)["messages"]]
            assert roles[0] == "user" and all(a != b2 for a, b2 in zip(roles, roles[1:], strict=False))


def test_ask_missing_asks_for_what_the_first_message_lacks(validator, made):
    for t in made["ask_missing"]:
        turns = t.meta["dialogue"]["turns"]
        first, answer = turns[0]["text"], turns[2]["text"]
        ident = t.graph.calls[0].arguments
        absent = [v for k, v in ident.items() if v not in first]
        assert absent and all(v in answer for v in absent)
        # without the user's answer the identity call would use details nobody gave
        bare = attrs.evolve(t, meta={k: v for k, v in t.meta.items() if k != "dialogue"})
        assert "grounding" in validator.validate(bare).rules


def test_confirm_and_decline_in_words(registry, made):
    for t in made["confirm_in_words"]:
        turns = t.meta["dialogue"]["turns"]
        yes = next(i for i, x in enumerate(turns) if x["role"] == "user" and i > 0)
        assert re.match(r"(Yes|Confirmed)", turns[yes]["text"])
        destroy = registry.domains[t.domain].roles["destroy"]
        later = [c for x in turns[yes:] if "calls" in x for c in x["calls"]]
        assert any(c.tool == destroy and c.id in later for c in t.graph.calls)
    for t in made["decline_in_words"]:
        assert re.match(r"(No|Actually no|Hold on)", _user_turns(t)[-1])
        kinds = {registry.tools[c.tool].kind for c in t.graph.calls}
        assert kinds <= {"read"}  # nothing written once the user said no


def test_refuse_forbidden_and_no_call(registry, validator, made):
    for t in made["refuse_forbidden"]:
        assert not t.graph.calls
        last = t.meta["dialogue"]["turns"][-1]
        assert last["role"] == "assistant" and "[forbidden_tools]" in last["text"]
        export = registry.domains[t.domain].roles["export"]
        assert re.search(r"export|dump", t.request.text) and export not in t.request.text
    for t in made["no_call"]:
        assert not t.graph.calls and len(t.meta["dialogue"]["turns"]) == 2


def test_clarify_and_parallel(registry, made):
    for t in made["clarify"]:
        d = registry.domains[t.domain]
        search, get = t.graph.calls
        ent = f"{d.entity}_id"
        ids = [r[ent] for r in search.output["results"]]
        assert len(ids) >= 2 and not any(i in t.request.text for i in ids)  # ambiguous at first
        assert get.arguments[ent] in _user_turns(t)[1] and get.arguments[ent] in ids  # the user's pick
    for t in made["parallel"]:
        waves = [x for x in t.meta["dialogue"]["turns"] if "calls" in x]
        assert len(waves) == 1 and len(waves[0]["calls"]) == 2 and not any(c.dependencies for c in t.graph.calls)


def test_generator_schedules_dialogues(validator):
    from collections import Counter

    from datacore import ShardTask, Telemetry
    from gatling_sid import GatlingConfig, GatlingGenerator

    gen = GatlingGenerator(GatlingConfig(negatives=0.3, dialogues=0.3))
    for j in range(2000):
        if gen._dialogue_for(j):
            assert not gen._is_negative_slot(j + 1) and not gen._is_negative_slot(j)
    tel = Telemetry()
    recs = list(gen.generate_shard(ShardTask(0, 9, 300, 0), tel))
    seen = Counter(r["meta"]["dialogue"]["behaviour"] for r in recs if "dialogue" in r["meta"])
    assert set(seen) == set(BEHAVIOURS) and sum(seen.values()) >= 35
    want = {t.stratum: t.share for t in gen.targets(300)}
    for b, n in seen.items():
        assert abs(n / 300 - want[f"dialogue={b}"]) < 0.02
    for r in recs:
        if r["label"] == "gold":
            assert validator.validate(GoldTrace.from_dict(r)).ok


def test_operation_dialogues_use_the_domains_own_operations(registry, made):
    used = set()
    for t in made["operation"]:
        d = registry.domains[t.domain]
        op = [c for c in t.graph.calls if c.tool in d.ops]
        assert len(op) == 1
        used.add(op[0].tool)
        if registry.tools[op[0].tool].kind != "read":  # a write runs under a verified identity
            assert t.graph.calls[0].tool == d.roles["identity"] and op[0].dependencies == (t.graph.calls[0].id,)
    assert len(used) >= 20
