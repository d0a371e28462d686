"""Parser, printer, Term API and known reductions through the Python API."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lambdagen import LambdaSyntaxError, Term, count_terms, normalize, parse, reduce_step, sample_terms, trace
from lambdagen import reference as ref

OMEGA = "(\\(0 0) \\(0 0))"
K = "\\\\1"
S = "\\\\\\((2 0) (1 0))"
ID = "\\0"


def church(n: int) -> str:
    body = "0"
    for _ in range(n):
        body = f"(1 {body})"
    return "\\\\" + body


PLUS = "\\\\\\\\((3 1) ((2 1) 0))"
MULT = "\\\\\\(2 (1 0))"


def test_round_trip_of_sampled_terms():
    for size, depth in [(5, 4), (30, 8), (120, 8), (200, 12)]:
        for text in sample_terms(size, depth, 50, seed=size):
            t = parse(text)
            assert t.text == text
            assert t.size == size and t.depth <= depth
            assert ref.show(ref.parse(text)) == text
            assert ref.size(ref.parse(text)) == t.size and ref.depth(ref.parse(text)) == t.depth


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 40), st.integers(0, 2**32))
def test_round_trip_property(size, seed):
    text = sample_terms(size, 12, 1, seed=seed)[0]
    assert parse(text).text == text


@pytest.mark.parametrize(
    ("text", "pos", "what"),
    [
        ("(\\0 \\0", 6, "expected ')'"),
        ("\\1", 1, "free variable 1"),
        ("(\\0  \\0)", 4, "expected"),
        ("\\0 ", 2, "after the end"),
        ("", 0, "end of input"),
        ("\\01", 1, "leading zero"),
        ("λx.x", 0, "expected"),
    ],
)
def test_parse_errors_name_the_position(text, pos, what):
    with pytest.raises(LambdaSyntaxError) as e:
        parse(text)
    msg = str(e.value)
    assert f"position {pos}:" in msg
    assert what in msg
    # The term is quoted as typed (no doubled backslashes), so the position can be counted in it.
    assert msg.startswith(f'term "{text}": position {pos}:')


def test_known_reductions():
    assert normalize(f"({ID} {ID})").term.text == ID
    assert normalize(f"(({K} {ID}) {K})").term.text == ID
    assert normalize(f"(({S} {K}) {K})").term.text == ID
    for a in range(4):
        for b in range(4):
            assert normalize(f"(({PLUS} {church(a)}) {church(b)})").term.text == church(a + b)
            assert normalize(f"(({MULT} {church(a)}) {church(b)})").term.text == church(a * b)


def test_omega_is_a_cycle_and_k_discards_it():
    tr = trace(OMEGA)
    assert tr.status == "cycle" and tr.steps == 1 and tr.terms[1].text == OMEGA
    tr = trace(f"(({K} {ID}) {OMEGA})")
    assert tr.status == "normal_form" and tr.terms[-1].text == ID
    # normal order: the outer redex at position 1 (K I) first, never the omega inside.
    assert tr.redexes[0] == 1


def test_reduce_step_and_term_properties():
    t = parse(f"({ID} {ID})")
    assert t.redex == 0 and not t.is_normal
    r = reduce_step(t)
    assert r is not None and r[0].text == ID and r[1] == 0
    assert reduce_step(ID) is None
    assert parse("\\\\(1 0)").named == "λa. λb. a b"
    assert Term(ID) == parse(ID) and len({Term(ID), parse(ID)}) == 1


def test_caps():
    w3 = "(\\((0 0) 0) \\((0 0) 0))"
    assert trace(w3, max_steps=1000, max_size=60).status == "size_cap"
    tr = trace(w3, max_steps=3, max_size=10_000)
    assert tr.status == "step_cap" and tr.steps == 3
    assert normalize(w3, max_steps=5, max_size=10_000).status == "step_cap"


def test_counts_match_reference():
    for s in range(1, 16):
        for d in range(0, 8):
            assert count_terms(s, d) == ref.count(s, d), (s, d)
    assert count_terms(200, 12) == ref.count(200, 12)
