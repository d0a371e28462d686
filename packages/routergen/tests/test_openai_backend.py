"""A second protocol (issue 16, New 5): `llm.backend: openai` runs the loop against an
OpenAI-compatible chat-completions endpoint (datacore.llm.OpenAIClient), here the fake server's."""

import hashlib
import json
import textwrap

import orjson
import pytest

pytest.importorskip("openai")
pytest.importorskip("datacore.llm.testing")

from datacore import read_jsonl  # noqa: E402
from datacore.llm.testing import FakeMessagesServer  # noqa: E402
from routergen.errors import RoutergenError  # noqa: E402
from routergen.pipeline import run_recipe  # noqa: E402
from routergen.spec import GenerationContext, recipe_from_text  # noqa: E402

RECIPE = textwrap.dedent("""\
    name: openai-backend
    task: Short gadget reviews with a star rating.
    samples: 20
    batch_size: 10
    llm: {backend: openai, model: local-qwen, temperature: 0.6, max_tokens: 100, prices: {local-qwen: [0.1, 0.2]}}
    arms: [naive, naive-hot]
    output:
      schema:
        type: object
        properties: {text: {type: string}, stars: {type: integer, minimum: 1, maximum: 5}}
        required: [text, stars]
    validators: {schema: {}, exact_dedup: {}}
    router: {policy: epsilon_greedy, epsilon: 1.0, decay: 0.5, cost_aware: true, cost_scale_usd: 0.001}
    """)


def handler(body):
    assert "model" in body and isinstance(body["messages"], list)  # a chat-completions body
    if not body.get("tools"):
        return "Write one realistic gadget review."  # the planner
    tool = body["tools"][0]
    assert tool["type"] == "function" and tool["function"]["parameters"]["required"] == ["text", "stars"]
    h = int(hashlib.sha256(json.dumps([body["messages"], body.get("temperature")], sort_keys=True).encode()).hexdigest()[:8], 16)
    obj = {"text": f"gadget {h % 1000003} is fine", "stars": 1 + h % 5}
    if h % 5 == 0 and len(body["messages"]) <= 3:  # an invalid first answer: the repair round fixes it
        obj["stars"] = "five"
    return {"tool_calls": [{"name": tool["function"]["name"], "arguments": obj}]}


def _data(out):
    return [p.read_bytes() for s in ("train", "val", "test") for p in sorted((out / s).glob("*.jsonl"))] + [
        (out / "history.jsonl").read_bytes()
    ]


def test_openai_backend_runs_the_loop_through_chat_completions(tmp_path, monkeypatch):
    recipe = recipe_from_text(RECIPE, "o.yaml")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    ctx = GenerationContext.from_recipe(recipe)
    assert not ctx.has_llm and "OPENAI_BASE_URL" in ctx.llm_reason
    with FakeMessagesServer(handler=handler) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.openai_base_url)  # a local server: no key needed
        res = run_recipe(recipe, tmp_path / "a", progress=False)
        first_calls = srv.calls
        paths = {r["path"] for r in srv.requests}
        res_b = run_recipe(recipe, tmp_path / "b", progress=False, cache_dir=tmp_path / "a" / "llm-cache")
        assert srv.calls == first_calls  # the cached re-run makes zero calls
    assert paths == {"/v1/chat/completions"}
    assert res.records == 20 and res_b.records == 20
    assert _data(tmp_path / "a") == _data(tmp_path / "b")  # byte-identical, cost-aware routing on
    hist = [orjson.loads(x) for x in (tmp_path / "a" / "history.jsonl").read_bytes().splitlines()]
    assert sum(h["cost_usd"] for h in hist) > 0  # priced from usage with the recipe's price
    assert sum(h["structured"]["repaired"] for h in hist) > 0  # tool calls repaired once on this protocol too
    recs = [r for s in ("train", "val", "test") for p in sorted((tmp_path / "a" / s).glob("*.jsonl")) for r in read_jsonl(p)]
    assert all(isinstance(r["stars"], int) for r in recs)
    with pytest.raises(RoutergenError, match="Message Batches"):
        run_recipe(recipe, tmp_path / "c", progress=False, execution="batch", client=object())
