"""Tests that kill small deliberate bugs (the issue's list and mutmut's survivors).

Each test names the bug it catches.  The fake model here is a stub object (no HTTP), so the
file is fast enough for mutation testing; its judges return what the test tells them to.
"""

import json
import random
import textwrap
from collections import Counter

import numpy as np
import pytest
from routergen.feedback import compute_reward
from routergen.generators import GenerationPlan, NaiveGenerator
from routergen.quality import QualityOrchestrator, Sample
from routergen.spec import BUILTIN_ARMS, RouterConfig, recipe_from_text


class StubJudge:
    """An LLMBackend stand-in: per-sample scores by text, one batch score."""

    def __init__(self, sample_scores=None, batch_score=0.9):
        self.sample_scores = sample_scores or {}
        self.batch_score = batch_score
        self.seen_samples: list[dict] = []
        self.seen_batches: list[list[dict]] = []

    def judge_samples(self, task, samples):
        self.seen_samples.extend(samples)
        return [self.sample_scores.get(s["text"], 0.9) for s in samples]

    def judge_batch(self, task, samples):
        self.seen_batches.append(list(samples))
        return self.batch_score


def recipe(validators: str, examples: str = "") -> object:
    return recipe_from_text(
        textwrap.dedent(f"""\
        name: q
        task: t
        llm: {{model: claude-3-5-haiku-latest}}
        arms: [naive]
        output:
          schema:
            type: object
            properties: {{text: {{type: string}}, stars: {{type: integer}}}}
            required: [text]
        validators: {validators}
        {examples}
        """)
    )


def s(text, **fields):
    return Sample({"text": text, **fields}, text, "naive", "m", "h")


TEXTS = [f"sample number {i} about {w} things" for i, w in enumerate(["red", "green", "blue", "odd", "even", "warm"])]


def test_faithfulness_filters_low_scores():  # bug: faithfulness never filters
    judge = StubJudge({TEXTS[1]: 0.2, TEXTS[3]: 0.49})
    q = QualityOrchestrator(recipe("{faithfulness: {min_score: 0.5}}"), judge)
    acc, m = q.evaluate([s(t) for t in TEXTS[:5]], "t")
    assert [x.text for x in acc] == [TEXTS[0], TEXTS[2], TEXTS[4]]
    assert m.accepted == 3 and m.validator_passed["faithfulness"] == 3 and m.validator_evaluated["faithfulness"] == 5
    assert acc[0].scores["faithfulness"] == 0.9
    # A rejected sample does not enter the dedup state: the same text can be accepted later.
    acc2, _ = QualityOrchestrator(recipe("{exact_dedup: {}, faithfulness: {}}"), StubJudge()).evaluate([s(TEXTS[1])], "t")
    assert len(acc2) == 1


def test_judges_see_every_field():
    judge = StubJudge()
    q = QualityOrchestrator(recipe("{faithfulness: {}, judge: {max_items: 2}}"), judge)
    q.evaluate([s(TEXTS[0], stars=4), s(TEXTS[1], stars=1), s(TEXTS[2], stars=2)], "t")
    assert judge.seen_samples[0] == {"text": TEXTS[0], "stars": 4}
    assert judge.seen_batches == [[{"text": TEXTS[0], "stars": 4}, {"text": TEXTS[1], "stars": 1}]]


def test_batch_judge_under_min_discards_the_batch_and_enters_the_reward():  # bug: batch judge ignored
    q = QualityOrchestrator(recipe("{judge: {min: 0.5}}"), StubJudge(batch_score=0.3))
    acc, m = q.evaluate([s(t) for t in TEXTS[:4]], "t")
    assert acc == [] and m.discarded and m.accepted == 0 and m.quality == 0.0
    assert m.validator_passed["judge"] == 0 and m.validator_evaluated["judge"] == 1
    q = QualityOrchestrator(recipe("{judge: {min: 0.5}, distinct_n: {}}"), StubJudge(batch_score=0.6))
    acc, m = q.evaluate([s(t) for t in TEXTS[:4]], "t")
    assert len(acc) == 4 and m.batch_scores["judge"] == 0.6 and not m.discarded
    assert compute_reward(m, 0.0, RouterConfig()) == 0.6  # pass rate 1 x judge 0.6
    assert m.quality == pytest.approx((0.6 + m.batch_scores["distinct_n"]) / 2, abs=1e-6)


def test_judge_invalid_reply_counts_and_scores_zero():
    class Bad(StubJudge):
        def judge_samples(self, task, samples):
            return [None for _ in samples]

        def judge_batch(self, task, samples):
            return None

    q = QualityOrchestrator(recipe("{faithfulness: {min_score: 0.0}, judge: {}}"), Bad())
    acc, m = q.evaluate([s(TEXTS[0]), s(TEXTS[1])], "t")
    assert m.errors["judge_invalid_json"] == 3
    assert all(x.scores["faithfulness"] == 0.0 for x in acc) and m.batch_scores["judge"] == 0.0


def test_similarity_bounds_are_applied():  # bug: similarity always passes
    ex = "examples: ['the kettle is great and fast', 'my toaster broke']"
    q = QualityOrchestrator(recipe("{similarity: {min: 0.1, max: 0.75}}", ex))
    acc, m = q.evaluate(
        [s("the kettle is great and fast"), s("quantum chromodynamics lecture"), s("the kettle is great and slow")], "t"
    )
    assert [x.text for x in acc] == ["the kettle is great and slow"]
    assert m.validator_evaluated["similarity"] == 3 and m.validator_passed["similarity"] == 1
    assert acc[0].scores["similarity"] == pytest.approx(5 / 7, abs=1e-6)  # max over examples, word-set Jaccard


def test_length_min_and_max_are_applied():  # bug: length max ignored
    q = QualityOrchestrator(recipe("{length: {min_chars: 5, max_chars: 12}}"))
    acc, m = q.evaluate([s("abcd"), s("abcde"), s("x" * 12), s("x" * 13)], "t")
    assert [x.text for x in acc] == ["abcde", "x" * 12]
    assert m.validator_passed["length"] == 2 and m.pass_rate == 0.5


def test_schema_validator_rejects_invalid_fields():
    q = QualityOrchestrator(recipe("{schema: {}}"))
    acc, m = q.evaluate([s("ok", stars=3), s("bad", stars="three"), Sample(None, "", "naive", "m", "h", "invalid_json")], "t")
    assert [x.text for x in acc] == ["ok"] and m.errors == {"invalid_json": 1} and m.generated == 3


def test_dedup_exact_and_near_within_and_across_batches():
    q = QualityOrchestrator(recipe("{exact_dedup: {}, near_dup: {threshold: 0.8}}"))
    long = "the quick brown fox jumps over the lazy dog near the river bank today"
    acc, _ = q.evaluate([s(long), s(long), s(long + "!"), s("completely different words here for a test")], "t")
    assert [x.text for x in acc] == [long, "completely different words here for a test"]
    acc, _ = q.evaluate([s(long), s("a third unrelated sentence about gardening tools")], "t")
    assert [x.text for x in acc] == ["a third unrelated sentence about gardening tools"]


def test_slot_weights_are_honoured():  # bug: slot weights ignored
    r = recipe_from_text(
        "name: g\ntask: t\ngrammar:\n  rules:\n    s: ['{x} <y>']\n    y: [{text: a, weight: 3}, b]\n"
        "  slots:\n    x: {values: [p, q], weights: [9, 1]}\n"
    )
    rng = random.Random(0)
    xs, ys = Counter(), Counter()
    for _ in range(4000):
        d = r.grammar.derive(rng)
        v = r.grammar.fill(d, rng)
        xs[v["x"]] += 1
        ys[d.render(v).split()[1]] += 1
    assert abs(xs["p"] / 4000 - 0.9) < 0.03  # 6 standard errors
    assert abs(ys["a"] / 4000 - 0.75) < 0.04
    uni = Counter(r.grammar.derive(rng, "uniform").render({"x": "p"}).split()[1] for _ in range(4000))
    assert abs(uni["a"] / 4000 - 0.5) < 0.04


class StubLLM:
    """Records requests; answers the planner with a fixed prompt and samples with JSON."""

    def __init__(self):
        from routergen.spec import LLMConfig

        self.config = LLMConfig(model="m", temperature=0.4, structured="text")  # replies in text (tool use: test_structured)
        self.reqs = []

    def request(self, system, user, temperature=None, max_tokens=None, model=None):
        return {"system": system, "user": user, "temperature": self.config.temperature if temperature is None else temperature}

    def complete_many(self, reqs):
        import json

        from datacore.llm import LLMResponse

        self.reqs.extend(reqs)
        out = []
        for r in reqs:
            if "design prompts" in r["system"]:
                out.append(LLMResponse(text="PLANNED PROMPT"))
            else:
                out.append(LLMResponse(text=json.dumps({"text": f"t{len(self.reqs)}-{len(out)}"})))
        return out


def test_naive_uses_the_planned_prompt_and_the_arms_temperature():  # bug: NAIVE skips the planned prompt
    llm = StubLLM()
    r = recipe("{schema: {}}")
    g = NaiveGenerator(r, llm)
    out = g.generate(GenerationPlan(0, BUILTIN_ARMS["naive-hot"], 0.5, 3, 7))
    gen = [q for q in llm.reqs if "design prompts" not in q["system"]]
    assert len(gen) == 3 and all(q["system"] == "PLANNED PROMPT" for q in gen)
    assert all(q["temperature"] == 1.0 for q in gen)
    assert len([q for q in llm.reqs if "design prompts" in q["system"]]) == 1
    g.generate(GenerationPlan(1, BUILTIN_ARMS["naive"], 0.5, 2, 8))
    assert len([q for q in llm.reqs if "design prompts" in q["system"]]) == 1  # planned once
    assert [q["temperature"] for q in llm.reqs[-2:]] == [0.4, 0.4]
    assert all(x.error is None and x.fields["text"] == x.text for x in out)


# -- feedback ---------------------------------------------------------------------------------
def test_reward_rounding_cost_factor_and_unknown_formula():
    from routergen.feedback import LocalFeedbackState, quality_factor
    from routergen.quality import BatchMetrics

    m = BatchMetrics(3, 1, {}, {}, {}, {}, 1.0, False)
    assert compute_reward(m, 0.0, RouterConfig()) == 0.333333
    half = BatchMetrics(10, 5, {}, {}, {}, {"judge": 1.0}, 1.0, False)
    cfg = RouterConfig(cost_aware=True, cost_scale_usd=0.002)
    assert compute_reward(half, 0.02, cfg) == round(0.5 * 2.718281828459045**-1, 6)  # 0.002 USD per sample
    with pytest.raises(ValueError, match="unknown reward formula 'nope'"):
        quality_factor(half, "nope")
    fb = LocalFeedbackState()
    fb.add("a", 1, 0.5)
    rm = fb.running_means(["a", "never"], 2)
    assert str(rm["never"]) == "[nan, nan]" and str(rm["a"][0]) == "nan" and rm["a"][1] == 0.5
    assert fb.mean("never") == 0.0 and fb.mean("a") == 0.5
    assert fb.to_dict() == {"a": [[1, 0.5]]}
    fb.add("a", 2, 0.25)
    assert fb.mean("a") == 0.375


# -- quality helpers --------------------------------------------------------------------------
def test_word_jaccard_words_distinct_n_and_dispersion_exact_values():
    import numpy as np
    from routergen.minhash import MinHasher
    from routergen.quality import dispersion, distinct_n, word_jaccard

    assert word_jaccard(set(), set()) == 1.0
    assert word_jaccard(set(), {"a"}) == 0.0 and word_jaccard({"a"}, set()) == 0.0
    assert word_jaccard({"a", "b"}, {"b", "c"}) == pytest.approx(1 / 3)
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    assert distinct_n(["A b", "a B"], 1) == 0.5  # words are case-folded
    assert distinct_n(["one"], 2) == 0.0 and distinct_n([], 1) == 0.0
    assert distinct_n(["a b c", "a b d"], 3) == 1.0
    h = MinHasher(64)
    sigs = [h.signature(t) for t in ("alpha beta gamma delta", "alpha beta gamma epsilon", "zeta eta theta iota")]
    assert dispersion([]) == 0.0 and dispersion(sigs[:1]) == 0.0
    assert dispersion([sigs[0], sigs[0]]) == 0.0
    pair = lambda a, b: 1.0 - float(np.mean(a == b))  # noqa: E731
    assert dispersion(sigs[:2]) == pytest.approx(pair(sigs[0], sigs[1]))
    brute = (pair(sigs[0], sigs[1]) + pair(sigs[0], sigs[2]) + pair(sigs[1], sigs[2])) / 3
    assert dispersion(sigs) == pytest.approx(brute)


def test_similarity_uses_mapping_examples_and_case_folds():
    ex = "examples: [{text: 'The Kettle is GREAT', stars: 5}, 'toaster broke']"
    q = QualityOrchestrator(recipe("{similarity: {min: 0.0, max: 0.99}}", ex))
    acc, _ = q.evaluate([s("the kettle is great"), s("THE KETTLE IS GREAT TODAY")], "t")
    assert [x.text for x in acc] == ["THE KETTLE IS GREAT TODAY"]
    assert acc[0].scores["similarity"] == pytest.approx(4 / 5)


def test_arithmetic_validator_and_its_messages():
    from routergen.quality import arithmetic_check

    assert arithmetic_check("3*12=36; 36-10=26", 26) == (True, "ok")
    assert arithmetic_check("3*12=36; 36-10=26", 25) == (False, "answer 25 differs from the solution's result 26")
    assert arithmetic_check("3*12=35", 35) == (False, "step 3*12 = 35 is wrong (36 != 35)")
    assert arithmetic_check("no steps here", 1) == (False, "the solution has no computable step")
    assert arithmetic_check("1+1=2", "2") == (False, "answer is not a number")
    assert arithmetic_check("1+1=2", True) == (False, "answer is not a number")
    assert arithmetic_check(None, 2) == (False, "no solution text")
    assert arithmetic_check("10 / 4 = 2.5. Then 2.5 x 2 = 5", 5)[0]
    assert arithmetic_check("(2+3)*4 = 20\n20 - 5 = 15", 15)[0]
    assert arithmetic_check("9 // 2 = 4; 9 % 2 = 1", 1)[0]
    assert arithmetic_check("6 ÷ 3 = 2; 2 × 5 = 10", 10)[0]
    assert arithmetic_check("-3 + 5 = 2", 2)[0]
    assert arithmetic_check("$1,200 / 4 = $300", 300)[0]
    assert not arithmetic_check("1/0 = 5; 2+2=4", 5)[0]  # a division by zero is no step; the last step is 4
    r = recipe_from_text(
        textwrap.dedent("""\
        name: m
        task: t
        output:
          text_field: question
          schema: {type: object, properties: {question: {type: string}, work: {type: string}, res: {type: integer}}}
        validators: {arithmetic: {answer_field: res, solution_field: work}}
        """)
    )
    q = QualityOrchestrator(r)
    good = Sample({"question": "q1", "work": "2+2=4", "res": 4}, "q1", "naive", "m", "h")
    bad = Sample({"question": "q2", "work": "2+2=5", "res": 5}, "q2", "naive", "m", "h")
    acc, m = q.evaluate([good, bad], "t")
    assert acc == [good] and m.validator_passed["arithmetic"] == 1 and m.validator_evaluated["arithmetic"] == 2
    assert good.scores["arithmetic"] == 1.0 and bad.scores["arithmetic"] == 0.0


def test_validator_parameters_are_checked():
    from routergen.quality import check_params
    from routergen.spec import FieldError

    assert check_params("length", {}) == {"min_chars": 1, "max_chars": None}
    assert check_params("length", {"max_chars": None}) == {"min_chars": 1, "max_chars": None}
    assert check_params("arithmetic", {}) == {"answer_field": "answer", "solution_field": "solution"}
    for name, params, msg in [
        ("length", {"min_chars": 1.5}, "min_chars=1.5: must be an integer >= 0"),
        ("length", {"max_chars": 0}, "max_chars=0: must be an integer >= 1"),
        ("near_dup", {"threshold": True}, "threshold=True: must be a number >= 0.0 and <= 1.0"),
        ("near_dup", {"num_perm": 2000}, "num_perm=2000: must be an integer >= 8 and <= 1024"),
        ("similarity", {"min": 0.6, "max": 0.5}, "min=0.6 must be <= max=0.5"),
        ("arithmetic", {"answer_field": ""}, "answer_field='': must be a field name"),
        ("exact_dedup", {"x": 1}, "unknown parameter of exact_dedup (allowed: none)"),
        ("judge", {"maxitems": 1}, "unknown parameter of judge (allowed: min, max_items)"),
    ]:
        with pytest.raises(FieldError) as e:
            check_params(name, params)
        assert str(e.value) == msg


# -- grammar checks and messages ---------------------------------------------------------------
def _g(text):
    return recipe_from_text("name: g\ntask: t\n" + textwrap.dedent(text), "g.yaml").grammar


def test_check_schema_defaults_and_messages():
    from routergen.errors import GrammarError

    g = _g("grammar:\n  rules:\n    s: ['a {n}']\n  slots:\n    n: [1, 2]\n")
    with pytest.raises(GrammarError) as e:
        g.check_schema({"type": "array"})
    assert str(e.value) == "output.schema: type must be 'object' for a grammar recipe, got 'array'"
    g.check_schema({"properties": {"n": {"type": "integer"}}})  # no type: an object is assumed
    with pytest.raises(GrammarError) as e:
        g.check_schema({"type": "object", "properties": {"n": {"type": "string"}}})
    assert str(e.value) == ("g.yaml:7: grammar.slots.n: value 1 does not satisfy output.schema.properties.n ({'type': 'string'})")
    with pytest.raises(GrammarError) as e:
        g.check_satisfiable({"type": "object", "minProperties": 9})
    assert str(e.value).startswith("output.schema: none of 200 records expanded from the grammar satisfies it (e.g. {")
    with pytest.raises(GrammarError) as e:
        g.check_satisfiable({"properties": {"text": {"pattern": "^" + "z" * 150 + "$"}}})
    msg = str(e.value)
    assert "(e.g. field text: 'a 2' does not match" in msg and msg.endswith("...)") and len(msg) < 260


def test_check_satisfiable_tries_uniform_weighting_too():
    g = _g("grammar:\n  rules:\n    s: [{text: 'a very long sentence indeed', weight: 5000}, 'ok']\n")
    g.check_satisfiable({"properties": {"text": {"maxLength": 3}}})  # uniform derivations find "ok"
    g2 = _g("grammar:\n  rules:\n    s: [{text: 'a very long sentence indeed', weight: 5000}, {text: 'ok', weight: 0.001}]\n")
    from routergen.errors import GrammarError

    with pytest.raises(GrammarError):
        g2.check_satisfiable({"properties": {"text": {"maxLength": 3}}}, tries=1)


# -- router -----------------------------------------------------------------------------------
from routergen.router import AdaptationPolicy, BanditState, Router, simulate  # noqa: E402


def test_bandit_state_round_trip_means_and_warm_start():
    st = BanditState(["a", "b"], [2, 0], [1.5, 0.0], 2, {"window": [[0, 1.0]]})
    assert st.means() == [0.75, 0.0]
    assert BanditState.from_dict(st.to_dict()) == st
    assert "extra" not in BanditState.fresh(["a"]).to_dict()
    w = BanditState.fresh(["b", "c"]).warm_started(st)
    assert w == BanditState(["b", "c"], [0, 0], [0.0, 0.0], 2)
    w = BanditState(["a", "c"], [1, 1], [1.0, 0.5], 2).warm_started(st)
    assert (w.pulls, w.reward_sum, w.step, w.extra) == ([3, 1], [2.5, 0.5], 4, {})
    with pytest.raises(ValueError, match="saved bandit state has arms"):
        Router(["x", "y"], RouterConfig(), 0, st)
    with pytest.raises(ValueError):
        Router([], RouterConfig())
    assert AdaptationPolicy(0.5, 0.5, 0.2).rate(0) == 0.5 and AdaptationPolicy(0.5, 0.5, 0.2).rate(3) == 0.2


def test_epsilon_greedy_decisions_and_propensities():
    cfg = RouterConfig(epsilon=0.0, min_epsilon=0.0)
    r = Router(["a", "b", "c"], cfg, 1, BanditState(["a", "b", "c"], [1, 0, 1], [0.9, 0.0, 0.1], 2))
    d = r.choose()
    assert (d.arm, d.explored, d.propensity, d.exploration_rate) == (1, False, 1.0, 0.0)  # unpulled first
    r = Router(["a", "b", "c"], cfg, 1, BanditState(["a", "b", "c"], [1, 2, 1], [0.2, 1.8, 0.1], 4))
    assert r.choose().arm == 1  # best mean
    r = Router(["a", "b"], RouterConfig(epsilon=1.0, decay=1.0, min_epsilon=1.0), 5)
    ds = []
    for _ in range(200):
        d = r.choose()
        ds.append(d)
        r.update(d.arm, 0.0)
    assert all(d.explored and d.propensity in (0.5,) for d in ds)
    assert 60 < sum(d.arm for d in ds) < 140
    r.update(0, 7.0)
    r.update(1, -3.0)
    assert r.state.reward_sum == [1.0, 0.0] and r.state.step == 202  # rewards clipped to [0, 1]


def test_ucb1_scores():
    st = BanditState(["a", "b"], [10, 2], [6.0, 1.0], 12)
    r = Router(["a", "b"], RouterConfig(policy="ucb1", ucb_c=2.0), 0, st)
    d = r.choose()
    # a: 0.6 + sqrt(2 ln 12 / 10) = 1.305; b: 0.5 + sqrt(2 ln 12 / 2) = 2.076
    assert (d.arm, d.explored, d.exploration_rate, d.propensity) == (1, True, None, 1.0)
    r = Router(["a", "b"], RouterConfig(policy="ucb1", ucb_c=0.0), 0, st)
    assert r.choose().arm == 0 and not r.choose().explored
    r = Router(["a", "b"], RouterConfig(policy="ucb1"), 0, BanditState(["a", "b"], [3, 0], [1.0, 0.0], 3))
    assert r.choose().arm == 1


def test_thompson_variants_statistics():
    k = ["a", "b"]
    r = Router(k, RouterConfig(policy="thompson_discounted", discount=0.5), 0)
    r.update(0, 1.0)
    r.update(1, 0.5)
    r.update(0, 0.0)
    assert r.state.extra["d_pulls"] == [1.25, 0.5] and r.state.extra["d_sums"] == [0.25, 0.25]
    a, b = r._posterior()
    assert list(a) == [1.25, 1.25] and list(b) == [2.0, 1.25]
    r = Router(k, RouterConfig(policy="thompson_window", window=2), 0)
    for arm, rew in [(0, 1.0), (1, 1.0), (1, 0.0)]:
        r.update(arm, rew)
    assert r.state.extra["window"] == [[1, 1.0], [1, 0.0]]
    a, b = r._posterior()
    assert list(a) == [1.0, 2.0] and list(b) == [1.0, 2.0]
    r = Router(k, RouterConfig(policy="thompson"), 0, BanditState(k, [4, 4], [4.0, 0.0], 8))
    a, b = r._posterior()
    assert list(a) == [5.0, 1.0] and list(b) == [1.0, 5.0]
    d = r.choose()
    assert d.arm == 0 and 0.9 < d.propensity <= 1.0 and not d.explored


def test_linucb_learns_a_context_dependent_best_arm():
    cfg = RouterConfig(policy="linucb", linucb_alpha=0.1)
    r = Router(["a", "b"], cfg, 0)
    r.update(0, 1.0, [1.0, 0.0])
    r.update(1, 0.0, [1.0, 0.0])
    r.update(0, 0.0, [1.0, 1.0])
    r.update(1, 1.0, [1.0, 1.0])
    assert r.state.extra["A"][0] == [[3.0, 1.0], [1.0, 2.0]] and r.state.extra["b"][1] == [1.0, 1.0]
    assert r.choose([1.0, 0.0]).arm == 0 and r.choose([1.0, 1.0]).arm == 1
    d = r.choose([1.0, 1.0])
    assert d.propensity == 1.0 and d.exploration_rate is None and not d.explored
    fresh = Router(["a", "b"], RouterConfig(policy="linucb", linucb_alpha=1.0), 0)
    est, ucb = fresh._linucb(np.asarray([1.0]))
    assert list(est) == [0.0, 0.0] and list(ucb) == [1.0, 1.0]
    assert fresh.choose().arm == 0


@pytest.mark.parametrize("policy", ["thompson_discounted", "thompson_window", "linucb", "thompson", "epsilon_greedy"])
def test_resumed_router_decides_as_an_uninterrupted_one(policy):
    cfg = RouterConfig(policy=policy, window=5, discount=0.9)
    full = Router(["a", "b", "c"], cfg, 4)
    rng = np.random.default_rng(0)
    rewards = rng.random(40)
    seq = []
    for t in range(40):
        x = [1.0, t / 40]
        d = full.choose(x)
        seq.append(d.arm)
        full.update(d.arm, rewards[t], x)
        if t == 19:
            saved = BanditState.from_dict(json.loads(json.dumps(full.state.to_dict())))
    resumed = Router(["a", "b", "c"], cfg, 4, saved)
    for t in range(20, 40):
        x = [1.0, t / 40]
        d = resumed.choose(x)
        assert d.arm == seq[t]
        resumed.update(d.arm, rewards[t], x)


def test_drift_aware_policies_beat_decaying_epsilon_greedy_on_an_abrupt_switch():
    class Switch:
        arms = 3

        def __call__(self, t, used):
            return [0.7, 0.5, 0.3] if t < 300 else [0.3, 0.5, 0.7]

    def regret(cfg):
        return np.mean([simulate(Switch(), 600, cfg, s)["regret"] for s in range(6)])

    eps = regret(RouterConfig())
    assert regret(RouterConfig(policy="thompson_discounted", discount=0.98)) < 0.7 * eps
    assert regret(RouterConfig(policy="thompson_window", window=100)) < 0.7 * eps
    assert regret(RouterConfig(policy="linucb", linucb_alpha=0.5)) < 0.8 * eps


def test_simulate_needs_arms_for_a_function_and_counts_regret():
    with pytest.raises(ValueError, match="arms"):
        simulate(lambda t, u: [0.5, 0.5], 10, RouterConfig(), 0)
    res = simulate([0.2, 0.2], 50, RouterConfig(), 0)
    assert res["regret"] == 0.0 and len(res["choices"]) == 50 and sum(res["state"].pulls) == 50
    res = simulate([1.0, 0.0], 100, RouterConfig(epsilon=0.0, min_epsilon=0.0), 0)
    assert res["regret"] == 1.0 and list(res["choices"][:3]) == [0, 1, 0]  # unpulled first, then the best


# -- every grammar load error, with its exact message (file, line, key path, reason) ---------------
GRAMMAR_CASES = {
    "unknown_key": "grammar:\n  rules: {s: [a]}\n  slot: {}\n",
    "no_rules": "grammar:\n  start: s\n",
    "empty_rules": "grammar:\n  rules: {}\n",
    "bad_start": "grammar:\n  start: 3\n  rules: {s: [a]}\n",
    "bad_name": "grammar:\n  rules:\n    s: ['<b c>']\n    'b c': [x]\n",
    "empty_prods": "grammar:\n  rules:\n    s: []\n",
    "bad_prod": "grammar:\n  rules:\n    s: [[a, b]]\n",
    "prod_unknown": "grammar:\n  rules:\n    s:\n      - {text: a, weigth: 2}\n",
    "prod_weight": "grammar:\n  rules:\n    s:\n      - {text: a, weight: 0}\n",
    "prod_set": "grammar:\n  rules:\n    s:\n      - {text: a, set: [x]}\n",
    "set_text": "grammar:\n  rules:\n    s:\n      - {text: a, set: {text: b}}\n",
    "set_id": "grammar:\n  rules:\n    s:\n      - {text: a, set: {id: b}}\n",
    "slots_list": "grammar:\n  rules: {s: ['{x}']}\n  slots: [x]\n",
    "slot_name": "grammar:\n  rules: {s: ['{x}']}\n  slots:\n    x: [a]\n    meta: [b]\n",
    "slot_unknown": "grammar:\n  rules: {s: ['{x}']}\n  slots:\n    x: {values: [a], weight: [1]}\n",
    "slot_shape": "grammar:\n  rules: {s: ['{x}']}\n  slots:\n    x: 3\n",
    "slot_empty": "grammar:\n  rules: {s: ['{x}']}\n  slots:\n    x: []\n",
    "slot_value": "grammar:\n  rules: {s: ['{x}']}\n  slots:\n    x: [a, [b]]\n",
    "slot_weights": "grammar:\n  rules: {s: ['{x}']}\n  slots:\n    x: {values: [a, b], weights: [1]}\n",
    "clash": "grammar:\n  rules:\n    s:\n      - {text: '{x}', set: {x: 1}}\n  slots:\n    x: [a]\n",
    "undef_nt": "grammar:\n  rules:\n    s: ['<t>']\n",
    "undef_slot": "grammar:\n  rules:\n    s: ['{y}']\n",
    "undef_slot2": "grammar:\n  rules:\n    s: ['{y} {x}']\n  slots:\n    x: [a]\n",
    "undef_start": "grammar:\n  start: t\n  rules:\n    s: [a]\n",
    "unreach": "grammar:\n  rules:\n    s: [a]\n    t: [b]\n",
    "unused_slot": "grammar:\n  rules:\n    s: [a]\n  slots:\n    x: [b]\n",
    "loop": "grammar:\n  rules:\n    s: ['<e>']\n    e: ['<e> + 1', '<f>']\n    f: ['<e>']\n",
    "critical": "grammar:\n  rules:\n    e: [{text: '(<e> <e>)', weight: 1}, {text: x, weight: 1}]\n",
    "stray": "grammar:\n  rules:\n    s: ['{my-slot} x }']\n",
    "empty_only": "grammar:\n  rules:\n    s: ['<e>']\n    e: ['', ' ']\n",
}

GRAMMAR_EXPECTED = {
    "unknown_key": "g.yaml:5: grammar.slot: unknown key (allowed: start, rules, slots)",
    "no_rules": "g.yaml:3: grammar.rules: must be a non-empty mapping of non-terminal -> list of productions",
    "empty_rules": "g.yaml:4: grammar.rules: must be a non-empty mapping of non-terminal -> list of productions",
    "bad_start": "g.yaml:4: grammar.start: must be a non-terminal name, got 3",
    "bad_name": "g.yaml:5: grammar.rules.s[0]: '<b c>' at column 1 is not a non-terminal reference (a non-terminal is <name>, no spaces; name = letters, digits, _ and -); write << or >> for a literal angle bracket",
    "empty_prods": "g.yaml:5: grammar.rules.s: must be a non-empty list of productions",
    "bad_prod": "g.yaml:5: grammar.rules.s[0]: a production is a string or a mapping with text (and optional weight, set)",
    "prod_unknown": "g.yaml:6: grammar.rules.s[0].weigth: unknown key (allowed: text, weight, set)",
    "prod_weight": "g.yaml:6: grammar.rules.s[0].weight: weight=0: must be a number > 0",
    "prod_set": "g.yaml:6: grammar.rules.s[0].set: must be a mapping of field -> constant value",
    "set_text": "g.yaml:6: grammar.rules.s[0].set.text: field name 'text' is not allowed (identifier; not text, id, meta)",
    "set_id": "g.yaml:6: grammar.rules.s[0].set.id: field name 'id' is not allowed (identifier; not text, id, meta)",
    "slots_list": "g.yaml:5: grammar.slots: must be a mapping of slot -> list of values",
    "slot_name": "g.yaml:7: grammar.slots.meta: slot name 'meta' is not allowed (identifier; not text, id, meta)",
    "slot_unknown": "g.yaml:6: grammar.slots.x.weight: unknown key (allowed: values, weights)",
    "slot_shape": "g.yaml:6: grammar.slots.x: must be a list of values or a mapping with values (and optional weights)",
    "slot_empty": "g.yaml:6: grammar.slots.x: needs at least one value",
    "slot_value": "g.yaml:6: grammar.slots.x[1]: slot values are scalars (string, number, boolean); got list",
    "slot_weights": "g.yaml:6: grammar.slots.x.weights: needs 2 numbers > 0, one per value",
    "clash": "g.yaml:8: grammar.slots.x: 'x' is both a slot and a field set by a production",
    "undef_nt": "g.yaml:5: grammar.rules.s[0]: undefined non-terminal <t> (defined: s)",
    "undef_slot": "g.yaml:5: grammar.rules.s[0]: undefined slot {y} (declared slots: none)",
    "undef_slot2": "g.yaml:5: grammar.rules.s[0]: undefined slot {y} (declared slots: x)",
    "undef_start": "g.yaml:4: grammar.start: start symbol <t> is not defined (defined: s)",
    "unreach": "g.yaml:6: grammar.rules.t: non-terminal <t> is unreachable from start <s>",
    "unused_slot": "g.yaml:7: grammar.slots.x: slot {x} is declared but no reachable production uses it",
    "loop": "g.yaml:5: grammar.rules.s: non-terminal <s> never terminates: every production refers to a non-terminating non-terminal (e.g. <e>), a recursive loop with no way out",
    "critical": "g.yaml:4: grammar.rules: the expected derivation length is infinite (mean branching factor 1.000 >= 1): lower the weights of the recursive productions (non-terminals used: e)",
    "stray": "g.yaml:5: grammar.rules.s[0]: '{my-slot}' at column 1 is not a slot reference (a slot is {name}, name = letters, digits and _); write {{ or }} for a literal brace",
    "empty_only": "g.yaml:5: grammar.rules.s: every derivation of <s> renders as empty text (no production reaches a non-blank literal or a slot with a non-blank value), so no sample could ever be accepted",
}


@pytest.mark.parametrize("case", sorted(GRAMMAR_CASES))
def test_grammar_errors_have_exact_messages(case):
    from routergen.errors import GrammarError, RecipeError

    with pytest.raises((GrammarError, RecipeError)) as e:
        recipe_from_text("name: g\ntask: t\n" + GRAMMAR_CASES[case], "g.yaml")
    assert str(e.value) == GRAMMAR_EXPECTED[case]


def test_grammar_analysis_exact_values():
    from routergen.grammar import DerivationTooLong, Grammar, Production, _json_type

    g = _g(
        "grammar:\n  rules:\n    s: [{text: '<a> {x}', set: {k: 1}}, {text: '<b>', set: {k: 2}}]\n"
        "    a: ['<b> y']\n    b: [{text: '<<z>> {{w}} {y}', set: {m: true}}]\n  slots:\n    x: [1, 2.5]\n    y: [p]\n"
    )
    assert g.fields() == {"text": "text", "x": "slot", "y": "slot", "k": "set", "m": "set"}
    assert g.always_present() == {"text", "k", "m", "y"}
    assert g.derived_schema() == {
        "type": "object",
        "properties": {
            "text": {"type": "string", "minLength": 1},
            "x": {"type": "number"},
            "y": {"type": "string"},
            "k": {"type": "integer", "enum": [1, 2]},
            "m": {"type": "boolean", "enum": [True]},
        },
        "required": ["k", "m", "text", "y"],
        "additionalProperties": False,
    }
    d = g.derive(random.Random(3))
    assert "<z> {w}" in d.render({"x": 1, "y": "p"})
    assert _json_type([1, 2]) == "integer" and _json_type([1, 2.5]) == "number" and _json_type([]) == "string"
    assert _json_type([True, "a", 1]) == ["boolean", "integer", "string"]
    e = _g("grammar:\n  rules:\n    e: [{text: '(<e> <e>)', weight: 1}, {text: x, weight: 3}]\n")
    assert e.branching_factor("grammar") == pytest.approx(0.5) and e.branching_factor("uniform") == pytest.approx(1.0)
    with pytest.raises(ValueError, match="weight=0: must be a number > 0"):
        Production("a", 0)
    with pytest.raises(ValueError):
        Production("a", True)
    loop = Grammar("s", {"s": (Production("a <s>"),)}, {})
    with pytest.raises(DerivationTooLong):
        loop.derive(random.Random(0))
    g.check_schema({"type": "object", "properties": {"text": {"type": ["integer", "string"]}}})
    from routergen.errors import GrammarError

    with pytest.raises(GrammarError, match=r"properties\.text: type \['integer'\] cannot hold"):
        g.check_schema({"type": "object", "properties": {"text": {"type": ["integer"]}}})


def test_stray_brace_message_shows_the_whole_reference():
    from routergen.grammar import _stray_reference

    assert _stray_reference("a {my-slot} and } b").startswith("'{my-slot}' at column 3 ")
    assert _stray_reference("a } b").startswith("'}' at column 3 ")
    assert _stray_reference("ok {x} <y> {{ }} << >>") is None


def test_quality_orchestrator_details():
    from routergen.quality import check_params
    from routergen.spec import FieldError

    for params, field in [({"answer_field": 3}, "answer_field"), ({"min": 0.9, "max": 0.1}, "min")]:
        with pytest.raises(FieldError) as e:
            check_params("arithmetic" if "answer_field" in params else "similarity", params)
        assert e.value.field == field
    assert check_params("similarity", {"min": 0.5, "max": 0.5}) == {"min": 0.5, "max": 0.5}
    # A failed generation first does not stop the rest of the batch.
    q = QualityOrchestrator(recipe("{length: {min_chars: 3}}"))
    acc, m = q.evaluate([Sample(None, "", "naive", "m", "h", "invalid_json"), s("abcd"), s("ab")], "t")
    assert [x.text for x in acc] == ["abcd"] and m.errors == {"invalid_json": 1}
    failed = [x for x in [s("zz")] if not q.evaluate([x], "t")[0]][0]
    assert failed.failed == ["length"]
    # exact dedup alone catches a duplicate inside one batch, and counts passes right.
    q = QualityOrchestrator(recipe("{exact_dedup: {}, distinct_n: {}}"))
    acc, m = q.evaluate([s("same text"), s("same text"), s("other text")], "t")
    assert [x.text for x in acc] == ["same text", "other text"]
    assert m.validator_passed["exact_dedup"] == 2 and m.validator_evaluated["exact_dedup"] == 3
    assert m.validator_passed["distinct_n"] == 1 and m.validator_evaluated["distinct_n"] == 1
    # near_dup's own threshold is used, and its score is 1 - similarity.
    q = QualityOrchestrator(recipe("{near_dup: {threshold: 0.3, num_perm: 128}}"))
    base = "alpha beta gamma delta epsilon zeta eta theta iota kappa"
    acc, m = q.evaluate([s(base), s(base.replace("kappa", "lambda mu"))], "t")
    assert len(acc) == 1 and 0.0 <= acc[0].scores["near_dup"] <= 1.0
    # dispersion over max_items, also without near_dup (signatures computed on demand)
    q = QualityOrchestrator(recipe("{dispersion: {max_items: 2}}"))
    acc, m = q.evaluate([s(TEXTS[0]), s(TEXTS[0] + " x"), s("entirely unrelated words over here")], "t")
    from routergen.quality import dispersion

    h = q.hasher
    assert m.batch_scores["dispersion"] == round(dispersion([h.signature(TEXTS[0]), h.signature(TEXTS[0] + " x")]), 6)
    # similarity without examples is skipped, and says so
    q = QualityOrchestrator(recipe("{similarity: {}}"))
    assert "similarity" not in q.active and q.skipped["similarity"] == "the recipe has no examples"


def test_arithmetic_edge_cases():
    from routergen.quality import arithmetic_check

    assert arithmetic_check("total = 2+2 = 4", 4) == (True, "ok")  # a non-numeric side is skipped, not fatal
    assert arithmetic_check("(x) = 5; 2+3=5", 5) == (True, "ok")


def test_router_details():
    with pytest.raises(ValueError, match="a router needs at least one arm"):
        Router([], RouterConfig())
    with pytest.raises(ValueError, match="needs an `arms` attribute"):
        simulate(lambda t, u: [0.5], 5, RouterConfig(), 0)
    st = BanditState(["a", "b"], [1, 11], [1.0, 2.0], 12)  # Beta(2, 1) vs Beta(3, 10)
    d = Router(["a", "b"], RouterConfig(policy="thompson"), 0, st).choose()
    assert d.arm == 0 and d.explored is False
    cfg = RouterConfig(policy="linucb", linucb_alpha=0.5)
    a = simulate([0.3, 0.6], 80, cfg, 1)["choices"]
    b = simulate([0.3, 0.6], 80, cfg, 1, context=lambda t: [1.0, t / 80])["choices"]
    assert list(a) == list(b)
    x = simulate([0.4, 0.6], 200, RouterConfig(), 1, noise_seed=1)["choices"]
    y = simulate([0.4, 0.6], 200, RouterConfig(), 1, noise_seed=2)["choices"]
    assert list(x) == list(simulate([0.4, 0.6], 200, RouterConfig(), 1)["choices"]) and list(x) != list(y)
