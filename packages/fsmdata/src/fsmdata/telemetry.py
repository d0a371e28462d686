"""``DataReport``: what a generated corpus contains (histograms, coverage, reject subtypes, retries)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
from datacore import Telemetry

from ._contract import STRATA
from .fsm import FSM

__all__ = ["EDGE_HISTOGRAM_LIMIT", "DataReport"]

#: Per-edge coverage goes into datacore telemetry only for FSMs with at most this many edges.
EDGE_HISTOGRAM_LIMIT = 1 << 16


class DataReport:
    """Counts describing a corpus; all fields are sums, so reports of shards add up.

    ``length_hist`` / ``class_hist`` / ``class_length`` (``"A:5"``) / ``subtype_hist`` /
    ``path_hist`` map a bucket to a count; ``state_hits`` (n_states) and ``edge_hits``
    (n_states x n_symbols) count how often each state was visited and each edge taken;
    ``samples``, ``attempts`` (tries summed over samples) and ``fallbacks``; ``strata``
    (delivered records per stratum: ``"class=R,length=5"``, ``"subtype=overrun"``) and
    ``requested`` (the records the plan's requested shares ask of this corpus, rounded);
    ``plan_residual`` (planned - requested share per stratum, from the
    :class:`~fsmdata.targets.TargetPlan`; copied, not summed).
    """

    def __init__(self, n_states: int, n_symbols: int) -> None:
        self.n_states, self.n_symbols = n_states, n_symbols
        self.length_hist: dict[str, int] = {}
        self.class_hist: dict[str, int] = {}
        self.class_length: dict[str, int] = {}
        self.subtype_hist: dict[str, int] = {}
        self.path_hist: dict[str, int] = {}
        self.state_hits = np.zeros(n_states, dtype=np.int64)
        self.edge_hits = np.zeros((n_states, n_symbols), dtype=np.int64)
        self.samples = 0
        self.attempts = 0
        self.fallbacks = 0
        self.strata: dict[str, int] = {}
        self.requested: dict[str, int] = {}
        self.plan_residual: dict[str, float] = {}

    @property
    def retry_rate(self) -> float:
        """Extra tries per sample: ``(attempts - samples) / samples``."""
        return (self.attempts - self.samples) / self.samples if self.samples else 0.0

    def coverage(self, fsm: FSM) -> dict[str, Any]:
        """Live-edge coverage: edges hit, least / median / most used."""
        mask = fsm.live_edges()
        h = self.edge_hits[mask]
        if h.size == 0:
            return {"live_edges": 0}
        return {
            "live_edges": int(h.size),
            "live_edges_hit": int((h > 0).sum()),
            "min": int(h.min()),
            "median": float(np.median(h)),
            "max": int(h.max()),
            "min_over_median": float(h.min() / np.median(h)) if np.median(h) > 0 else 0.0,
        }

    def merge(self, other: DataReport) -> DataReport:
        """Add ``other`` into this report (in place) and return it."""
        for name in ("length_hist", "class_hist", "class_length", "subtype_hist", "path_hist", "strata", "requested"):
            mine = getattr(self, name)
            for k, v in getattr(other, name).items():
                mine[k] = mine.get(k, 0) + v
        self.state_hits += other.state_hits
        self.edge_hits += other.edge_hits
        self.samples += other.samples
        self.attempts += other.attempts
        self.fallbacks += other.fallbacks
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (edges as ``{"state,symbol": hits}`` for the edges hit)."""
        nz = np.argwhere(self.edge_hits > 0)
        return {
            "n_states": self.n_states,
            "n_symbols": self.n_symbols,
            "samples": self.samples,
            "attempts": self.attempts,
            "fallbacks": self.fallbacks,
            "retry_rate": self.retry_rate,
            "length_hist": self.length_hist,
            "class_hist": self.class_hist,
            "class_length": self.class_length,
            "subtype_hist": self.subtype_hist,
            "path_hist": self.path_hist,
            "strata": self.strata,
            "requested": self.requested,
            "plan_residual": self.plan_residual,
            "state_hits": self.state_hits.tolist(),
            "edge_hits": {f"{q},{a}": int(self.edge_hits[q, a]) for q, a in nz.tolist()},
        }

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DataReport:
        """Inverse of :meth:`to_dict`."""
        r = cls(int(d["n_states"]), int(d["n_symbols"]))
        for name in ("length_hist", "class_hist", "class_length", "subtype_hist", "path_hist"):
            setattr(r, name, {str(k): int(v) for k, v in d[name].items()})
        for name in ("strata", "requested"):
            setattr(r, name, {str(k): int(v) for k, v in d.get(name, {}).items()})
        r.plan_residual = {str(k): float(v) for k, v in d.get("plan_residual", {}).items()}
        r.samples, r.attempts, r.fallbacks = int(d["samples"]), int(d["attempts"]), int(d["fallbacks"])
        r.state_hits = np.array(d["state_hits"], dtype=np.int64)
        for k, v in d["edge_hits"].items():
            q, a = (int(x) for x in k.split(","))
            r.edge_hits[q, a] = v
        return r

    @classmethod
    def from_json(cls, text: str | bytes) -> DataReport:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def print_report(self, fsm: FSM | None = None) -> str:
        """A short human-readable summary (returned, and printed)."""
        lines = [f"samples: {self.samples}  retry rate: {self.retry_rate:.4f}  fallbacks: {self.fallbacks}"]
        lines.append("classes: " + ", ".join(f"{k}={v}" for k, v in sorted(self.class_hist.items())))
        lines.append("reject subtypes: " + (", ".join(f"{k}={v}" for k, v in sorted(self.subtype_hist.items())) or "-"))
        lens = sorted(self.length_hist.items(), key=lambda kv: int(kv[0]))
        lines.append("lengths: " + ", ".join(f"{k}:{v}" for k, v in lens))
        if fsm is not None:
            lines.append("live-edge coverage: " + ", ".join(f"{k}={v}" for k, v in self.coverage(fsm).items()))
        text = "\n".join(lines)
        print(text)
        return text

    def to_telemetry(self, tel: Telemetry) -> None:
        """Add this report to a datacore :class:`~datacore.Telemetry` (shard-mergeable sums)."""
        tel.count("samples", self.samples)
        tel.count("attempts", self.attempts)
        tel.count("retries", self.attempts - self.samples)
        tel.count("wrong_alt_fallbacks", self.fallbacks)
        tel.add_histogram("length", self.length_hist)
        tel.add_histogram("class", self.class_hist)
        tel.add_histogram("class_length", self.class_length)
        tel.add_histogram("reject_subtype", self.subtype_hist)
        tel.add_histogram("path", self.path_hist)
        tel.add_histogram(STRATA, self.strata)
        tel.add_histogram("strata_requested", self.requested)
        tel.add_histogram("state_coverage", {str(q): int(v) for q, v in enumerate(self.state_hits.tolist()) if v})
        if self.edge_hits.size <= EDGE_HISTOGRAM_LIMIT:
            nz = np.argwhere(self.edge_hits > 0)
            tel.add_histogram("edge_coverage", {f"{q},{a}": int(self.edge_hits[q, a]) for q, a in nz.tolist()})
