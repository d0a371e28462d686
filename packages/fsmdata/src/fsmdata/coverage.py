"""The coverage an FSM allows under a target plan: an upper bound per live edge.

An edge's coverage count is the number of samples that contain it (see the user guide).
Under a :class:`~fsmdata.targets.TargetPlan` every sample belongs to a (class, length,
subtype) cell, and some edges cannot occur in some cells at all (an edge reachable only
after 5 symbols is in no string of length 3; the last symbol of an accepted string is in no
``illegal_step`` prefix...).  So no sampler can put edge ``e`` into more than

    bound(e) = sum over cells c of share(c) * [some string of c contains e]

of the samples.  :func:`edge_bounds` computes ``bound(e)`` exactly for the walk-made cells
(A, I, ``premature``, ``illegal_step``, ``overrun``, ``dead_suffix``) and over-approximates
it for ``wrong_alt`` (any edge the prefix can reach), so it stays an upper bound.  The
least-used edge's share of samples can never exceed ``min(bound)``; :func:`coverage_summary`
reports both, so a pattern whose least edge is rare is told apart from a sampler that
failed to use it.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from .feasibility import TARGETS, overrun_symbols
from .targets import TargetPlan

__all__ = ["cell_masks", "coverage_summary", "edge_bounds"]

_BUDGET = 1 << 26  # lengths x lengths x states x symbols cell updates


def _containable(plan: TargetPlan, kind: str, m: int) -> np.ndarray:
    """``(n, S)``: edge in some ``m``-step walk from the start that ends in target set ``kind``."""
    fsm, feas = plan.fsm, plan.feas
    out = np.zeros((fsm.n_states, fsm.n_symbols), dtype=bool)
    if m <= 0:
        return out
    k = TARGETS.index(kind)
    for t in range(m):
        here = feas.fwd[t]
        if not here.any():
            continue
        out |= here[:, None] & feas.reach[k, m - 1 - t][fsm.table]
    return out


def cell_masks(plan: TargetPlan) -> list[np.ndarray | None] | None:
    """Per plan cell: ``(n, S)`` bool, the live edges some string of the cell's walk can
    contain (None for ``wrong_alt`` cells, whose strings are not one walk); None when too
    large to compute.  Crafted cells count their walk-made prefix (and for ``overrun`` the
    edge into the accepted state)."""
    fsm = plan.fsm
    L_max = plan.cfg.L_max
    if L_max * L_max * fsm.n_states * fsm.n_symbols > _BUDGET:
        return None
    memo: dict[tuple[str, int], np.ndarray] = {}

    def cont(kind: str, m: int) -> np.ndarray:
        if (kind, m) not in memo:
            memo[(kind, m)] = _containable(plan, kind, m)
        return memo[(kind, m)]

    live = fsm.live_edges()
    task_r = "NA" if plan.cfg.task == "binary" else "R"
    out: list[np.ndarray | None] = []
    for c, L, s in plan.cells:
        if s == "wrong_alt":
            out.append(None)
            continue
        if c == "A":
            m = cont("A", L)
        elif c == "I" or s == "premature":
            m = cont("I", L)
        elif s == "illegal_step":
            m = cont("ILL", L - 1)
        elif s == "overrun":
            m = cont("OVP", L - 2)
        elif s == "dead_suffix":
            m = cont("R", L - 1)
        else:  # uniform mode, R whole
            m = cont(task_r, L)
        out.append(m & live)
    return out


def edge_bounds(plan: TargetPlan) -> np.ndarray | None:
    """``(n_states, n_symbols)`` float: the largest share of samples that can contain each
    edge under ``plan`` (0 off the live edges); None when too large to compute."""
    fsm = plan.fsm
    masks = cell_masks(plan)
    if masks is None:
        return None
    ovr = overrun_symbols(fsm)
    fwd = plan.feas.fwd
    bound = np.zeros((fsm.n_states, fsm.n_symbols))
    for (_c, L, s), share, m in zip(plan.cells, plan.shares.tolist(), masks):
        if m is None:  # wrong_alt, over-approximated: any edge reachable before position L
            m = np.repeat(cast(np.ndarray, fwd[:L].any(axis=0))[:, None], fsm.n_symbols, axis=1)
        elif s == "overrun" and L >= 2:
            m = m | (fwd[L - 2][:, None] & ovr)
        bound += share * m
    return bound * fsm.live_edges()


def coverage_summary(plan: TargetPlan, edge_hits: np.ndarray, samples: int, lp: Any = None) -> dict[str, Any]:
    """Least live-edge share of samples achieved vs the bound the FSM and plan allow.

    With ``lp`` (an :class:`~fsmdata.lpcover.LpCoverage` that is ``ok``) also ``lp_bound`` (the
    LP bound on the least edge's share), ``lp_achievable`` (what the LP flow attains),
    ``lp_achievable_min_over_median``, ``lp_kappa``, and the delivered figures over the same
    edges: ``lp_delivered_least`` (least LP-coverable edge's share of samples) and
    ``lp_delivered_min_over_median``.

    Keys: ``least_edge_share``, ``min_over_median`` (all live edges), and with the bounds
    ``least_edge_bound`` (least positive bound), ``min_over_median_coverable`` (edges with a
    positive bound), ``least_edge_vs_bound`` (min of share / bound), ``uncoverable_edges``
    (live edges no planned cell can contain) and ``vs_bound_ceiling``."""
    live = plan.fsm.live_edges()
    out: dict[str, Any] = {}
    if not live.any() or samples <= 0:
        return out
    hits = edge_hits[live]
    out["least_edge_share"] = float(hits.min() / samples)
    out["min_over_median"] = float(hits.min() / np.median(hits)) if np.median(hits) > 0 else 0.0
    b = edge_bounds(plan)
    if b is not None:
        bl = b[live]
        ok = bl > 0  # edges in no planned cell (e.g. reachable only past L_max) are counted apart
        out["least_edge_bound"] = float(bl[ok].min()) if ok.any() else 0.0
        hk = hits[ok]
        out["min_over_median_coverable"] = float(hk.min() / np.median(hk)) if ok.any() and np.median(hk) > 0 else 0.0
        out["bound_min_over_median"] = float(bl.min() / np.median(bl)) if np.median(bl) > 0 else 0.0
        # per edge achieved / allowed, its least value: how close the sampler gets to what the FSM allows
        with np.errstate(divide="ignore", invalid="ignore"):
            eff = np.where(bl > 0, hits / samples / bl, 1.0)
        out["least_edge_vs_bound"] = float(eff.min())
        out["uncoverable_edges"] = int((bl <= 0).sum())
        # Jointly the bounds cannot all be met: a sample of length L contains at most L
        # distinct edges, so sum_e hits_e <= N * mean(L) and min_e hits_e / (N bound_e)
        # <= mean(L) / sum_e bound_e.
        mean_len = float(sum(sh * L for (_c, L, _s), sh in zip(plan.cells, plan.shares.tolist())))
        out["vs_bound_ceiling"] = float(min(1.0, mean_len / bl.sum())) if bl.sum() > 0 else 1.0
    if lp is not None and getattr(lp, "ok", False):
        out.update(lp.summary())
        hc = edge_hits[lp.coverable]
        out["lp_delivered_least"] = float(hc.min() / samples)
        med = float(np.median(hc))
        out["lp_delivered_min_over_median"] = float(hc.min() / med) if med > 0 else 0.0
    return out
