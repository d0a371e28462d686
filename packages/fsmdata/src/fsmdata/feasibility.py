"""Feasibility and counting dynamic programs over an :class:`~fsmdata.fsm.FSM`.

``reach[k, t, q]`` is True when some string of exactly ``t`` symbols leads from state ``q``
into the target set ``k``.  The target sets are the three string classes (``A`` accepting,
``I`` live but not accepting, ``R`` dead) and two helper sets used to craft rejects:
``ILL`` (live states with at least one illegal symbol) and ``OVR`` (accepting states with
one), ``NA`` (not accepting: the binary task's R) and ``OVP`` (states ``p`` with a
symbol ``c`` such that ``p -c-> q`` accepts and ``c`` is undefined at ``q``: the state two
steps before the end of an ``overrun``).  Counting replaces "some string" by "how many strings", in scaled float64 (one log
scale per step, so 64 symbols x 512 steps cannot overflow) or in exact Python ints.
"""

from __future__ import annotations

import numpy as np

from .fsm import CLASS_IDS, FSM

__all__ = [
    "TARGETS",
    "Feasibility",
    "can_reach_tables",
    "count_exact",
    "count_scaled",
    "overrun_symbols",
    "reach_table",
    "target_masks",
    "target_weights",
]

TARGETS = ("A", "I", "R", "ILL", "OVR", "NA", "OVP")


def target_masks(fsm: FSM) -> dict[str, np.ndarray]:
    """State masks of the target sets (see the module docstring)."""
    live, acc = fsm.live, fsm.accepting
    has_fatal = live & (~live[fsm.table]).any(axis=1)
    ovp = overrun_symbols(fsm).any(axis=1)
    return {"A": acc.copy(), "I": live & ~acc, "R": ~live, "ILL": has_fatal, "OVR": acc & has_fatal, "NA": ~acc, "OVP": ovp}


def overrun_symbols(fsm: FSM) -> np.ndarray:
    """``(n, S)`` bool: ``p -c-> q`` with ``q`` accepting and ``c`` undefined at ``q``
    (so ``... c c`` runs past a complete match by repeating its last symbol)."""
    q = fsm.table  # (n, S)
    twice = fsm.table[q, np.arange(fsm.n_symbols)[None, :]]
    return fsm.live[np.arange(fsm.n_states)][:, None] & fsm.accepting[q] & ~fsm.live[twice]


def target_weights(fsm: FSM) -> dict[str, np.ndarray]:
    """Integer weight of each end state per target set: the number of ways a string that
    reaches it is finished (1 for the class sets; undefined symbols for ``ILL``, overrun
    symbols for ``OVP``, every symbol for ``R`` used as a dead prefix).  Counting with these
    weights makes the crafted subtypes uniform in uniform / unique mode."""
    m = target_masks(fsm)
    w = {k: v.astype(np.int64) for k, v in m.items()}
    w["ILL"] = np.where(m["ILL"], (~fsm.live[fsm.table]).sum(axis=1), 0).astype(np.int64)
    w["OVP"] = overrun_symbols(fsm).sum(axis=1).astype(np.int64)
    return w


def reach_table(table: np.ndarray, mask: np.ndarray, L_max: int) -> np.ndarray:
    """Boolean ``(L_max + 1, n_states)``: row ``t`` marks states with a ``t``-step path into ``mask``."""
    out = np.empty((L_max + 1, table.shape[0]), dtype=bool)
    out[0] = mask
    for t in range(1, L_max + 1):
        out[t] = out[t - 1][table].any(axis=1)
    return out


def count_scaled(table: np.ndarray, mask: np.ndarray, L_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Number of ``t``-symbol strings from each state into ``mask``, as ``(scaled, log_scale)``.

    ``count[t, q] = scaled[t, q] * exp(log_scale[t])``; each row is divided by its maximum,
    so values stay in [0, 1].  Ratios within a row (all that sampling needs) are exact up to
    float64 rounding; a count below 1e-300 of its row's largest reads as 0.
    """
    scaled = np.empty((L_max + 1, table.shape[0]), dtype=np.float64)
    log_scale = np.zeros(L_max + 1)
    scaled[0] = mask
    for t in range(1, L_max + 1):
        raw = scaled[t - 1][table].sum(axis=1)
        m = raw.max()
        if m > 0:
            raw /= m
            log_scale[t] = log_scale[t - 1] + np.log(m)
        else:
            log_scale[t] = log_scale[t - 1]
        scaled[t] = raw
    return scaled, log_scale


def count_exact(table: np.ndarray, mask: np.ndarray, L_max: int) -> list[list[int]]:
    """Exact counts as Python ints: ``out[t][q]`` strings of length ``t`` from ``q`` into ``mask``
    (a bool mask, or integer end-state weights)."""
    n = table.shape[0]
    rows = table.tolist()
    cur = [int(m) for m in np.asarray(mask).astype(np.int64).tolist()]
    out = [cur]
    for _ in range(L_max):
        cur = [sum(cur[t] for t in rows[q]) for q in range(n)]
        out.append(cur)
    return out


def can_reach_tables(fsm: FSM, L_max: int) -> np.ndarray:
    """``canReach[state, t, class_id]`` in {0, 1} for the classes A (0), I (1), R (2)."""
    masks = target_masks(fsm)
    stacked = np.stack([reach_table(fsm.table, masks[c], L_max) for c in ("A", "I", "R")], axis=-1)
    return stacked.transpose(1, 0, 2).astype(np.uint8)


class Feasibility:
    """All reach tables of an FSM up to ``L_max``, plus forward reachability from the start.

    ``reach[k, t, q]`` (k indexes :data:`TARGETS`) and ``fwd[t, q]`` (``q`` reachable from
    the start in exactly ``t`` steps).  Counting tables are built on first use.
    """

    def __init__(self, fsm: FSM, L_max: int) -> None:
        self.fsm = fsm
        self.L_max = L_max
        self.masks = target_masks(fsm)
        # All six target sets at once, one bit each: one gather per step instead of six.
        bits = np.zeros((L_max + 1, fsm.n_states), dtype=np.uint8)
        for i, k in enumerate(TARGETS):
            bits[0] |= self.masks[k].astype(np.uint8) << i
        for t in range(1, L_max + 1):
            bits[t] = np.bitwise_or.reduce(bits[t - 1][fsm.table], axis=1)
        self.reach = np.stack([(bits >> i) & 1 for i in range(len(TARGETS))]).astype(bool)
        self.reach.setflags(write=False)
        fwd = np.zeros((L_max + 1, fsm.n_states), dtype=bool)
        fwd[0, fsm.start] = True
        for t in range(1, L_max + 1):
            fwd[t, fsm.table[fwd[t - 1]].ravel()] = True
        self.fwd = fwd
        self._counts: dict[str, np.ndarray] = {}

    def feasible(self, state: int, t: int, class_id: int | str) -> bool:
        """True if a ``t``-symbol string leads from ``state`` to an end state of the class."""
        k = TARGETS.index(class_id) if isinstance(class_id, str) else int(class_id)
        if not 0 <= t <= self.L_max:
            return False
        return bool(self.reach[k, t, state])

    def start_feasible(self, kind: str, t: int) -> bool:
        """True if a string of length ``t`` from the start ends in target set ``kind``."""
        return 0 <= t <= self.L_max and bool(self.reach[TARGETS.index(kind), t, self.fsm.start])

    def counts(self, kind: str) -> np.ndarray:
        """Scaled counts ``(L_max + 1, n_states)`` for target set ``kind`` (see :func:`count_scaled`),
        end states weighted by :func:`target_weights`."""
        if kind not in self._counts:
            w = target_weights(self.fsm)[kind].astype(np.float64)
            self._counts[kind] = count_scaled(self.fsm.table, w, self.L_max)[0]
        return self._counts[kind]


assert CLASS_IDS == {"A": 0, "I": 1, "R": 2}  # TARGETS[:3] must line up with the class ids
