"""Feedback: the reward of a batch and the per-arm record the router learns from.

The seed's formula (``router.reward: pass_rate_x_judge``, the default):
``reward = pass_rate * judge_score`` (8/10 accepted and a judge score of 0.8 give 0.64),
where the judge score is the batch ``judge`` validator's; without a judge (none configured,
or ``--offline``) the factor is 1 and the reward is the pass rate.  Other formulas are named
explicitly: ``pass_rate_x_mean`` (pass rate x the mean of every batch score: distinct-n,
dispersion, judge) and ``pass_rate``.  Every batch score is reported either way.

With ``router.cost_aware`` the reward is further multiplied by
``exp(-cost_per_sample / cost_scale_usd)``, so a dearer arm must earn its price (a
procedural arm costs nothing and keeps its full reward).  The cost is the priced token
usage of the batch's requests, cached or not, so a re-run rewards exactly as the first run.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

from .quality import BatchMetrics
from .spec import RouterConfig


def quality_factor(metrics: BatchMetrics, formula: str) -> float:
    """The factor the pass rate is multiplied by under ``formula``."""
    if formula == "pass_rate":
        return 1.0
    if formula == "pass_rate_x_mean":
        return metrics.quality
    if formula == "pass_rate_x_judge":
        return float(metrics.batch_scores.get("judge", 1.0))
    raise ValueError(f"unknown reward formula {formula!r}")


def compute_reward(metrics: BatchMetrics, cost_usd: float, config: RouterConfig) -> float:
    """Reward in [0, 1] of one batch (formula ``config.reward``, times the cost factor)."""
    r = metrics.pass_rate * quality_factor(metrics, config.reward)
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
