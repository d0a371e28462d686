"""Issue 17 item 7 (part): OpenAI tool_calls, HF chat through a real jinja2 chat template with tools=, DPO pairs,
the domain's full tool list as distractors."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from datacore import build_dataset, read_jsonl
from gatling_sid import GatlingConfig, GatlingGenerator
from gatling_sid.exporters import to_hf_chat, to_openai

jinja2 = pytest.importorskip("jinja2")
from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: E402

TEMPLATE = (Path(__file__).parent / "data" / "chat_template_tools.jinja").read_text()


def render(messages, tools):
    """What transformers' apply_chat_template does: a sandboxed env, trim/lstrip blocks, json tojson."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.filters["tojson"] = lambda x, **kw: json.dumps(x, ensure_ascii=False)
    return env.from_string(TEMPLATE).render(messages=messages, tools=tools, add_generation_prompt=False)


def test_hf_chat_renders_calls_as_json_through_the_template(traces, registry):
    for tr in traces[:60]:
        rec = to_hf_chat(tr, registry.tools)
        text = render(rec["messages"], rec["tools"])
        blocks = re.findall(r"<tool_call>\n(.*?)\n</tool_call>", text, re.S)
        assert len(blocks) == len(tr.graph.calls)
        outputs = {c.id: c.output for c in tr.graph.calls}
        want = [(c.tool, tr.graph.resolve_arguments(c, outputs)) for wave in tr.graph.levels() for c in wave]
        got = [(json.loads(b)["name"], json.loads(b)["arguments"]) for b in blocks]
        assert got == want
        assert "{'" not in text and "'type': 'tool_use'" not in text  # no Python repr of content blocks
        listed = re.search(r"<tools>\n(.*?)\n</tools>", text, re.S).group(1).splitlines()
        assert len(listed) == len(registry.domains[tr.domain].tools)  # the full list: distractors included


def test_openai_shape_ids_and_tool_lists(traces, registry):
    for tr in traces[:100]:
        rec = to_openai(tr, registry.tools)
        assert rec["messages"][0]["role"] == "system" and rec["messages"][1] == {"role": "user", "content": tr.request.text}
        open_ids = set()
        n_calls = 0
        for m in rec["messages"][2:]:
            if m["role"] == "assistant" and "tool_calls" in m:
                for tc in m["tool_calls"]:
                    assert re.fullmatch(r"[A-Za-z0-9]{9}", tc["id"])  # what Mistral's tokenizer accepts
                    assert tc["type"] == "function" and isinstance(json.loads(tc["function"]["arguments"]), dict)
                    open_ids.add(tc["id"])
                    n_calls += 1
            elif m["role"] == "tool":
                assert m["tool_call_id"] in open_ids and isinstance(json.loads(m["content"]), dict)
        assert n_calls == len(tr.graph.calls) and rec["messages"][-1]["role"] == "assistant"
        names = {t["function"]["name"] for t in rec["tools"]}
        assert names == set(registry.domains[tr.domain].tools)
        used = {t["function"]["name"] for t in to_openai(tr, registry.tools, tool_list="used")["tools"]}
        assert used == {c.tool for c in tr.graph.calls}


def test_cli_export_dpo_pairs(tmp_path, registry):
    ds = tmp_path / "ds"
    build_dataset(GatlingGenerator(GatlingConfig(negatives=0.5)), ds, 60, 3, shard_size=30, executor="inline", progress=False)
    recs = {r["trace_id"]: r for p in sorted(ds.rglob("*.jsonl")) for r in read_jsonl(p)}
    exe = Path(sys.executable).parent / "gatling-sid"
    env = {**os.environ, "DATACORE_NO_PROGRESS": "1"}
    for fmt in ("dpo", "openai", "hf"):
        res = subprocess.run(
            [str(exe), "export", str(ds), "--format", fmt, "--out", str(tmp_path / f"{fmt}.jsonl")],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert res.returncode == 0, res.stderr
    pairs = [json.loads(x) for x in (tmp_path / "dpo.jsonl").read_text().splitlines()]
    negs = [r for r in recs.values() if r["label"] == "negative"]
    assert len(pairs) == len(negs) > 5
    for p in pairs:
        twin = recs[p["twin_id"]]
        assert p["chosen"] != p["rejected"]
        assert p["prompt"][0]["role"] == "system" and p["prompt"][1]["role"] == "user"
        n_chosen = sum(len(m.get("tool_calls") or []) for m in p["chosen"])
        assert n_chosen == len(twin["graph"]["calls"])
    gold = [r for r in recs.values() if r["label"] == "gold"]
    assert len((tmp_path / "openai.jsonl").read_text().splitlines()) == len(gold)
