"""0.2 defects of the loop: -n honoured, history.jsonl / bandit_state.json, --warm-start (offline)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from datacore import ConfigMismatchError
from routergen.cli import main
from routergen.pipeline import run_recipe
from routergen.router import BanditState, Router
from routergen.spec import RouterConfig, load_recipe


def test_n_that_the_budget_cannot_reach_is_refused_up_front(tmp_path):
    r = CliRunner().invoke(main, ["run", "product_reviews", "-n", "10000", "--offline", "--out", str(tmp_path / "o")])
    assert r.exit_code == 1, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "asked for 10,000 samples" in lines[0] and "at most 800" in lines[0]
    assert not (tmp_path / "o").exists()


def test_shortfall_fails_the_cli_unless_allowed(tmp_path):
    p = tmp_path / "tiny.yaml"
    p.write_text(
        "name: tiny\ntask: t\nbatch_size: 5\ngrammar:\n  rules:\n    s: ['a {x}']\n  slots:\n    x: [one, two, three]\n"
        "validators: {exact_dedup: {}}\n"
    )
    out = tmp_path / "o"
    r = CliRunner().invoke(main, ["run", str(p), "-n", "50", "--offline", "--out", str(out), "-q"])
    assert r.exit_code == 1 and "asked for 50 samples, made 3" in r.output and "Traceback" not in r.output
    assert not (out / "dataset.json").exists()
    r = CliRunner().invoke(main, ["run", str(p), "-n", "50", "--offline", "--out", str(out), "-q", "--allow-shortfall"])
    assert r.exit_code == 0, r.output
    m = json.loads((out / "dataset.json").read_text())
    assert m["records"] == 3 and m["delivery"]["requested"] == 50 and m["delivery"]["delivered"] == 3


def _history(out):
    return [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]


def test_history_and_bandit_state_are_written(small_recipe_path, tmp_path, all_records):
    r = load_recipe(small_recipe_path)
    res = run_recipe(r, tmp_path / "a", n=100, offline=True, progress=False)
    hist = _history(tmp_path / "a")
    # Lineage agrees with the history: each record's arm and exploration rate are its iteration's.
    for rec in all_records(tmp_path / "a"):
        h = hist[rec["meta"]["iteration"]]
        assert rec["meta"]["arm"] == h["arm"] and rec["meta"]["exploration_rate"] == h["exploration_rate"]
        assert rec["meta"]["exploration_rate"] is not None
    assert [h["iteration"] for h in hist] == list(range(res.iterations))
    for h in hist:
        assert {"arm", "propensity", "pass_rate", "judge", "batch_scores", "reward", "cost_usd", "requests"} <= set(h)
        assert 0 < h["propensity"] <= 1
    state = json.loads((tmp_path / "a" / "bandit_state.json").read_text())
    arms = state["arms"]
    assert sum(state["pulls"]) == len(hist) == state["step"]
    for i, a in enumerate(arms):
        mine = [h for h in hist if h["arm"] == a]
        assert state["pulls"][i] == len(mine)
        assert state["reward_sum"][i] == pytest.approx(sum(h["reward"] for h in mine), abs=1e-9)
    # epsilon-greedy propensities: eps/k for an explored non-greedy arm, eps/k + 1 - eps for the greedy one.
    k = len(arms)
    for h in hist:
        eps = h["exploration_rate"]
        assert min(abs(h["propensity"] - eps / k), abs(h["propensity"] - (eps / k + 1 - eps))) < 1e-6
    # Offline, with no judge: the reward is the pass rate (the seed's formula with a judge factor of 1).
    assert all(h["judge"] is None and h["reward"] == pytest.approx(h["pass_rate"], abs=1e-6) for h in hist)
    # Delivered strata counted for datacore: per arm and per grammar label.
    strata = json.loads((tmp_path / "a" / "telemetry.json").read_text())["histograms"]["strata"]
    assert sum(v for k_, v in strata.items() if k_.startswith("arm=")) == 100
    assert sum(v for k_, v in strata.items() if k_.startswith("label=")) == 100


def test_thompson_propensity_matches_a_brute_force_estimate():
    st = BanditState(["a", "b", "c"], [10, 12, 4], [6.0, 8.5, 2.0], 26)
    router = Router(["a", "b", "c"], RouterConfig(policy="thompson"), seed=3, state=st)
    d = router.choose()
    rng = np.random.default_rng(12345)
    a = 1 + np.array(st.reward_sum)
    b = 1 + np.array(st.pulls) - np.array(st.reward_sum)
    wins = np.mean(np.argmax(rng.beta(a, b, size=(200_000, 3)), axis=1) == d.arm)
    assert abs(d.propensity - wins) < 0.03


def test_warm_start_continues_the_earlier_bandit(small_recipe_path, tmp_path):
    r = load_recipe(small_recipe_path)
    run_recipe(r, tmp_path / "a", n=60, offline=True, progress=False)
    sa = json.loads((tmp_path / "a" / "bandit_state.json").read_text())
    res = run_recipe(r, tmp_path / "b", n=60, offline=True, progress=False, warm_start=tmp_path / "a")
    sb = json.loads((tmp_path / "b" / "bandit_state.json").read_text())
    hist = _history(tmp_path / "b")
    assert sb["step"] == sa["step"] + res.iterations
    for i, a in enumerate(sb["arms"]):
        assert sb["pulls"][i] == sa["pulls"][sa["arms"].index(a)] + sum(1 for h in hist if h["arm"] == a)
    # The first decision already uses the earlier run's decayed exploration rate.
    assert hist[0]["exploration_rate"] == pytest.approx(max(0.05, 0.8 ** sa["step"]))
    # The warm start is part of the run's identity: resuming with another one is refused.
    run_recipe(r, tmp_path / "c", n=60, seed=1, offline=True, progress=False)
    with pytest.raises(ConfigMismatchError):
        run_recipe(r, tmp_path / "b", n=60, offline=True, progress=False, warm_start=tmp_path / "c")


def test_warm_start_from_a_directory_without_state_is_one_line(tmp_path, small_recipe_path):
    (tmp_path / "empty").mkdir()
    r = CliRunner().invoke(
        main, ["run", str(small_recipe_path), "--offline", "--out", str(tmp_path / "o"), "--warm-start", str(tmp_path / "empty")]
    )
    assert r.exit_code == 1 and "bandit_state.json" in r.output and len(r.output.strip().splitlines()) == 1


def test_preview_prints_validated_samples_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["preview", "support_tickets", "-n", "5", "--offline"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.output.strip().splitlines()]
    assert len(rows) == 5 and len({x["text"] for x in rows}) == 5
    assert all(
        x["intent"] in ("refund", "repair", "shipping", "account") and x["meta"]["arm"].startswith("templater") for x in rows
    )
    assert list(tmp_path.iterdir()) == []
    r = CliRunner().invoke(main, ["preview", "support_tickets", "--offline", "--arm", "nope"])
    assert r.exit_code == 1 and "no arm named 'nope'" in r.output
