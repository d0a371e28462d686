"""Counters and histograms that merge shard by shard.

A :class:`Telemetry` holds named counters (numbers) and named histograms (string bucket
-> count).  ``merge`` adds them key by key, so merging is associative and commutative and
the merged telemetry of a run does not depend on how shards were spread over workers.

Float counters are summed exactly: float addition is not associative ((0.1+0.2)+0.3 !=
0.1+(0.2+0.3)), so a counter that receives a float keeps its exact sum as an integer part and
Shewchuk partials (non-overlapping floats whose sum is exact, as :func:`math.fsum` keeps them),
serialized under ``"exact"``; the value shown is ``int + math.fsum(partials)``, a function of the
exact sum alone, so no order or grouping of merges can change a figure.
Histogram bucket keys are strings; numeric keys are stringified and sorted numerically
when displayed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from numbers import Integral
from typing import Any

import orjson


def _json_number(v: float) -> float | None:
    """A counter value as JSON can hold it (non-finite sums are kept exactly under "exact")."""
    return v if isinstance(v, Integral) or math.isfinite(v) else None


def _sort_key(k: str) -> tuple[int, float, str]:
    try:
        return (0, float(k), "")
    except ValueError:
        return (1, 0.0, k)


def _grow(partials: list[float], x: float) -> None:
    """Add ``x`` to Shewchuk partials in place (the exact sum of the partials grows by exactly ``x``)."""
    i = 0
    for y in partials:
        if abs(x) < abs(y):
            x, y = y, x
        hi = x + y
        lo = y - (hi - x)
        if lo:
            partials[i] = lo
            i += 1
        x = hi
    partials[i:] = [x] if x else []


class _Exact:
    """An exact sum of ints and floats: an int part, float partials, and non-finite values apart."""

    __slots__ = ("ints", "parts", "special")

    def __init__(self, ints: int = 0, parts: list[float] | None = None, special: float | None = None) -> None:
        self.ints = ints
        self.parts: list[float] = list(parts or [])
        self.special = special  # inf, -inf or nan once one was added (inf + -inf is nan either way)

    def add(self, v: float | int) -> None:
        if isinstance(v, Integral):
            self.ints += int(v)
            return
        v = float(v)
        if not math.isfinite(v):
            self.special = v if self.special is None else self.special + v
            return
        before = list(self.parts)
        _grow(self.parts, v)
        # Float addition overflows to inf without raising: a non-finite partial means the exact sum
        # left the float range, so the counter reads as inf of that sum's sign (as float sums do).
        if not all(math.isfinite(p) for p in self.parts):
            self.parts = before
            exact = sum((Fraction(p) for p in before), Fraction(v))
            inf = math.inf if exact > 0 else -math.inf
            self.special = inf if self.special is None else self.special + inf

    def merge(self, other: _Exact) -> None:
        self.ints += other.ints
        for p in other.parts:
            self.add(p)
        if other.special is not None:
            self.add(other.special)

    def value(self) -> float:
        if self.special is not None:
            return self.special
        return float(self.ints + math.fsum(self.parts)) if self.parts else float(self.ints)

    def canonical_parts(self) -> list[float]:
        """The partials in their one canonical form (partials are not unique; this is):
        the correctly rounded sum, then the correctly rounded rest, and so on."""
        rest = sum((Fraction(p) for p in self.parts), Fraction(0))
        out = []
        while rest:
            f = float(rest)
            out.append(f)
            rest -= Fraction(f)
        return out

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"int": self.ints, "parts": self.canonical_parts()}
        if self.special is not None:
            d["special"] = repr(self.special)  # "inf", "-inf", "nan": JSON has no such numbers
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> _Exact:
        special = d.get("special")
        return cls(int(d.get("int", 0)), [float(p) for p in d.get("parts", [])], float(special) if special is not None else None)

    @classmethod
    def of(cls, v: float | int) -> _Exact:
        e = cls()
        e.add(v)
        return e


class Telemetry:
    """Mergeable run statistics: ``counters[name]`` and ``histograms[name][bucket]``.

    Integer counters stay ints; a counter that receives a float is summed exactly (see the
    module docstring), so merging in any order or grouping gives the same figures.
    """

    def __init__(
        self,
        counters: Mapping[str, float] | None = None,
        histograms: Mapping[str, Mapping[str, int]] | None = None,
        exact: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.counters: dict[str, float] = dict(counters or {})
        self.histograms: dict[str, dict[str, int]] = {k: dict(v) for k, v in (histograms or {}).items()}
        self._exact: dict[str, _Exact] = {}
        for k, v in self.counters.items():
            if not isinstance(v, Integral):
                self._exact[k] = _Exact.of(v)
        for k, d in (exact or {}).items():
            self._exact[k] = _Exact.from_dict(d)
            self.counters[k] = self._exact[k].value()

    def _exact_of(self, name: str) -> _Exact:
        e = self._exact.get(name)
        if e is None:
            e = self._exact[name] = _Exact.of(self.counters.get(name, 0))
        return e

    def count(self, name: str, by: float = 1) -> None:
        """Add ``by`` to counter ``name`` (exactly, also for floats)."""
        if isinstance(by, Integral) and name not in self._exact:
            cur = self.counters.get(name, 0)
            if isinstance(cur, Integral):
                self.counters[name] = cur + int(by)
                return
        e = self._exact_of(name)
        e.add(by)
        self.counters[name] = e.value()

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
            if (
                k in other._exact
                or k in self._exact
                or not isinstance(v, Integral)
                or not isinstance(self.counters.get(k, 0), Integral)
            ):
                e = self._exact_of(k)
                e.merge(other._exact[k] if k in other._exact else _Exact.of(v))
                self.counters[k] = e.value()
            else:
                self.counters[k] = self.counters.get(k, 0) + int(v)
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
        out: dict[str, Any] = {
            "counters": {k: _json_number(self.counters[k]) for k in sorted(self.counters)},
            "histograms": {
                n: {b: self.histograms[n][b] for b in sorted(self.histograms[n], key=_sort_key)} for n in sorted(self.histograms)
            },
        }
        if self._exact:
            out["exact"] = {k: self._exact[k].to_dict() for k in sorted(self._exact)}
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Telemetry:
        """Inverse of :meth:`to_dict` (a dict without ``"exact"``, from datacore 0.1, loads too)."""
        return cls({k: v for k, v in d.get("counters", {}).items() if v is not None}, d.get("histograms", {}), d.get("exact"))

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
