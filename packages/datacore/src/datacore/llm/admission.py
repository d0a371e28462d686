"""Adaptive admission control: how many requests may be in flight at once.

An AIMD limiter in the spirit of TCP congestion control.  The limit starts at ``max_limit``.
When the server pushes back (429 rate limit or 529 overloaded) the limit is multiplied by
``decrease`` (0.75) and a cool-down of ``cooldown_s`` starts, during which it does not shrink
again: the requests already in flight were admitted under the old limit, so their 429s are
echoes of the same overload, not new evidence.  Every run of ``growth_after`` successes since the
last change (default: the current limit, i.e. about one round trip's worth) adds 1, up to
``max_limit``.  So growth is about +1 per request latency and shrinking at most 25% per
cool-down: with real model latencies (seconds) sustained 429s win and the limit settles low;
with sparse, random 429s it stays near the top.  The limiter lives on one event loop;
``clock`` is injectable for tests.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

from .types import LLMConfigError

__all__ = ["AdaptiveLimiter"]


class AdaptiveLimiter:
    """Bounds in-flight requests and adapts the bound to 429/529 push-back."""

    def __init__(
        self,
        max_limit: int,
        *,
        min_limit: int = 1,
        decrease: float = 0.75,
        cooldown_s: float = 1.0,
        growth_after: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(max_limit, bool) or not isinstance(max_limit, int) or max_limit < 1:
            raise LLMConfigError(f"max_in_flight: expected an integer >= 1, got {max_limit!r}")
        if not 1 <= min_limit <= max_limit:
            raise LLMConfigError(f"min_in_flight: expected an integer in [1, max_in_flight={max_limit}], got {min_limit!r}")
        if not 0.0 < decrease < 1.0:
            raise LLMConfigError(f"decrease: expected a factor in (0, 1), got {decrease!r}")
        if cooldown_s < 0:
            raise LLMConfigError(f"cooldown_s: expected a number >= 0, got {cooldown_s!r}")
        if growth_after is not None and growth_after < 1:
            raise LLMConfigError(f"growth_after: expected None or an integer >= 1, got {growth_after!r}")
        self.max_limit = max_limit
        self.min_limit = min_limit
        self.decrease = decrease
        self.cooldown_s = cooldown_s
        self.growth_after = growth_after
        self._clock = clock
        self._limit = float(max_limit)
        self.in_flight = 0
        self.peak_in_flight = 0
        self._cooldown_until = -math.inf
        self._successes = 0
        self.decreases = 0
        self.increases = 0
        self.min_seen = max_limit
        self._cond: asyncio.Condition | None = None

    @property
    def limit(self) -> int:
        """The current in-flight bound (an integer >= min_limit)."""
        return max(self.min_limit, int(self._limit))

    def _condition(self) -> asyncio.Condition:
        # Created lazily so the limiter binds to the loop that first uses it.
        if self._cond is None:
            self._cond = asyncio.Condition()
        return self._cond

    async def acquire(self) -> None:
        """Wait for a free slot, then take it."""
        cond = self._condition()
        async with cond:
            await cond.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    async def release(self) -> None:
        """Give a slot back (call exactly once per :meth:`acquire`)."""
        cond = self._condition()
        async with cond:
            self.in_flight -= 1
            cond.notify_all()

    def on_success(self) -> None:
        """Record a success; may grow the limit by 1."""
        if self._limit >= self.max_limit:
            return
        self._successes += 1
        need = self.growth_after or self.limit
        if self._successes >= need:
            self._successes = 0
            self._limit = min(float(self.max_limit), math.floor(self._limit) + 1.0)
            self.increases += 1

    def on_throttle(self) -> bool:
        """Record a 429/529; shrinks the limit unless in cool-down.  True when it shrank."""
        now = self._clock()
        if now < self._cooldown_until:
            return False
        before = self.limit
        self._limit = max(float(self.min_limit), self._limit * self.decrease)
        self._cooldown_until = now + self.cooldown_s
        self._successes = 0
        if self.limit == before:
            return False  # already at min_limit: nothing shrank
        self.decreases += 1
        self.min_seen = min(self.min_seen, self.limit)
        return True
