"""Sampling orchestration: targets, backward and forward generators, samples and corpora.

Two engines make the same kind of corpus:

* ``batch`` (default, fast): :class:`~fsmdata.engine.Engine` walks thousands of samples
  at once over the DFA table with numpy; coverage quotas are updated between batches
  (batches start at 64 samples and double up to ``batch_size``, so quotas act early).
* ``sample``: the per-sample path of :func:`generate_sample`: :func:`backward` (the fast
  path), :func:`forward` (beam search) when it fails, reject crafting for R targets, and a
  quota update after every sample.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
import numpy as np

from .config import GenConfig
from .engine import PATHS, SUB, Batch, Engine, TargetPlan
from .feasibility import TARGETS, Feasibility
from .forcing import FORCE_RATIO
from .fsm import CLASS_NAMES, FSM
from .quotas import QuotaManager
from .rejects import SUBTYPE_NAMES
from .targets import class_stratum, subtype_stratum
from .telemetry import DataReport

__all__ = ["Corpus", "backward", "forward", "generate_corpus", "generate_sample", "sample_target"]

_SUBTYPE_LABELS = (None,) + SUBTYPE_NAMES
#: Weight palettes per batch in coverage mode (palette 0 = plain inverse-sqrt weights).
PALETTES = 8


#: Steering of how many samples may walk a damped palette (see :func:`_assign_palettes`).
_DAMP_SHARE_START = 0.25
_RATIO_TARGET = FORCE_RATIO  # least / median live-edge count the share is steered to
#: LP-flow rows: share of the first batch; edges expected within this many binomial standard
#: deviations of the LP flow's attainable least count get no more LP rows (diversity)
_LP_SHARE_START = 0.5
#: a shard whose palette-steered least / median (over the live edges) is below this is
#: made again with LP-flow rows (the issue's coverage bar)
LP_BAR = 0.5
_LP_SLACK_SIGMAS = 1.0


def _assign_palettes(lens: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """Palette per row: the shortest ``share`` of the rows walk a damped palette (1..P-1),
    the others palette 0 (plain weights).

    A damped palette makes a sample avoid some over-covered edge altogether; in a long
    string that means a long monochrome loop (``x bbbbbbbbbbbb y c z``), in a short one a
    short loop.  Giving the damped palettes to the shortest strings first, and only to as
    many as the coverage needs (:func:`_next_damp_share`), keeps long strings mixed."""
    m = len(lens)
    pal = rng.integers(1, PALETTES, size=m)
    k = int(round(share * m))
    pal[np.argsort(lens, kind="stable")[k:]] = 0
    return pal


def _next_damp_share(share: float, hits: np.ndarray) -> float:
    """Raise the damped share while least / median of the live-edge counts is below
    :data:`_RATIO_TARGET`, lower it when above (multiplicatively, within [0.02, 1])."""
    if hits.size == 0 or hits.min() <= 0:
        return share  # palettes do not damp before every live edge has been hit
    med = float(np.median(hits))
    if med > 0 and hits.min() / med < _RATIO_TARGET:
        return min(1.0, share * 1.25 + 0.02)
    return max(0.02, share / 1.25)


def lp_groups(cls: np.ndarray, lens: np.ndarray, subs: np.ndarray, L_max: int) -> np.ndarray:
    """Per row, its walk's row of :attr:`fsmdata.lpcover.LpCoverage.p_row` (``kind * (L_max + 1)
    + steps``), -1 for rows not walked by the LP flow (``wrong_alt``, walks of 0 steps)."""
    kind = np.full(len(cls), -1, dtype=np.int64)
    m = lens.astype(np.int64).copy()
    kind[cls == 0] = TARGETS.index("A")
    kind[(cls == 1) | (subs == SUB["premature"])] = TARGETS.index("I")
    ill, ovr, dead = subs == SUB["illegal_step"], subs == SUB["overrun"], subs == SUB["dead_suffix"]
    kind[ill], m[ill] = TARGETS.index("ILL"), m[ill] - 1
    kind[ovr], m[ovr] = TARGETS.index("OVP"), m[ovr] - 2
    kind[dead], m[dead] = TARGETS.index("R"), m[dead] - 1
    return np.where((kind >= 0) & (m > 0), kind * (L_max + 1) + m, -1)


def _next_lp_share(lp: Any, hits: np.ndarray, samples: int, groups: np.ndarray, rate: np.ndarray) -> float:
    """The share of the next batch's walk-made rows to walk by the LP flow: the least that keeps
    every coverable edge at the LP flow's attainable least share after the batch (less
    :data:`_LP_SLACK_SIGMAS` standard deviations), with the other rows containing each edge at ``rate`` (measured on the last batch's
    non-LP rows) and an LP row of walk ``g`` containing it with probability ``p_row[g]``."""
    B = len(groups)
    g = groups[groups >= 0]
    if B == 0 or len(g) == 0:
        return 0.0
    cnt = np.bincount(g, minlength=lp.p_row.shape[0])
    used = np.flatnonzero(cnt)
    a = cnt[used] @ lp.p_row[used][:, lp.coverable.reshape(-1)]
    goal = lp.achievable * (samples + B)
    need = goal - _LP_SLACK_SIGMAS * np.sqrt(goal) - hits - B * rate
    gain = a - len(g) * rate
    ok = (need > 0) & (gain > 0)
    if not ok.any():
        return 0.0
    return float(min(1.0, (need[ok] / gain[ok]).max()))


def sample_target(cfg: GenConfig, rng: np.random.Generator, plan: TargetPlan) -> tuple[int, int]:
    """Draw ``(class_id, L)`` by the config's class shares, ``L`` uniform over the lengths
    that class can have (the plan was validated: every cell it holds is feasible)."""
    c, L, _ = plan.sample_target(rng)
    return CLASS_NAMES.index(c), L


def _kind(class_id: int | str) -> int:
    return TARGETS.index(class_id) if isinstance(class_id, str) else int(class_id)


def _predecessors(fsm: FSM) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR predecessor index: edges into ``q`` are ``(src[o], sym[o])`` for ``o`` in ``order[starts[q]:starts[q+1]]``."""
    cached = getattr(fsm, "_preds", None)
    if cached is None:
        flat = fsm.table.ravel()
        order = np.argsort(flat, kind="stable")
        starts = np.concatenate([[0], np.cumsum(np.bincount(flat, minlength=fsm.n_states))])
        cached = (order // fsm.n_symbols, order % fsm.n_symbols, starts)
        fsm._preds = cached  # type: ignore[attr-defined]
    return cached


def _pick(weights: np.ndarray, rng: np.random.Generator) -> int:
    cum = np.cumsum(weights)
    return int(min(np.searchsorted(cum, rng.random() * cum[-1], side="right"), len(cum) - 1))


def backward(
    fsm: FSM, class_id: int | str, L: int, quota: QuotaManager, reach: Feasibility, rng: np.random.Generator
) -> list[int] | None:
    """Sample a string of length ``L`` ending in target set ``class_id`` by walking backwards.

    The end state is drawn among states of the class reachable in exactly ``L`` steps,
    weighted by the quota weights of its usable incoming edges (under-covered predecessors
    pull harder); then each step back picks an incoming edge ``(p, a)`` whose source is
    reachable from the start in the steps left, weighted by the quota.  None if no such
    string exists.
    """
    if L > reach.L_max:
        return None
    target = reach.masks[TARGETS[_kind(class_id)]] & reach.fwd[L]
    ends = np.flatnonzero(target)
    if len(ends) == 0:
        return None
    if L == 0:
        return []
    src, sym, starts = _predecessors(fsm)
    W = quota.weights()
    tw = np.empty(len(ends))
    for i, q in enumerate(ends.tolist()):
        o = slice(starts[q], starts[q + 1])
        ok = reach.fwd[L - 1, src[o]]
        tw[i] = W[src[o][ok], sym[o][ok]].sum()
    q = int(ends[_pick(tw, rng)])
    out = []
    for t in range(L, 0, -1):
        o = slice(starts[q], starts[q + 1])
        ok = reach.fwd[t - 1, src[o]]
        ps, syms = src[o][ok], sym[o][ok]
        i = _pick(W[ps, syms], rng)
        out.append(int(syms[i]))
        q = int(ps[i])
    return out[::-1]


def forward(
    fsm: FSM, class_id: int | str, L: int, quota: QuotaManager, reach: Feasibility, rng: np.random.Generator, beam: int = 16
) -> list[int] | None:
    """Best-first beam search from the start for a string of length ``L`` in ``class_id``.

    Children that can no longer reach the target set in the remaining steps are pruned;
    a candidate's score is minus its summed coverage bonus (plus a tiny random tie-break),
    lowest kept; the best finished candidate is returned (None if none is feasible).
    """
    k = _kind(class_id)
    if L > reach.L_max or not reach.reach[k, L, fsm.start]:
        return None
    W = quota.weights()
    scores = np.zeros(1)
    states = np.array([fsm.start])
    seqs = np.zeros((1, 0), dtype=np.int64)
    for t in range(L):
        nxt = fsm.table[states]  # (c, S)
        feas = reach.reach[k, L - t - 1][nxt]
        child_scores = scores[:, None] - W[states] + 1e-9 * rng.random(nxt.shape)
        ci, ai = np.nonzero(feas)
        cs = child_scores[ci, ai]
        keep = np.argsort(cs, kind="stable")[:beam]
        ci, ai = ci[keep], ai[keep]
        scores, states = cs[keep], nxt[ci, ai]
        seqs = np.concatenate([seqs[ci], ai[:, None]], axis=1)
    return [int(a) for a in seqs[0]]


@attrs.define
class Corpus:
    """Generated samples as arrays (one :class:`~fsmdata.engine.Batch` per chunk) and a report."""

    fsm: FSM
    cfg: GenConfig
    batches: list[Batch]
    report: DataReport
    start: int = 0
    plan: TargetPlan | None = None
    lp: Any = None
    lp_used: bool = False

    def __len__(self) -> int:
        return sum(len(b) for b in self.batches)

    def coverage(self) -> dict[str, Any]:
        """Least live-edge share of samples and the bounds the FSM and plan allow, the LP bound
        and what its flow attains included (:func:`fsmdata.coverage.coverage_summary`)."""
        from .coverage import coverage_summary

        plan = self.plan if self.plan is not None else Engine(self.fsm, self.cfg).plan
        lp = self.lp
        if lp is None and self.cfg.mode == "coverage" and not self.cfg.unique:
            from .lpcover import LpCoverage

            lp = LpCoverage(plan)
        return coverage_summary(plan, self.report.edge_hits, self.report.samples, lp)

    def token_lists(self) -> list[list[int]]:
        """Every sample's token ids."""
        out = []
        for b in self.batches:
            out += [row[:L] for row, L in zip(b.tokens.tolist(), b.lengths.tolist())]
        return out

    def records(self) -> Iterator[dict[str, Any]]:
        """Records ``{text, tokens, class, length, reject_subtype, meta}`` in order."""
        offset = self.start
        for b in self.batches:
            yield from batch_records(self.fsm, self.cfg, b, offset)
            offset += len(b)


def batch_texts(fsm: FSM, tokens: np.ndarray, lengths: np.ndarray) -> list[str]:
    """Texts of a batch (vectorized for character FSMs)."""
    B, width = tokens.shape
    if fsm.kind == "char" and width and "\x00" not in fsm.alphabet:
        codes = np.array([ord(c) for c in fsm.alphabet], dtype=np.uint32)[tokens]
        codes[np.arange(width)[None, :] >= lengths[:, None]] = 0
        # numpy unicode arrays drop trailing NULs: one view turns the rows into str
        return np.ascontiguousarray(codes).view(f"<U{width}").ravel().tolist()
    sep = " " if fsm.kind == "token" else ""
    al = fsm.alphabet
    return [sep.join(al[a] for a in row[:L]) for row, L in zip(tokens.tolist(), lengths.tolist())]


def batch_row_fields(b: Batch) -> Iterator[tuple[int, int, int, int, int, int]]:
    """Per sample of ``b``: (length, class, subtype, path, attempts, branch_pos) as Python ints."""
    return zip(
        b.lengths.tolist(),
        b.classes.tolist(),
        b.subtypes.tolist(),
        b.paths.tolist(),
        b.attempts.tolist(),
        b.branch_pos.tolist(),
    )


def batch_records(fsm: FSM, cfg: GenConfig, b: Batch, offset: int = 0) -> list[dict[str, Any]]:
    """The records of one batch; ``meta.index`` is the record's position in the dataset
    (``offset`` + row), so two records of the same string still differ (and so do their ids).

    Keys are inserted in sorted order (``class, length, meta, reject_subtype, text, tokens``;
    inside ``meta`` too), so the plain JSON of a record is its canonical (key-sorted) JSON:
    :meth:`~fsmdata.datagen.FsmGenerator.write_shard_files` hashes it for the id without a
    second serialization.
    """
    texts = batch_texts(fsm, b.tokens, b.lengths)
    # one flat list of the valid tokens, cut per row: half the Python ints of tolist() on the padded array
    valid = np.arange(b.tokens.shape[1])[None, :] < b.lengths[:, None]
    flat = b.tokens[valid].tolist()
    ends = np.cumsum(b.lengths).tolist()
    task = cfg.task
    out: list[dict[str, Any]] = []
    append = out.append
    s = 0
    for j, (text, e, (L, c, sub, p, a, k)) in enumerate(zip(texts, ends, batch_row_fields(b)), offset):
        cname = CLASS_NAMES[c]
        if k >= 0:
            meta = {
                "attempts": a,
                "branch_pos": k,
                "index": j,
                "path": PATHS[p],
                "target": {"class": cname, "length": L},
                "task": task,
            }
        else:
            meta = {"attempts": a, "index": j, "path": PATHS[p], "target": {"class": cname, "length": L}, "task": task}
        append(
            {
                "class": cname,
                "length": L,
                "meta": meta,
                "reject_subtype": _SUBTYPE_LABELS[sub],
                "text": text,
                "tokens": flat[s:e],
            }
        )
        s = e
    return out


def _fill_report(report: DataReport, b: Batch) -> None:
    for name, keys in (("length_hist", b.lengths), ("class_hist", b.classes), ("path_hist", b.paths)):
        vals, cnt = np.unique(keys, return_counts=True)
        h = getattr(report, name)
        for v, c in zip(vals.tolist(), cnt.tolist()):
            key = CLASS_NAMES[v] if name == "class_hist" else PATHS[v] if name == "path_hist" else str(v)
            h[key] = h.get(key, 0) + c
    cl = b.classes.astype(np.int64) * 100_000 + b.lengths
    vals, cnt = np.unique(cl, return_counts=True)
    for v, c in zip(vals.tolist(), cnt.tolist()):
        key = f"{CLASS_NAMES[v // 100_000]}:{v % 100_000}"
        report.class_length[key] = report.class_length.get(key, 0) + c
        sk = class_stratum(CLASS_NAMES[v // 100_000], v % 100_000)
        report.strata[sk] = report.strata.get(sk, 0) + c
    r = b.subtypes[b.subtypes > 0]
    vals, cnt = np.unique(r, return_counts=True)
    for v, c in zip(vals.tolist(), cnt.tolist()):
        label = str(_SUBTYPE_LABELS[v])
        report.subtype_hist[label] = report.subtype_hist.get(label, 0) + c
        report.strata[subtype_stratum(label)] = report.strata.get(subtype_stratum(label), 0) + c
    report.samples += len(b)
    report.attempts += int(b.attempts.sum())


def generate_corpus(
    fsm: FSM,
    cfg: GenConfig,
    n_samples: int,
    seed: int = 0,
    *,
    engine: str = "batch",
    start: int = 0,
    _engine: Engine | None = None,
) -> Corpus:
    """Generate ``n_samples`` labelled strings from ``fsm`` (deterministic in ``seed``).

    Targets are stratified: the records are those at global positions ``start ..
    start + n_samples - 1`` of the dataset, and each position's (class, length, subtype)
    cell comes from :meth:`~fsmdata.targets.TargetPlan.cells_at` (every prefix of the
    dataset close to the cell shares, whatever the shard size), in shuffled order.
    With ``cfg.unique`` each cell's records are distinct strings (see :mod:`fsmdata.unique`).
    Returns a :class:`Corpus` whose ``report`` holds histograms, coverage and retries.
    """
    if engine not in ("batch", "sample"):
        raise ValueError(f"engine must be 'batch' or 'sample', got {engine!r}")
    eng = _engine or Engine(fsm, cfg)
    first = start
    rng = np.random.default_rng(seed)
    quota = QuotaManager(
        fsm.n_states,
        fsm.n_symbols,
        edge_target=cfg.edge_target,
        state_target=cfg.state_target,
        boost=cfg.boost,
        balance=cfg.balance,
    )
    report = DataReport(fsm.n_states, fsm.n_symbols)
    stats: dict[str, int] = {}
    batches: list[Batch] = []
    if cfg.unique:
        b = _unique_batch(eng, start, n_samples, rng)
        quota.update_batch(b.states, b.tokens, b.lengths)
        batches.append(b)
        cls = None
    else:
        cls, lens, subs = eng.plan.allocate_positions(start, n_samples, rng)
    if cls is None:
        pass
    elif engine == "sample":
        b = _per_sample(eng, quota, rng, cls, lens, subs, stats)
        batches.append(b)
    else:
        batches = _batch_loop(eng, quota, rng, cls, lens, subs, stats, use_lp=False)
        live = fsm.live_edges()
        steer = cfg.mode == "coverage" and cfg.balance > 0
        if steer and live.any() and _ratio(quota.hits[live]) < LP_BAR and eng.lp is not None:
            # the palettes missed least / median >= LP_BAR (live edges) on this shard: make it again,
            # steered to the LP flow (the LP is solved only here, on first use)
            quota = QuotaManager(
                fsm.n_states,
                fsm.n_symbols,
                edge_target=cfg.edge_target,
                state_target=cfg.state_target,
                boost=cfg.boost,
                balance=cfg.balance,
            )
            stats = {"lp_shards": 1}
            lp_rng = np.random.default_rng([seed, 1])
            batches = _batch_loop(eng, quota, lp_rng, cls, lens, subs, stats, use_lp=True)
    for b in batches:
        _fill_report(report, b)
    report.edge_hits = quota.hits.copy()
    report.state_hits = quota.hits_state.copy()
    report.fallbacks = stats.get("wrong_alt_fallbacks", 0)
    report.plan_residual = dict(eng.plan.residual)
    report.requested = {k: int(round(n_samples * v)) for k, v in eng.plan.requested.items()}
    return Corpus(fsm, cfg, batches, report, first, eng.plan, eng.__dict__.get("_lp"), "lp_shards" in stats)


def _ratio(h: np.ndarray) -> float:
    med = float(np.median(h)) if h.size else 0.0
    return float(h.min() / med) if med > 0 else 0.0


def _batch_loop(
    eng: Engine,
    quota: QuotaManager,
    rng: np.random.Generator,
    cls: np.ndarray,
    lens: np.ndarray,
    subs: np.ndarray,
    stats: dict[str, int],
    *,
    use_lp: bool,
) -> list[Batch]:
    """The batch engine over the shard's targets: batches of 64 doubling to ``batch_size``, the
    quotas (and palettes, edge forcing, with ``use_lp`` the LP-flow rows) updated between them."""
    fsm, cfg = eng.fsm, eng.cfg
    n_samples = len(cls)
    batches: list[Batch] = []
    start, size = 0, min(64, cfg.batch_size)
    live = fsm.live_edges()
    steer = cfg.mode == "coverage" and cfg.balance > 0
    damp_share = _DAMP_SHARE_START
    lp = eng.lp if steer and use_lp else None
    if lp is not None:
        groups = lp_groups(cls, lens, subs, cfg.L_max)
        lp_share, lp_rate = _LP_SHARE_START, None
    while start < n_samples:
        end = min(n_samples, start + size)
        W, pal = None, None
        if steer:
            W = quota.palettes(PALETTES, fsm.table, live, rng)
            pal = _assign_palettes(lens[start:end], damp_share, rng)
        elif cfg.mode == "coverage":
            W = quota.weights()
        hits = quota.hits if steer else None
        lp_mask = None
        if lp is not None:
            lp_mask = (groups[start:end] >= 0) & (rng.random(end - start) < lp_share)
        b = eng.generate(
            cls[start:end], lens[start:end], subs[start:end], rng, W, stats, pal=pal, hits=hits, samples=start, lp_mask=lp_mask
        )
        if lp is not None and lp_mask is not None:
            rest = ~lp_mask
            e1, s1 = quota.count_rows(b.states[lp_mask], b.tokens[lp_mask], b.lengths[lp_mask])
            e0, s0 = quota.count_rows(b.states[rest], b.tokens[rest], b.lengths[rest])
            quota.hits += e0 + e1
            quota.hits_state += s0 + s1
            n_rest = int(rest.sum())
            if n_rest >= 16 or lp_rate is None:
                r_new = e0[lp.coverable] / max(n_rest, 1)
                # conservative: the lowest rate seen per edge (a high estimate starves the edge next batch)
                lp_rate = r_new if lp_rate is None else np.minimum(lp_rate, r_new)
            nxt = min(n_samples, end + min(size * 2, cfg.batch_size))
            want = _next_lp_share(lp, quota.hits[lp.coverable], end, groups[end:nxt], lp_rate)
            lp_share = max(want, lp_share / 2)  # at most halved per batch: no swing from all to none
            stats["lp_rows"] = stats.get("lp_rows", 0) + int(lp_mask.sum())
        else:
            quota.update_batch(b.states, b.tokens, b.lengths)
        batches.append(b)
        start, size = end, min(size * 2, cfg.batch_size)
        if steer:
            damp_share = _next_damp_share(damp_share, quota.hits[live])
    return batches


def _unique_batch(eng: Engine, start: int, count: int, rng: np.random.Generator) -> Batch:
    from .unique import unique_tokens

    fsm = eng.fsm
    cells, seqs = unique_tokens(eng, start, count)
    perm = rng.permutation(count)  # record order within the shard
    c_cls, c_len, c_sub = eng.plan.cell_codes()
    cells = cells[perm]
    seqs = [seqs[i] for i in perm.tolist()]
    lens = c_len[cells].astype(np.int64)
    width = int(lens.max()) if count else 0
    tokens = np.zeros((count, width), dtype=np.int32)
    states = np.zeros((count, width + 1), dtype=np.int32)
    for i, sq in enumerate(seqs):
        tokens[i, : len(sq)] = sq
        states[i, : len(sq) + 1] = fsm.trace(sq)
    paths = np.full(count, PATHS.index("unique"), dtype=np.int8)
    return Batch(
        tokens,
        states,
        lens,
        c_cls[cells],
        c_sub[cells],
        paths,
        np.ones(count, dtype=np.int64),
        np.full(count, -1, dtype=np.int64),
        lens.copy(),
    )


def generate_sample(
    eng: Engine,
    quota: QuotaManager,
    rng: np.random.Generator,
    target: tuple[str, int, str] | None = None,
    stats: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Make one sample (per-sample path): draw a target unless given, try :func:`backward`,
    then :func:`forward`; R targets with a crafted subtype use the reject crafters.  The
    quota is updated with the sample's path.  Returns the record."""
    c, L, s = target if target is not None else eng.plan.sample_target(rng)
    b = _per_sample(
        eng,
        quota,
        rng,
        np.array([CLASS_NAMES.index(c)], dtype=np.int8),
        np.array([L]),
        np.array([SUB.get(s, 0)], dtype=np.int8),
        stats if stats is not None else {},
    )
    return batch_records(eng.fsm, eng.cfg, b)[0]


def _per_sample(
    eng: Engine,
    quota: QuotaManager,
    rng: np.random.Generator,
    cls: np.ndarray,
    lens: np.ndarray,
    subs: np.ndarray,
    stats: dict[str, int],
) -> Batch:
    fsm, cfg = eng.fsm, eng.cfg
    n = len(cls)
    width = int(lens.max()) if n else 0
    tokens = np.zeros((n, width), dtype=np.int32)
    states = np.zeros((n, width + 1), dtype=np.int32)
    paths = np.zeros(n, dtype=np.int8)
    attempts = np.ones(n, dtype=np.int64)
    branch = np.full(n, -1, dtype=np.int64)
    subs = subs.copy()
    crafted = {SUB["illegal_step"], SUB["overrun"], SUB["wrong_alt"], SUB["dead_suffix"]}
    for i in range(n):
        c, L, s = int(cls[i]), int(lens[i]), int(subs[i])
        if cfg.mode == "uniform" or s in crafted:
            W = quota.weights() if cfg.mode == "coverage" else None
            b = eng.generate(cls[i : i + 1], lens[i : i + 1], subs[i : i + 1], rng, W, stats)
            tk, st = b.tokens[0, :L], b.states[0, : L + 1]
            paths[i], attempts[i], branch[i], subs[i] = b.paths[0], b.attempts[0], b.branch_pos[0], b.subtypes[0]
        else:
            kind = {0: "A", 1: "I"}.get(c) or ("I" if s == SUB["premature"] else "R")
            seq = backward(fsm, kind, L, quota, eng.feas, rng)
            paths[i] = PATHS.index("walk") if c != 2 else PATHS.index("walk+premature" if kind == "I" else "walk+dead_suffix")
            if seq is None:
                attempts[i] += 1
                seq = forward(fsm, kind, L, quota, eng.feas, rng, beam=cfg.beam)
            if seq is None:  # the plan only holds feasible cells, so this is a bug, not bad input
                raise AssertionError(f"no string for feasible target {(kind, L)}")
            tk = np.array(seq, dtype=np.int32)
            st = np.array(fsm.trace(seq), dtype=np.int32)
        tokens[i, :L], states[i, : L + 1] = tk, st
        quota.update_path(st.tolist(), tk.tolist())
    return Batch(tokens, states, lens.astype(np.int64), cls, subs, paths, attempts, branch, lens.copy())
