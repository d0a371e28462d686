"""Minimal pairs at exact edit distance k, against an independent oracle: a plain Levenshtein
DP (written here) against every accepted string found by brute force with Python's ``re``."""

from __future__ import annotations

import importlib.util
import itertools
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from fsmdata import FsmError, compile_regex
from fsmdata.pairs_edit import edit_distance, edit_distance_fsm, minimal_pairs, nearest_accepted, perturb

ALPHA = "abc"


def _random_pattern():
    spec = importlib.util.spec_from_file_location("_v02", Path(__file__).with_name("test_v02_defects.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.random_pattern


random_pattern = _random_pattern()


def lev(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def _accepted(p: str, max_len: int) -> list[str]:
    return [s for L in range(max_len + 1) for s in ("".join(t) for t in itertools.product(ALPHA, repeat=L)) if re.fullmatch(p, s)]


@pytest.mark.parametrize("seed", range(4))
def test_distance_and_exact_k_language_match_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(3):
        p = random_pattern(rng, depth=2)
        fsm = compile_regex(p, ALPHA)
        if fsm.is_empty:
            continue
        acc = _accepted(p, 7)  # strings up to 4 need accepted ones up to 4 + k (k <= 2) + slack
        near = {k: edit_distance_fsm(fsm, k) for k in (1, 2)}
        for L in range(5):
            for t in itertools.product(ALPHA, repeat=L):
                s = "".join(t)
                d = min(lev(s, w) for w in acc)
                if d <= 2:  # distances above 2 could need accepted strings longer than 7
                    assert edit_distance(fsm, fsm.encode(s)) == d, (p, s)
                for k, nf in near.items():
                    assert nf.accepts(s) == (d == k) or d > 2, (p, s, k, d)


def test_minimal_pairs_are_at_distance_k_uniform_and_paired() -> None:
    p = "(ab|c)+"
    fsm = compile_regex(p, ALPHA)
    acc = _accepted(p, 8)
    recs = minimal_pairs(fsm, 1, 3000, L_min=3, L_max=3, seed=0)
    exact = [s for s in ("".join(t) for t in itertools.product(ALPHA, repeat=3)) if min(lev(s, w) for w in acc) == 1]
    got = Counter(r["text"] for r in recs)
    assert set(got) == set(exact)
    # uniform: chi-square against equal counts (df = len - 1; a loose 99.9% bound)
    e = 3000 / len(exact)
    chi2 = sum((got[s] - e) ** 2 / e for s in exact)
    assert chi2 < len(exact) + 6 * np.sqrt(2 * len(exact))
    for r in recs[:300]:
        assert r["distance"] == 1 and re.fullmatch(p, r["nearest_text"]) and lev(r["text"], r["nearest_text"]) == 1


def test_nearest_and_perturbations() -> None:
    fsm = compile_regex("abc", ALPHA)
    w, d = nearest_accepted(fsm, fsm.encode("bc"))
    assert d == 1 and fsm.decode(w) == "abc"
    rng = np.random.default_rng(0)
    for kind in ("insertion", "deletion", "substitution"):
        t, _ = perturb(fsm, fsm.encode("abc"), kind, rng)
        assert lev(fsm.decode(t), "abc") == (1 if kind != "insertion" else 1)
    with pytest.raises(FsmError, match="k"):
        edit_distance_fsm(fsm, 0)


def test_cli_pairs(tmp_path: Path) -> None:
    from click.testing import CliRunner
    from datacore import read_jsonl
    from fsmdata.cli import main

    out = tmp_path / "p.jsonl"
    r = CliRunner().invoke(
        main, ["pairs", "(ab|c)+", "--alphabet", "abc", "-k", "2", "-n", "50", "--l-max", "6", "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    recs = list(read_jsonl(out))
    assert len(recs) == 50 and all(x["distance"] == 2 and re.fullmatch("(ab|c)+", x["nearest_text"]) for x in recs)
    assert all(lev(x["text"], x["nearest_text"]) == 2 for x in recs)
