"""Bandits for drifting rewards: routergen's policies side by side with mabwiser's.

Synthetic Bernoulli problems (rewards 0/1), every policy facing the same noise per seed
(routergen.router.simulate's convention: pull j of arm i succeeds when u[i, j] < mean):

* ``stationary``: means 0.45 / 0.50 / 0.55 (close arms: a decaying epsilon-greedy can lock on a
  wrong one);
* ``switch``: 0.7 / 0.5 / 0.3 until half-way, then 0.3 / 0.5 / 0.7;
* ``pool``: each arm's mean falls as it is used, like a dedup pool filling up:
  ``m_i * exp(-pulls_i / tau_i)`` with m = 0.62 / 0.55 / 0.50, tau = 150 / 600 / 3000 pulls;
* ``linear``: 0.8 - 0.6 t/T, 0.5, 0.2 + 0.6 t/T (a drift along LinUCB's context [1, t/T]).

Reported per policy: dynamic regret (sum over steps of the best mean minus the chosen arm's,
mean and sd over seeds) and, on ``stationary``, on how many seeds the best arm got under half
of the last 20% of pulls ("locked on a wrong arm").

    python packages/routergen/bench/bandits.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np
from routergen.router import simulate
from routergen.spec import RouterConfig


class Means:
    def __init__(self, arms, fn):
        self.arms = arms
        self.fn = fn

    def __call__(self, t, used):
        return self.fn(t, used)


def problems(T):
    return {
        "stationary": Means(3, lambda t, u: [0.45, 0.50, 0.55]),
        "switch": Means(3, lambda t, u: [0.7, 0.5, 0.3] if t < T // 2 else [0.3, 0.5, 0.7]),
        "pool": Means(
            3, lambda t, u: [0.62 * math.exp(-u[0] / 150), 0.55 * math.exp(-u[1] / 600), 0.50 * math.exp(-u[2] / 3000)]
        ),
        "linear": Means(3, lambda t, u: [0.8 - 0.6 * t / T, 0.5, 0.2 + 0.6 * t / T]),
    }


OURS = {
    "eps-greedy decaying (routergen default 1.0 x 0.9^t, floor 0.05)": RouterConfig(),
    "eps-greedy decaying slow (1.0 x 0.995^t, floor 0.01)": RouterConfig(decay=0.995, min_epsilon=0.01),
    "UCB1": RouterConfig(policy="ucb1"),
    "Thompson": RouterConfig(policy="thompson"),
    "Thompson discounted (0.98)": RouterConfig(policy="thompson_discounted", discount=0.98),
    "Thompson sliding window (100)": RouterConfig(policy="thompson_window", window=100),
    "LinUCB (context [1, t/T], alpha 0.5)": RouterConfig(policy="linucb", linucb_alpha=0.5),
}


def run_mabwiser(name, means, T, seed):
    from mabwiser.mab import MAB, LearningPolicy

    lp = {
        "mabwiser EpsilonGreedy(0.1)": LearningPolicy.EpsilonGreedy(epsilon=0.1),
        "mabwiser ThompsonSampling": LearningPolicy.ThompsonSampling(),
        "mabwiser LinUCB(alpha 0.5, context [1, t/T])": LearningPolicy.LinUCB(alpha=0.5),
    }[name]
    contextual = "LinUCB" in name
    k = means.arms
    mab = MAB(arms=list(range(k)), learning_policy=lp, seed=seed)
    u = np.random.default_rng(seed).random((k, T))
    used = [0] * k
    regret = 0.0
    choices = []
    for t in range(T):
        m = means(t, used)
        ctx = [[1.0, t / T]]
        if t < k:
            arm = t
        else:
            arm = int(mab.predict(ctx) if contextual else mab.predict())
        r = float(u[arm, used[arm]] < m[arm])
        used[arm] += 1
        regret += max(m) - m[arm]
        choices.append(arm)
        if t == k - 1:
            if contextual:
                mab.fit(
                    choices, [float(u[i, 0] < means(i, [0] * k)[i]) for i in range(k)], contexts=[[1.0, i / T] for i in range(k)]
                )
            else:
                mab.fit(choices, [float(u[i, 0] < means(i, [0] * k)[i]) for i in range(k)])
        elif t >= k:
            if contextual:
                mab.partial_fit([arm], [r], contexts=ctx)
            else:
                mab.partial_fit([arm], [r])
    return regret, np.asarray(choices)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-mabwiser", action="store_true")
    a = ap.parse_args()
    T, seeds = (600, 6) if a.quick else (1500, 8)
    try:
        import mabwiser  # noqa: F401

        mw = not a.no_mabwiser
    except ImportError:
        mw = False
    names = list(OURS) + (
        ["mabwiser EpsilonGreedy(0.1)", "mabwiser ThompsonSampling", "mabwiser LinUCB(alpha 0.5, context [1, t/T])"] if mw else []
    )
    out: dict = {"T": T, "seeds": seeds, "problems": {}}
    t0 = time.perf_counter()
    for pname, means in problems(T).items():
        rows = {}
        for name in names:
            regrets, locked = [], 0
            for seed in range(seeds):
                if name in OURS:
                    res = simulate(means, T, OURS[name], seed, context=lambda t: [1.0, t / T])
                    reg, ch = res["regret"], res["choices"]
                else:
                    reg, ch = run_mabwiser(name, means, T, seed)
                regrets.append(reg)
                if pname == "stationary" and (ch[-T // 5 :] == 2).mean() < 0.5:
                    locked += 1
            rows[name] = {
                "regret_mean": float(np.mean(regrets)),
                "regret_sd": float(np.std(regrets)),
                "locked_wrong": locked if pname == "stationary" else None,
            }
        out["problems"][pname] = rows
        print(
            f"\n## {pname} (T={T}, {seeds} seeds)\n\n| policy | regret mean | sd |"
            + (" seeds locked on a wrong arm |" if pname == "stationary" else "")
        )
        print("|---|---:|---:|" + ("---:|" if pname == "stationary" else ""))
        for name, r in rows.items():
            extra = f" {r['locked_wrong']}/{seeds} |" if pname == "stationary" else ""
            print(f"| {name} | {r['regret_mean']:.1f} | {r['regret_sd']:.1f} |{extra}")
        sys.stdout.flush()
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print(f"\n{out['seconds']} s")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
