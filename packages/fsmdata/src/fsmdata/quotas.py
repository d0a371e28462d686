"""Coverage quotas: per-edge and per-state hit counts that steer sampling to unused edges."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["QuotaManager"]


class QuotaManager:
    """Counts how often each edge ``(state, symbol)`` and each state was used.

    :meth:`edge_weight` is the inverse-sqrt frequency bonus ``1 / sqrt(1 + hits)``,
    multiplied by ``boost`` while an edge is below its ``edge_target`` (or its source state
    below ``state_target``), so rarely used edges are preferred by the generators.
    """

    def __init__(self, n_states: int, n_symbols: int, *, edge_target: int = 0, state_target: int = 0, boost: float = 4.0) -> None:
        if boost < 1:
            raise ValueError(f"boost must be >= 1, got {boost}")
        self.n_states, self.n_symbols = n_states, n_symbols
        self.edge_target, self.state_target, self.boost = edge_target, state_target, boost
        self.hits = np.zeros((n_states, n_symbols), dtype=np.int64)
        self.hits_state = np.zeros(n_states, dtype=np.int64)

    def edge_weight(self, state: int, token_id: int) -> float:
        """Sampling weight of edge ``(state, token_id)``: larger for less-used edges."""
        return float(self.weights()[state, token_id])

    def weights(self) -> np.ndarray:
        """All edge weights as a float64 ``(n_states, n_symbols)`` array."""
        w = 1.0 / np.sqrt(1.0 + self.hits)
        if self.edge_target > 0:
            w = np.where(self.hits < self.edge_target, w * self.boost, w)
        if self.state_target > 0:
            w = np.where((self.hits_state < self.state_target)[:, None], w * self.boost, w)
        return w

    def update_path(self, states: Sequence[int], tokens: Sequence[int]) -> None:
        """Count one sample: ``states`` has ``len(tokens) + 1`` entries (start included)."""
        if len(states) != len(tokens) + 1:
            raise ValueError(f"states must be one longer than tokens ({len(states)} vs {len(tokens)})")
        for q, a in zip(states[:-1], tokens):
            self.hits[q, a] += 1
        for q in states:
            self.hits_state[q] += 1

    def update_batch(self, states: np.ndarray, tokens: np.ndarray, lengths: np.ndarray) -> None:
        """Count a batch: ``states`` ``(B, W+1)``, ``tokens`` ``(B, W)``, row ``i`` valid up to ``lengths[i]``."""
        if tokens.shape[1] == 0:
            np.add.at(self.hits_state, states[:, 0], 1)
            return
        pos = np.arange(tokens.shape[1])
        valid = pos[None, :] < lengths[:, None]
        flat = states[:, :-1][valid].astype(np.int64) * self.n_symbols + tokens[valid]
        self.hits += np.bincount(flat, minlength=self.hits.size).reshape(self.hits.shape)
        valid_s = np.concatenate([np.ones((len(lengths), 1), dtype=bool), valid], axis=1)
        self.hits_state += np.bincount(states[valid_s], minlength=self.n_states)

    def summary(self, mask: np.ndarray | None = None) -> dict[str, Any]:
        """Coverage of the edges in ``mask`` (default all): hit share, min/median/max, targets met."""
        h = self.hits[mask] if mask is not None else self.hits.ravel()
        if h.size == 0:
            return {"edges": 0}
        return {
            "edges": int(h.size),
            "edges_hit": int((h > 0).sum()),
            "min": int(h.min()),
            "median": float(np.median(h)),
            "max": int(h.max()),
            "below_edge_target": int((h < self.edge_target).sum()),
            "states_below_target": int((self.hits_state < self.state_target).sum()),
        }
