"""Each decision of the router against an oracle written here: UCB1's scores, the ``explored``
flags, Thompson's propensity P(arm wins) (estimated with Python's ``random.betavariate``, not
numpy), and the ``step`` a round's decisions are made at (iterations in flight)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from routergen.router import PROPENSITY_DRAWS, BanditState, Router
from routergen.spec import RouterConfig

ARMS = ["a", "b", "c"]


def _state(pulls, sums, step=None, extra=None):
    return BanditState(list(ARMS), list(pulls), [float(s) for s in sums], sum(pulls) if step is None else step, extra or {})


def _random_states(n, seed):
    rng = random.Random(seed)
    for _ in range(n):
        pulls = [rng.randint(1, 30) for _ in ARMS]
        sums = [round(rng.random() * p, 3) for p in pulls]
        yield pulls, sums


def test_ucb1_picks_the_best_upper_bound_and_flags_exploration():
    for c in (0.5, 2.0):
        cfg = RouterConfig(policy="ucb1", ucb_c=c)
        for pulls, sums in _random_states(300, 1):
            t = sum(pulls)
            means = [s / n for s, n in zip(sums, pulls)]
            scores = [m + math.sqrt(c * math.log(t) / n) for m, n in zip(means, pulls)]
            best = max(range(3), key=lambda i: (scores[i], -i))
            d = Router(ARMS, cfg, 0, _state(pulls, sums)).choose()
            assert d.arm == best, (pulls, sums)
            assert d.explored is (best != max(range(3), key=lambda i: (means[i], -i)))
            assert d.propensity == 1.0


def test_ucb1_pulls_each_arm_once_first_as_exploration():
    d = Router(ARMS, RouterConfig(policy="ucb1"), 0, _state([3, 0, 1], [1, 0, 1])).choose()
    assert (d.arm, d.explored, d.exploration_rate) == (1, True, None)


def test_linucb_flags_exploration_when_the_bonus_decides():
    cfg = RouterConfig(policy="linucb", linucb_alpha=1.0)
    # arm a: well known, high estimate; arm b: one pull, lower estimate but a wide bound.
    extra = {"A": [[[51.0]], [[2.0]], [[51.0]]], "b": [[30.0], [0.9], [5.0]]}
    d = Router(ARMS, cfg, 0, _state([50, 1, 50], [30, 0.9, 5], extra=extra)).choose()
    # estimates 30/51=0.588, 0.45, 0.098; bounds +0.14, +0.71, +0.14
    assert (d.arm, d.explored) == (1, True)
    extra["A"][1], extra["b"][1] = [[20.0]], [2.0]  # b better known now: 0.1 + 0.22 < 0.59 + 0.14
    d = Router(ARMS, cfg, 0, _state([50, 19, 50], [30, 2, 5], extra=extra)).choose()
    assert (d.arm, d.explored) == (0, False)


def _p_wins(alpha, beta, arm, draws=40_000, seed=7):
    rng = random.Random(seed)
    wins = 0
    for _ in range(draws):
        x = [rng.betavariate(a, b) for a, b in zip(alpha, beta)]
        wins += max(range(len(x)), key=x.__getitem__) == arm
    return wins / draws


@pytest.mark.parametrize(("pulls", "sums"), [([10, 12, 9], [5, 7, 4]), ([4, 4, 30], [2, 3, 20]), ([2, 1, 1], [1, 0, 1])])
def test_thompson_propensity_is_the_posterior_probability_of_winning(pulls, sums):
    router = Router(ARMS, RouterConfig(policy="thompson"), 11, _state(pulls, sums))
    d = router.choose()
    alpha = [1 + s for s in sums]
    beta = [1 + n - s for n, s in zip(pulls, sums)]
    assert 0.0 < d.propensity <= 1.0
    assert d.propensity == pytest.approx(_p_wins(alpha, beta, d.arm), abs=0.05)
    # (wins + 1) / (draws + 1): the decision's own draw counts as one of the draws.
    assert round(d.propensity * (PROPENSITY_DRAWS + 1)) == pytest.approx(d.propensity * (PROPENSITY_DRAWS + 1), abs=1e-6)
    means = [a / (a + b) for a, b in zip(alpha, beta)]
    assert d.explored is (d.arm != means.index(max(means)))
    assert router.choose() == d  # seeded by (seed, step): the same decision again


def test_thompson_propensity_of_a_sure_winner_is_one_and_never_above():
    d = Router(ARMS, RouterConfig(policy="thompson"), 0, _state([500, 500, 500], [495, 5, 5])).choose()
    assert d.arm == 0 and d.propensity == 1.0 and not d.explored


def test_thompson_propensity_draws_depend_on_the_seed():
    st = _state([10, 10, 10], [7, 5, 5])
    ds = [Router(ARMS, RouterConfig(policy="thompson"), seed, st).choose() for seed in range(12)]
    ps = {d.propensity for d in ds if d.arm == 0}  # the same arm, estimated from each seed's own draws
    assert len(ps) > 1


def test_thompson_explored_when_the_draw_beats_the_posterior_mean():
    seen = set()
    for step in range(200):
        d = Router(ARMS, RouterConfig(policy="thompson"), 3, _state([8, 8, 8], [5, 4, 3], step=step)).choose()
        seen.add((d.arm == 0, d.explored))
    assert seen == {(True, False), (False, True)}


@pytest.mark.parametrize("policy", ["epsilon_greedy", "thompson", "thompson_window", "thompson_discounted"])
def test_a_decision_at_step_s_is_the_one_a_state_at_step_s_makes(policy):
    cfg = RouterConfig(policy=policy, decay=0.8)
    pulls, sums = [5, 5, 5], [2, 3, 1]
    for s in range(12, 20):
        at_round_start = Router(ARMS, cfg, 5, _state(pulls, sums, step=12)).choose(step=s)
        moved = Router(ARMS, cfg, 5, _state(pulls, sums, step=s)).choose()
        assert at_round_start == moved
    default = Router(ARMS, cfg, 5, _state(pulls, sums, step=12))
    assert default.choose() == default.choose(step=12)
    if policy == "epsilon_greedy":
        assert default.choose(step=15).exploration_rate == pytest.approx(max(0.05, 0.8**15))
    decisions = {Router(ARMS, cfg, 5, _state(pulls, sums, step=12)).choose(step=s) for s in range(12, 60)}
    assert len(decisions) > 1  # the steps of a round draw different numbers


def test_epsilon_greedy_context_is_ignored_and_linucb_defaults_to_a_constant_feature():
    st = _state([4, 4, 4], [1, 2, 3])
    r = Router(ARMS, RouterConfig(policy="linucb"), 0, st)
    assert r.choose() == r.choose([1.0])
    np.testing.assert_equal(
        Router(ARMS, RouterConfig(policy="epsilon_greedy"), 0, st).choose([1.0, 0.5, 0.25]),
        Router(ARMS, RouterConfig(policy="epsilon_greedy"), 0, st).choose(),
    )


def test_decisions_depend_on_the_run_seed():
    st = _state([3, 3, 3], [1, 2, 3], step=0)
    cfg = RouterConfig(policy="epsilon_greedy", epsilon=1.0, decay=1.0, min_epsilon=1.0)  # always a random arm
    arms = [Router(ARMS, cfg, seed, st).choose().arm for seed in range(12)]
    assert len(set(arms)) > 1
    assert arms == [Router(ARMS, cfg, seed, st).choose().arm for seed in range(12)]
