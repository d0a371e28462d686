"""LLM arms and validators against datacore's FakeMessagesServer (a real HTTP server)."""

import hashlib
import json
import re
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("datacore.llm.testing")

from datacore.llm import AnthropicClient  # noqa: E402
from datacore.llm.testing import FakeMessagesServer  # noqa: E402
from routergen.llm import parse_json_object  # noqa: E402
from routergen.pipeline import run_recipe  # noqa: E402
from routergen.spec import recipe_from_text  # noqa: E402

RECIPE = textwrap.dedent("""\
    name: llm-test
    task: Short reviews of kitchen gadgets.
    samples: 60
    batch_size: 15
    llm: {model: claude-3-5-haiku-latest, temperature: 0.7, max_tokens: 200}
    arms: [templater, templater-llm, naive]
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
      distinct_n: {}
      judge: {max_items: 5}
    router: {policy: epsilon_greedy, epsilon: 1.0, decay: 0.7}
    """)

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


def _h(body) -> int:
    return int(hashlib.sha256(json.dumps(body["messages"], sort_keys=True).encode()).hexdigest()[:8], 16)


def handler(body):
    system = body.get("system") or ""
    user = body["messages"][-1]["content"]
    h = _h(body)
    if "design prompts" in system:
        return "Write one realistic gadget review as JSON with text and stars."
    if "data-quality judge" in system:
        # A judge that can fail: it reads the fields it is shown and scores a rating that
        # contradicts the text low (this file's naive samples are all positive).
        m = re.search(r"Sample \(every field, as a JSON object\):\n(\{.*?\})\n\n", user, re.S)
        rows = [json.loads(m.group(1))] if m else [json.loads(r) for r in re.findall(r"^\d+\. (\{.*\})$", user, re.M)]
        if not rows:
            return json.dumps({"score": 0.0})
        ok = [("broke" in f.get("text", "")) == (f.get("stars", 0) <= 2) for f in rows]
        return json.dumps({"score": 0.9 if all(ok) else round(0.1 + 0.8 * sum(ok) / len(ok), 3)})
    if h % 10 == 0:
        return "Sure! Here is your review: great kettle"  # not JSON: a counted failed sample
    if "Slots to fill" in user:
        slots = [line[2:].split(":")[0] for line in user.split("Slots to fill:\n")[1].split("\n\n")[0].splitlines()]
        return json.dumps({s: f"{WORDS[(h >> (3 * i)) % 20]}-{h % 997}" for i, s in enumerate(slots)})
    return (
        "```json\n"
        + json.dumps({"text": f"the {WORDS[h % 20]} gadget number {h % 100003} works {WORDS[(h >> 5) % 20]}", "stars": 1 + h % 5})
        + "\n```"
    )


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


def client(srv, cache: Path) -> AnthropicClient:
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
    )


def test_parse_json_object():
    assert parse_json_object('{"a": 1}') == {"a": 1}
    assert parse_json_object('```json\n{"a": 1}\n```') == {"a": 1}
    assert parse_json_object("[1, 2]") is None
    assert parse_json_object('Sure: {"a": 1}') is None


def test_fault_injection_no_loss_no_duplicates_and_cached_rerun(tmp_path, dataset_bytes, all_records):
    recipe = recipe_from_text(RECIPE, "llm.yaml")
    cache = tmp_path / "cache"
    with FakeMessagesServer(handler=_tool_aware(handler), fault_rate=0.2, faults=("429", "529"), seed=0) as srv:
        c1 = client(srv, cache)
        res = run_recipe(recipe, tmp_path / "a", progress=False, client=c1)
        calls_first = srv.calls
        assert sum(srv.faults_injected.values()) > 0
        recs = all_records(tmp_path / "a")
        assert res.records == 60 and len(recs) == 60
        assert len({r["text"] for r in recs}) == 60  # nothing duplicated
        assert [r["meta"]["index"] for r in recs] == list(range(60))  # nothing lost
        arms = {h["arm"] for h in res.history}
        assert len(arms) >= 2
        errors = {}
        for h in res.history:
            for k, v in h["errors"].items():
                errors[k] = errors.get(k, 0) + v
        # Retries absorbed every 429/529; the non-JSON replies were counted and the run went on.
        assert not any(k.startswith("llm_error") for k in errors), errors
        # At least two arms ran, so at least one model arm did, and its non-JSON replies were counted.
        # (Forced tool use: a reply without the tool call is repaired once; one still wrong is a failure.)
        structured = {k: sum(h["structured"][k] for h in res.history if "structured" in h) for k in ("repairs", "failed")}
        assert structured["repairs"] > 0
        assert errors.get("schema_invalid", 0) + errors.get("invalid_json", 0) == structured["failed"]
        models = {r["meta"]["model"] for r in recs}
        assert "procedural" in models or "claude-3-5-haiku-latest" in models
        for r in recs:
            if r["meta"]["model"] != "procedural":
                assert "faithfulness" in r["meta"]["scores"]
            assert ("broke" in r["text"]) == (r["stars"] <= 2), r  # the judge's verdicts were applied
        c1.close()

        # Identical re-run into a new directory: the cache answers everything, byte-identical data.
        c2 = client(srv, cache)
        res2 = run_recipe(recipe, tmp_path / "b", progress=False, client=c2)
        assert srv.calls == calls_first, "a cached re-run must make zero model calls"
        assert res2.llm_counters.get("llm.calls", 0) == 0
        assert dataset_bytes(tmp_path / "a") == dataset_bytes(tmp_path / "b")
        c2.close()


def test_offline_flag_skips_llm_arms_and_validators(tmp_path):
    recipe = recipe_from_text(RECIPE, "llm.yaml")
    with FakeMessagesServer(handler=_tool_aware(handler)) as srv:
        res = run_recipe(recipe, tmp_path / "o", offline=True, progress=False, client=client(srv, tmp_path / "c"))
        assert srv.calls == 0
    assert {h["arm"] for h in res.history} == {"templater"}
    html = (tmp_path / "o" / "report.html").read_text()
    assert "skipped: no model available" in html
