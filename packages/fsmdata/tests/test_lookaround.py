"""Lookarounds compiled through the FSM algebra, against the ``regex`` module (which shares no
code with fsmdata) on every string up to length 6 over a, b, c of random patterns."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import regex
from fsmdata import FsmError, compile_regex, compile_token_regex


def _random_pattern():
    import importlib.util

    spec = importlib.util.spec_from_file_location("_v02_defects", Path(__file__).with_name("test_v02_defects.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.random_pattern


random_pattern = _random_pattern()
STRINGS = ["".join(t) for L in range(7) for t in itertools.product("abc", repeat=L)]


def _with_lookarounds(rng: np.random.Generator) -> str:
    """A random pattern with 1-2 random lookarounds at random places (top level, in a group,
    inside a repetition)."""
    out = random_pattern(rng, depth=1)
    for _ in range(int(rng.integers(1, 3))):
        kind = str(rng.choice(["?=", "?!", "?<=", "?<!"]))
        look = f"({kind}{random_pattern(rng, depth=1)})"
        where = rng.random()
        tail = random_pattern(rng, depth=1)
        if where < 0.4:
            out = out + look + tail
        elif where < 0.7:
            out = look + out
        else:
            out = out + "(" + look + tail + ")" + str(rng.choice(["*", "+", "?", "{0,2}"]))
    return out


def test_random_lookarounds_match_the_regex_module() -> None:
    rng = np.random.default_rng(2024)
    checked = nonempty = 0
    for _ in range(40):
        p = _with_lookarounds(rng)
        fsm = compile_regex(p, "abc")
        rx = regex.compile(p)
        for s in STRINGS:
            assert fsm.accepts(s) == (rx.fullmatch(s) is not None), (p, s)
        checked += len(STRINGS)
        nonempty += not fsm.is_empty
    assert checked == 40 * len(STRINGS) and nonempty >= 20


@pytest.mark.parametrize(
    ("pattern", "yes", "no"),
    [
        ("((?!aa)[ab])*", ["", "ab", "aba", "ba"], ["aa", "baab"]),
        ("[ab]*(?<=ab)", ["ab", "bab"], ["", "a", "ba"]),
        ("(?=.*a)(?=.*b)[abc]{3}", ["abc", "cba", "aab"], ["aaa", "ccb"]),
    ],
)
def test_lookaround_examples(pattern: str, yes: list[str], no: list[str]) -> None:
    fsm = compile_regex(pattern, "abc")
    assert all(fsm.accepts(s) for s in yes) and not any(fsm.accepts(s) for s in no)


def test_lookaround_refusals() -> None:
    with pytest.raises(FsmError, match="inside another lookaround"):
        compile_regex("a(?=b(?!c))[bc]*", "abc")
    with pytest.raises(FsmError, match="token regex"):
        compile_token_regex("the (?=big) big")
