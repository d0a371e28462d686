"""The datacore contract v2 names fsmdata uses, with stand-ins while datacore lacks them.

``datacore.Target`` / ``datacore.STRATA`` are being added to datacore in parallel; until
they are importable this module defines look-alikes with the same fields, so
``FsmGenerator.targets(n)`` and the ``"strata"`` histogram already follow the contract.
"""

from __future__ import annotations

import attrs

try:  # pragma: no cover - depends on the datacore version installed
    from datacore import STRATA, Target
except ImportError:  # pragma: no cover
    STRATA = "strata"

    @attrs.frozen
    class Target:  # type: ignore[no-redef]
        """A requested stratum: its share of the run's records and the allowed deviation."""

        stratum: str
        share: float
        tolerance: float = 0.02


__all__ = ["STRATA", "Target"]
