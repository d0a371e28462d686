"""The fast walk over choice rows (``Engine._walk_rows``) draws the same strings as the plain
per-step walk it replaced: one ``rng.random(na)`` per step, a row gather by (target, steps
left, state), the first symbol whose running weight exceeds ``u * total``, and the DFA table
for the next state.  The reference below is that plain walk, written here without the
engine's row index, next-row table, batched draws or packed comparison."""

from __future__ import annotations

import numpy as np
import pytest
from fsmdata import GenConfig, compile_regex
from fsmdata.engine import Engine
from fsmdata.feasibility import TARGETS


def _plain_walk(eng: Engine, cum: np.ndarray, kinds: np.ndarray, lens: np.ndarray, rng: np.random.Generator):
    fsm, S, n = eng.fsm, eng.fsm.n_symbols, eng.fsm.n_states
    B, width = len(lens), int(lens.max())
    tokens = np.zeros((B, width), dtype=np.int32)
    states = np.zeros((B, width + 1), dtype=np.int32)
    states[:, 0] = fsm.start
    order = np.argsort(-lens, kind="stable")
    for t in range(width):
        act = order[lens[order] > t]
        q = states[act, t]
        rows = cum[(kinds[act] * (eng.T + 1) + (lens[act] - 1 - t)) * n + q][:, :S]
        u = rng.random(len(act)) * rows[:, -1]
        a = (rows <= u[:, None]).sum(axis=1)
        tokens[act, t] = a
        states[act, t + 1] = fsm.table[q, a]
    return tokens, states


@pytest.mark.parametrize(
    ("pattern", "alphabet"),
    [("x(a|b)*y(c|d)z", "abcdxyz"), ("(ab|cd)+e?", "abcde"), ("(0|1(01*0)*1)*", "01234567"), ("[a-k]+(q|r)[0-9]*", None)],
)
@pytest.mark.parametrize("mode", ["coverage", "uniform"])
def test_walk_rows_draws_what_the_plain_walk_draws(pattern: str, alphabet: str | None, mode: str) -> None:
    fsm = compile_regex(pattern, alphabet)
    eng = Engine(fsm, GenConfig(L_min=1, L_max=24, mode=mode))
    rng = np.random.default_rng(5)
    W = None if mode == "uniform" else rng.random((fsm.n_states, fsm.n_symbols)) + 0.01
    kind = TARGETS.index("A")
    ok = [L for L in range(1, 25) if eng.feas.start_feasible("A", L)]
    lens = np.array(rng.choice(ok, size=500), dtype=np.int64)
    kinds = np.full(len(lens), kind, dtype=np.int64)
    cum = eng._cum_rows(W)
    assert cum is not None
    got = eng.walk(kinds, lens, np.random.default_rng(11), W)
    want = _plain_walk(eng, cum, kinds, lens, np.random.default_rng(11))
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    # and every walked string is accepted, by Python's re on the text
    import re

    for row, L in zip(got[0].tolist(), lens.tolist()):
        text = "".join(fsm.alphabet[a] for a in row[:L])
        assert re.fullmatch(pattern, text), text
