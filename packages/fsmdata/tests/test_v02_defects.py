"""Issue 14 (fsmdata 0.2) defects: each test here failed on main at 078fba8.

The oracles share no code with the generator: class and subtype definitions are checked
with Python's ``re`` (full match) and the ``regex`` module's partial matching (a string is
"live" when some extension of it is fully matched).
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from pathlib import Path

import attrs
import numpy as np
import pytest
import regex as regex_mod
from click.testing import CliRunner
from datacore import build_dataset, read_jsonl
from fsmdata import FSM, FsmDataset, FsmGenerator, GenConfig, InfeasibleTargetError, compile_regex, generate_corpus
from fsmdata.cli import main
from fsmdata.errors import FsmError

# -- the independent oracle -------------------------------------------------------------


def _live(pattern: str, s: str) -> bool:
    """Some extension of ``s`` is fully matched (``regex`` partial matching)."""
    return regex_mod.fullmatch(pattern, s, partial=True) is not None


def _acc(pattern: str, s: str) -> bool:
    return re.fullmatch(pattern, s) is not None


def oracle_class(pattern: str, s: str, task: str) -> str:
    if _acc(pattern, s):
        return "A"
    if task == "binary":
        return "R"
    return "I" if _live(pattern, s) else "R"


def oracle_subtype(pattern: str, alphabet: str, s: str, subtype: str, task: str, branch_pos: int | None) -> bool:
    """Each subtype's docstring, checked with re / regex only."""
    L = len(s)
    if oracle_class(pattern, s, task) != "R":
        return False
    if subtype in ("illegal_step", "overrun"):
        ok = L >= 1 and all(_live(pattern, s[:j]) for j in range(L)) and not _live(pattern, s)
        if subtype == "overrun":
            ok = ok and L >= 2 and _acc(pattern, s[:-1]) and s[-1] == s[-2]
        return ok
    if subtype == "premature":
        return task == "binary" and _live(pattern, s) and not _acc(pattern, s)
    if subtype == "dead_suffix":
        return L >= 1 and not _live(pattern, s[: L - 1])
    if subtype == "wrong_alt":
        k = branch_pos
        if k is None or not L // 2 <= k < L or not _live(pattern, s[: k + 1]):
            return False
        if task == "binary" and not _live(pattern, s):  # binary: every step defined
            return False
        if task == "ternary" and _live(pattern, s):
            return False
        return any(b != s[k] and _acc(pattern, s[:k] + b + s[k + 1 :]) for b in alphabet)
    raise AssertionError(subtype)


def random_pattern(rng: np.random.Generator, depth: int = 3) -> str:
    """A random regex over a, b, c (Python ``re`` syntax, fsmdata dialect)."""

    def atom(d: int) -> str:
        r = rng.random()
        if d <= 0 or r < 0.35:
            return str(rng.choice(["a", "b", "c", "[ab]", "[bc]", "a", "b"]))
        if r < 0.6:
            return "(" + "|".join(expr(d - 1) for _ in range(int(rng.integers(2, 4)))) + ")"
        return "(" + expr(d - 1) + ")"

    def piece(d: int) -> str:
        a = atom(d)
        r = rng.random()
        if r < 0.2:
            return a + "*"
        if r < 0.3:
            return a + "+"
        if r < 0.4:
            return a + "?"
        if r < 0.5:
            lo = int(rng.integers(0, 3))
            return a + "{" + f"{lo},{lo + int(rng.integers(0, 3))}" + "}"
        return a

    def expr(d: int) -> str:
        return "".join(piece(d) for _ in range(int(rng.integers(1, 4))))

    return expr(depth)


def _records(out: Path) -> list[dict]:
    return [r for s in ("train", "val", "test") for p in sorted((out / s).glob("part-*")) for r in read_jsonl(p)]


# -- defect 1: binary task, explicit mix without premature ----------------------------


def test_binary_explicit_mix_without_premature_does_not_crash(tmp_path: Path) -> None:
    out = tmp_path / "o"
    r = CliRunner().invoke(
        main,
        [
            "generate",
            "--regex",
            ".{5}x.*",
            "--task",
            "binary",
            "--reject-mix",
            "illegal_step=1",
            "--l-max",
            "12",
            "-n",
            "200",
            "--out",
            str(out),
            "--executor",
            "inline",
            "--quiet",
        ],
    )
    assert r.exit_code == 0, r.output
    recs = _records(out)
    assert len(recs) == 200
    assert not list(out.rglob("*.tmp"))
    rej = [x for x in recs if x["class"] == "R"]
    assert rej and {x["reject_subtype"] for x in rej} == {"illegal_step"}
    for x in recs:
        assert oracle_class(".{5}x.*", x["text"], "binary") == x["class"]
        if x["class"] == "R":
            assert oracle_subtype(".{5}x.*", "", x["text"], "illegal_step", "binary", None), x


# -- defect 2: FsmDataset honours the task --------------------------------------------


def test_fsmdataset_binary_premature_is_labelled_reject() -> None:
    pytest.importorskip("torch")
    fsm = compile_regex("(ab)+", "ab")
    cfg = GenConfig(L_min=1, L_max=8, task="binary", reject_mix={"premature": 1})
    recs = list(generate_corpus(fsm, cfg, 300, seed=1).records())
    prem = [r for r in recs if r["reject_subtype"] == "premature"]
    assert prem
    ds = FsmDataset(fsm, prem)
    assert ds.task == "binary"
    for i in range(len(ds)):
        assert int(ds[i]["label"]) == 2  # class R
        assert set(ds[i]["classes"].tolist()) <= {0, 2}
    # ternary records (or an explicit task) keep I
    tern = FsmDataset(fsm, [[0]], task="ternary")
    assert int(tern[0]["label"]) == 1
    with pytest.raises(FsmError, match="task"):
        FsmDataset(fsm, [[0]], task="quad")


# -- defect 3: the reject mix is honoured or refused ----------------------------------


def test_reject_mix_honoured_without_dead_suffix_fallback() -> None:
    pat = ".{2}a.{3}"
    fsm = compile_regex(pat, "abc")
    cfg = GenConfig(L_min=1, L_max=16, reject_mix={"illegal_step": 1, "overrun": 1})
    recs = list(generate_corpus(fsm, cfg, 3000, seed=0).records())
    sub = Counter(r["reject_subtype"] for r in recs if r["class"] == "R")
    n_r = sum(sub.values())
    assert set(sub) == {"illegal_step", "overrun"}
    assert abs(sub["illegal_step"] - n_r / 2) <= 1 and abs(sub["overrun"] - n_r / 2) <= 1
    for r in recs:
        assert oracle_class(pat, r["text"], "ternary") == r["class"]
        if r["class"] == "R":
            assert oracle_subtype(pat, "abc", r["text"], r["reject_subtype"], "ternary", None), r


def test_uniform_mode_reject_mix_honoured_or_refused() -> None:
    fsm = compile_regex("(ab|cd)+e?", "abcde")
    with pytest.raises(InfeasibleTargetError, match="wrong_alt"):
        generate_corpus(fsm, GenConfig(L_max=10, mode="uniform", reject_mix={"wrong_alt": 1}), 100, seed=0)
    cfg = GenConfig(L_max=10, mode="uniform", reject_mix={"illegal_step": 1, "overrun": 1})
    recs = list(generate_corpus(fsm, cfg, 2000, seed=0).records())
    sub = Counter(r["reject_subtype"] for r in recs if r["class"] == "R")
    assert set(sub) == {"illegal_step", "overrun"} and abs(sub["illegal_step"] - sub["overrun"]) <= 2
    for r in recs:
        if r["class"] == "R":
            assert oracle_subtype("(ab|cd)+e?", "abcde", r["text"], r["reject_subtype"], "ternary", None)


def test_mix_conflicting_with_length_balance_is_refused_or_bent_as_asked() -> None:
    # overrun exists only at length 7; illegal_step at 3 and 7: equal subtype shares and
    # equal R lengths are compatible; add dead_suffix (lengths 4..16) and they are not.
    fsm = compile_regex(".{2}a.{3}", "abc")
    mix = {"illegal_step": 1, "overrun": 1, "dead_suffix": 1}
    with pytest.raises(InfeasibleTargetError, match="mix_priority"):
        generate_corpus(fsm, GenConfig(L_max=16, reject_mix=mix), 100, seed=0)
    sub_first = generate_corpus(fsm, GenConfig(L_max=16, reject_mix=mix, mix_priority="subtype"), 3000, seed=0)
    got = Counter(r["reject_subtype"] for r in sub_first.records() if r["class"] == "R")
    assert max(got.values()) - min(got.values()) <= 1
    len_first = generate_corpus(fsm, GenConfig(L_max=16, reject_mix=mix, mix_priority="length"), 3000, seed=0)
    lens = Counter(r["length"] for r in len_first.records() if r["class"] == "R")
    assert max(lens.values()) - min(lens.values()) <= 1
    resid = len_first.report.plan_residual
    assert resid and max(abs(v) for v in resid.values()) > 0.05  # subtypes bent, and reported


def test_targets_declared_and_strata_observed(tmp_path: Path) -> None:
    fsm = compile_regex(".{2}a.{3}", "abc")
    gen = FsmGenerator(fsm, GenConfig(L_max=16, reject_mix={"illegal_step": 1, "overrun": 1}))
    targets = gen.targets(1000)
    names = {t.stratum: t.share for t in targets}
    assert abs(names["subtype=overrun"] - 1 / 6) < 1e-9 and abs(names["class=A,length=6"] - 1 / 3) < 1e-9
    assert abs(sum(v for k, v in names.items() if k.startswith("class=")) - 1) < 1e-9
    build_dataset(gen, tmp_path / "d", 1000, seed=1, executor="inline", shard_size=300, progress=False)
    tel = json.loads((tmp_path / "d" / "telemetry.json").read_text())
    strata = tel["histograms"]["strata"]
    for t in targets:
        assert abs(strata.get(t.stratum, 0) / 1000 - t.share) <= t.tolerance, t


# -- defect 4: subtype semantics, on random patterns ----------------------------------


@pytest.mark.parametrize("task", ["ternary", "binary"])
def test_subtypes_meet_their_definitions_on_random_patterns(task: str) -> None:
    rng = np.random.default_rng(14)
    checked = Counter()
    n_patterns = 0
    while n_patterns < 12:
        pat = random_pattern(rng)
        try:
            fsm = compile_regex(pat, "abcd")
        except FsmError:  # over the DFA size limit: refused by design
            continue
        if fsm.is_empty:
            continue
        cfg = GenConfig(L_min=1, L_max=9, task=task)
        try:
            corpus = generate_corpus(fsm, cfg, 400, seed=int(rng.integers(1 << 30)))
        except InfeasibleTargetError:
            continue
        n_patterns += 1
        for r in corpus.records():
            assert oracle_class(pat, r["text"], task) == r["class"], (pat, r)
            if r["class"] == "R":
                st = r["reject_subtype"]
                assert oracle_subtype(pat, "abcd", r["text"], st, task, r["meta"].get("branch_pos")), (pat, r)
                checked[st] += 1
    assert checked["wrong_alt"] > 100 and checked["overrun"] > 50 and checked["illegal_step"] > 100
    if task == "binary":
        assert checked["premature"] > 100


# -- defect 5: deep nesting and state blow-up -----------------------------------------


def test_200_nested_groups_compile() -> None:
    pat = "(" * 200 + "ab" + ")" * 200 + "*"
    assert re.compile(pat)
    assert compile_regex(pat) == compile_regex("(ab)*")


def test_too_deep_nesting_is_one_clear_error() -> None:
    with pytest.raises(FsmError, match="nest") as ei:
        compile_regex("(" * 5000 + "a" + ")" * 5000)
    assert "\n" not in str(ei.value).splitlines()[0]


def test_state_blowup_is_refused_with_numbers_and_limit() -> None:
    t0 = time.perf_counter()
    with pytest.raises(FsmError) as ei:
        compile_regex("(a{1000}){100}")
    assert time.perf_counter() - t0 < 5
    msg = str(ei.value)
    assert "100,000" in msg and "limit" in msg and "\n" not in msg
    r = CliRunner().invoke(main, ["compile", "(a{1000}){100}"])
    assert r.exit_code == 1 and "Traceback" not in r.output and r.output.count("\n") == 1


# -- defect 6: --unique ----------------------------------------------------------------


def test_unique_gives_distinct_strings_per_cell_and_refuses_exhausted_cells(tmp_path: Path) -> None:
    fsm = compile_regex("(ab|a)(bc|c)", "abc")
    with pytest.raises(InfeasibleTargetError, match="distinct"):
        FsmGenerator(fsm, GenConfig(L_min=1, L_max=4, unique=True)).targets(2000)
    cfg = GenConfig(L_min=1, L_max=6, unique=True, p_class={"A": 1})
    gen = FsmGenerator(fsm, cfg)
    gen.targets(3)  # "ac", "abc" (ab.c and a.bc are one string), "abbc": one string at each of 3 lengths
    build_dataset(gen, tmp_path / "u", 3, seed=2, executor="inline", shard_size=1, progress=False)
    texts = [r["text"] for r in _records(tmp_path / "u")]
    assert sorted(texts) == ["abbc", "abc", "ac"]
    with pytest.raises(InfeasibleTargetError, match="distinct"):
        gen.targets(5)


def test_nfa_size_estimate_is_exact_on_random_patterns() -> None:
    from fsmdata.compile import _NFA, nfa_size
    from fsmdata.regex_parser import parse_regex

    rng = np.random.default_rng(3)
    for _ in range(200):
        parsed = parse_regex(random_pattern(rng))
        nfa = _NFA()
        nfa.build(parsed.ast, "abcd", "char")
        assert nfa_size(parsed.ast) == len(nfa.eps)


# -- defect 7: coverage bound per pattern ----------------------------------------------


def test_edge_bounds_match_brute_force_on_random_patterns() -> None:
    import itertools

    from fsmdata.coverage import coverage_summary, edge_bounds
    from fsmdata.engine import Engine

    rng = np.random.default_rng(7)
    done = 0
    while done < 8:
        pat = random_pattern(rng, depth=2)
        fsm = compile_regex(pat, "abc")
        cfg = GenConfig(L_min=1, L_max=5, reject_mix={"illegal_step": 1, "overrun": 1, "dead_suffix": 1}, mix_priority="length")
        try:
            eng = Engine(fsm, cfg)
        except InfeasibleTargetError:
            continue
        done += 1
        live = fsm.live_edges()
        brute = np.zeros(live.shape)
        cells: dict[tuple[str, int, str], set] = {}
        for L in range(1, 6):
            for tup in itertools.product("abc", repeat=L):
                s = "".join(tup)
                c = oracle_class(pat, s, "ternary")
                subs = (
                    [""]
                    if c != "R"
                    else [
                        t for t in ("illegal_step", "overrun", "dead_suffix") if oracle_subtype(pat, "abc", s, t, "ternary", None)
                    ]
                )
                st = fsm.trace(s)
                edges = {(st[j], fsm.symbol_index[ch]) for j, ch in enumerate(s)}
                for sub in subs:
                    cells.setdefault((c, L, sub), set()).update(edges)
        for cell, share in zip(eng.plan.cells, eng.plan.shares.tolist()):
            for q, a in cells.get(cell, ()):
                if live[q, a]:
                    brute[q, a] += share
        assert np.allclose(edge_bounds(eng.plan), brute), pat
        corpus = generate_corpus(fsm, cfg, 3000, seed=1, _engine=eng)
        assert np.all((corpus.report.edge_hits / 3000)[live] <= brute[live] + 1e-9)
        cs = coverage_summary(eng.plan, corpus.report.edge_hits, 3000)
        assert cs["least_edge_share"] <= cs["least_edge_bound"] + 1e-9 and 0 < cs["vs_bound_ceiling"] <= 1


def test_repeats_are_warned_about_without_unique(tmp_path: Path) -> None:
    args = ["generate", "--regex", "(ab|a)(bc|c)", "-n", "300", "--out", str(tmp_path / "w"), "--executor", "inline", "--quiet"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    err = r.output + (r.stderr if r.stderr_bytes is not None else "")
    assert "strings repeat" in err and "class=" in err


@pytest.mark.parametrize("n", [200, 500, 1000])
def test_position_cells_are_balanced_and_shard_independent(n: int) -> None:
    from fsmdata.engine import Engine

    fsm = compile_regex("(a|b)*c", "abcd")
    plan = Engine(fsm, GenConfig(L_min=1, L_max=100)).plan
    cells, occ = plan.cells_at(0, n)
    got: Counter = Counter()
    for ci in cells.tolist():
        c, L, s = plan.cells[ci]
        got[c] += 1
        if s:
            got["subtype=" + s] += 1
    for c in ("A", "I", "R"):
        assert abs(got[c] / n - plan.class_weights[c]) <= 0.02, (c, got[c])
    for k, v in plan.planned.items():
        if k.startswith("subtype="):
            assert abs(got[k] / n - v) <= 0.02, (k, got[k])
    for size in (7, 50):
        parts = [plan.cells_at(s0, min(size, n - s0)) for s0 in range(0, n, size)]
        assert np.array_equal(np.concatenate([p[0] for p in parts]), cells)
        assert np.array_equal(np.concatenate([p[1] for p in parts]), occ)
    assert len(set(zip(cells.tolist(), occ.tolist()))) == n


# -- realism of coverage-steered strings (issue 14, found reading records) ---------------------
# The issue found 62% of the accepted strings of length >= 12 in the demo dataset
# (x(a|b)*y(c|d)z, L <= 32) holding a run of 10+ identical letters (xaaaaaaaaaaaaaaaaaaycz): the
# coverage palettes made long strings avoid a loop edge altogether.  Oracle: Python's re (a
# backreference run pattern) on the records' text; the same generator with steering off
# (balance=0) is the reference for what a language itself forces.

_RUN = re.compile(r"(.)\1{9}")  # 10 or more identical symbols in a row


def _run_share(fsm: FSM, cfg: GenConfig, n: int, seed: int) -> tuple[float, dict]:
    c = generate_corpus(fsm, cfg, n, seed=seed)
    acc = [r["text"] for r in c.records() if r["class"] == "A" and r["length"] >= 12]
    assert acc
    return sum(bool(_RUN.search(s)) for s in acc) / len(acc), c.report.coverage(fsm)


def test_demo_pattern_keeps_coverage_without_monochrome_loops() -> None:
    """Before: 62% of long accepted strings had a 10-run (least/median 0.61); now <= 30% and
    least/median still >= 0.5 (measured 22%, 0.57).  Unsteered: 1% and 0.39."""
    fsm = compile_regex("x(a|b)*y(c|d)z", "abcdxyz")
    share, cov = _run_share(fsm, GenConfig(L_min=1, L_max=32), 20_000, seed=1)
    assert cov["min_over_median"] >= 0.5, cov
    assert share <= 0.30, share


def test_random_patterns_runs_no_more_than_the_language_forces() -> None:
    """On unseen random patterns the steered share of long accepted strings with a 10-run
    stays within 0.1 of the unsteered sampler's (what the language itself forces, e.g. ``a+``).
    Before the fix 3 of these 18 patterns broke it (0.37 vs 0.00, 0.20 vs 0.00, 0.46 vs 0.29)."""
    rng = np.random.default_rng(2026)
    checked = 0
    for _ in range(18):
        p = random_pattern(rng)
        fsm = compile_regex(p, "abcd")
        if fsm.n_states > 200:
            continue  # the largest patterns make few long accepted strings and cost the most
        cfg = GenConfig(L_min=1, L_max=16)
        try:
            steered, _ = _run_share(fsm, cfg, 3_000, seed=3)
            plain, _ = _run_share(fsm, attrs.evolve(cfg, balance=0.0), 3_000, seed=3)
        except AssertionError:
            continue  # no accepted string of length >= 12 in this pattern
        assert steered <= plain + 0.1, (p, steered, plain)
        checked += 1
    assert checked >= 10


# -- coverage: rare edges on random patterns (edge-forcing walks) --------------------------


def _random_fsms(seed: int, count: int, max_states: int) -> list[tuple[str, FSM]]:
    rng = np.random.default_rng(seed)
    out: list[tuple[str, FSM]] = []
    while len(out) < count:
        pat = random_pattern(rng)
        try:
            fsm = compile_regex(pat, "abcd")
        except FsmError:
            continue
        if not fsm.is_empty and fsm.n_states <= max_states:
            out.append((pat, fsm))
    return out


def test_forced_walks_hold_their_edge_and_keep_labels_exact() -> None:
    """Every forced row takes its edge at its position, its states are the FSM's trace, and its
    class / subtype agree with Python's re and the regex module (the oracles above)."""
    from fsmdata.engine import Engine

    forced_total = 0
    for pat, fsm in _random_fsms(14, 8, 200):  # (seed 14: patterns Python's re matches without blow-up)
        cfg = GenConfig(L_min=1, L_max=9)
        try:
            eng = Engine(fsm, cfg)
        except InfeasibleTargetError:
            continue
        if not eng.forcer.ok:
            continue
        rng = np.random.default_rng(1)
        cls, lens, subs = eng.plan.allocate_positions(0, 600, rng)
        seen: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        choose = eng.forcer.choose

        def spy(*a, _choose=choose, _seen=seen, **k):  # type: ignore[no-untyped-def]
            r = _choose(*a, **k)
            _seen.append(r)
            return r

        eng.forcer.choose = spy  # type: ignore[method-assign]
        # a third of the live edges never covered, the rest in 100 samples: those edges are wanted
        hits = np.where(fsm.live_edges(), 100, 0)
        hits[fsm.live_edges() & (rng.random(hits.shape) < 1 / 3)] = 0
        stats: dict[str, int] = {}
        b = eng.generate(cls, lens, subs, rng, np.ones((fsm.n_states, fsm.n_symbols)), stats, hits=hits, samples=100)
        rows, e, t = seen[0]
        assert len(rows) == stats.get("forced_rows", 0)
        forced_total += len(rows)
        fc = eng.forcer
        assert (b.tokens[rows, t] == fc.ea[e]).all() and (b.states[rows, t] == fc.eq[e]).all(), pat
        from fsmdata.generator import batch_records

        for i, r in enumerate(batch_records(fsm, cfg, b)):
            L = r["length"]
            assert b.states[i, : L + 1].tolist() == fsm.trace(r["tokens"]), (pat, r)
            assert oracle_class(pat, r["text"], "ternary") == r["class"], (pat, r)
            if r["class"] == "R":
                assert oracle_subtype(pat, "abcd", r["text"], r["reject_subtype"], "ternary", r["meta"].get("branch_pos")), (
                    pat,
                    r,
                )
    assert forced_total > 500


def test_forcing_lifts_the_least_edge_on_random_patterns(monkeypatch: pytest.MonkeyPatch) -> None:
    """least / median over the edges some planned cell can contain, 4,000 samples, L <= 16, on
    random patterns (the 0.2 measurement found 0.00-0.22 on most unseen patterns): with forcing
    no pattern is worse by more than 0.05 than without, the mean rises by at least 0.05, and
    every such edge is contained in some sample (tolerance: the numbers are of one seed)."""
    import fsmdata.engine as engine_mod
    import fsmdata.generator as generator_mod

    monkeypatch.setattr(generator_mod, "LP_BAR", 0.0)  # the forcing itself, without the LP-flow remake of a shard
    fsms = _random_fsms(2026, 10, 200)
    res = []
    for force in (True, False):
        monkeypatch.setattr(engine_mod, "FORCE_MAX_SHARE", 0.5 if force else 0.0)
        row = []
        for _pat, fsm in fsms:
            c = generate_corpus(fsm, GenConfig(L_min=1, L_max=16), 4_000, seed=3)
            cv = c.coverage()
            row.append((cv["min_over_median_coverable"], cv["least_edge_share"] > 0 or cv["uncoverable_edges"] > 0))
        res.append(row)
    forced, plain = res
    for (pat, _), (f, _), (p, _) in zip(fsms, forced, plain):
        assert f >= p - 0.05, (pat, f, p)
    assert np.mean([f for f, _ in forced]) >= np.mean([p for p, _ in plain]) + 0.05, (forced, plain)
