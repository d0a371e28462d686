"""The Rust reducer against the independent pure-Python reference on 10,000+ random terms."""

from __future__ import annotations

import random

from lambdagen import reference as ref
from lambdagen import sample_terms, trace, trace_many

MAX_STEPS = 25
MAX_SIZE = 150


def _terms() -> list[str]:
    rng = random.Random(1234)
    out: list[str] = []
    # Rust-sampled terms over many cells ...
    for size in range(4, 64, 3):
        for depth in (4, 6, 9, 14):
            try:
                out += sample_terms(size, depth, 150, seed=size * 100 + depth)
            except ValueError:
                pass  # infeasible cell
    # ... and terms from the reference's own big-int sampler, so neither side picks the inputs alone.
    for _ in range(3000):
        s = rng.randrange(3, 30)
        out.append(ref.show(ref.sample(s, 10, rng)))
    return out


def test_traces_agree_on_10000_terms():
    terms = _terms()
    assert len(terms) >= 10_000
    rust = trace_many(terms, MAX_STEPS, MAX_SIZE)
    mismatches = []
    steps_total = 0
    statuses = set()
    for text, (last, steps, status, _redexes) in zip(terms, rust):
        want, want_status = ref.trace(text, MAX_STEPS, MAX_SIZE)
        steps_total += steps
        statuses.add(status)
        if (last, steps, status) != (want[-1], len(want) - 1, want_status):
            mismatches.append((text, last, steps, status, want[-1], len(want) - 1, want_status))
    assert not mismatches, mismatches[:3]
    # The sample exercises every ending and real work, not just normal forms.
    assert statuses == {"normal_form", "step_cap", "size_cap", "cycle"}
    assert steps_total > 20_000


def test_every_intermediate_term_agrees():
    for text in _terms()[::20]:
        got = trace(text, MAX_STEPS, MAX_SIZE)
        want, want_status = ref.trace(text, MAX_STEPS, MAX_SIZE)
        assert [t.text for t in got.terms] == want and got.status == want_status, text
