"""The router: multi-armed bandits that pick which generator arm makes the next batch.

Policies (all seeded and deterministic; each decision draws from a generator seeded by
``(seed, step)`` alone, so the state needs no RNG and a resumed run decides exactly as an
uninterrupted one):

* ``epsilon_greedy``: explore with probability ``epsilon_t``, else the arm with the best
  mean reward; ``epsilon_t`` decays per :class:`AdaptationPolicy` (the seed's design);
* ``ucb1``: every arm once, then ``mean + sqrt(c * ln t / n)`` (Auer et al. 2002);
* ``thompson``: Beta posterior per arm, rewards in [0, 1] as fractional successes.

The whole state (:class:`BanditState`) is plain JSON, stored in each shard marker's ``extra``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from .spec import POLICIES, RouterConfig


@attrs.frozen
class AdaptationPolicy:
    """Exploration schedule: ``epsilon_t = max(min_epsilon, epsilon * decay**t)``."""

    epsilon: float = 1.0
    decay: float = 0.9
    min_epsilon: float = 0.05

    def rate(self, step: int) -> float:
        """Exploration rate at decision ``step`` (0-based)."""
        return max(self.min_epsilon, self.epsilon * self.decay**step)


@attrs.define
class BanditState:
    """Per-arm pulls and reward sums, plus the decision count; JSON round-trips exactly."""

    arms: list[str]
    pulls: list[int]
    reward_sum: list[float]
    step: int = 0

    @classmethod
    def fresh(cls, arms: Sequence[str]) -> BanditState:
        """A state with no pulls."""
        return cls(list(arms), [0] * len(arms), [0.0] * len(arms), 0)

    def means(self) -> list[float]:
        """Mean reward per arm (0 for arms never pulled)."""
        return [s / n if n else 0.0 for s, n in zip(self.reward_sum, self.pulls)]

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"arms": list(self.arms), "pulls": list(self.pulls), "reward_sum": list(self.reward_sum), "step": self.step}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BanditState:
        """Inverse of :meth:`to_dict`."""
        return cls(list(d["arms"]), [int(x) for x in d["pulls"]], [float(x) for x in d["reward_sum"]], int(d["step"]))

    def warm_started(self, earlier: BanditState) -> BanditState:
        """This (fresh) state with the pulls and reward sums of ``earlier`` for the arms both
        have (matched by name); the step continues from ``earlier``'s, so a decaying exploration
        rate does not start over."""
        pulls, sums = list(self.pulls), list(self.reward_sum)
        for j, name in enumerate(earlier.arms):
            if name in self.arms:
                i = self.arms.index(name)
                pulls[i] += earlier.pulls[j]
                sums[i] += earlier.reward_sum[j]
        return BanditState(list(self.arms), pulls, sums, self.step + earlier.step)


@attrs.frozen
class Decision:
    """What the router chose: the arm index, the exploration rate in force, and the
    propensity: the probability the policy gave the chosen arm at this step (1 for UCB1,
    ``eps/k + (1-eps)[greedy]`` for epsilon-greedy, a seeded Monte-Carlo estimate for
    Thompson), which off-policy evaluation of a logged run needs."""

    arm: int
    exploration_rate: float | None
    explored: bool
    propensity: float = 1.0

#: Posterior draws behind a Thompson decision's propensity estimate.
PROPENSITY_DRAWS = 2000


class Router:
    """Chooses arms with the configured policy and learns from rewards."""

    def __init__(self, arms: Sequence[str], config: RouterConfig = RouterConfig(), seed: int = 0,
                 state: BanditState | None = None) -> None:
        if config.policy not in POLICIES:
            raise ValueError(f"policy={config.policy!r}: must be one of {', '.join(POLICIES)}")
        if not arms:
            raise ValueError("a router needs at least one arm")
        self.config = config
        self.seed = int(seed)
        self.adaptation = AdaptationPolicy(config.epsilon, config.decay, config.min_epsilon)
        self.state = state if state is not None else BanditState.fresh(arms)
        if list(self.state.arms) != list(arms):
            raise ValueError(f"saved bandit state has arms {self.state.arms}, the run has {list(arms)}")

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng([self.seed & 0xFFFFFFFFFFFFFFFF, self.state.step, 0x726F75746572])

    def choose(self) -> Decision:
        """Pick the next arm (does not change the state; :meth:`update` does)."""
        st = self.state
        k = len(st.arms)
        rng = self._rng()
        if self.config.policy == "epsilon_greedy":
            eps = self.adaptation.rate(st.step)
            # Unpulled arms first (optimistic), then the best mean; ties to the lowest index.
            unpulled = [i for i in range(k) if st.pulls[i] == 0]
            greedy = unpulled[0] if unpulled else int(np.argmax(st.means()))
            if rng.random() < eps:
                arm = int(rng.integers(k))
                explored = True
            else:
                arm, explored = greedy, False
            return Decision(arm, eps, explored, eps / k + (1.0 - eps) * (arm == greedy))
        if self.config.policy == "ucb1":
            for i in range(k):
                if st.pulls[i] == 0:
                    return Decision(i, None, True)
            t = sum(st.pulls)
            means = st.means()
            scores = [means[i] + math.sqrt(self.config.ucb_c * math.log(t) / st.pulls[i]) for i in range(k)]
            best = int(np.argmax(scores))
            return Decision(best, None, best != int(np.argmax(means)))
        # thompson
        a = 1.0 + np.asarray(st.reward_sum)
        b = np.maximum(1.0 + np.asarray(st.pulls, dtype=float) - np.asarray(st.reward_sum), 1e-9)
        draws = rng.beta(a, b)
        best = int(np.argmax(draws))
        # P(arm wins) under the posterior, from draws of a separate seeded stream (the decision's
        # own draw counts as one of them, so the chosen arm's estimate is never 0).
        mc = np.random.default_rng([self.seed & 0xFFFFFFFFFFFFFFFF, st.step, 0x70726F70]).beta(
            a, b, size=(PROPENSITY_DRAWS, k)
        )
        wins = int(np.count_nonzero(np.argmax(mc, axis=1) == best)) + 1
        return Decision(best, None, best != int(np.argmax(st.means())), wins / (PROPENSITY_DRAWS + 1))

    def update(self, arm: int, reward: float) -> None:
        """Record ``reward`` (clipped to [0, 1]) for ``arm`` and advance the step."""
        r = min(1.0, max(0.0, float(reward)))
        self.state.pulls[arm] += 1
        self.state.reward_sum[arm] += r
        self.state.step += 1


def simulate(
    means: Sequence[float], pulls: int, config: RouterConfig, seed: int, *, noise_seed: int | None = None
) -> dict[str, Any]:
    """Run a router on a Bernoulli bandit with the given arm means; return choices and regret.

    Rewards are drawn from a generator seeded by ``noise_seed`` (default ``seed``), so
    policies compared on the same seed face the same reward stream per arm.
    """
    arms = [f"arm{i}" for i in range(len(means))]
    router = Router(arms, config, seed)
    rng = np.random.default_rng(noise_seed if noise_seed is not None else seed)
    # Pre-draw each arm's reward sequence: pull j of arm i always gives table[i, j].
    table = (rng.random((len(means), pulls)) < np.asarray(means)[:, None]).astype(float)
    used = [0] * len(means)
    choices = np.empty(pulls, dtype=np.int64)
    best = max(means)
    regret = 0.0
    for t in range(pulls):
        d = router.choose()
        r = table[d.arm, used[d.arm]]
        used[d.arm] += 1
        router.update(d.arm, r)
        choices[t] = d.arm
        regret += best - means[d.arm]
    return {"choices": choices, "regret": regret, "state": router.state}
