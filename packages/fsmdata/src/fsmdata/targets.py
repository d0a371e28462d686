"""Generation targets: which (class, length, reject subtype) cells an FSM can fill, and how many.

:class:`TargetPlan` validates a :class:`~fsmdata.config.GenConfig` against an FSM (impossible
requests fail here, before any sample is made) and allocates stratified targets.
"""

from __future__ import annotations

import numpy as np

from .config import GenConfig
from .errors import EmptyLanguageError, InfeasibleTargetError
from .feasibility import Feasibility
from .fsm import CLASS_NAMES, FSM
from .rejects import SUBTYPE_NAMES

__all__ = ["SUB", "TargetPlan"]

SUB = {s: i + 1 for i, s in enumerate(SUBTYPE_NAMES)}  # subtype codes; 0 = not a reject


class TargetPlan:
    """Which (class, length, subtype) cells an FSM can fill, and the share of each.

    Raises :class:`InfeasibleTargetError` / :class:`EmptyLanguageError` when the config asks
    for something no string can be (a class no length in range allows, an impossible reject
    subtype given a share).
    """

    def __init__(self, fsm: FSM, cfg: GenConfig, feas: Feasibility, rng_seed: int = 0) -> None:
        if fsm.is_empty:
            raise EmptyLanguageError(f"the FSM accepts no string (pattern {fsm.pattern!r}); nothing to generate")
        self.fsm, self.cfg, self.feas = fsm, cfg, feas
        lengths = range(cfg.L_min, cfg.L_max + 1)
        sf: dict[str, list[int]] = {}
        sf["illegal_step"] = [L for L in lengths if L >= 1 and feas.start_feasible("ILL", L - 1)]
        sf["overrun"] = [L for L in lengths if L >= 1 and feas.start_feasible("OVR", L - 1)]
        sf["premature"] = [L for L in lengths if cfg.task == "binary" and feas.start_feasible("I", L)]
        self.sub_lengths = sf
        # uniform mode samples whole classes and never crafts a subtype
        sf["wrong_alt"] = self._probe_wrong_alt(list(lengths), rng_seed) if cfg.mode == "coverage" else []
        weights = cfg.subtype_weights()
        explicit = cfg.reject_mix is not None
        cw = cfg.class_weights()
        for s in cfg.valid_subtypes() if cfg.mode == "coverage" else ():
            if weights[s] > 0 and not sf[s]:
                if explicit and cw.get("R", 0) > 0:
                    raise InfeasibleTargetError(
                        f"reject_mix: this FSM has no {s} reject of length {cfg.L_min}..{cfg.L_max}; "
                        f"set {s}=0 (or widen the length range / the alphabet)"
                    )
                weights[s] = 0.0
        self.subtype_weights = weights
        reject_kind = "NA" if cfg.task == "binary" else "R"
        self.class_lengths = {
            "A": [L for L in lengths if feas.start_feasible("A", L)],
            "I": [L for L in lengths if cfg.task == "ternary" and feas.start_feasible("I", L)],
            "R": [L for L in lengths if feas.start_feasible(reject_kind, L)],
        }
        if cfg.p_class is None:
            # default mix: equal shares over the classes this FSM can produce (A must exist)
            possible = [c for c in cw if self.class_lengths[c] or c == "A"]
            cw = {c: (1.0 / len(possible) if c in possible else 0.0) for c in cw}
        for c, p in cw.items():
            if p > 0 and not self.class_lengths[c]:
                raise InfeasibleTargetError(self._why_infeasible(c))
        self.class_weights = cw
        # cells: (class, length, subtype) with shares
        cells: list[tuple[str, int, str]] = []
        shares: list[float] = []
        for c, p in cw.items():
            if p <= 0:
                continue
            Ls = self.class_lengths[c]
            for L in Ls:
                if c != "R":
                    cells.append((c, L, ""))
                    shares.append(p / len(Ls))
                    continue
                if cfg.mode == "uniform":
                    cells.append((c, L, ""))
                    shares.append(p / len(Ls))
                    continue
                here = {s: weights[s] for s in cfg.valid_subtypes() if weights[s] > 0 and L in sf[s]}
                tot = sum(here.values())
                if tot <= 0:
                    here, tot = {"dead_suffix": 1.0}, 1.0
                for s, w in here.items():
                    cells.append((c, L, s))
                    shares.append(p / len(Ls) * w / tot)
        self.cells = cells
        self.shares = np.array(shares) / np.sum(shares)

    def _why_infeasible(self, c: str) -> str:
        cfg, fsm = self.cfg, self.fsm
        rng = f"length {cfg.L_min}..{cfg.L_max}"
        if c == "A":
            short = fsm.shortest_accepted_length()
            hint = (
                f"the shortest accepted string has length {short}; raise L_max to at least {short}"
                if short is not None and short > cfg.L_max
                else "change the length range"
            )
            return f"p_class: no accepted (A) string has {rng}; {hint}, or set A=0"
        if c == "I":
            return f"p_class: no string of {rng} stops short of acceptance with acceptance still reachable (class I); change the range or set I=0"
        return (
            f"p_class: every string of {rng} over this alphabet can still be accepted, so no reject (R) string exists; "
            "give a larger alphabet or set R=0"
        )

    def _probe_wrong_alt(self, lengths: list[int], seed: int) -> list[int]:
        """Lengths at which a wrong_alt near miss was found in a small fixed-seed trial."""
        cand = [L for L in lengths if L >= 1 and self.feas.start_feasible("A", L)]
        if not cand:
            return []
        from .engine import Engine  # the engine builds plans; the probe needs an engine

        eng = Engine(self.fsm, self.cfg, self.feas, make_plan=False)
        rng = np.random.default_rng(seed)
        per = 4 if self.fsm.n_states > 256 else 16
        lens = np.repeat(np.array(cand, dtype=np.int64), per)
        ok = eng.try_wrong_alt(lens, rng, np.ones((self.fsm.n_states, self.fsm.n_symbols)), attempts=4)
        return sorted({int(L) for L, good in zip(lens, ok) if good})

    @staticmethod
    def _round(exact: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """Integers summing to ``n``: floors plus the remainder drawn by fractional part."""
        counts = np.floor(exact + 1e-9).astype(np.int64)
        rem = n - int(counts.sum())
        if rem > 0:
            frac = np.maximum(exact - counts, 0)
            p = frac / frac.sum() if frac.sum() > 0 else np.full(len(frac), 1 / len(frac))
            counts[rng.choice(len(frac), size=rem, replace=False, p=p)] += 1
        return counts

    def allocate(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Stratified targets for ``n`` samples: ``(class_ids, lengths, subtype_codes)``, shuffled.

        Each (class, length) cell gets ``floor(n * share)`` samples and the remainder goes
        to cells drawn by their fractional parts (unbiased across shards); R cells are then
        split among their subtypes the same way, so subtypes never skew the length balance.
        """
        keys = list(dict.fromkeys((c, L) for c, L, _ in self.cells))
        cell_share = {k: 0.0 for k in keys}
        for (c, L, _), sh in zip(self.cells, self.shares):
            cell_share[(c, L)] += sh
        cell_counts = self._round(n * np.array([cell_share[k] for k in keys]), n, rng)
        counts = np.zeros(len(self.cells), dtype=np.int64)
        for k, m in zip(keys, cell_counts.tolist()):
            idx = [i for i, (c, L, _) in enumerate(self.cells) if (c, L) == k]
            sub = self.shares[idx] / self.shares[idx].sum()
            counts[idx] = self._round(m * sub, m, rng)
        cls = np.repeat(np.array([CLASS_NAMES.index(c) for c, _, _ in self.cells], dtype=np.int8), counts)
        lens = np.repeat(np.array([L for _, L, _ in self.cells], dtype=np.int64), counts)
        subs = np.repeat(np.array([SUB.get(s, 0) for _, _, s in self.cells], dtype=np.int8), counts)
        perm = rng.permutation(n)
        return cls[perm], lens[perm], subs[perm]

    def sample_target(self, rng: np.random.Generator) -> tuple[str, int, str]:
        """One target ``(class, length, subtype)`` drawn independently by the cell shares."""
        i = int(rng.choice(len(self.cells), p=self.shares))
        return self.cells[i]
