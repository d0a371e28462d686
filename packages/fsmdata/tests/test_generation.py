"""Milestone 2: feasibility, quotas, config, generators, rejects, corpus, report, uniform mode."""

from __future__ import annotations

import itertools
from collections import Counter

import attrs
import numpy as np
import pytest
from fsmdata import (
    FSM,
    DataReport,
    Feasibility,
    GenConfig,
    InfeasibleTargetError,
    QuotaManager,
    backward,
    can_reach_tables,
    compile_regex,
    compile_token_regex,
    count_exact,
    count_scaled,
    describe_reject,
    forward,
    generate_corpus,
    reject_subtype_holds,
)
from fsmdata.engine import Engine
from fsmdata.errors import EmptyLanguageError, FsmError
from fsmdata.feasibility import TARGETS, target_masks

PATTERNS = [("a+", "ab"), ("a*b*", "ab"), ("(ab|cd)+e?", "abcde"), ("x(a|b)*y(c|d)z", "abcdxyz")]


def _run_from(fsm: FSM, q: int, s: tuple[int, ...]) -> int:
    for a in s:
        q = int(fsm.table[q, a])
    return q


@pytest.mark.parametrize(("pattern", "alphabet"), PATTERNS)
def test_reach_tables_match_brute_force(pattern: str, alphabet: str) -> None:
    fsm = compile_regex(pattern, alphabet)
    feas = Feasibility(fsm, 5)
    masks = target_masks(fsm)
    for t in range(6):
        strings = list(itertools.product(range(fsm.n_symbols), repeat=t))
        for q in range(fsm.n_states):
            ends = {_run_from(fsm, q, s) for s in strings}
            for k, name in enumerate(TARGETS):
                assert feas.reach[k, t, q] == any(masks[name][e] for e in ends), (pattern, q, t, name)
    cr = can_reach_tables(fsm, 5)
    assert cr.shape == (fsm.n_states, 6, 3) and np.array_equal(cr, feas.reach[:3].transpose(2, 1, 0))


def test_can_reach_hand_computed() -> None:
    fsm = compile_regex("a+", "ab")  # states: 0 start, 1 accepting, 2 sink
    cr = can_reach_tables(fsm, 3)
    assert cr[0, 0].tolist() == [0, 1, 0]  # empty string: start is I
    assert cr[0, 1].tolist() == [1, 0, 1]  # "a" accepted, "b" dead
    assert cr[1, 2].tolist() == [1, 0, 1]
    assert cr[2, 3].tolist() == [0, 0, 1]
    assert Feasibility(fsm, 3).feasible(0, 2, 0) and not Feasibility(fsm, 3).feasible(2, 2, "A")


@pytest.mark.parametrize(("pattern", "alphabet"), PATTERNS)
def test_counts_exact_scaled_and_brute_force(pattern: str, alphabet: str) -> None:
    fsm = compile_regex(pattern, alphabet)
    masks = target_masks(fsm)
    exact = count_exact(fsm.table, masks["A"], 6)
    scaled, log_scale = count_scaled(fsm.table, masks["A"], 6)
    for t in range(7):
        brute = sum(fsm.accepting[_run_from(fsm, fsm.start, s)] for s in itertools.product(range(fsm.n_symbols), repeat=t))
        assert exact[t][fsm.start] == brute
        assert np.isclose(scaled[t, fsm.start] * np.exp(log_scale[t]), brute)


def test_counts_do_not_overflow_at_scale() -> None:
    rng = np.random.default_rng(0)
    n, S = 300, 64
    table = rng.integers(0, n, size=(n, S))
    acc = rng.random(n) < 0.3
    scaled, log_scale = count_scaled(table, acc, 512)
    assert np.isfinite(scaled).all() and np.isfinite(log_scale).all() and scaled.max() <= 1.0
    assert log_scale[512] > 700  # ~64^512 strings: far past float64, kept in the log scale


def test_quota_manager() -> None:
    qm = QuotaManager(3, 2)
    w0 = qm.edge_weight(0, 1)
    qm.update_path([0, 1, 1], [1, 0])
    # counts are samples containing the edge / visiting the state: state 1 twice counts once
    assert qm.hits[0, 1] == 1 and qm.hits[1, 0] == 1 and qm.hits_state.tolist() == [1, 1, 0]
    qm.update_path([0, 1, 1, 1], [1, 0, 0])  # edge (1, 0) twice in one sample: +1
    assert qm.hits[1, 0] == 2 and qm.hits_state.tolist() == [2, 2, 0]
    assert qm.edge_weight(0, 1) < w0 and qm.edge_weight(0, 0) == w0
    for _ in range(9):
        qm.update_path([0, 1, 1], [1, 0])
    assert qm.edge_weight(0, 1) == pytest.approx(1 / np.sqrt(12))
    tq = QuotaManager(2, 2, edge_target=5)
    tq.update_path([0, 1], [0])
    assert tq.edge_weight(0, 1) == pytest.approx(4.0)  # under target: boosted
    assert tq.summary()["below_edge_target"] == 4
    bq = QuotaManager(3, 2)
    bq.update_batch(np.array([[0, 1, 1, 1], [0, 2, 0, 0]]), np.array([[1, 0, 0], [0, 0, 0]]), np.array([3, 1]))
    assert bq.hits.tolist() == [[1, 1], [1, 0], [0, 0]] and bq.hits_state.tolist() == [2, 1, 1]
    # the sparse path (many rows x edges) counts the same
    import fsmdata.quotas as quotas

    sq = QuotaManager(3, 2)
    old_dense, quotas._DENSE_CELLS = quotas._DENSE_CELLS, 0
    try:
        sq.update_batch(np.array([[0, 1, 1, 1], [0, 2, 0, 0]]), np.array([[1, 0, 0], [0, 0, 0]]), np.array([3, 1]))
    finally:
        quotas._DENSE_CELLS = old_dense
    assert sq.hits.tolist() == bq.hits.tolist() and sq.hits_state.tolist() == bq.hits_state.tolist()


def test_palettes_damp_over_covered_but_never_cut_off_rare_edges() -> None:
    fsm = compile_regex("x(a|b)*y(c|d)z", "abcdxyz")
    live = fsm.live_edges()
    qm = QuotaManager(fsm.n_states, fsm.n_symbols, balance=0.65)
    sym = {c: i for i, c in enumerate(fsm.alphabet)}
    q1 = int(fsm.table[fsm.start, sym["x"]])
    q2 = int(fsm.table[q1, sym["y"]])
    qm.hits[live] = 1000
    qm.hits[q2, sym["c"]] = qm.hits[q2, sym["d"]] = 300  # c, d rare: tau = 300 / 0.65
    qm.hits[q1, sym["b"]] = 1200  # b more covered than a
    P = qm.palettes(64, fsm.table, live, np.random.default_rng(0))
    base = qm.weights()
    assert P.shape == (64, fsm.n_states, fsm.n_symbols)
    assert P[0, q1, sym["a"]] == pytest.approx(base[q1, sym["a"]])
    damped = P[1:] < base[None] * 0.5
    # one loop edge is avoided, always the same one (the over-covered edge nearest to tau), so
    # the samples that avoid an edge avoid that one and the others keep mixing a and b
    assert damped[:, q1, sym["a"]].any() and not damped[:, q1, sym["b"]].any()
    assert not damped[:, q1, sym["y"]].any()  # y leads to the rare c / d: never avoided
    assert not damped[:, fsm.start, sym["x"]].any()
    assert (P[:, q2, sym["c"]] > base[q2, sym["c"]]).all()  # rare edges pulled up
    qm.hits[:] = 0  # an unhit live edge: no steering yet
    assert np.allclose(qm.palettes(4, fsm.table, live, np.random.default_rng(0)), qm.weights()[None])


@pytest.mark.parametrize(("pattern", "alphabet"), [("(ab|cd)+e?", "abcde"), ("x(a|b)*y(c|d)z", "abcdxyz")])
def test_coverage_balance_least_over_median(pattern: str, alphabet: str) -> None:
    """Least-used live edge >= half the median (counted as samples containing the edge).

    Both patterns have an edge a string can use at most once (``e``; ``c`` / ``d``) next to
    loop edges; plain inverse-sqrt weights give 0.37 / 0.40 here, the palettes ~0.55."""
    fsm = compile_regex(pattern, alphabet)
    cfg = GenConfig(L_min=1, L_max=32)
    rep = generate_corpus(fsm, cfg, 20_000, seed=4).report
    cov = rep.coverage(fsm)
    assert cov["live_edges_hit"] == cov["live_edges"]
    assert cov["min_over_median"] >= 0.5, cov
    off = generate_corpus(fsm, attrs.evolve(cfg, balance=0.0), 20_000, seed=4).report.coverage(fsm)
    assert off["min_over_median"] < cov["min_over_median"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"L_min": -1}, "L_min"),
        ({"L_min": 5, "L_max": 2}, "L_max"),
        ({"task": "quad"}, "task"),
        ({"p_class": {"A": 1, "Z": 1}}, "p_class"),
        ({"p_class": {"A": -1}}, "p_class"),
        ({"p_class": {"A": 0, "I": 0, "R": 0}}, "p_class"),
        ({"reject_mix": {"premature": 1}}, "reject_mix"),
        ({"mode": "fast"}, "mode"),
        ({"attempts_per_sample": 0}, "attempts_per_sample"),
    ],
)
def test_genconfig_validation_names_field(kwargs, field) -> None:
    with pytest.raises(FsmError) as ei:
        GenConfig(**kwargs)
    assert str(ei.value).startswith(field)


def test_genconfig_round_trip_and_normalization() -> None:
    cfg = GenConfig(p_class={"A": 2, "I": 1, "R": 1}, reject_mix={"illegal_step": 1, "wrong_alt": 3})
    assert cfg.p_class == {"A": 0.5, "I": 0.25, "R": 0.25}
    assert cfg.reject_mix["wrong_alt"] == 0.75 and cfg.reject_mix["overrun"] == 0
    assert GenConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(FsmError, match="unknown GenConfig field"):
        GenConfig.from_dict({"L_mx": 3})


@pytest.mark.parametrize(("pattern", "alphabet"), PATTERNS)
def test_backward_and_forward_hit_class_and_length(pattern: str, alphabet: str) -> None:
    fsm = compile_regex(pattern, alphabet)
    feas = Feasibility(fsm, 10)
    qm = QuotaManager(fsm.n_states, fsm.n_symbols)
    rng = np.random.default_rng(1)
    for cls in ("A", "I", "R"):
        for L in range(11):
            possible = feas.start_feasible(cls, L)
            for gen in (backward, forward):
                seq = gen(fsm, cls, L, qm, feas, rng)
                if not possible:
                    assert seq is None
                    continue
                assert seq is not None and len(seq) == L and fsm.classify(seq) == cls, (gen.__name__, cls, L, seq)
                qm.update_path(fsm.trace(seq), seq)


def test_backward_length_histogram_uniform() -> None:
    fsm = compile_regex("a*b*", "ab")
    feas = Feasibility(fsm, 12)
    qm = QuotaManager(fsm.n_states, fsm.n_symbols)
    rng = np.random.default_rng(2)
    lengths = Counter()
    for _ in range(1200):
        L = int(rng.integers(1, 13))
        seq = backward(fsm, "A", L, qm, feas, rng)
        lengths[len(seq)] += 1
    assert set(lengths) == set(range(1, 13))
    assert max(lengths.values()) / min(lengths.values()) < 1.6


def test_forward_prefers_under_covered_edges() -> None:
    fsm = compile_regex("(a|b|c)+", "abc")
    feas = Feasibility(fsm, 6)
    qm = QuotaManager(fsm.n_states, fsm.n_symbols)
    qm.hits[:, 0] = 1000  # 'a' heavily used already
    rng = np.random.default_rng(3)
    seqs = [forward(fsm, "A", 6, qm, feas, rng, beam=4) for _ in range(20)]
    share_a = sum(s.count(0) for s in seqs) / sum(len(s) for s in seqs)
    assert share_a < 0.05  # a uniform walk would use 'a' a third of the time


def _check_labels(fsm: FSM, recs, task: str) -> None:
    for r in recs:
        toks = r["tokens"]
        assert len(toks) == r["length"] and fsm.decode(toks) == r["text"]
        assert fsm.classify(toks, task) == r["class"], r
        end = fsm.run(toks)
        if r["class"] == "A":
            assert fsm.accepting[end]
        elif r["class"] == "I":
            assert task == "ternary" and not fsm.accepting[end] and fsm.live[end]
        else:
            assert not fsm.accepting[end] and (task == "binary" or not fsm.live[end])
            assert reject_subtype_holds(fsm, toks, r["reject_subtype"], task, r["meta"].get("branch_pos")), r
        if r["reject_subtype"] == "wrong_alt":
            assert all(fsm.step(q, a) != fsm.sink for q, a in zip(fsm.trace(toks), toks[: r["meta"]["branch_pos"] + 1]))
            assert r["meta"]["branch_pos"] >= r["length"] // 2


@pytest.mark.parametrize(("pattern", "alphabet"), PATTERNS)
@pytest.mark.parametrize("task", ["ternary", "binary"])
@pytest.mark.parametrize("mode", ["coverage", "uniform"])
def test_every_label_true_by_definition(pattern: str, alphabet: str, task: str, mode: str) -> None:
    fsm = compile_regex(pattern, alphabet)
    p = {"A": 1, "R": 1} if task == "binary" or pattern in ("a+", "a*b*") else None
    cfg = GenConfig(L_min=0 if pattern == "a*b*" else 1, L_max=14, task=task, mode=mode, p_class=p, batch_size=256)
    corpus = generate_corpus(fsm, cfg, 1500, seed=7)
    recs = list(corpus.records())
    assert len(recs) == 1500
    _check_labels(fsm, recs, task)
    if mode == "uniform":  # rejects are labelled by shape, the same way describe_reject does
        assert all(r["reject_subtype"] == describe_reject(fsm, r["tokens"], task) for r in recs if r["class"] == "R")
    classes = Counter(r["class"] for r in recs)
    want = cfg.class_weights()
    for c, share in want.items():
        assert abs(classes[c] / 1500 - share) < 0.01


def test_token_regex_corpus() -> None:
    fsm = compile_token_regex("the (big | small)* (dog | cat) (runs | sleeps)?")
    recs = list(generate_corpus(fsm, GenConfig(L_min=1, L_max=8), 600, seed=1).records())
    _check_labels(fsm, recs, "ternary")
    assert any(r["text"].startswith("the ") for r in recs)


def test_sample_engine_labels_and_quota() -> None:
    fsm = compile_regex("(ab|cd)+e?", "abcde")
    cfg = GenConfig(L_min=1, L_max=10)
    c = generate_corpus(fsm, cfg, 300, seed=4, engine="sample")
    recs = list(c.records())
    _check_labels(fsm, recs, "ternary")
    assert c.report.edge_hits[fsm.live_edges()].min() > 0
    assert {r["meta"]["path"] for r in recs} >= {"walk", "walk+illegal_step", "walk+branch_swap"}


def test_reject_subtypes_and_mixture() -> None:
    fsm = compile_regex("(ab|cd)+e?", "abcde")
    mix = {"illegal_step": 0.5, "overrun": 0.2, "wrong_alt": 0.3}
    cfg = GenConfig(L_min=4, L_max=12, p_class={"R": 1}, reject_mix=mix)
    recs = list(generate_corpus(fsm, cfg, 4000, seed=5).records())
    _check_labels(fsm, recs, "ternary")
    got = Counter(r["reject_subtype"] for r in recs)
    for s, share in mix.items():
        assert abs(got[s] / 4000 - share) < 0.03, got
    bcfg = GenConfig(
        L_min=4, L_max=12, task="binary", p_class={"R": 1}, reject_mix={"premature": 1, "overrun": 1}, mix_priority="subtype"
    )
    brecs = list(generate_corpus(fsm, bcfg, 1000, seed=5).records())
    _check_labels(fsm, brecs, "binary")
    assert {r["reject_subtype"] for r in brecs} == {"premature", "overrun"}


def test_balance_coverage_and_determinism() -> None:
    fsm = compile_regex("x(a|b)*y(c|d)z", "abcdxyz")
    cfg = GenConfig(L_min=3, L_max=20)
    c1 = generate_corpus(fsm, cfg, 6000, seed=11)
    c2 = generate_corpus(fsm, cfg, 6000, seed=11)
    c3 = generate_corpus(fsm, cfg, 6000, seed=12)
    assert c1.token_lists() == c2.token_lists() and c1.token_lists() != c3.token_lists()
    rep = c1.report
    assert sum(rep.class_hist.values()) == rep.samples == sum(rep.length_hist.values()) == sum(rep.class_length.values()) == 6000
    assert sum(rep.subtype_hist.values()) == rep.class_hist["R"]
    # each (class, length) cell near its share
    plan = Engine(fsm, cfg).plan
    for c in ("A", "I", "R"):
        Ls = plan.class_lengths[c]
        for L in Ls:
            assert abs(rep.class_length.get(f"{c}:{L}", 0) - 6000 / 3 / len(Ls)) <= 2
    cov = rep.coverage(fsm)
    assert cov["live_edges_hit"] == cov["live_edges"]


def test_report_json_round_trip() -> None:
    fsm = compile_regex("(ab|cd)+e?", "abcde")
    rep = generate_corpus(fsm, GenConfig(L_max=8), 500, seed=1).report
    back = DataReport.from_json(rep.to_json())
    assert back.to_dict() == rep.to_dict()
    assert np.array_equal(back.edge_hits, rep.edge_hits)
    merged = DataReport(fsm.n_states, fsm.n_symbols).merge(rep).merge(back)
    assert merged.samples == 1000 and merged.class_hist["A"] == 2 * rep.class_hist["A"]
    assert "samples: 500" in rep.print_report(fsm)


def test_uniform_mode_total_variation() -> None:
    fsm = compile_regex("(a|bc)*(d|ab)", "abcd")
    L = 6
    strings = ["".join(s) for s in itertools.product("abcd", repeat=L) if fsm.accepts("".join(s))]
    cfg = GenConfig(L_min=L, L_max=L, mode="uniform", p_class={"A": 1})
    n = 20000
    got = Counter(r["text"] for r in generate_corpus(fsm, cfg, n, seed=3).records())
    assert set(got) <= set(strings)
    tvd = 0.5 * sum(abs(got.get(s, 0) / n - 1 / len(strings)) for s in strings)
    assert tvd < 0.03, (tvd, len(strings))


@pytest.mark.parametrize(
    ("pattern", "alphabet", "kwargs", "exc", "needle"),
    [
        ("a[b]", "ac", {}, EmptyLanguageError, "accepts no string"),
        ("abcd", "abcd", {"L_max": 3}, InfeasibleTargetError, "raise L_max to at least 4"),
        ("a+", "a", {"p_class": {"A": 1, "R": 1}}, InfeasibleTargetError, "R=0"),
        ("a+", "ab", {"reject_mix": {"wrong_alt": 1}, "p_class": {"A": 1, "R": 1}}, InfeasibleTargetError, "wrong_alt=0"),
    ],
)
def test_impossible_targets_fail_before_generation(pattern, alphabet, kwargs, exc, needle) -> None:
    fsm = compile_regex(pattern, alphabet)
    with pytest.raises(exc, match=needle):
        Engine(fsm, GenConfig(**kwargs))


def test_scale_many_states_long_strings() -> None:
    rng = np.random.default_rng(0)
    n, S = 1500, 64
    table = rng.integers(0, n, size=(n, S))
    table[rng.random((n, S)) < 0.05] = -1  # undefined steps -> sink
    obj = {
        "alphabet": [f"w{i}" for i in range(S)],
        "accepting": np.flatnonzero(rng.random(n) < 0.2).tolist(),
        "table": table.tolist(),
    }
    fsm = FSM.from_table(obj)
    assert fsm.kind == "token" and fsm.n_states >= 1000
    for mode in ("coverage", "uniform"):
        cfg = GenConfig(L_min=500, L_max=512, mode=mode, batch_size=64)
        recs = list(generate_corpus(fsm, cfg, 120, seed=1).records())
        _check_labels(fsm, recs[:30], "ternary")
        assert all(500 <= r["length"] <= 512 for r in recs)


@pytest.mark.parametrize(("pattern", "alphabet"), PATTERNS)
def test_feasibility_monotone_where_staying_put_is_allowed(pattern: str, alphabet: str) -> None:
    """The sink loops on every symbol, so an R end reachable in t-1 steps stays reachable in t;
    the same holds for A in a*b*, whose accepting states loop."""
    fsm = compile_regex(pattern, alphabet)
    feas = Feasibility(fsm, 12)
    r = feas.reach[TARGETS.index("R")]
    assert (r[:-1] <= r[1:]).all()
    if pattern == "a*b*":
        a = feas.reach[TARGETS.index("A")]
        assert (a[:-1] <= a[1:]).all()
