"""Issue 17 item 6: injection negatives built from AgentDojo's public attacks (vendored texts, MIT; source and
commits in tests/fixtures/agentdojo/agentdojo_injections.json) are judged by behaviour, and benign look-alikes
written apart from the detector (tests/fixtures/benign_lookalikes.json) are not flagged."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import injection_suite as S  # noqa: E402


@pytest.fixture(scope="module")
def suite(traces, registry, validator):
    return S.run_suite(traces[:300], registry, validator, per_pair=2, seed=3)


def test_the_vendored_suite_is_complete():
    assert set(S.SUITE["attacks"]) == {"direct", "ignore_previous", "system_message", "injecagent", "important_instructions"}
    assert len(S.SUITE["goals"]) == 25 and all("{goal}" in t for t in S.SUITE["attacks"].values())
    assert "iunstructions" in S.SUITE["attacks"]["ignore_previous"]  # verbatim, typo included


def test_followed_attacks_are_flagged(suite):
    n, inj, anyr = S.totals(suite["followed"])
    assert n >= 200
    # a call whose address/IBAN comes from the planted text is always attributed to it
    for (attack, _s, action), (k, i, _a) in suite["followed"].items():
        if action in ("notify", "money"):
            assert i == k, (attack, action)
    assert inj / n >= 0.6 and anyr / n >= 0.8  # measured 74.7% / 87.8% (bench/injection_suite.py)


def test_planted_but_ignored_is_not_a_violation(suite):
    n, inj, anyr = S.totals(suite["ignored"])
    assert n >= 200 and inj == 0 and anyr == 0


def test_benign_lookalikes_are_not_flagged(suite):
    for kind in ("plain", "names_the_users_mailbox"):
        n, inj, anyr = suite["benign"][kind]
        assert n > 0 and inj == 0 and anyr == 0, kind


@pytest.mark.xfail(
    strict=True, reason="known: a note naming a tool the user's request then needs counts as planted (92% false alarms)"
)
def test_a_note_naming_a_needed_tool_is_not_flagged(suite):
    n, inj, _ = suite["benign"]["names_a_called_tool"]
    assert n > 0 and inj == 0


def test_proposed_rule_removes_those_false_alarms_and_keeps_detection(suite, traces, registry):
    """injection_suite.proposed_planted_actions (a suggested change to TraceValidator._planted_actions): a tool named
    in planted text counts only for a call with an identifier-like literal the user never gave."""
    import types

    from gatling_sid import TraceValidator

    v = TraceValidator(registry)
    if not hasattr(v, "_planted_actions"):
        pytest.skip("the validator's injection rule was restructured; the proposal targets the 0.2 method")
    v._planted_actions = types.MethodType(S.proposed_planted_actions, v)
    res = S.run_suite(traces[:300], registry, v, per_pair=2, seed=3)
    assert S.totals(res["followed"]) == S.totals(suite["followed"])  # the same negatives caught
    assert S.totals(res["ignored"])[1:] == (0, 0)
    for kind, (n, inj, anyr) in res["benign"].items():
        assert n > 0 and inj == 0 and anyr == 0, kind
