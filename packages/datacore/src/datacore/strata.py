"""Requested vs delivered: what a generator promised, what it wrote, and the verdict.

A generator declares its targets as strata (``targets(n) -> list[Target]``): a stratum name
such as ``"class=R,length=5"`` or ``"subtype=overrun"``, the share of the run's records it
should hold and a tolerance on that share.  While it makes a shard it counts every record
into the ``"strata"`` histogram of the shard's telemetry, one bucket per stratum the record
belongs to (a record may belong to several strata of different dimensions).

At the end of a run :func:`check_delivery` compares the merged counts with the targets, and
the total with ``-n``.  A miss is an error (:class:`ShortfallError`, naming the worst
stratum) unless the user allowed a shortfall; the table is then kept in the manifest
(``delivery``) and shown in the report.  Nothing is ever silently short.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .errors import DatacoreError

STRATA = "strata"
"""Name of the telemetry histogram that counts delivered records per stratum."""


class ShortfallError(DatacoreError):
    """A run delivered less (or other) than was asked: a stratum out of tolerance or ``-n`` missed."""


def _share(_inst: Any, attr: attrs.Attribute, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 <= value <= 1:
        raise DatacoreError(f"Target.{attr.name} must be a number in [0, 1], got {value!r}")


@attrs.frozen
class Target:
    """One requested stratum: its name, its share of the run's records and the allowed deviation.

    ``tolerance`` is absolute on the share: 0.02 accepts 8%-12% for a 10% target.
    """

    stratum: str = attrs.field(validator=attrs.validators.instance_of(str))
    share: float = attrs.field(validator=_share)
    tolerance: float = attrs.field(default=0.02, validator=_share)


@attrs.frozen
class Delivery:
    """The verdict of a run: requested vs delivered per stratum, and for ``-n``."""

    requested: int
    delivered: int
    rows: tuple[dict[str, Any], ...]
    allowed: bool = False

    @property
    def ok(self) -> bool:
        """True when ``-n`` was met exactly and every stratum is within its tolerance."""
        return self.requested == self.delivered and all(r["ok"] for r in self.rows)

    def worst(self) -> str | None:
        """One line naming the worst miss (``-n`` first), or None when all is delivered."""
        if self.requested != self.delivered:
            return f"-n asked {self.requested:,} records, delivered {self.delivered:,}"
        bad = [r for r in self.rows if not r["ok"]]
        if not bad:
            return None
        r = max(bad, key=lambda r: abs(r["delivered_share"] - r["share"]) - r["tolerance"])
        return (
            f"stratum {r['stratum']}: asked {r['share']:.1%} ({r['requested']:,} records), "
            f"got {r['delivered_share']:.1%} ({r['delivered']:,}), tolerance {r['tolerance']:.1%}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as stored in ``dataset.json`` under ``delivery``."""
        return {
            "requested": self.requested,
            "delivered": self.delivered,
            "ok": self.ok,
            "shortfall_allowed": self.allowed,
            "strata": list(self.rows),
        }


def check_delivery(
    n: int, delivered: int, targets: Sequence[Target], counts: Mapping[str, int], *, allow_shortfall: bool = False
) -> Delivery:
    """Compare delivered ``counts`` per stratum (and the total) with ``targets`` and ``n``.

    Raises :class:`ShortfallError` with one line naming the worst miss unless
    ``allow_shortfall``; then the returned :class:`Delivery` records the misses.
    """
    seen: set[str] = set()
    rows = []
    for t in targets:
        if t.stratum in seen:
            raise DatacoreError(f"generator declared stratum {t.stratum!r} twice")
        seen.add(t.stratum)
        got = int(counts.get(t.stratum, 0))
        got_share = got / delivered if delivered else 0.0
        # Compared in integers of the run where possible: a share is met when the count lies
        # within the tolerance band around the requested count (rounding cannot flip it).
        ok = abs(got_share - t.share) <= t.tolerance + 1e-12
        rows.append(
            {
                "stratum": t.stratum,
                "share": t.share,
                "tolerance": t.tolerance,
                "requested": round(t.share * n),
                "delivered": got,
                "delivered_share": got_share,
                "ok": ok,
            }
        )
    result = Delivery(n, delivered, tuple(rows), allow_shortfall)
    worst = result.worst()
    if worst is not None and not allow_shortfall:
        raise ShortfallError(f"requested != delivered: {worst} (pass --allow-shortfall to keep such a dataset)")
    return result


def targets_of(generator: object, n: int) -> list[Target]:
    """The generator's declared targets for a run of ``n`` records (none if it declares none)."""
    fn = getattr(generator, "targets", None)
    if not callable(fn):
        return []
    out = list(fn(n))
    for t in out:
        if not isinstance(t, Target):
            raise TypeError(f"{type(generator).__name__}.targets() must return Target objects, got {t!r}")
    return out
