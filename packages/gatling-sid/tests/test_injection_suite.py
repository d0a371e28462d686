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


def test_a_note_naming_a_needed_tool_is_not_flagged(suite):
    """The 0.2 defect (354 of 393 such notes flagged, 90.1%): fixed in TraceValidator._planted_actions."""
    n, inj, anyr = suite["benign"]["names_a_called_tool"]
    assert n > 0 and inj == 0 and anyr == 0


def test_validator_matches_the_measured_proposal(suite, traces, registry):
    """The fix applied in the validator gives the same counts, set by set, as the fixture's separately kept copy of
    the proposal (injection_suite.proposed_planted_actions), which was measured before it was applied."""
    import types

    from gatling_sid import TraceValidator

    v = TraceValidator(registry)
    v._planted_actions = types.MethodType(S.proposed_planted_actions, v)
    res = S.run_suite(traces[:300], registry, v, per_pair=2, seed=3)
    for table in ("followed", "ignored", "benign"):
        assert res[table] == suite[table], table
