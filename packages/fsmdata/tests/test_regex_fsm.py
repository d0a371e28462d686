"""Milestone 1: parser dialect, compile pipeline, trace/accepts/classify, JSON, DOT, token regexes."""

from __future__ import annotations

import itertools
import re

import pytest
from fsmdata import FSM, compile_regex, compile_token_regex
from fsmdata.errors import FsmFormatError, RegexSyntaxError, UnsupportedConstructError
from hypothesis import given, settings
from hypothesis import strategies as st

ALPHA = "abc"


def _atoms() -> st.SearchStrategy[str]:
    return st.sampled_from(["a", "b", "c", ".", "[ab]", "[^a]", "[a-b]", "\\w", "(?:a|bc)", "x?"])


@st.composite
def patterns(draw, depth: int = 3) -> str:
    if depth == 0:
        return draw(_atoms())
    kind = draw(st.sampled_from(["atom", "cat", "alt", "star", "plus", "opt", "count", "group"]))
    sub = lambda: draw(patterns(depth - 1))  # noqa: E731
    if kind == "atom":
        return draw(_atoms())
    if kind == "cat":
        return sub() + sub()
    if kind == "alt":
        return f"(?:{sub()}|{sub()})"
    if kind == "group":
        return f"({sub()})"
    q = {"star": "*", "plus": "+", "opt": "?"}.get(kind)
    if q:
        return f"(?:{sub()}){q}"
    lo = draw(st.integers(0, 2))
    hi = draw(st.integers(lo, 3))
    return f"(?:{sub()}){{{lo},{hi}}}"


@settings(max_examples=150, deadline=None)
@given(patterns(), st.lists(st.text(alphabet="abcx", max_size=7), min_size=1, max_size=25))
def test_accepts_matches_python_re(pattern: str, strings: list[str]) -> None:
    fsm = compile_regex(pattern, alphabet="abcx")
    rx = re.compile(pattern)
    for s in strings:
        assert fsm.accepts(s) == bool(rx.fullmatch(s)), (pattern, s)


@pytest.mark.parametrize(
    "pattern",
    [
        r"a+",
        r"a*b*",
        r"(ab|cd)e",
        r"[a-c]{2,3}x?",
        r"(?i)aB",
        r"a.b",
        r"\d{1,3}(\.\d+)?",
        r"[^abc]+",
        r"(a|b)*abb",
        r"^a(b|c)$",
        r"a{,2}",
        r"a{2,}",
        r"a{3}",
        r"x{}",
        r"[]a]",
        r"[a-]",
        r"\x41\u0042",
        r"(?s)a.b",
        r"(?i:ab)c",
        r"(?P<n>ab)+",
        r"a*?b+?",
        r"\s\S\W",
        r"(?#note)ab",
        r"[\d_]+",
    ],
)
def test_exhaustive_against_re(pattern: str) -> None:
    """Every string up to length 4 over a small alphabet agrees with Python's re."""
    alphabet = "abcdxAB_.1 \n"
    fsm = compile_regex(pattern, alphabet=alphabet)
    rx = re.compile(pattern)
    for n in range(5):
        for tup in itertools.product(alphabet[:6] if n > 3 else alphabet, repeat=n):
            s = "".join(tup)
            assert fsm.accepts(s) == bool(rx.fullmatch(s)), (pattern, s)


@pytest.mark.parametrize(
    ("pattern", "construct", "pos"),
    [
        ("a(?=b)*", "quantified lookaround", 6),
        ("ab(?!c)+", "quantified lookaround", 7),
        (r"(a)\1", "backreference", 3),
        (r"(?P<x>a)(?P=x)", "named backreference", 8),
        (r"a\bc", "word boundary", 1),
        ("a(?>bc)", "atomic group", 1),
        ("a*+", "possessive", 2),
        ("a^b", "anchor", 1),
        ("a$b", "anchor", 1),
    ],
)
def test_unsupported_constructs_name_construct_and_position(pattern: str, construct: str, pos: int) -> None:
    with pytest.raises(UnsupportedConstructError) as ei:
        compile_regex(pattern)
    msg = str(ei.value)
    assert construct in msg and f"position {pos}" in msg
    lines = msg.splitlines()
    assert lines[-2].strip() == pattern and lines[-1].index("^") - 2 == pos


@pytest.mark.parametrize("pattern", ["(ab", "ab)", "*a", "a**", "[ab", "a{3,2}", "[b-a]", r"\q", "a|+"])
def test_syntax_errors(pattern: str) -> None:
    with pytest.raises(RegexSyntaxError) as ei:
        compile_regex(pattern)
    assert "^" in str(ei.value).splitlines()[-1]
    with pytest.raises(re.error):
        re.compile(pattern)


def test_minimal_state_counts_and_sink() -> None:
    # (a|b)*abb: the textbook 4-state minimal DFA, plus no sink needed... but one is always present.
    f = compile_regex("(a|b)*abb")
    assert f.n_states == 5 and f.sink == 4 and not f.live[4]
    assert not f.reachable()[f.sink]  # complete over {a,b}: the sink is unreachable
    g = compile_regex("(ab|cd)e")
    assert g.n_states == 6 and g.table[g.sink].tolist() == [g.sink] * g.n_symbols
    # equivalent patterns compile to the identical canonical FSM
    assert compile_regex("a*b*", "ab") == compile_regex("(a*)(b*)|a+", "ab")


def test_trace_accepts_classify() -> None:
    f = compile_regex("a*b*")
    assert f.trace("aab") == [0, 0, 0, 1]
    assert f.accepts("aabb") and f.accepts("") and not f.accepts("ba")
    assert f.classify("ab") == "A" and f.classify("ba") == "R"
    g = compile_regex("ab+c")
    assert g.classify("ab") == "I" and g.classify("ab", task="binary") == "R"
    assert g.classify("abz") == "R"  # unknown symbol goes to the sink
    assert g.trace([0, 1])[-1] == g.run("ab")


def test_json_round_trip_and_table_format(tmp_path) -> None:
    f = compile_regex(r"(\d{1,3}\.){3}\d{1,3}")
    g = FSM.from_json(f.to_json())
    assert g == f and g.pattern == f.pattern
    p = tmp_path / "f.json"
    f.save(p)
    assert FSM.load(p) == f
    # hand-written transitions: even number of a's over {a, b}, undefined b -> sink
    h = FSM.from_table({"alphabet": ["a", "b"], "start": 0, "accepting": [0], "transitions": {"0": {"a": 1}, "1": {"a": 0}}})
    assert h.accepts("aa") and not h.accepts("a") and h.classify("ab") == "R"
    # a redundant table is minimized on request
    red = {"alphabet": ["a"], "accepting": [0, 1], "table": [[1], [0]]}
    assert FSM.from_table(red, minimize=True).n_states == 2 and FSM.from_table(red).n_states == 3


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"alphabet": [], "accepting": [], "table": [[]]}, "alphabet"),
        ({"alphabet": ["a"], "accepting": [5], "table": [[0]]}, "accepting"),
        ({"alphabet": ["a"], "accepting": [0], "table": [[7]]}, "table[0][0]"),
        ({"alphabet": ["a"], "accepting": [0], "table": [[0, 0]]}, "table[0]"),
        ({"alphabet": ["a"], "accepting": [0]}, "table"),
        ({"alphabet": ["a"], "accepting": [0], "transitions": {"0": {"z": 0}}}, "transitions.0.z"),
    ],
)
def test_bad_tables_name_the_field(obj, field) -> None:
    with pytest.raises(FsmFormatError) as ei:
        FSM.from_table(obj, source="x.json")
    assert f"'{field}'" in str(ei.value) and "x.json" in str(ei.value)


def test_bad_json_names_line() -> None:
    with pytest.raises(FsmFormatError, match="line 2"):
        FSM.from_json('{"alphabet": ["a"],\n "accepting": [0,}', source="f.json")


def test_dot_export() -> None:
    dot = compile_regex("ab|ac").to_dot()
    assert dot.startswith("digraph") and "doublecircle" in dot and '0 -> 1 [label="a"]' in dot
    assert 'label="b,c"' in dot  # parallel edges merged


def test_token_regex() -> None:
    f = compile_token_regex("the (big | small)* dog")
    assert f.kind == "token" and f.alphabet == ("big", "dog", "small", "the")
    assert f.accepts("the big small big dog") and f.accepts(["the", "dog"]) and not f.accepts("the cat dog")
    assert f.classify("the big") == "I"
    g = compile_token_regex('. "a|b" [^x y]', vocab=["x", "y", "z", "a|b"])
    assert g.accepts("x a|b z") and not g.accepts("x a|b y")
    assert FSM.from_json(g.to_json()) == g
    assert f.decode(f.encode("the dog")) == "the dog"


def test_ignorecase_and_alphabet_default() -> None:
    f = compile_regex("(?i)ab")
    assert set(f.alphabet) == set("abAB") and f.accepts("Ab") and f.accepts("aB")
    g = compile_regex("a.c")
    assert len(g.alphabet) == 95 and g.accepts("a~c")


def test_compile_speed_40_states() -> None:
    import time

    t = time.perf_counter()
    f = compile_regex(r"(GET|POST|PUT|DELETE) /[a-z]{1,8}(/[a-z0-9]{1,4}){0,3} HTTP/1\.[01]")
    dt = time.perf_counter() - t
    assert 20 <= f.n_states <= 80
    assert dt < 0.5  # the 50 ms target is measured in the benchmark, not under test load


def test_large_unicode_class_needs_alphabet() -> None:
    from fsmdata.errors import FsmError

    with pytest.raises(FsmError, match="alphabet"):
        compile_regex("[\\x00-\\uffff]")
    assert compile_regex("[\\x00-\\uffff]", alphabet="ab").accepts("a")
