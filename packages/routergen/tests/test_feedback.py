import math

from routergen.feedback import LocalFeedbackState, compute_reward
from routergen.quality import BatchMetrics
from routergen.spec import RouterConfig


def metrics(generated, accepted, quality, scores=None):
    return BatchMetrics(generated, accepted, {}, {}, {}, scores or {}, quality, False)


def test_reward_is_pass_rate_times_judge_score_as_in_the_seed():
    # The seed's example: 8/10 pass x judge score 0.8 = 0.64, whatever the other batch scores.
    m = metrics(10, 8, 0.9, {"judge": 0.8, "distinct_n": 1.0})
    assert compute_reward(m, 0.0, RouterConfig()) == 0.64
    assert compute_reward(metrics(10, 8, 0.5, {"judge": 0.5, "dispersion": 0.5}), 0.0, RouterConfig()) == 0.4
    assert compute_reward(metrics(0, 0, 0.0), 0.0, RouterConfig()) == 0.0
    assert compute_reward(metrics(10, 0, 0.0, {}), 0.0, RouterConfig()) == 0.0


def test_reward_without_a_judge_is_the_pass_rate():
    # No judge configured (or offline): the judge factor is 1, other batch scores do not enter.
    assert compute_reward(metrics(10, 7, 0.3, {"distinct_n": 0.3}), 0.0, RouterConfig()) == 0.7


def test_other_reward_formulas_are_named_explicitly():
    m = metrics(10, 8, 0.75, {"judge": 0.5, "distinct_n": 1.0})
    assert compute_reward(m, 0.0, RouterConfig(reward="pass_rate_x_mean")) == 0.6
    assert compute_reward(m, 0.0, RouterConfig(reward="pass_rate")) == 0.8
    assert compute_reward(m, 0.0, RouterConfig(reward="pass_rate_x_judge")) == 0.4


def test_cost_aware_reward_penalises_cost_per_sample():
    cfg = RouterConfig(cost_aware=True, cost_scale_usd=0.001)
    free = compute_reward(metrics(10, 10, 1.0), 0.0, cfg)
    paid = compute_reward(metrics(10, 10, 1.0), 0.01, cfg)  # 0.001 USD per sample
    assert free == 1.0 and math.isclose(paid, math.exp(-1), abs_tol=1e-6)
    assert compute_reward(metrics(10, 10, 1.0), 0.01, RouterConfig()) == 1.0


def test_running_means():
    fb = LocalFeedbackState()
    fb.add("a", 0, 1.0)
    fb.add("b", 1, 0.5)
    fb.add("a", 2, 0.0)
    rm = fb.running_means(["a", "b"], 3)
    assert rm["a"] == [1.0, 1.0, 0.5]
    assert math.isnan(rm["b"][0]) and rm["b"][1:] == [0.5, 0.5]
