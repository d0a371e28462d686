import math

from routergen.feedback import LocalFeedbackState, compute_reward
from routergen.quality import BatchMetrics
from routergen.spec import RouterConfig


def metrics(generated, accepted, quality):
    return BatchMetrics(generated, accepted, {}, {}, {}, {}, quality, False)


def test_reward_is_pass_rate_times_quality_as_in_the_seed():
    assert compute_reward(metrics(10, 8, 0.8), 0.0, RouterConfig()) == 0.64
    assert compute_reward(metrics(0, 0, 0.0), 0.0, RouterConfig()) == 0.0


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
