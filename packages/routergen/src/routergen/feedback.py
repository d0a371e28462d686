"""Feedback: the reward of a batch and the per-arm record the router learns from.

The seed's formula: ``reward = pass_rate * quality_score`` (8/10 accepted and a quality
score of 0.8 give 0.64).  With ``router.cost_aware`` it is further multiplied by
``exp(-cost_per_sample / cost_scale_usd)``, so a dearer arm must earn its price (a
procedural arm costs nothing and keeps its full reward).
"""

from __future__ import annotations

import math
from typing import Any

import attrs

from .quality import BatchMetrics
from .spec import RouterConfig


def compute_reward(metrics: BatchMetrics, cost_usd: float, config: RouterConfig) -> float:
    """Reward in [0, 1] of one batch."""
    r = metrics.pass_rate * metrics.quality
    if config.cost_aware and metrics.generated:
        r *= math.exp(-(cost_usd / metrics.generated) / config.cost_scale_usd)
    return round(min(1.0, max(0.0, r)), 6)


@attrs.define
class LocalFeedbackState:
    """Reward history per arm over the run (what the report charts and lineage records)."""

    arm_rewards: dict[str, list[tuple[int, float]]] = attrs.field(factory=dict)

    def add(self, arm: str, iteration: int, reward: float) -> None:
        """Record ``reward`` of ``arm`` at ``iteration``."""
        self.arm_rewards.setdefault(arm, []).append((iteration, reward))

    def mean(self, arm: str) -> float:
        """Mean reward of ``arm`` so far (0 if never pulled)."""
        rs = self.arm_rewards.get(arm, [])
        return sum(r for _, r in rs) / len(rs) if rs else 0.0

    def running_means(self, arms: list[str], iterations: int) -> dict[str, list[float]]:
        """Per arm, its running mean reward after each iteration (NaN before its first pull)."""
        out: dict[str, list[float]] = {}
        for a in arms:
            by_it = dict(self.arm_rewards.get(a, []))
            total, n, series = 0.0, 0, []
            for it in range(iterations):
                if it in by_it:
                    total += by_it[it]
                    n += 1
                series.append(total / n if n else float("nan"))
            out[a] = series
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {a: [list(x) for x in v] for a, v in self.arm_rewards.items()}
