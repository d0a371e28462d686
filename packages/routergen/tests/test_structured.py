"""Structured outputs (issue 16, New 1): NAIVE samples and slot fills by forced tool use with the
recipe's JSON schema, validated, repaired once, failures counted; against the loopback fake server.

The oracle is the fake model's own record of what it answered (valid at once, valid after the
repair, invalid twice) and jsonschema over the stored records: neither shares code with routergen.
"""

import hashlib
import json
import textwrap

import jsonschema
import orjson
import pytest

pytest.importorskip("datacore.llm.testing")

from datacore import read_jsonl  # noqa: E402
from datacore.llm import AnthropicClient  # noqa: E402
from datacore.llm.testing import FakeMessagesServer  # noqa: E402
from routergen.errors import RecipeError  # noqa: E402
from routergen.pipeline import run_recipe  # noqa: E402
from routergen.spec import recipe_from_text  # noqa: E402

SCHEMA = {
    "type": "object",
    "properties": {"text": {"type": "string", "minLength": 5}, "stars": {"type": "integer", "minimum": 1, "maximum": 5}},
    "required": ["text", "stars"],
    "additionalProperties": False,
}

NAIVE = textwrap.dedent(f"""\
    name: structured
    task: Short gadget reviews with a star rating.
    samples: 30
    batch_size: 15
    llm: {{model: claude-3-5-haiku-latest, temperature: 0.5, max_tokens: 100}}
    arms: [naive]
    output: {{schema: {json.dumps(SCHEMA)}}}
    validators: {{schema: {{}}, exact_dedup: {{}}}}
    budget: {{max_iterations: 2}}
    """)

SLOTS = textwrap.dedent("""\
    name: structured-slots
    task: Short gadget reviews.
    samples: 20
    batch_size: 10
    llm: {model: claude-3-5-haiku-latest, temperature: 0.5, max_tokens: 100}
    arms: [templater-llm]
    grammar:
      rules:
        r: ["the {gadget} is {adj} and costs {price} dollars"]
      slots:
        gadget: [kettle, toaster]
        adj: [great, handy]
        price: [10, 20]
    validators: {schema: {}, exact_dedup: {}}
    budget: {max_iterations: 2}
    """)


def _h(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


class Model:
    """A fake model that answers forced tool calls; kind = h % 3: 0 valid, 1 invalid then fixed, 2 invalid twice."""

    def __init__(self):
        self.kinds: dict[str, int] = {}
        self.tool_bodies: list[dict] = []

    def __call__(self, body):
        system = body.get("system") or ""
        if "design prompts" in system:
            return "Write one realistic gadget review."
        choice = body.get("tool_choice")
        assert choice and choice["type"] == "tool", "samples and fills must be asked for by forced tool use"
        self.tool_bodies.append(body)
        first = body["messages"][0]["content"]
        h = _h(first)
        kind = self.kinds.setdefault(first, h % 3)
        repair = len(body["messages"]) > 1
        props = body["tools"][0]["input_schema"]["properties"]
        if "stars" in props:  # a NAIVE sample
            good = {"text": f"the gadget {h % 100003} works", "stars": 1 + h % 5}
            bad = {"text": f"the gadget {h % 100003} works", "stars": "five"}
        else:  # a slot fill
            good = {s: (h % 90 + 10 if s == "price" else f"w{h % 997}{s}") for s in props}
            bad = {s: f"w{h % 997}" for s in list(props)[:1]}  # slots missing
        ok = kind == 0 or (kind == 1 and repair)
        tid = f"toolu_{h:08x}{int(repair)}"
        return {"content": [{"type": "tool_use", "id": tid, "name": choice["name"], "input": good if ok else bad}]}


def _client(srv, cache):
    return AnthropicClient(
        api_key="test-key",
        base_url=srv.base_url,
        cache_dir=cache,
        backoff_base_s=0.005,
        backoff_max_s=0.02,
        send_temperature=True,
        api_version="2023-06-01",
    )


def _records(out):
    return [r for s in ("train", "val", "test") for p in sorted((out / s).glob("part-*.jsonl")) for r in read_jsonl(p)]


def _totals(history):
    return {k: sum(h["structured"][k] for h in history) for k in ("requests", "repairs", "repaired", "ok", "failed")}


def test_naive_samples_by_forced_tool_use_repaired_once_failures_counted(tmp_path):
    recipe = recipe_from_text(NAIVE, "n.yaml")
    model = Model()
    with FakeMessagesServer(handler=model) as srv, _client(srv, tmp_path / "c") as c:
        res = run_recipe(recipe, tmp_path / "o", progress=False, client=c, allow_shortfall=True)
    # Every sample request carried the recipe's schema as the forced tool's input schema.
    firsts = [b for b in model.tool_bodies if len(b["messages"]) == 1]
    assert len(firsts) == 30
    assert all(b["tools"][0]["input_schema"] == SCHEMA for b in firsts)
    repairs = [b for b in model.tool_bodies if len(b["messages"]) > 1]
    for b in repairs:  # the repair shows the model its answer and the validator's complaint
        turn = b["messages"][-1]["content"][0]
        assert turn["type"] == "tool_result" and turn["is_error"] and "is not of type 'integer'" in turn["content"]
    kinds = list(model.kinds.values())
    expect = {
        "requests": 30,
        "repairs": kinds.count(1) + kinds.count(2),
        "repaired": kinds.count(1),
        "ok": kinds.count(0) + kinds.count(1),
        "failed": kinds.count(2),
    }
    assert 0 < expect["failed"] < 30 and expect["repaired"] > 0
    assert _totals(res.history) == expect
    assert sum(h["errors"].get("schema_invalid", 0) for h in res.history) == expect["failed"]
    # Each attempt is a priced, counted request (repairs included).
    assert sum(h["requests"] for h in res.history) == 30 + expect["repairs"]
    recs = _records(tmp_path / "o")
    assert len(recs) == expect["ok"]
    for r in recs:
        jsonschema.validate({k: v for k, v in r.items() if k not in ("id", "meta")}, SCHEMA)
    tel = orjson.loads((tmp_path / "o" / "telemetry.json").read_bytes())
    assert tel["counters"]["structured.failed"] == expect["failed"]
    assert tel["counters"]["structured.repaired"] == expect["repaired"]
    assert "Structured outputs" in (tmp_path / "o" / "report.html").read_text()


def test_slot_fills_by_forced_tool_use_with_the_slots_schema(tmp_path):
    recipe = recipe_from_text(SLOTS, "s.yaml")
    model = Model()
    with FakeMessagesServer(handler=model) as srv, _client(srv, tmp_path / "c") as c:
        res = run_recipe(recipe, tmp_path / "o", progress=False, client=c, allow_shortfall=True)
    firsts = [b for b in model.tool_bodies if len(b["messages"]) == 1]
    assert len(firsts) == 20
    sch = firsts[0]["tools"][0]["input_schema"]
    assert sch["required"] == ["gadget", "adj", "price"] and sch["additionalProperties"] is False
    assert sch["properties"]["price"]["type"] == "integer"  # typed as the derived schema types the slot
    kinds = list(model.kinds.values())
    assert _totals(res.history)["failed"] == kinds.count(2) > 0
    assert _totals(res.history)["repaired"] == kinds.count(1) > 0
    for r in _records(tmp_path / "o"):
        assert r["text"] == f"the {r['gadget']} is {r['adj']} and costs {r['price']} dollars"
        assert isinstance(r["price"], int)


def test_tool_mode_needs_an_object_schema_and_text_mode_is_named(tmp_path):
    bad = NAIVE.replace(
        f"output: {{schema: {json.dumps(SCHEMA)}}}", "output: {schema: {properties: {text: {type: string}}, required: [text]}}"
    )
    with pytest.raises(RecipeError) as e:
        recipe_from_text(bad, "b.yaml")
    assert "b.yaml:" in str(e.value) and "structured" in str(e.value)
    r = recipe_from_text(NAIVE.replace("max_tokens: 100}", "max_tokens: 100, structured: text}"), "t.yaml")
    assert r.llm is not None and r.llm.structured == "text"
    with pytest.raises(RecipeError) as e:
        recipe_from_text(NAIVE.replace("max_tokens: 100}", "max_tokens: 100, structured: json}"), "j.yaml")
    assert ":5:" in str(e.value) and "structured" in str(e.value)
