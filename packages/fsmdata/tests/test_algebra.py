"""FSM algebra (intersection, union, difference, complement) against a brute-force oracle:
every string over the alphabet up to length 6, judged by Python's ``re``."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from click.testing import CliRunner
from fsmdata import FsmError, compile_regex, compile_token_regex, complement, difference, intersection, union
from fsmdata.cli import main


def _load_random_pattern():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("_v02_defects", Path(__file__).with_name("test_v02_defects.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.random_pattern


random_pattern = _load_random_pattern()

ALPHA = "abc"
STRINGS = ["".join(t) for L in range(7) for t in itertools.product(ALPHA, repeat=L)]


def _m(p: str, s: str) -> bool:
    return re.fullmatch(p, s) is not None


@pytest.mark.parametrize("seed", range(6))
def test_operations_match_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(4):
        p, q = random_pattern(rng, depth=2), random_pattern(rng, depth=2)
        x, y = compile_regex(p, ALPHA), compile_regex(q, ALPHA)
        ops = {
            "and": (intersection(x, y), lambda s, p=p, q=q: _m(p, s) and _m(q, s)),
            "or": (union(x, y), lambda s, p=p, q=q: _m(p, s) or _m(q, s)),
            "minus": (difference(x, y), lambda s, p=p, q=q: _m(p, s) and not _m(q, s)),
            "not": (complement(x), lambda s, p=p: not _m(p, s)),
        }
        for name, (fsm, oracle) in ops.items():
            for s in STRINGS:
                assert fsm.accepts(s) == oracle(s), (name, p, q, s)
        # minimal and canonical: an equal language compiles to an identical FSM
        assert intersection(x, x) == x and union(x, x) == x and complement(complement(x)) == x


def test_different_alphabets_are_widened() -> None:
    x, y = compile_regex("a+"), compile_regex("[ab]*b")
    z = union(x, y)
    assert z.alphabet == ("a", "b") and z.accepts("aa") and z.accepts("ab") and not z.accepts("ba")
    assert intersection(x, y).is_empty


def test_kinds_must_match() -> None:
    with pytest.raises(FsmError, match="token"):
        intersection(compile_regex("a"), compile_token_regex("a"))


def test_cli_and_or_minus_not() -> None:
    r = CliRunner().invoke(main, ["trace", "x(a|b)*y", "xaay", "--minus", "xa*y"])
    assert r.exit_code == 0 and "accepted: False" in r.output
    r = CliRunner().invoke(main, ["trace", "x(a|b)*y", "xaby", "--minus", "xa*y", "--and", "x.*", "--alphabet", "abxy"])
    assert r.exit_code == 0 and "accepted: True" in r.output
    r = CliRunner().invoke(main, ["trace", "a*", "b", "--alphabet", "ab", "--not"])
    assert "accepted: True" in r.output
    r = CliRunner().invoke(main, ["trace", "a", "c", "--or", "c"])
    assert "accepted: True" in r.output
