"""0.2 defects of the model side, against datacore's loopback FakeMessagesServer (real HTTP).

The fake judges here can fail: they read the fields shown to them and score a sample low when
its label contradicts its text or its answer is wrong (computed from the question), so a
pipeline that hides fields from its judges, or ignores their scores, stores bad samples.
"""

import hashlib
import json
import re
import textwrap

import pytest

pytest.importorskip("datacore.llm.testing")

from datacore.llm import AnthropicClient  # noqa: E402
from datacore.llm.testing import FakeMessagesServer  # noqa: E402
from routergen.errors import RoutergenError  # noqa: E402
from routergen.pipeline import run_recipe  # noqa: E402
from routergen.spec import recipe_from_text  # noqa: E402

WORDS = [
    "amber",
    "brisk",
    "cobalt",
    "dune",
    "ember",
    "fjord",
    "glint",
    "harbor",
    "iris",
    "jade",
    "koi",
    "lumen",
    "moss",
    "nimbus",
    "onyx",
    "pearl",
    "quartz",
    "rust",
    "sage",
    "tide",
]

REVIEWS = textwrap.dedent("""\
    name: reviews-v02
    task: Short reviews of kitchen gadgets with a star rating that matches the text.
    samples: 45
    batch_size: 15
    llm: {model: claude-3-5-haiku-latest, temperature: 0.7, max_tokens: 200}
    arms: [templater, naive, naive-hot]
    grammar:
      rules:
        r:
          - {text: "the {gadget} is {adj}, i use it {freq}.", set: {stars: 5}}
          - {text: "sadly the {gadget} broke after {freq} use.", set: {stars: 1}}
      slots:
        gadget: [kettle, toaster, blender, grater, whisk, scale]
        adj: [great, handy, solid, quiet, fast]
        freq: [daily, weekly, often, once]
    output:
      schema:
        type: object
        properties: {text: {type: string, minLength: 5}, stars: {type: integer, minimum: 1, maximum: 5}}
        required: [text, stars]
    validators:
      schema: {}
      exact_dedup: {}
      near_dup: {threshold: 0.9}
      faithfulness: {min_score: 0.5}
      judge: {max_items: 5}
    router: {policy: epsilon_greedy, epsilon: 1.0, decay: 0.7, cost_aware: true, cost_scale_usd: 0.001}
    """)


def _h(body) -> int:
    key = json.dumps([body["messages"], body.get("temperature")], sort_keys=True)
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)


def _consistent_review(f: dict) -> bool:
    negative = bool(re.search(r"\b(broke|sadly|awful)\b", str(f.get("text", ""))))
    return isinstance(f.get("stars"), int) and (f["stars"] <= 2) == negative


def _math_ok(f: dict) -> bool:
    m = re.search(r"has (\d+) apples and buys (\d+) more", str(f.get("question", "")))
    return m is not None and f.get("answer") == int(m.group(1)) + int(m.group(2))


def _judged(f: dict) -> bool:
    return _math_ok(f) if "question" in f else _consistent_review(f)


def handler(body):
    system = body.get("system") or ""
    user = body["messages"][-1]["content"]
    h = _h(body)
    if "design prompts" in system:
        return "Write one realistic sample as JSON."
    if "data-quality judge" in system:
        m = re.search(r"Sample \(every field, as a JSON object\):\n(\{.*?\})\n\n", user, re.S)
        if m:
            return json.dumps({"score": 0.9 if _judged(json.loads(m.group(1))) else 0.1})
        rows = re.findall(r"^\d+\. (\{.*\})$", user, re.M)
        if rows:
            ok = [_judged(json.loads(r)) for r in rows]
            return json.dumps({"score": round(0.2 + 0.7 * sum(ok) / len(ok), 3)})
        return json.dumps({"score": 0.9})  # a judge shown no fields cannot tell
    if "Slots to fill" in user:
        slots = [line[2:].split(":")[0] for line in user.split("Slots to fill:\n")[1].split("\n\n")[0].splitlines()]
        return json.dumps({s: f"{WORDS[(h >> (3 * i)) % 20]}-{h % 997}" for i, s in enumerate(slots)})
    if '"question"' in user:
        a, b = 2 + h % 50, 3 + (h >> 6) % 40
        # 2, 3: right; 1: a wrong step (arithmetic catches it); 0: steps right but the wrong
        # computation for the question (only a judge that reads question and answer catches it).
        kind = h % 4
        ans = a + b if kind in (2, 3) else (a + b + 1 if kind == 0 else a + b + 2)
        sol = {0: f"{a}+{b}+1={a + b + 1}", 1: f"{a}+{b}={a + b + 2}"}.get(kind, f"{a}+{b}={a + b}")
        return json.dumps(
            {
                "question": f"Tom has {a} apples and buys {b} more. How many apples now? #{h % 9973}",
                "solution": sol,
                "answer": ans,
            }
        )
    neg = h % 3 == 0
    text = (
        f"sadly the {WORDS[h % 20]} gadget {h % 100003} broke"
        if neg
        else f"the {WORDS[h % 20]} gadget number {h % 100003} works {WORDS[(h >> 5) % 20]}"
    )
    return "```json\n" + json.dumps({"text": text, "stars": 1 + (h >> 3) % 5}) + "\n```"


def _tool_aware(text_handler):
    """A fake model that answers a forced tool call with the JSON its text reply holds.

    The text handler sees the request's first user turn (with " (repair)" added on a repair
    round, so the answer differs); a reply that holds no JSON object stays text: no tool call,
    which routergen must repair once and then count as a failure.
    """

    def handle(body):
        choice = body.get("tool_choice")
        if not choice:
            return text_handler(body)
        msgs = body["messages"]
        # The model sees the tool's input schema as a text reply would see the schema in the prompt.
        schema = json.dumps(body["tools"][0]["input_schema"], sort_keys=True)
        text = msgs[0]["content"] + "\n" + schema + (" (repair)" if len(msgs) > 1 else "")
        view = {**body, "messages": [{"role": "user", "content": text}]}
        reply = text_handler(view)
        t = reply.strip().removeprefix("```json").removesuffix("```").strip()
        try:
            obj = json.loads(t)
        except ValueError:
            return reply
        if not isinstance(obj, dict):
            return reply
        tid = "toolu_" + hashlib.sha256(json.dumps(msgs, sort_keys=True).encode()).hexdigest()[:12]
        return {"content": [{"type": "tool_use", "id": tid, "name": choice["name"], "input": obj}]}

    return handle


def client(srv, cache, **kw) -> AnthropicClient:
    return AnthropicClient(
        api_key="test-key",
        base_url=srv.base_url,
        cache_dir=cache,
        backoff_base_s=0.005,
        backoff_max_s=0.02,
        max_retries=10,
        max_in_flight=8,
        send_temperature=True,
        api_version="2023-06-01",
        **kw,
    )


def _records(out):
    from datacore import read_jsonl

    recs = []
    for split in ("train", "val", "test"):
        for p in sorted((out / split).glob("part-*.jsonl")):
            recs.extend(read_jsonl(p))
    return sorted(recs, key=lambda r: r["meta"]["index"])


def test_temperature_reaches_the_request_body(tmp_path, monkeypatch):
    recipe = recipe_from_text(REVIEWS.replace("cost_aware: true", "cost_aware: false"), "r.yaml")
    with FakeMessagesServer(handler=_tool_aware(handler)) as srv:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", srv.base_url)
        run_recipe(recipe, tmp_path / "o", progress=False, allow_shortfall=True)  # routergen's own client
        bodies = [r["body"] for r in srv.requests]
    gen = [b for b in bodies if "Write sample" in b["messages"][-1]["content"]]
    judges = [b for b in bodies if "data-quality judge" in (b.get("system") or "")]
    assert gen and judges
    assert all("temperature" in b for b in bodies), "every request body carries its temperature"
    assert {b["temperature"] for b in gen} == {0.7, 1.0}, "naive (recipe 0.7) and naive-hot (1.0) differ"
    assert {b["temperature"] for b in judges} == {0.0}


def test_a_client_that_drops_temperature_is_refused(tmp_path):
    recipe = recipe_from_text(REVIEWS, "r.yaml")
    with FakeMessagesServer(handler=_tool_aware(handler)) as srv:
        c = AnthropicClient(api_key="k", base_url=srv.base_url, cache_dir=tmp_path / "c")
        with pytest.raises(RoutergenError, match="send_temperature=True"):
            run_recipe(recipe, tmp_path / "o", progress=False, client=c)
        c.close()


class Crash(Exception):
    pass


class CrashingClient:
    """Delegates to a real client; raises after its ``k``-th batch of requests has been answered
    (and cached), i.e. in the middle of an iteration."""

    def __init__(self, inner, k):
        self.inner, self.k = inner, k

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def complete_many(self, reqs):
        out = self.inner.complete_many(reqs)
        self.k -= 1
        if self.k == 0:
            raise Crash
        return out


def _bytes(out):
    files = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.glob("*/part-*.jsonl"))}
    for name in ("history.jsonl", "exports/samples.csv"):
        files[name] = (out / name).read_bytes()
    state = json.loads((out / "bandit_state.json").read_text())
    files["bandit"] = json.dumps({k: state[k] for k in ("arms", "pulls", "reward_sum", "step", "setup")}).encode()
    return files


def test_first_cached_and_resumed_runs_are_identical_with_cost_aware_routing(tmp_path):
    recipe = recipe_from_text(REVIEWS, "r.yaml")
    with FakeMessagesServer(handler=_tool_aware(handler)) as srv:
        with client(srv, tmp_path / "ca") as c:
            res_a = run_recipe(recipe, tmp_path / "a", progress=False, client=c)
        calls = srv.calls
        with client(srv, tmp_path / "ca") as c:  # the same cache: zero calls
            res_b = run_recipe(recipe, tmp_path / "b", progress=False, client=c)
        assert srv.calls == calls
        with client(srv, tmp_path / "cc") as c:  # a fresh cache, killed inside iteration 1
            with pytest.raises(Crash):
                run_recipe(recipe, tmp_path / "c", progress=False, client=CrashingClient(c, 4))
        with client(srv, tmp_path / "cc") as c:  # resumed: part of iteration 1 now comes from the cache
            res_c = run_recipe(recipe, tmp_path / "c", progress=False, client=c)
    assert res_a.records == res_b.records == res_c.records == 45
    a = _bytes(tmp_path / "a")
    assert a == _bytes(tmp_path / "b")
    assert a == _bytes(tmp_path / "c")
    hist = [json.loads(line) for line in (tmp_path / "a" / "history.jsonl").read_text().splitlines()]
    llm_arms = [h for h in hist if h["arm"] != "templater"]
    assert llm_arms and all(h["cost_usd"] > 0 and h["requests"] > 0 for h in llm_arms)
    # Cost-aware: the reward is below pass rate x judge by exp(-cost per sample / scale).
    import math

    for h in hist:
        base = h["pass_rate"] * (h["judge"] if h["judge"] is not None else 1.0)
        assert h["reward"] == pytest.approx(base * math.exp(-(h["cost_usd"] / h["generated"]) / 0.001), abs=2e-6)


def test_budgets_stop_at_the_same_place_in_a_cached_rerun(tmp_path):
    text = REVIEWS.replace("samples: 45", "samples: 300") + "budget: {max_calls: 150}\n"
    recipe = recipe_from_text(text, "r.yaml")
    with FakeMessagesServer(handler=_tool_aware(handler)) as srv:
        with client(srv, tmp_path / "ca") as c:
            res_a = run_recipe(recipe, tmp_path / "a", progress=False, client=c, allow_shortfall=True)
        with client(srv, tmp_path / "ca") as c:
            res_b = run_recipe(recipe, tmp_path / "b", progress=False, client=c, allow_shortfall=True)
    assert res_a.stop_reason.startswith("budget") and res_a.stop_reason == res_b.stop_reason
    assert res_a.records == res_b.records < 300
    assert _bytes(tmp_path / "a") == _bytes(tmp_path / "b")
    hist = [json.loads(line) for line in (tmp_path / "a" / "history.jsonl").read_text().splitlines()]
    state = json.loads((tmp_path / "a" / "bandit_state.json").read_text())
    assert state["setup"]["requests"] + sum(h["requests"] for h in hist) <= 150


def test_the_judge_sees_every_field_and_inconsistent_labels_are_not_stored(tmp_path):
    recipe = recipe_from_text(REVIEWS.replace("arms: [templater, naive, naive-hot]", "arms: [naive]"), "r.yaml")
    with FakeMessagesServer(handler=_tool_aware(handler)) as srv:
        with client(srv, tmp_path / "c") as c:
            res = run_recipe(recipe, tmp_path / "o", progress=False, client=c, allow_shortfall=True)
        judge_bodies = [
            r["body"]["messages"][-1]["content"] for r in srv.requests if "data-quality judge" in (r["body"].get("system") or "")
        ]
    assert any('"stars":' in u and '"text":' in u for u in judge_bodies)
    recs = _records(tmp_path / "o")
    assert len(recs) > 0
    bad = [r for r in recs if not _consistent_review(r)]
    assert bad == []
    rejected = sum(h["validator_evaluated"]["faithfulness"] - h["validator_passed"]["faithfulness"] for h in res.history)
    assert rejected > 0


MATH = textwrap.dedent("""\
    name: math-v02
    task: Grade-school math word problems with an integer answer and a short worked solution.
    samples: 30
    batch_size: 10
    llm: {model: claude-3-5-haiku-latest, temperature: 0.8}
    arms: [naive]
    output:
      text_field: question
      schema:
        type: object
        properties: {question: {type: string}, solution: {type: string}, answer: {type: integer}}
        required: [question, solution, answer]
    validators:
      schema: {}
      exact_dedup: {}
      arithmetic: {}
      faithfulness: {min_score: 0.5}
    """)


def test_math_answers_are_computed_and_wrong_ones_never_stored(tmp_path):
    recipe = recipe_from_text(MATH, "m.yaml")
    with FakeMessagesServer(handler=_tool_aware(handler)) as srv:
        with client(srv, tmp_path / "c") as c:
            res = run_recipe(recipe, tmp_path / "o", progress=False, client=c, allow_shortfall=True)
    recs = _records(tmp_path / "o")
    assert len(recs) > 0
    assert [r for r in recs if not _math_ok(r)] == []
    ev = sum(h["validator_evaluated"]["arithmetic"] for h in res.history)
    ps = sum(h["validator_passed"]["arithmetic"] for h in res.history)
    assert ev > ps > 0  # the wrong-step solutions were caught offline
    faith_rej = sum(h["validator_evaluated"]["faithfulness"] - h["validator_passed"]["faithfulness"] for h in res.history)
    assert faith_rej > 0  # right steps for the wrong computation: caught by the judge, which sees the answer
