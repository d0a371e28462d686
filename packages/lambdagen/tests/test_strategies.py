"""Reduction strategies: the Rust core against the independent tree-based reference, on random terms."""

from __future__ import annotations

import random

import pytest
from datacore import read_jsonl
from lambdagen import LambdaConfig, LambdaValueError, ScheduleError, generate, sample_terms, trace, trace_many
from lambdagen import reference as ref

STRATEGIES = ref.STRATEGIES


def _terms() -> list[str]:
    rng = random.Random(77)
    out: list[str] = []
    for size in range(4, 40, 3):
        for depth in (4, 7, 11):
            try:
                out += sample_terms(size, depth, 40, seed=size * 31 + depth)
            except ValueError:
                pass
    out += [ref.show(ref.sample(rng.randrange(3, 25), 9, rng)) for _ in range(800)]
    return out


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_each_strategy_agrees_with_the_reference(strategy):
    terms = _terms()
    assert len(terms) > 2000
    got = trace_many(terms, 20, 150, strategy=strategy)
    statuses = set()
    steps = 0
    for text, (last, n, status, _redexes) in zip(terms, got):
        want, want_status = ref.trace(text, 20, 150, strategy)
        assert (last, n, status) == (want[-1], len(want) - 1, want_status), (strategy, text)
        statuses.add(status)
        steps += n
    assert steps > 1000
    if strategy in ("call_by_name", "call_by_value", "head"):
        assert "strategy_normal_form" in statuses  # they stop with redexes left
    for text in terms[::40]:
        assert [t.text for t in trace(text, 20, 150, strategy=strategy).terms] == ref.trace(text, 20, 150, strategy)[0]


def test_strategies_differ_where_they_should():
    k_i_omega = "((\\\\1 \\0) (\\(0 0) \\(0 0)))"
    assert trace(k_i_omega, 50, 100, strategy="normal").status == "normal_form"
    assert trace(k_i_omega, 50, 100, strategy="call_by_name").status == "normal_form"
    # Call by value and applicative order evaluate omega first and never leave it.
    assert trace(k_i_omega, 50, 100, strategy="call_by_value").status == "cycle"
    assert trace(k_i_omega, 50, 100, strategy="applicative").status == "cycle"
    with pytest.raises(LambdaValueError, match="strategy must be one of"):
        trace(k_i_omega, 5, 5, strategy="lazy")
    with pytest.raises(ScheduleError, match="strategy must be one of"):
        LambdaConfig(strategy="lazy")


def test_datasets_follow_the_strategy(tmp_path):
    cfg = LambdaConfig(schedule="20x8,30x9", max_steps=30, max_size=150, strategy="call_by_value")
    generate(tmp_path / "o", 500, seed=3, config=cfg, workers=1, shard_size=250, executor="inline")
    recs = [r for p in sorted((tmp_path / "o").glob("*/part-*")) for r in read_jsonl(p)]
    assert len(recs) == 500
    normal_differs = 0
    for r in recs:
        assert r["meta"]["strategy"] == "call_by_value"
        assert ref.show(ref.step_with(ref.parse(r["input"]), "call_by_value")) == r["target"]
        normal_differs += ref.show(ref.step(ref.parse(r["input"]))) != r["target"]
    assert normal_differs > 0  # the strategy, not normal order, chose these steps
