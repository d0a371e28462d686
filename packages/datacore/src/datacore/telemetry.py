"""Counters and histograms that merge shard by shard.

A :class:`Telemetry` holds named counters (numbers) and named histograms (string bucket
-> count).  ``merge`` adds them key by key, so merging is associative and commutative and
the merged telemetry of a run does not depend on how shards were spread over workers.
Histogram bucket keys are strings; numeric keys are stringified and sorted numerically
when displayed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson


def _sort_key(k: str) -> tuple[int, float, str]:
    try:
        return (0, float(k), "")
    except ValueError:
        return (1, 0.0, k)


class Telemetry:
    """Mergeable run statistics: ``counters[name]`` and ``histograms[name][bucket]``."""

    def __init__(
        self,
        counters: Mapping[str, float] | None = None,
        histograms: Mapping[str, Mapping[str, int]] | None = None,
    ) -> None:
        self.counters: dict[str, float] = dict(counters or {})
        self.histograms: dict[str, dict[str, int]] = {k: dict(v) for k, v in (histograms or {}).items()}

    def count(self, name: str, by: float = 1) -> None:
        """Add ``by`` to counter ``name``."""
        self.counters[name] = self.counters.get(name, 0) + by

    def observe(self, name: str, bucket: object, by: int = 1) -> None:
        """Add ``by`` to bucket ``bucket`` of histogram ``name``."""
        h = self.histograms.setdefault(name, {})
        k = str(bucket)
        h[k] = h.get(k, 0) + by

    def add_histogram(self, name: str, counts: Mapping[Any, int]) -> None:
        """Add a whole mapping of bucket -> count into histogram ``name``."""
        h = self.histograms.setdefault(name, {})
        for b, c in counts.items():
            k = str(b)
            h[k] = h.get(k, 0) + int(c)

    def merge(self, other: Telemetry) -> Telemetry:
        """Add ``other`` into this telemetry in place and return ``self``."""
        for k, v in other.counters.items():
            self.counters[k] = self.counters.get(k, 0) + v
        for name, hist in other.histograms.items():
            self.add_histogram(name, hist)
        return self

    @classmethod
    def merged(cls, parts: list[Telemetry]) -> Telemetry:
        """Return a new telemetry that is the sum of ``parts``."""
        out = cls()
        for p in parts:
            out.merge(p)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict with keys sorted (stable output)."""
        return {
            "counters": {k: self.counters[k] for k in sorted(self.counters)},
            "histograms": {
                n: {b: self.histograms[n][b] for b in sorted(self.histograms[n], key=_sort_key)}
                for n in sorted(self.histograms)
            },
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Telemetry:
        """Inverse of :meth:`to_dict`."""
        return cls(d.get("counters", {}), d.get("histograms", {}))

    def to_json(self) -> bytes:
        """Serialize to indented JSON bytes."""
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, data: bytes | str) -> Telemetry:
        """Parse JSON made by :meth:`to_json`."""
        return cls.from_dict(orjson.loads(data))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Telemetry) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Telemetry(counters={len(self.counters)}, histograms={len(self.histograms)})"

    def pretty(self, max_buckets: int = 20) -> str:
        """Render as text tables (rich) for the terminal."""
        from rich.console import Console
        from rich.table import Table

        console = Console(width=100, force_terminal=False)
        with console.capture() as cap:
            if self.counters:
                t = Table(title="counters")
                t.add_column("name")
                t.add_column("value", justify="right")
                for k in sorted(self.counters):
                    v = self.counters[k]
                    t.add_row(k, f"{v:,.4g}" if isinstance(v, float) and not v.is_integer() else f"{int(v):,}")
                console.print(t)
            for name in sorted(self.histograms):
                hist = self.histograms[name]
                total = sum(hist.values()) or 1
                t = Table(title=f"{name} ({len(hist)} buckets)")
                t.add_column("bucket")
                t.add_column("count", justify="right")
                t.add_column("share", justify="right")
                t.add_column("")
                peak = max(hist.values()) if hist else 1
                keys = sorted(hist, key=_sort_key)
                for b in keys[:max_buckets]:
                    c = hist[b]
                    t.add_row(b, f"{c:,}", f"{100 * c / total:.1f}%", "#" * max(1, round(30 * c / max(peak, 1))) if c else "")
                if len(keys) > max_buckets:
                    t.add_row(f"... {len(keys) - max_buckets} more", "", "", "")
                console.print(t)
        return cap.get()
