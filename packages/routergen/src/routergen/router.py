"""The router: multi-armed bandits that pick which generator arm makes the next batch.

Policies (all seeded and deterministic; each decision draws from a generator seeded by
``(seed, step)`` alone, so the state needs no RNG and a resumed run decides exactly as an
uninterrupted one):

* ``epsilon_greedy``: explore with probability ``epsilon_t``, else the arm with the best
  mean reward; ``epsilon_t`` decays per :class:`AdaptationPolicy` (the seed's design);
* ``ucb1``: every arm once, then ``mean + sqrt(c * ln t / n)`` (Auer et al. 2002);
* ``thompson``: Beta posterior per arm, rewards in [0, 1] as fractional successes;
* ``thompson_discounted``: the same with pulls and reward sums discounted by ``discount`` per
  step (Raj & Kalyani 2017), so a reward that drifts (the dedup pool fills up) is tracked;
* ``thompson_window``: the same over the last ``window`` rewards only (sliding window);
* ``linucb``: disjoint LinUCB (Li et al. 2010): per arm a ridge regression of the reward on a
  context vector, plus ``linucb_alpha`` times its standard error; the pipeline's context is
  ``[1, progress, progress**2]`` (progress = samples stored / n), along which rewards drift.

The whole state (:class:`BanditState`) is plain JSON, stored in each shard marker's ``extra``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
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
    #: Policy-specific statistics (discounted sums, the reward window, LinUCB's matrices).
    extra: dict[str, Any] = attrs.field(factory=dict)

    @classmethod
    def fresh(cls, arms: Sequence[str]) -> BanditState:
        """A state with no pulls."""
        return cls(list(arms), [0] * len(arms), [0.0] * len(arms), 0)

    def means(self) -> list[float]:
        """Mean reward per arm (0 for arms never pulled)."""
        return [s / n if n else 0.0 for s, n in zip(self.reward_sum, self.pulls)]

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        d = {"arms": list(self.arms), "pulls": list(self.pulls), "reward_sum": list(self.reward_sum), "step": self.step}
        if self.extra:
            d["extra"] = self.extra
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BanditState:
        """Inverse of :meth:`to_dict`."""
        return cls(
            list(d["arms"]),
            [int(x) for x in d["pulls"]],
            [float(x) for x in d["reward_sum"]],
            int(d["step"]),
            dict(d.get("extra") or {}),
        )

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
        # Policy statistics (discounted sums, window, LinUCB matrices) start afresh: they describe
        # the earlier run's drift, not this one's.
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

    def __init__(
        self, arms: Sequence[str], config: RouterConfig = RouterConfig(), seed: int = 0, state: BanditState | None = None
    ) -> None:
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

    def _rng(self, step: int) -> np.random.Generator:
        return np.random.default_rng([self.seed & 0xFFFFFFFFFFFFFFFF, step, 0x726F75746572])

    def _posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """Beta parameters per arm for the Thompson policies."""
        st = self.state
        k = len(st.arms)
        if self.config.policy == "thompson_discounted":
            n = np.asarray(st.extra.get("d_pulls", [0.0] * k), dtype=float)
            r = np.asarray(st.extra.get("d_sums", [0.0] * k), dtype=float)
        elif self.config.policy == "thompson_window":
            n, r = np.zeros(k), np.zeros(k)
            for arm, rew in st.extra.get("window", []):
                n[arm] += 1.0
                r[arm] += rew
        else:
            n = np.asarray(st.pulls, dtype=float)
            r = np.asarray(st.reward_sum, dtype=float)
        return 1.0 + r, np.maximum(1.0 + n - r, 1e-9)

    def _linucb(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per arm: the estimated reward at context ``x`` and its upper bound."""
        st = self.state
        d = len(x)
        est, ucb = [], []
        for i in range(len(st.arms)):
            a_mat = np.asarray(st.extra["A"][i]) if "A" in st.extra else np.eye(d)
            b_vec = np.asarray(st.extra["b"][i]) if "b" in st.extra else np.zeros(d)
            a_inv = np.linalg.inv(a_mat)
            theta = a_inv @ b_vec
            mu = float(theta @ x)
            est.append(mu)
            ucb.append(mu + self.config.linucb_alpha * math.sqrt(max(0.0, float(x @ a_inv @ x))))
        return np.asarray(est), np.asarray(ucb)

    def choose(self, context: Sequence[float] | None = None, *, step: int | None = None) -> Decision:
        """Pick the next arm (does not change the state; :meth:`update` does).

        ``context`` (a feature vector) is used by ``linucb`` only; without one it is ``[1]``,
        which makes LinUCB a plain UCB on the means.  ``step`` is the decision's number (default
        ``state.step``): it seeds the decision's draws and sets epsilon-greedy's rate.  Rounds
        with delayed feedback decide several steps from one state: step ``state.step + j`` for
        the round's ``j``-th iteration, so each draws its own numbers.
        """
        st = self.state
        k = len(st.arms)
        s = st.step if step is None else int(step)
        rng = self._rng(s)
        if self.config.policy == "linucb":
            x = np.asarray(context if context is not None else [1.0], dtype=float)
            est, ucb = self._linucb(x)
            best = int(np.argmax(ucb))
            return Decision(best, None, best != int(np.argmax(est)))
        if self.config.policy == "epsilon_greedy":
            eps = self.adaptation.rate(s)
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
        # thompson and its discounted / windowed variants
        a, b = self._posterior()
        draws = rng.beta(a, b)
        best = int(np.argmax(draws))
        # P(arm wins) under the posterior, from draws of a separate seeded stream (the decision's
        # own draw counts as one of them, so the chosen arm's estimate is never 0).
        mc = np.random.default_rng([self.seed & 0xFFFFFFFFFFFFFFFF, s, 0x70726F70]).beta(a, b, size=(PROPENSITY_DRAWS, k))
        wins = int(np.count_nonzero(np.argmax(mc, axis=1) == best)) + 1
        return Decision(best, None, best != int(np.argmax(a / (a + b))), wins / (PROPENSITY_DRAWS + 1))

    def update(self, arm: int, reward: float, context: Sequence[float] | None = None) -> None:
        """Record ``reward`` (clipped to [0, 1]) for ``arm`` and advance the step
        (``context``: the vector :meth:`choose` was given, for ``linucb``)."""
        r = min(1.0, max(0.0, float(reward)))
        st = self.state
        k = len(st.arms)
        st.pulls[arm] += 1
        st.reward_sum[arm] += r
        st.step += 1
        policy = self.config.policy
        if policy == "thompson_discounted":
            g = self.config.discount
            dn = [g * v for v in st.extra.get("d_pulls", [0.0] * k)]
            ds = [g * v for v in st.extra.get("d_sums", [0.0] * k)]
            dn[arm] += 1.0
            ds[arm] += r
            st.extra["d_pulls"], st.extra["d_sums"] = dn, ds
        elif policy == "thompson_window":
            win = list(st.extra.get("window", [])) + [[arm, r]]
            st.extra["window"] = win[-self.config.window :]
        elif policy == "linucb":
            x = np.asarray(context if context is not None else [1.0], dtype=float)
            d = len(x)
            a_all = st.extra.get("A") or [np.eye(d).tolist() for _ in range(k)]
            b_all = st.extra.get("b") or [[0.0] * d for _ in range(k)]
            a_all[arm] = (np.asarray(a_all[arm]) + np.outer(x, x)).tolist()
            b_all[arm] = (np.asarray(b_all[arm]) + r * x).tolist()
            st.extra["A"], st.extra["b"] = a_all, b_all


def simulate(
    means: Sequence[float] | Callable[[int, Sequence[int]], Sequence[float]],
    pulls: int,
    config: RouterConfig,
    seed: int,
    *,
    noise_seed: int | None = None,
    context: Callable[[int], Sequence[float]] | None = None,
) -> dict[str, Any]:
    """Run a router on a Bernoulli bandit; return choices and (dynamic) regret.

    ``means`` is a list of arm means, or a function ``(t, pulls_per_arm) -> means`` for a
    drifting problem (e.g. a mean that falls as an arm is used, like a filling dedup pool).
    Pull ``j`` of arm ``i`` succeeds when ``u[i, j] < mean``, with ``u`` drawn from a generator
    seeded by ``noise_seed`` (default ``seed``): policies compared on one seed face the same
    noise.  Regret sums, per step, the best mean at that step minus the chosen arm's.
    ``context(t)`` gives LinUCB's features (default ``[1, t / pulls]``).
    """
    fn = means if callable(means) else None
    k = len(fn(0, [0] * _arms_of(fn)) if fn is not None else means)  # type: ignore[arg-type]
    arms = [f"arm{i}" for i in range(k)]
    router = Router(arms, config, seed)
    rng = np.random.default_rng(noise_seed if noise_seed is not None else seed)
    u = rng.random((k, pulls))
    used = [0] * k
    choices = np.empty(pulls, dtype=np.int64)
    regret = 0.0
    ctx = context or (lambda t: [1.0, t / pulls])
    for t in range(pulls):
        m = list(fn(t, used)) if fn is not None else list(means)  # type: ignore[arg-type]
        x = ctx(t)
        d = router.choose(x)
        r = float(u[d.arm, used[d.arm]] < m[d.arm])
        used[d.arm] += 1
        router.update(d.arm, r, x)
        choices[t] = d.arm
        regret += max(m) - m[d.arm]
    return {"choices": choices, "regret": regret, "state": router.state}


def _arms_of(fn: Callable[..., Sequence[float]]) -> int:
    k = getattr(fn, "arms", None)
    if k is None:
        raise ValueError("a means function needs an `arms` attribute (the number of arms)")
    return int(k)
