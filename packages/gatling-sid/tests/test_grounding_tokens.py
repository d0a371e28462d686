"""Grounding counts whole tokens only: a detail that appears only *inside* a longer number or word of
the user's words or an earlier output was not stated (CI failure of the random ``other_literal_id``
mutation: a last four ``8771`` changed from ``8779`` passed because the borrower id ``BRW-887716``
holds ``8771``).  The oracle here is a regular expression written in the test, not the validator's
helper."""

import copy
import json
import random
import re

import pytest
from gatling_sid import GoldTrace


def _whole(value: str, text: str) -> bool:
    """Independent oracle: ``value`` stands alone (no letter, digit, ``_`` or decimal part touching it)."""
    return re.search(r"(?<!\w)(?<!\d[.,])" + re.escape(value) + r"(?!\w)(?![.,]\d)", text) is not None


def _texts(d: dict) -> list[str]:
    return [d["request"]["text"], json.dumps([c["output"] for c in d["graph"]["calls"]])]


def _hidden_last4(d: dict) -> str | None:
    """A 4-digit window of a longer digit run in the request that the trace never states whole."""
    for run in re.findall(r"[0-9]{5,}", d["request"]["text"]):
        for k in range(len(run) - 3):
            w = run[k : k + 4]
            if not any(_whole(w, t) for t in _texts(d)):
                return w
    return None


@pytest.fixture(scope="module")
def hidden_cases(traces, registry):
    cases = []
    for tr in traces[:300]:
        d = copy.deepcopy(tr.to_dict())
        ident = [c for c in d["graph"]["calls"] if registry.tools[c["tool"]].kind == "identity"]
        if not ident or "last4" not in ident[0]["arguments"]:
            continue
        w = _hidden_last4(d)
        if w is None or w == ident[0]["arguments"]["last4"]:
            continue
        ident[0]["arguments"]["last4"] = w
        cases.append(d)
    assert len(cases) > 100
    return cases


def test_a_detail_inside_a_longer_number_is_not_grounded(hidden_cases, validator):
    missed = [d["trace_id"] for d in hidden_cases if "grounding" not in validator.validate(GoldTrace.from_dict(d)).rules]
    assert missed == [], f"{len(missed)}/{len(hidden_cases)} not flagged: {missed[:5]}"


def test_the_same_detail_stated_on_its_own_is_grounded(hidden_cases, validator):
    """Control: once the user says the four digits as a word of their own, no grounding flag."""
    for d in hidden_cases:
        d = copy.deepcopy(d)
        call = next(c for c in d["graph"]["calls"] if "last4" in c["arguments"])
        d["request"]["text"] += f" The last four are {call['arguments']['last4']}."
        rep = validator.validate(GoldTrace.from_dict(d))
        assert not [v for v in rep.violations if v.rule == "grounding" and v.call_id == call["id"]], rep.violations


@pytest.mark.parametrize(
    ("said", "value", "grounded"),
    [
        ("the credit limit should be 4966.5023", "5023", False),  # the decimals of another number
        ("pay 12,3456 now", "3456", False),
        ("my borrower ID is BRW-887716", "8771", False),
        ("the code is x6789", "6789", False),
        ("the plan is fixed_6789", "6789", False),
        ("reference 12345-6789 please", "6789", True),  # a hyphen separates tokens
        ("it ends in 6789.", "6789", True),  # sentence punctuation is not a decimal point
        ("last four 6789, limit 4966.5023", "6789", True),
    ],
)
def test_token_boundaries(traces, registry, validator, said, value, grounded):
    tr = next(t for t in traces if "last4" in t.graph.calls[0].arguments)
    d = copy.deepcopy(tr.to_dict())
    ident = d["graph"]["calls"][0]
    d["request"]["text"] = d["request"]["text"].replace(ident["arguments"]["last4"], "") + " " + said
    ident["arguments"]["last4"] = value
    rep = validator.validate(GoldTrace.from_dict(d))
    flagged = any(v.rule == "grounding" and v.call_id == ident["id"] for v in rep.violations)
    assert flagged is not grounded, (said, value, rep.violations)


def test_create_fields_hidden_in_decimals_are_stated(oracle, registry):
    """The planner states a create field the request shows only inside a longer number: ``23`` in
    ``49665.23`` is not the user giving a billing day of 23 (one gold trace in 20,000 was rejected
    by the validator for it before the planner used the same token rule)."""
    rng = random.Random(3)
    checked = 0
    for i in range(200):
        tr = oracle.make_trace(rng, f"c{i}", None, "creation")
        d = registry.domains[tr.domain]
        for c in tr.graph.calls:
            if c.tool != d.roles["create"]:
                continue
            for k, v in c.arguments.items():
                if isinstance(v, bool) or not isinstance(v, int) or k.endswith("_id"):
                    continue
                text = f"The amount is 4966.{v} and 1,{v} was last time."
                said = type(oracle)._state_fields(random.Random(i), d, tr.graph, text)
                assert _whole(str(v), said), (k, v, said)
                checked += 1
    assert checked > 50
