"""The best least-edge coverage the FSM allows, as a linear program over walk flows.

**What is optimised.**  The edge count is the number of samples that *contain* the edge (see
:mod:`fsmdata.quotas`).  Under a :class:`~fsmdata.targets.TargetPlan` every record belongs to
a (class, length, subtype) cell of fixed share; the walk-made part of a record is a walk of
``m`` steps from the start into a target set ``k`` (the whole string for A, I and
``premature``, ``L - 1`` steps into ``ILL`` for ``illegal_step``, ``L - 1`` into ``R`` for
``dead_suffix``, ``L - 2`` into ``OVP`` for ``overrun``; ``wrong_alt`` records are swapped,
not walked, and are left out).  For one kind ``k`` the walks of all its lengths form one flow
on the DAG of nodes ``(r, q)`` (``r`` steps left, state ``q``): a source of ``share(k, m)``
at ``(m, start)`` per planned length ``m``, sinks at ``(0, q)`` for ``q`` in ``k``, a flow
variable ``x[k, r, q, a]`` per feasible step.  Any sampler's walks define such a flow (its
expected step counts), and the share of records whose walk contains edge ``e`` is at most

    z[k, e] <= min(cap[k, e], sum_r x[k, r, e])

where ``cap[k, e]`` is the share of the kind's cells some walk of which can contain ``e``
(:func:`fsmdata.coverage.cell_masks`) and the sum counts traversals (a walk that contains
``e`` traverses it at least once).  The **LP bound** is

    B = max over flows x of  min over coverable edges e of  sum_k z[k, e]

(coverable: some planned walk can contain ``e``).  ``B`` is an upper bound on the least
edge's share of records contained *by their walk-made parts*, for every sampler that
delivers the plan's cell shares.  It is tighter than the per-edge bound of
:func:`fsmdata.coverage.edge_bounds` because flow is conserved: ``x(a|b)*y(c|d)z`` puts
``c`` and ``d`` into walks through the one state after ``y``, so ``N_c + N_d <= N_y``.

**What is attainable.**  The bound's flow, sampled as a Markov chain (at node ``(r, q)`` take
``a`` with probability ``x[k, r, q, a] / sum_a x``; the per-edge expected flows are then
exactly ``x``), contains edge ``e`` in a share :attr:`LpCoverage.achievable` of the records,
computed exactly by a backward dynamic program over the probability of avoiding ``e``.  It
can be below ``B`` only where the flow traverses an edge more than once in a walk (loops).
A second LP keeps the least edge within :data:`SLACK` of ``B`` and maximises the uniform
share ``kappa``: ``x >= kappa * u`` with ``u`` the flow of strings drawn uniformly per cell,
so the sampled walks stay diverse (a vertex of the first LP routes each cell's flow over a
few paths).  The engine walks part of its rows by this flow, as many as the least edge needs
(:meth:`LpCoverage.lp_share`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .feasibility import TARGETS
from .targets import TargetPlan

__all__ = ["LP_BUDGET", "SLACK", "LpCoverage", "walk_kind"]

#: flow variables (kinds x steps x states x symbols) up to which the LP is built
LP_BUDGET = 1 << 18
#: the diversity LP keeps the least edge at >= (1 - SLACK) x the LP bound
SLACK = 0.05
_METHOD = "highs-ipm"
#: share of the sampled flow that is the uniform flow (diversity), the rest the LP optimum
MIX = 0.2
#: flow variables of one LP at most (beyond, no LP: the engine steers as without it)
LP_VARS = 16_000
_OPTIONS = {"primal_feasibility_tolerance": 1e-8, "dual_feasibility_tolerance": 1e-8}

_K = {k: i for i, k in enumerate(TARGETS)}


def walk_kind(c: str, L: int, s: str) -> tuple[str, int] | None:
    """The walk a coverage-mode cell's records are made of: (target set, steps), None for
    ``wrong_alt`` (swapped, not walked)."""
    if s == "wrong_alt":
        return None
    if c == "A":
        return "A", L
    if c == "I" or s == "premature":
        return "I", L
    if s == "illegal_step":
        return "ILL", L - 1
    if s == "overrun":
        return "OVP", L - 2
    if s == "dead_suffix":
        return "R", L - 1
    return None


class LpCoverage:
    """The LP bound and its attainable flow for one plan (see the module docstring).

    Attributes: ``ok`` (False when over :data:`LP_BUDGET` or when the plan has no walk-made
    edge), ``bound`` (``B``), ``bound_first`` (the first LP's value, ``B`` up to solver
    tolerance), ``achievable`` (least over the coverable edges of the Markov sampler's exact
    containment share), ``achievable_edges`` (``(n, S)`` per edge), ``kappa`` (uniform
    share of the flow), ``coverable`` (``(n, S)`` bool), ``cum`` (choice rows in the
    engine's layout, :meth:`fsmdata.engine.Engine._cum_rows`), ``p_row`` (``(K * (T + 1),
    n * S)``: the probability that a walk of kind ``k`` and ``m`` steps sampled by the flow
    contains each edge, row ``k * (T + 1) + m``).
    """

    def __init__(self, plan: TargetPlan, budget: int = LP_BUDGET) -> None:
        self.ok = False
        fsm, feas, cfg = plan.fsm, plan.feas, plan.cfg
        n, S, T = fsm.n_states, fsm.n_symbols, cfg.L_max
        self.n, self.S, self.T = n, S, T
        self._fsm_table, self._fsm_start = fsm.table, fsm.start
        shares: dict[str, dict[int, float]] = {}
        for (c, L, s), sh in zip(plan.cells, plan.shares.tolist()):
            wk = walk_kind(c, L, s)
            if wk is None or wk[1] <= 0:
                continue
            shares.setdefault(wk[0], {})
            shares[wk[0]][wk[1]] = shares[wk[0]].get(wk[1], 0.0) + sh
        self.shares = shares
        kinds = [k for k in TARGETS if k in shares]
        if not kinds or len(kinds) * T * n * S > budget:
            return
        live = fsm.live_edges()
        table = fsm.table
        from .coverage import _containable

        # per kind: variables x[r, q, a] (r = 1..R steps left) that some planned walk can take
        var_masks: dict[str, np.ndarray] = {}
        caps = np.zeros((len(kinds), n, S))
        for i, k in enumerate(kinds):
            R = max(shares[k])
            node = np.zeros((R + 1, n), dtype=bool)
            for m in shares[k]:
                node[1 : m + 1] |= feas.fwd[m - 1 :: -1][:m]  # (r, q): q reached in m - r steps
            ki = _K[k]
            nxt_ok = np.stack([feas.reach[ki, r - 1][table] for r in range(1, R + 1)])  # (R, n, S)
            var_masks[k] = node[1:, :, None] & nxt_ok
            for m, sh in shares[k].items():
                caps[i] += sh * (_containable(plan, k, m) & live)
        coverable = (caps > 0).any(axis=0)
        self.coverable = coverable
        if not coverable.any():
            return
        from scipy.optimize import linprog
        from scipy.sparse import coo_matrix

        # variable layout: x (all kinds) | z (kind, coverable edge with cap > 0) | t
        offs, xs = [], 0
        idx: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for k in kinds:
            r0, q, a = np.nonzero(var_masks[k])
            idx[k] = (r0 + 1, q, a)
            offs.append(xs)
            xs += len(r0)
        if xs > LP_VARS:
            return
        zk, ze = np.nonzero(caps.reshape(len(kinds), -1) > 0)
        nz = len(zk)
        nv = xs + nz + 1
        eq_r, eq_c, eq_v, b_eq = [], [], [], []
        row0 = 0
        for i, k in enumerate(kinds):
            r, q, a = idx[k]
            R = max(shares[k])
            j = offs[i] + np.arange(len(r))
            node = (r - 1) * n + q  # node (r, q) for r >= 1
            eq_r += [row0 + node]
            eq_c += [j]
            eq_v += [np.ones(len(r))]
            dst = r - 1
            into = dst >= 1
            eq_r += [row0 + (dst[into] - 1) * n + table[q[into], a[into]]]
            eq_c += [j[into]]
            eq_v += [-np.ones(int(into.sum()))]
            b = np.zeros(R * n)
            for m, sh in shares[k].items():
                b[(m - 1) * n + fsm.start] += sh
            b_eq.append(b)
            row0 += R * n
        A_eq = coo_matrix((np.concatenate(eq_v), (np.concatenate(eq_r), np.concatenate(eq_c))), shape=(row0, nv)).tocsr()
        beq = np.concatenate(b_eq)
        # z[k, e] - sum_r x[k, r, e] <= 0 ;  t - sum_k z[k, e] <= 0
        zpos = {(int(a), int(b)): xs + i for i, (a, b) in enumerate(zip(zk.tolist(), ze.tolist()))}
        ub_r, ub_c, ub_v = [np.arange(nz)], [xs + np.arange(nz)], [np.ones(nz)]
        for i, k in enumerate(kinds):
            r, q, a = idx[k]
            e = q * S + a
            has = caps[i].reshape(-1)[e] > 0
            zrow = np.array([zpos[(i, int(v))] - xs for v in e[has].tolist()], dtype=np.int64)
            ub_r.append(zrow)
            ub_c.append(offs[i] + np.flatnonzero(has))
            ub_v.append(-np.ones(len(zrow)))
        cov_e = np.flatnonzero(coverable.reshape(-1))
        erow = {int(e): nz + i for i, e in enumerate(cov_e.tolist())}
        ub_r.append(np.array([erow[int(e)] for e in ze.tolist()], dtype=np.int64))
        ub_c.append(xs + np.arange(nz))
        ub_v.append(-np.ones(nz))
        ne = len(cov_e)
        A_core = coo_matrix((np.concatenate(ub_v), (np.concatenate(ub_r), np.concatenate(ub_c))), shape=(nz + ne, nv)).tocsr()
        t_col = coo_matrix((np.ones(ne), (nz + np.arange(ne), np.full(ne, nv - 1))), shape=(nz + ne, nv)).tocsr()
        bub = np.zeros(nz + ne)
        zcap = caps.reshape(len(kinds), -1)[zk, ze]
        bounds = np.zeros((nv, 2))
        bounds[:, 1] = np.inf
        bounds[xs : xs + nz, 1] = zcap
        obj = np.zeros(nv)
        obj[-1] = -1.0
        res = linprog(obj, A_ub=A_core + t_col, b_ub=bub, A_eq=A_eq, b_eq=beq, bounds=bounds, method=_METHOD, options=_OPTIONS)
        if res.status != 0:
            return
        self.bound_first = float(-res.fun)
        # diversity: the sampled flow is (1 - MIX) x + MIX u, u the flow of strings drawn uniformly per cell
        u = np.concatenate([self._uniform_flow(plan, k, idx[k]) for k in kinds])
        x = (1.0 - MIX) * np.maximum(res.x[:xs], 0.0) + MIX * u
        self.kappa = MIX
        x = np.maximum(x, 0.0)
        self.bound = self.bound_first
        self._finish(kinds, idx, offs, x, live)

    def _uniform_flow(self, plan: TargetPlan, k: str, ix: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
        """Expected step counts of walks drawn uniformly per cell (the kind's sources), on ``ix``."""
        fsm, n, S = plan.fsm, self.n, self.S
        cnt = plan.feas.counts(k) if k in ("A", "I", "R") else _counts_plain(plan, k)
        R = max(self.shares[k])
        P = np.zeros((R + 1, n, S))
        for r in range(1, R + 1):
            w = cnt[r - 1][fsm.table]
            tot = w.sum(axis=1, keepdims=True)
            P[r] = np.divide(w, tot, out=np.zeros_like(w), where=tot > 0)
        occ = np.zeros(n)
        flow = np.zeros((R + 1, n, S))
        for r in range(R, 0, -1):
            occ[fsm.start] += self.shares[k].get(r, 0.0)
            flow[r] = occ[:, None] * P[r]
            nxt = np.zeros(n)
            np.add.at(nxt, fsm.table.ravel(), flow[r].ravel())
            occ = nxt
        rr, qq, aa = ix
        return flow[rr, qq, aa]

    def _finish(self, kinds: list[str], idx: dict[str, Any], offs: list[int], x: np.ndarray, live: np.ndarray) -> None:
        n, S, T = self.n, self.S, self.T
        fsm_table = self._fsm_table
        K = len(TARGETS)
        E = n * S
        flows = np.zeros((K, T + 1, n, S))
        for i, k in enumerate(kinds):
            r, q, a = idx[k]
            flows[_K[k], r, q, a] = x[offs[i] : offs[i] + len(r)]
        tot = flows.sum(axis=-1, keepdims=True)
        prob = np.divide(flows, tot, out=np.zeros_like(flows), where=tot > 0)
        # choice rows (k, r - 1 steps left after the step, q): cumsum over a of the flow
        cum = np.zeros((K, T + 1, n, S), dtype=np.float32)
        cum[:, :T] = np.cumsum(prob[:, 1:], axis=-1)
        self.has_flow = np.zeros((K, T + 1, n), dtype=bool)
        self.has_flow[:, :T] = tot[:, 1:, :, 0] > 0
        self.cum = cum.reshape(-1, S)
        # p_row[k * (T + 1) + m, e]: a walk of m steps into k, sampled by the flow, contains e
        p_row = np.zeros((K * (T + 1), E))
        eye = np.eye(E, dtype=bool).reshape(E, n, S)
        for k in kinds:
            ki = _K[k]
            g = np.ones((E, n))  # probability of finishing from (r, q) without edge e; r = 0
            ms = self.shares[k]
            for r in range(1, max(ms) + 1):
                nxt = g[:, fsm_table]  # (E, n, S)
                g = (prob[ki, r][None] * np.where(eye, 0.0, nxt)).sum(axis=-1)
                g[:, tot[ki, r, :, 0] <= 0] = 1.0
                if r in ms:
                    p_row[ki * (T + 1) + r] = 1.0 - g[:, self._fsm_start]
        self.p_row = p_row
        ach = np.zeros(E)
        for k in kinds:
            for m, sh in self.shares[k].items():
                ach += sh * p_row[_K[k] * (T + 1) + m]
        self.achievable_edges = ach.reshape(n, S) * live
        cov = self.coverable
        self.achievable = float(self.achievable_edges[cov].min())
        med = float(np.median(self.achievable_edges[cov]))
        self.achievable_ratio = self.achievable / med if med > 0 else 0.0
        self.ok = True

    def summary(self) -> dict[str, Any]:
        """The figures for reports: bound, attainable least share and its least / median."""
        if not self.ok:
            return {}
        return {
            "lp_bound": self.bound,
            "lp_achievable": self.achievable,
            "lp_achievable_min_over_median": self.achievable_ratio,
            "lp_kappa": self.kappa,
            "lp_coverable_edges": int(self.coverable.sum()),
        }


def _counts_plain(plan: TargetPlan, k: str) -> np.ndarray:
    """Scaled counts into target set ``k`` with every end state weighted 1 (the walk, not the crafted finish)."""
    from .feasibility import count_scaled

    return count_scaled(plan.fsm.table, plan.feas.masks[k].astype(np.float64), plan.cfg.L_max)[0]
