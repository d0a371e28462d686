"""The vectorized sampler: many samples walk the DFA table together, one numpy step per symbol.

A sample is a target ``(class, length, subtype)``.  It is made by a *feasible walk*: at each
step only symbols from which the target set can still be reached in the remaining steps
are allowed (the reach tables of :mod:`fsmdata.feasibility`), weighted by the coverage
quotas (``coverage`` mode) or by the number of completions (``uniform`` mode, which makes
every string of the cell equally likely).  Rejects are crafted on top of a walk (the
definitions are in :mod:`fsmdata.rejects`):

* ``illegal_step``: walk ``L - 1`` steps to a live state that has an undefined symbol, take it;
* ``overrun``: walk ``L - 2`` steps to a state ``p`` with a symbol ``c`` that leads to an
  accepting state where ``c`` is undefined; append ``c c``;
* ``premature`` (binary): walk ``L`` steps to a live, non-accepting state;
* ``wrong_alt``: walk an accepted string, then swap one late symbol (position >= L/2) for
  another defined one so that the rest of the string no longer fits; after
  ``attempts_per_sample`` vectorized tries the exact constructor of :mod:`fsmdata.pairs`
  builds one (FSMs within its budget); only beyond that budget can a row miss, and it is
  then made as another subtype that exists at its length, labelled as what it is and
  counted in ``wrong_alt_fallbacks`` (the strata check of datacore reports the shortfall);
* ``dead_suffix``: walk ``L - 1`` steps into the sink, then any symbol.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from .config import GenConfig
from .feasibility import TARGETS, Feasibility, overrun_symbols
from .forcing import FORCE_GOAL, FORCE_MAX_SHARE, EdgeForcer
from .fsm import FSM
from .lpcover import LpCoverage
from .pairs import WrongAltTables
from .targets import SUB, TargetPlan

__all__ = ["PATHS", "SUB", "Batch", "Engine", "TargetPlan"]

K = {k: i for i, k in enumerate(TARGETS)}
_EXACT_WA_STATES = 256  # up to this many states, wrong_alt swaps are searched exhaustively
_CUM_BUDGET = 1 << 22  # entries of the precomputed choice table (float32): 16 MiB
_HAS_BITCOUNT = hasattr(np, "bitwise_count")  # numpy >= 2.0
PATHS = (
    "walk",
    "walk+illegal_step",
    "walk+overrun",
    "walk+premature",
    "walk+branch_swap",
    "walk+dead_suffix",
    "uniform",
    "unique",
)


def _pad8(cum: np.ndarray) -> np.ndarray:
    """Choice rows of fewer than 8 symbols padded to 8 columns with +inf (never chosen), so
    that :meth:`Engine._walk_rows` compares a row as one uint64."""
    S = cum.shape[1]
    if S >= 8 or not _HAS_BITCOUNT:
        return cum
    out = np.full((cum.shape[0], 8), np.inf, dtype=cum.dtype)
    out[:, :S] = cum
    return out


@attrs.frozen
class Batch:
    """Samples as arrays: row ``i`` is ``tokens[i, :lengths[i]]`` with ``states[i, :lengths[i] + 1]``.

    ``classes`` index :data:`~fsmdata.fsm.CLASS_NAMES` (task labels: binary uses 0 and 2),
    ``subtypes`` index ``("",) + SUBTYPE_NAMES``, ``paths`` index :data:`PATHS`,
    ``branch_pos`` is the swapped position of a ``wrong_alt`` (else -1).
    """

    tokens: np.ndarray
    states: np.ndarray
    lengths: np.ndarray
    classes: np.ndarray
    subtypes: np.ndarray
    paths: np.ndarray
    attempts: np.ndarray
    branch_pos: np.ndarray
    target_lengths: np.ndarray

    def __len__(self) -> int:
        return len(self.lengths)


class Engine:
    """Vectorized generation for one (FSM, GenConfig)."""

    def __init__(self, fsm: FSM, cfg: GenConfig, feas: Feasibility | None = None, *, make_plan: bool = True) -> None:
        self.fsm, self.cfg = fsm, cfg
        self.feas = feas or Feasibility(fsm, cfg.L_max)
        self.T = cfg.L_max
        self.reach_flat = self.feas.reach.reshape(-1)
        self._count_flat: np.ndarray | None = None
        self._cum_uniform: np.ndarray | None = None
        self._count_slot: dict[str, int] = {}
        S = fsm.n_symbols
        self.dead_next = ~fsm.live[fsm.table]  # (n, S): symbol leads into the sink
        self.live_next = ~self.dead_next
        self.overrun_next = overrun_symbols(fsm)
        self.pairs: WrongAltTables | None = None
        self._forcer: EdgeForcer | None = None
        wa_lengths: list[int] | None = None
        mix = cfg.reject_mix
        if make_plan and cfg.mode == "coverage" and not cfg.unique and (mix is None or mix.get("wrong_alt", 0) > 0):
            lengths = list(range(cfg.L_min, cfg.L_max + 1))
            if WrongAltTables.fits(fsm, cfg.L_max):
                self.pairs = WrongAltTables(fsm, cfg.L_max, cfg.task)
                wa_lengths = self.pairs.lengths(lengths)
            else:
                wa_lengths = self._probe_wrong_alt(lengths)
        self._plan = TargetPlan(fsm, cfg, self.feas, wa_lengths) if make_plan else None
        self.codes = np.array([ord(c) for c in fsm.alphabet], dtype=np.uint32) if fsm.kind == "char" else None
        self.ar = np.arange(S)

    @property
    def lp(self) -> LpCoverage | None:
        """The LP coverage optimum (:mod:`fsmdata.lpcover`) the coverage sampler steers to, built
        on first use; None outside coverage mode, with ``balance=0``, ``unique``, or when the LP
        is over budget (the sampler then steers by palettes and forcing alone)."""
        if "_lp" not in self.__dict__:
            cfg = self.cfg
            lp = None
            if self._plan is not None and cfg.mode == "coverage" and cfg.balance > 0 and not cfg.unique:
                lp = LpCoverage(self._plan)
            self._lp = lp if lp is not None and lp.ok else None
        return self._lp

    def set_lp(self, lp: LpCoverage | None) -> None:
        """Use a precomputed LP (shipped to worker processes instead of being solved again)."""
        self._lp = lp if lp is not None and lp.ok else None
        self.__dict__.pop("_lp_cum", None)

    def _lp_rows(self) -> np.ndarray | None:
        """The LP flow's choice rows in :meth:`_cum_rows` layout (padded); rows the flow never
        reaches choose among the feasible symbols uniformly."""
        if "_lp_cum" not in self.__dict__:
            lp = self.lp
            out = None
            if lp is not None:
                feas = self._cum_rows(np.ones((self.fsm.n_states, self.fsm.n_symbols)))
                if feas is not None:
                    flow = _pad8(lp.cum)
                    out = np.where(lp.has_flow.reshape(-1)[:, None], flow, feas)
            self._lp_cum = out
        return self._lp_cum

    @property
    def plan(self) -> TargetPlan:
        """The validated target plan (cells and their shares)."""
        if self._plan is None:
            raise RuntimeError("this engine was made without a target plan")
        return self._plan

    def _probe_wrong_alt(self, lengths: list[int]) -> list[int]:
        """Lengths at which a wrong_alt was found in a fixed-seed trial (FSMs too large for
        the exact pair tables; a length it misses is simply not planned, one it finds is)."""
        cand = [L for L in lengths if L >= 1 and self.feas.start_feasible("A", L)]
        if not cand:
            return []
        rng = np.random.default_rng(0)
        per = 4 if self.fsm.n_states > 256 else 16
        lens = np.repeat(np.array(cand, dtype=np.int64), per)
        ok = self.try_wrong_alt(lens, rng, np.ones((self.fsm.n_states, self.fsm.n_symbols)), attempts=4)
        return sorted({int(L) for L, good in zip(lens, ok) if good})

    # -- counting tables for uniform mode --------------------------------------------
    def _counts(self, kinds: list[str]) -> tuple[np.ndarray, dict[str, int]]:
        missing = [k for k in kinds if k not in self._count_slot]
        if missing or self._count_flat is None:
            need = sorted(set(kinds) | set(self._count_slot), key=TARGETS.index)
            self._count_slot = {k: i for i, k in enumerate(need)}
            self._count_flat = np.stack([self.feas.counts(k) for k in need]).reshape(-1)
        return self._count_flat, self._count_slot

    # -- the core walk ----------------------------------------------------------------
    def _uniform_kinds(self) -> list[str]:
        if self.cfg.reject_mix is not None:  # subtype cells: helper targets too
            return ["A", "I", "R", "ILL", "OVP"]
        return ["A", "NA"] if self.cfg.task == "binary" else ["A", "I", "R"]

    def _cum_rows(self, W: np.ndarray | None) -> np.ndarray | None:
        """Cumulative choice weights for every (target, steps left, state) row, or None if too big.

        Row ``(k * (T + 1) + r) * n + q`` holds the running sum over symbols of
        ``weight(q, a) * [a string of r steps leads from table[q, a] into target k]``; with
        it one walk step is a single row gather and one comparison.
        """
        fsm = self.fsm
        K = len(TARGETS)
        P = W.shape[0] if W is not None and W.ndim == 3 else 1
        if P * K * (self.T + 1) * fsm.n_states * fsm.n_symbols > _CUM_BUDGET:
            return None
        if W is None:
            if self._cum_uniform is None:
                kinds = self._uniform_kinds()
                rows = []
                for k in TARGETS:
                    c = self.feas.counts(k) if k in kinds else np.zeros((self.T + 1, fsm.n_states))
                    cw = np.cumsum(c[:, fsm.table], axis=-1)  # (T+1, n, S)
                    tot = cw[..., -1:]
                    rows.append(np.divide(cw, tot, out=np.zeros_like(cw), where=tot > 0))
                self._cum_uniform = _pad8(np.stack(rows).reshape(-1, fsm.n_symbols).astype(np.float32))
            return self._cum_uniform
        F = self.feas.reach[:, :, fsm.table]  # (K, T+1, n, S)
        if W.ndim == 3:  # one block of rows per weight palette: (P, K, T+1, n, S)
            F = F[None] * W.astype(np.float32)[:, None, None]
            return _pad8(np.cumsum(F, axis=-1, dtype=np.float32).reshape(-1, fsm.n_symbols))
        return _pad8(np.cumsum(F * W.astype(np.float32), axis=-1, dtype=np.float32).reshape(-1, fsm.n_symbols))

    def walk(
        self,
        kinds: np.ndarray,
        lens: np.ndarray,
        rng: np.random.Generator,
        W: np.ndarray | None,
        cum: np.ndarray | None = None,
        pal: np.ndarray | None = None,
        starts: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Walk ``lens[i]`` steps from the start (or ``starts[i]``) into target set ``TARGETS[kinds[i]]``.

        With ``W`` (edge weights) the choice among feasible symbols is proportional to
        ``W``; with ``W=None`` it is proportional to the completion counts (exactly uniform
        over the strings of the cell).  ``W`` may be a stack of palettes ``(P, n, S)``
        (:meth:`~fsmdata.quotas.QuotaManager.palettes`); row ``i`` then walks with
        ``W[pal[i]]``.  ``cum`` may pass :meth:`_cum_rows` precomputed.
        Returns ``(tokens, states)`` padded with 0.
        """
        fsm = self.fsm
        B = len(kinds)
        width = int(lens.max()) if B else 0
        n, S = fsm.n_states, fsm.n_symbols
        tokens = np.zeros((B, width), dtype=np.int32)
        states = np.zeros((B, width + 1), dtype=np.int32)
        first = np.full(B, fsm.start, dtype=np.int64) if starts is None else starts.astype(np.int64)
        states[:, 0] = first
        if B == 0 or width == 0:
            return tokens, states
        if W is not None and W.ndim == 3:
            if pal is None or len(pal) != B:
                raise ValueError("a palette stack W needs one palette index per row")
        else:
            pal = None
        if cum is None:
            cum = self._cum_rows(W)
        order = np.argsort(-lens, kind="stable")
        ls = lens[order]
        kk = kinds[order].astype(np.int64)
        pal_o = pal[order].astype(np.int64) if pal is not None else None
        if pal_o is not None and cum is not None:
            kk = kk + pal_o * len(TARGETS)  # palette blocks are stacked in front of the targets
        base = (kk * (self.T + 1) + (ls - 1)) * n
        n_active = np.searchsorted(-ls, -np.arange(width), side="left")
        q = first[order]
        tok_t = np.zeros((width, B), dtype=np.int32)
        st_t = np.zeros((width + 1, B), dtype=np.int32)
        st_t[0] = q
        table_flat = fsm.table.ravel().astype(np.int64)
        if cum is None:
            src = self.reach_flat
            if W is None:
                csrc, slot = self._counts(self._uniform_kinds())
                kk = np.array([slot.get(TARGETS[k], 0) for k in range(len(TARGETS))], dtype=np.int64)[kinds[order]]
                base = (kk * (self.T + 1) + (ls - 1)) * n
        if cum is not None:
            tok_t, st_t = self._walk_rows(cum, base + q, n_active, width, rng)
            tokens[order] = tok_t.T
            states[order] = st_t.T
            return tokens, states
        for t in range(width):
            na = int(n_active[t])
            qa = q[:na]
            if True:  # large FSMs: gather feasibility per step instead of precomputing rows
                nxt = fsm.table[qa]
                if W is None:
                    w = csrc[base[:na, None] + nxt]
                else:
                    wq = W[pal_o[:na], qa] if pal_o is not None else W[qa]
                    w = wq * src[base[:na, None] + nxt]
                rows = np.cumsum(w, axis=1)
                u = rng.random(na) * rows[:, -1]
                a = (rows <= u[:, None]).sum(axis=1)
                if a.max(initial=0) >= S:  # float rounding at the top end: take the last positive weight
                    bad = a >= S
                    a[bad] = S - 1 - np.argmax(w[bad][:, ::-1] > 0, axis=1)
            tok_t[t, :na] = a
            q[:na] = table_flat[qa * S + a]
            st_t[t + 1, :na] = q[:na]
            base[:na] -= n
        tokens[order] = tok_t.T
        states[order] = st_t.T
        return tokens, states

    def _next_rows(self, n_rows: int) -> np.ndarray:
        """Flat table ``row * S + a -> row`` of the next step for the choice-row layout of
        :meth:`_cum_rows` (``n_rows`` rows): from row ``(block, r, q)`` symbol ``a`` leads to
        row ``(block, r - 1, table[q, a])``, i.e. ``row - n - q + table[q, a]``."""
        cache = self.__dict__.setdefault("_next_rows_cache", {})
        nxt = cache.get(n_rows)
        if nxt is None:
            n = self.fsm.n_states
            row = np.arange(n_rows, dtype=np.int64)
            q = row % n
            nxt = ((row - n - q)[:, None] + self.fsm.table[q].astype(np.int64)).ravel()
            cache[n_rows] = nxt
        return nxt

    def _walk_rows(
        self, cum: np.ndarray, idx: np.ndarray, n_active: np.ndarray, width: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """The walk over precomputed choice rows, rows sorted longest first (``n_active[t]`` rows
        still walk at step ``t``); returns ``(tokens, states)`` transposed, ``(width, B)`` and
        ``(width + 1, B)``.

        Each row carries its choice-row index (target, steps left, state), so a step is one row
        gather, one comparison and one gather of the next index (:meth:`_next_rows`); the
        states are the indices modulo ``n`` at the end.  The uniforms of all steps are drawn at
        once: ``rng.random(a + b)`` is ``rng.random(a)`` then ``rng.random(b)``, so the draws
        (and the strings) are those of one ``rng.random(na)`` per step.  Rows padded to 8
        columns (+inf) compare as one uint64 per row, whose set bits are counted."""
        S = self.fsm.n_symbols
        B = len(idx)
        nxt = self._next_rows(cum.shape[0])
        U = rng.random(int(n_active[:width].sum()))
        tok_t = np.zeros((width, B), dtype=np.int32)
        idx_t = np.zeros((width + 1, B), dtype=np.int64)
        idx_t[0] = idx
        packed = cum.shape[1] == 8 and _HAS_BITCOUNT
        off = 0
        for t in range(width):
            na = int(n_active[t])
            ia = idx_t[t, :na]
            rows = np.take(cum, ia, axis=0)
            u = U[off : off + na] * rows[:, S - 1]
            off += na
            if packed:
                a = np.bitwise_count((rows <= u[:, None]).view(np.uint64).ravel())
            else:
                a = (rows[:, :S] <= u[:, None]).sum(axis=1)
            tok_t[t, :na] = a
            np.take(nxt, ia * S + a, out=idx_t[t + 1, :na], mode="clip")
        return tok_t, (idx_t % self.fsm.n_states).astype(np.int32)

    def _choose(self, mask: np.ndarray, q: np.ndarray, rng: np.random.Generator, W: np.ndarray | None) -> np.ndarray:
        """Pick one allowed symbol per row (rows must have one), weighted by ``W[q]`` if given."""
        w = mask * (W[q] if W is not None else 1.0)
        cum = np.cumsum(w, axis=1)
        u = rng.random(len(q)) * cum[:, -1]
        a = (cum <= u[:, None]).sum(axis=1)
        return np.minimum(a, mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1))

    def try_wrong_alt(
        self,
        lens: np.ndarray,
        rng: np.random.Generator,
        W: np.ndarray | None,
        attempts: int,
        out: dict[str, Any] | None = None,
        first: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """Try to craft wrong_alt near misses of the given lengths; return a success mask.

        Each attempt walks a fresh accepted string ``u`` and looks for a swap ``(k, b)``
        with ``k >= L // 2``, ``b != u[k]`` a defined step, and ``u`` with ``b`` at ``k``
        rejected.  For FSMs of up to :data:`_EXACT_WA_STATES` states every swap is checked
        at once (a backward pass over ``u`` tells, for each position and state, whether the
        rest of ``u`` ends rejected) and one is drawn by quota weight; for larger FSMs one
        random swap is tried per attempt.  With ``out`` (a dict) the tokens, states, branch
        positions and attempts used are stored in it.  ``first`` may pass the accepted
        walks (tokens, states) of the first attempt, already made.
        """
        fsm = self.fsm
        B = len(lens)
        width = int(lens.max()) if B else 0
        tokens = np.zeros((B, width), dtype=np.int32)
        states = np.zeros((B, width + 1), dtype=np.int32)
        states[:, 0] = fsm.start
        ok = np.zeros(B, dtype=bool)
        kpos = np.full(B, -1, dtype=np.int64)
        used = np.zeros(B, dtype=np.int64)
        todo = np.flatnonzero(lens >= 1)
        for _ in range(attempts):
            if len(todo) == 0:
                break
            used[todo] += 1
            L = lens[todo]
            if first is not None:
                wmax = int(L.max())
                t, st = first[0][todo, :wmax], first[1][todo, : wmax + 1]
                first = None
            else:
                t, st = self.walk(np.full(len(todo), K["A"], dtype=np.int64), L, rng, W)
            tokens[todo, : t.shape[1]] = t
            states[todo, : st.shape[1]] = st
            swap = self._swap_exact if fsm.n_states <= _EXACT_WA_STATES else self._swap_sampled
            k, b, good = swap(t, st, L, rng, W)
            g = todo[good]
            ok[g] = True
            kpos[g] = k[good]
            tokens[g, k[good]] = b[good]
            todo = todo[~good]
        if out is not None:
            g = np.flatnonzero(ok)  # re-trace the rows whose symbol was swapped, from the swap on
            for j in range(int(kpos[g].min()) if len(g) else width, width):
                act = j < lens[g]
                states[g[act], j + 1] = fsm.table[states[g[act], j], tokens[g[act], j]]
            out.update(tokens=tokens, states=states, branch_pos=kpos, attempts=np.maximum(used, 1))
        return ok

    def _rejecting(self) -> np.ndarray:
        # binary wrong_alt: every step defined, so the string ends live and not accepted
        return (self.fsm.live & ~self.fsm.accepting) if self.cfg.task == "binary" else ~self.fsm.live

    def _swap_exact(
        self, t: np.ndarray, s: np.ndarray, L: np.ndarray, rng: np.random.Generator, W: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        fsm = self.fsm
        m, width = t.shape
        order = np.argsort(-L, kind="stable")  # longest first: active rows are a prefix
        t, s, Ls = t[order], s[order], L[order]
        tableT = np.ascontiguousarray(fsm.table.T)
        D = np.repeat(self._rejecting()[None, :], m, axis=0)  # D[i, x]: rest of u_i from x ends rejected
        total = np.zeros(m)
        k_sel = np.full(m, -1, dtype=np.int64)
        b_sel = np.zeros(m, dtype=np.int64)
        negL = -Ls
        ar = np.arange(m)
        rown = ar * fsm.n_states  # flat offsets of D's rows: one np.take instead of 2-D fancy indexing
        for j in range(width - 1, -1, -1):
            na = int(np.searchsorted(negL, -j, side="left"))  # rows with L > j
            lo = int(np.searchsorted(negL, -(2 * j + 1), side="left"))  # rows with L > 2j+1 are not late yet
            if na > lo:
                sl = slice(lo, na)
                qj, uj = s[sl, j], t[sl, j]
                nxt = fsm.table[qj]
                cand = self.live_next[qj] & np.take(D.reshape(-1), rown[sl, None] + nxt)
                cand[np.arange(na - lo), uj] = False
                w = cand * W[qj] if W is not None else cand.astype(np.float64)
                wsum = w.sum(axis=1)
                total[sl] += wsum
                # weighted reservoir: keep position j with probability wsum / total so far
                rep = rng.random(na - lo) * total[sl] < wsum
                if rep.any():
                    rr = np.flatnonzero(rep) + lo
                    b_sel[rr] = self._choose(cand[rep], qj[rep], rng, W)
                    k_sel[rr] = j
            if na:
                D[:na] = np.take(D.reshape(-1), rown[:na, None] + np.take(tableT, t[:na, j], axis=0))
        inv = np.empty_like(order)
        inv[order] = ar
        return k_sel[inv], b_sel[inv], (total > 0)[inv]

    def _swap_sampled(
        self, t: np.ndarray, s: np.ndarray, L: np.ndarray, rng: np.random.Generator, W: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        fsm = self.fsm
        m, width = t.shape
        k = L // 2 + (rng.random(m) * (L - L // 2)).astype(np.int64)
        qk, uk = s[np.arange(m), k], t[np.arange(m), k]
        cand = self.live_next[qk].copy()
        cand[np.arange(m), uk] = False
        has = cand.any(axis=1)
        b = np.zeros(m, dtype=np.int64)
        if has.any():
            b[has] = self._choose(cand[has], qk[has], rng, W)
        x = fsm.table[qk, b]
        for j in range(int(k.min()) + 1 if m else 0, width):
            act = (j > k) & (j < L)
            x[act] = fsm.table[x[act], t[act, j]]
        return k, b, has & self._rejecting()[x]

    def generate(
        self,
        cls: np.ndarray,
        lens: np.ndarray,
        subs: np.ndarray,
        rng: np.random.Generator,
        W: np.ndarray | None,
        stats: dict[str, int] | None = None,
        pal: np.ndarray | None = None,
        hits: np.ndarray | None = None,
        samples: int = 0,
        lp_mask: np.ndarray | None = None,
    ) -> Batch:
        """Make one sample per target row; ``W`` are coverage weights (None in uniform mode).

        ``W`` may be a palette stack ``(P, n, S)`` with ``pal`` the palette of each row: the
        walks use the row's palette, crafted steps and wrong_alt retries use ``W[0]``.
        With ``hits`` (per-sample edge counts of the ``samples`` made so far, coverage mode) part of the walk-made
        rows are walked through under-covered edges (:mod:`fsmdata.forcing`).  Rows of
        ``lp_mask`` (walk-made, not ``wrong_alt``) walk by the LP flow (:attr:`lp`) instead."""
        cfg = self.cfg
        W0 = W[0] if W is not None and W.ndim == 3 else W
        if W0 is W:
            pal = None
        B = len(cls)
        width = int(lens.max()) if B else 0
        stats = stats if stats is not None else {}
        tokens = np.zeros((B, width), dtype=np.int32)
        states = np.zeros((B, width + 1), dtype=np.int32)
        states[:, 0] = self.fsm.start
        attempts = np.ones(B, dtype=np.int64)
        branch = np.full(B, -1, dtype=np.int64)
        paths = np.zeros(B, dtype=np.int8)
        subs = subs.copy()
        if cfg.mode == "uniform" and not (subs > 0).any():
            kinds = np.where(cls == 0, K["A"], np.where(cls == 1, K["I"], K["NA"] if cfg.task == "binary" else K["R"]))
            t, s = self.walk(kinds.astype(np.int64), lens, rng, None)
            tokens[:, : t.shape[1]], states[:, : s.shape[1]] = t, s
            paths[:] = PATHS.index("uniform")
            self._label_uniform_rejects(tokens, states, lens, cls, subs)
            return Batch(tokens, states, lens, cls, subs, paths, attempts, branch, lens.copy())
        uniform = cfg.mode == "uniform"
        Wc = None if uniform else W0
        wa = subs == SUB["wrong_alt"]
        one_more = (subs == SUB["illegal_step"]) | (subs == SUB["dead_suffix"])
        over = subs == SUB["overrun"]
        kinds = np.empty(B, dtype=np.int64)
        kinds[cls == 0] = K["A"]
        kinds[cls == 1] = K["I"]
        kinds[subs == SUB["premature"]] = K["I"]
        kinds[subs == SUB["dead_suffix"]] = K["R"]
        kinds[subs == SUB["illegal_step"]] = K["ILL"]
        kinds[over] = K["OVP"]
        kinds[wa] = K["A"]  # wrong_alt starts from an accepted string
        walk_len = np.where(one_more, lens - 1, np.where(over, lens - 2, lens))
        if B:
            lp_cum = self._lp_rows() if lp_mask is not None and not uniform and W0 is not None else None
            if uniform:
                t, s = self.walk(kinds, walk_len, rng, None)
            elif lp_cum is not None:
                assert lp_mask is not None and W0 is not None
                Ws: np.ndarray = W if pal is not None and W is not None else W0[None]
                cw = self._cum_rows(Ws)
                if cw is None:
                    lp_mask = None
                    t, s = self.walk(kinds, walk_len, rng, W if pal is not None else W0, pal=pal)
                else:
                    lp_mask = lp_mask & ~wa
                    p2 = np.where(lp_mask, len(Ws), pal if pal is not None else 0)
                    t, s = self.walk(kinds, walk_len, rng, Ws, cum=np.concatenate([cw, lp_cum]), pal=p2)
            else:
                t, s = self.walk(kinds, walk_len, rng, W if pal is not None else W0, pal=pal)
            tokens[:, : t.shape[1]] = t
            states[:, : s.shape[1]] = s
            if hits is not None and not uniform:
                elig = ~wa if lp_mask is None else ~wa & ~lp_mask
                self._force_edges(kinds, walk_len, elig, hits, samples, tokens, states, rng, W0, stats)
        paths[cls != 2] = PATHS.index("uniform" if uniform else "walk")
        paths[subs == SUB["premature"]] = PATHS.index("walk+premature")
        f = np.flatnonzero(one_more)
        if len(f):
            L = lens[f]
            q = states[f, L - 1]
            mask = np.where((subs[f] == SUB["dead_suffix"])[:, None], True, self.dead_next[q])
            a = self._choose(mask, q, rng, Wc)
            tokens[f, L - 1] = a
            states[f, L] = self.fsm.table[q, a]
            paths[f] = np.where(subs[f] == SUB["dead_suffix"], PATHS.index("walk+dead_suffix"), PATHS.index("walk+illegal_step"))
        o = np.flatnonzero(over)
        if len(o):
            L = lens[o]
            p = states[o, L - 2]
            c = self._choose(self.overrun_next[p], p, rng, Wc)
            q = self.fsm.table[p, c]
            tokens[o, L - 2] = c
            tokens[o, L - 1] = c
            states[o, L - 1] = q
            states[o, L] = self.fsm.table[q, c]
            paths[o] = PATHS.index("walk+overrun")
        w = np.flatnonzero(wa)
        if len(w):
            out: dict[str, Any] = {}
            ok = self.try_wrong_alt(lens[w], rng, W0, cfg.attempts_per_sample, out, first=(tokens[w], states[w]))
            g = w[ok]
            tokens[g, : out["tokens"].shape[1]] = out["tokens"][ok]
            states[g, : out["states"].shape[1]] = out["states"][ok]
            branch[g] = out["branch_pos"][ok]
            attempts[w] = out["attempts"]
            paths[g] = PATHS.index("walk+branch_swap")
            missed = w[~ok]
            if len(missed) and self.pairs is not None:
                stats["wrong_alt_exact"] = stats.get("wrong_alt_exact", 0) + len(missed)
                for i in missed.tolist():
                    n_len = int(lens[i])
                    built = self.pairs.build(n_len, rng)
                    if built is None:  # the plan holds only lengths where one exists
                        raise AssertionError(f"no wrong_alt of feasible length {n_len}")
                    seq, k = built
                    tokens[i, :n_len] = seq
                    states[i, : n_len + 1] = self.fsm.trace(seq)
                    branch[i] = k
                    attempts[i] += 1
                    paths[i] = PATHS.index("walk+branch_swap")
                missed = missed[:0]
            if len(missed):
                stats["wrong_alt_fallbacks"] = stats.get("wrong_alt_fallbacks", 0) + len(missed)
                subs[missed] = self._fallback_subtypes(lens[missed], rng)
                sub = self.generate(
                    cls[missed], lens[missed], subs[missed], rng, W, stats, pal=pal[missed] if pal is not None else None
                )
                tokens[missed, : sub.tokens.shape[1]] = sub.tokens
                states[missed, : sub.states.shape[1]] = sub.states
                paths[missed] = sub.paths
                attempts[missed] += sub.attempts
        return Batch(tokens, states, lens, cls, subs, paths, attempts, branch, lens.copy())

    @property
    def forcer(self) -> EdgeForcer:
        """The edge-forcing tables (built on first use; ``ok`` False for FSMs beyond their budget)."""
        if self._forcer is None:
            self._forcer = EdgeForcer(self.fsm, self.feas, self.T)
        return self._forcer

    def _force_edges(
        self,
        kinds: np.ndarray,
        walk_len: np.ndarray,
        eligible: np.ndarray,
        hits: np.ndarray,
        samples: int,
        tokens: np.ndarray,
        states: np.ndarray,
        rng: np.random.Generator,
        W: np.ndarray | None,
        stats: dict[str, int],
    ) -> None:
        """Re-walk some rows through under-covered edges (in place; see :mod:`fsmdata.forcing`)."""
        fc = self.forcer
        if not fc.ok:
            return
        rows, e, t = fc.choose(kinds, walk_len, eligible, hits, samples, FORCE_GOAL, FORCE_MAX_SHARE, rng)
        F = len(rows)
        if F == 0:
            return
        stats["forced_rows"] = stats.get("forced_rows", 0) + F
        m = walk_len[rows]
        t1, s1 = fc.walk_to(fc.eq[e], t, rng, W)
        t2, s2 = self.walk(kinds[rows], m - t - 1, rng, W, starts=fc.enext[e])
        width = int(m.max())
        ar = np.arange(F)[:, None]
        J = np.arange(width + 1)[None, :]
        tt = t[:, None]
        t1p = np.zeros((F, width + 1), dtype=np.int32)
        t1p[:, : t1.shape[1]] = t1
        s1p = np.zeros((F, width + 1), dtype=np.int32)
        s1p[:, : s1.shape[1]] = s1
        t2g = t2[ar, np.clip(J - tt - 1, 0, max(t2.shape[1] - 1, 0))] if t2.shape[1] else np.zeros_like(t1p)
        s2g = s2[ar, np.clip(J - tt - 1, 0, s2.shape[1] - 1)]
        tk = np.where(J < tt, t1p, np.where(J == tt, fc.ea[e][:, None], t2g))
        st = np.where(J <= tt, s1p, s2g)
        tk[J >= m[:, None]] = 0
        st[J > m[:, None]] = 0
        tokens[rows, :width] = tk[:, :width]
        states[rows, : width + 1] = st

    def _fallback_subtypes(self, lens: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Another subtype that exists at each length (only for FSMs beyond the pair tables)."""
        plan = self.plan
        out = np.empty(len(lens), dtype=np.int8)
        for i, L in enumerate(lens.tolist()):
            opts = [s for s in ("illegal_step", "overrun", "premature", "dead_suffix") if L in plan.sub_lengths[s]]
            if not opts:
                raise AssertionError(f"a wrong_alt of length {L} exists but no other reject of that length")
            out[i] = SUB[opts[int(rng.integers(len(opts)))]]
        return out

    def _label_uniform_rejects(
        self, tokens: np.ndarray, states: np.ndarray, lens: np.ndarray, cls: np.ndarray, subs: np.ndarray
    ) -> None:
        """Label uniform-mode rejects by shape (see :func:`fsmdata.rejects.describe_reject`)."""
        r = np.flatnonzero(cls == 2)
        if not len(r):
            return
        fsm = self.fsm
        L = lens[r]
        end = states[r, L]
        live_end = fsm.live[end]
        width = states.shape[1]
        pos = np.arange(width)[None, :]
        dead = ~fsm.live[states[r]] & (pos <= L[:, None])
        first_dead = np.where(dead.any(axis=1), np.argmax(dead, axis=1), -1)
        last_step = (first_dead == L) & (L > 0)
        prev_acc = fsm.accepting[states[r, np.maximum(L - 1, 0)]]
        tw = max(tokens.shape[1], 1)
        last = tokens[r, np.clip(L - 1, 0, tw - 1)] if tokens.shape[1] else np.zeros(len(r), dtype=np.int32)
        prev = tokens[r, np.clip(L - 2, 0, tw - 1)] if tokens.shape[1] else np.zeros(len(r), dtype=np.int32)
        repeat = (L >= 2) & (last == prev)
        lab = np.full(len(r), SUB["dead_suffix"], dtype=np.int8)
        lab[last_step] = SUB["illegal_step"]
        lab[last_step & prev_acc & repeat] = SUB["overrun"]
        lab[live_end] = SUB["premature"]
        subs[r] = lab
