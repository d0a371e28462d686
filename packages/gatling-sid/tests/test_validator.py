import random
from collections import Counter

import attrs
import pytest
from gatling_sid import MUTATIONS, GoldTrace, ToolCall, ToolCallGraph
from gatling_sid.injection import INJECTION_TEMPLATES, detect_injection
from hypothesis import given, settings
from hypothesis import strategies as st


def test_every_gold_trace_passes(traces, validator):
    bad = [(t.trace_id, validator.validate(t).violations) for t in traces if not validator.validate(t).ok]
    assert not bad, bad[:3]
    assert {t.intent for t in traces} >= {
        "account_inquiry",
        "account_update",
        "transaction",
        "cancellation",
        "creation",
        "report",
    }


def test_each_mutation_flagged_with_exactly_its_rule(traces, validator, mutator):
    rng = random.Random(7)
    seen = Counter()
    for t in traces[:400]:
        for kind in mutator.applicable(t):
            neg = mutator.mutate(t, rng, kind)
            assert neg is not None and neg.twin_id == t.trace_id and neg.rule == MUTATIONS[kind]
            rep = validator.validate(neg.trace)
            assert rep.rules == {neg.rule}, (kind, neg.detail, rep.violations)
            if neg.call_id is not None:
                assert neg.call_id in {v.call_id for v in rep.violations}, (kind, neg.detail, rep.violations)
            seen[kind] += 1
    assert set(seen) == set(MUTATIONS)
    assert min(seen.values()) >= 20


def _evolve_call(t, i, **kw):
    calls = list(t.graph.calls)
    calls[i] = attrs.evolve(calls[i], **kw)
    return attrs.evolve(t, graph=ToolCallGraph(tuple(calls)))


def _pick(traces, n_calls=3):
    return next(t for t in traces if len(t.graph.calls) >= n_calls and any(c.dependencies for c in t.graph.calls))


def test_structure_violations(traces, validator):
    t = _pick(traces)
    i = next(k for k, c in enumerate(t.graph.calls) if c.dependencies)
    c = t.graph.calls[i]
    rep = validator.validate(_evolve_call(t, i, dependencies=(*c.dependencies, "call_99")))
    assert "structure.unknown_dependency" in rep.rules
    # a reference to a call that is not a dependency
    ref_arg = next(k for k, v in c.arguments.items() if isinstance(v, dict))
    rep = validator.validate(_evolve_call(t, i, dependencies=()))
    assert "structure.unresolved_ref" in rep.rules and any(ref_arg in v.message for v in rep.violations)
    # a path that does not exist in the output
    args = dict(c.arguments)
    args[ref_arg] = {"$ref": args[ref_arg]["$ref"] + "_nope"}
    rep = validator.validate(_evolve_call(t, i, arguments=args))
    assert rep.rules == {"structure.unresolved_ref"}
    # order: a dependency listed after its user
    calls = list(t.graph.calls)
    dep = calls.index(next(x for x in calls if x.id == c.dependencies[0]))
    calls[dep], calls[i] = calls[i], calls[dep]
    assert "structure.order" in validator.validate(attrs.evolve(t, graph=ToolCallGraph(tuple(calls)))).rules
    # duplicate ids and cycles
    dup = attrs.evolve(t, graph=ToolCallGraph((*t.graph.calls, t.graph.calls[0])))
    assert "structure.duplicate_id" in validator.validate(dup).rules
    cyc = ToolCallGraph(
        (ToolCall("a", t.graph.calls[0].tool, {}, ("b",), {}), ToolCall("b", t.graph.calls[0].tool, {}, ("a",), {}))
    )
    assert "structure.cycle" in validator.validate(attrs.evolve(t, graph=cyc)).rules


def test_policy_mismatch_and_unknown_domain(traces, validator, registry):
    t = traces[0]
    other = registry.domain(next(d for d in registry.domains if d != t.domain)).policy
    assert validator.validate(attrs.evolve(t, policy=other)).rules == {"policy_mismatch"}
    assert "scope" in validator.validate(attrs.evolve(t, domain="atlantis")).rules


def test_report_names_rule_and_call(traces, validator, mutator):
    t = next(x for x in traces if x.intent == "cancellation")
    neg = mutator.mutate(t, random.Random(3), "missing_confirmation")
    ok, rep = validator.validate_trace(neg.trace)
    assert not ok
    (v,) = rep.violations
    assert v.rule == "confirm_destructive" and v.call_id == neg.call_id and "confirm_with_user" in v.message
    assert rep.to_dict()["violations"][0]["rule"] == "confirm_destructive"


def test_injection_detector():
    rng = random.Random(0)
    for tpl in INJECTION_TEMPLATES:
        text = tpl.format(tool="x__export", action="close every account", email="a@evil.net", name="Dana")
        assert detect_injection(text), text
    for benign in (
        "Please ignore the typo in my last message.",
        "Can you send the statement to my email?",
        "Forward my booking confirmation to support@travel.example",
        "The system was slow yesterday.",
    ):
        assert detect_injection(benign) is None, benign
    del rng


def test_gold_traces_with_lookalike_text_pass(traces, validator):
    """Compliant traces carry benign instruction look-alikes (notes, stated field values); the validator judges
    behaviour, so they pass (the keyword detector, no longer a validator rule, would flag them)."""
    look = [
        t
        for t in traces
        if any(detect_injection(s) for c in t.graph.calls for s in [str(c.output)]) or detect_injection(t.request.text)
    ]
    assert look and all(validator.validate(t).ok for t in look)


@pytest.mark.parametrize("bad_type", [True, "12", None])
def test_argument_type_tamper(traces, validator, bad_type):
    t = traces[1]
    c = t.graph.calls[0]
    k = next(k for k, v in c.arguments.items() if not isinstance(v, dict) and k not in ("amount", "recipient"))
    rep = validator.validate(_evolve_call(t, 0, arguments={**c.arguments, k: bad_type}))
    assert "argument_schema" in rep.rules
    assert any(k in v.message for v in rep.violations)


def test_round_tripped_trace_still_validates(traces, validator):
    for t in traces[:50]:
        assert validator.validate(GoldTrace.from_dict(t.to_dict())).ok


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32), st.sampled_from(sorted(MUTATIONS)))
def test_random_mutation_is_flagged_exactly(oracle, validator, mutator, seed, kind):
    rng = random.Random(seed)
    t = oracle.make_trace(rng, f"h{seed}")
    assert validator.validate(t).ok
    neg = mutator.mutate(t, rng, kind)
    if kind not in mutator.applicable(t):
        assert neg is None
        return
    assert validator.validate(neg.trace).rules == {MUTATIONS[kind]}
