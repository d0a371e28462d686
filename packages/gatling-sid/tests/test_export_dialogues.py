"""Exports of records that carry a multi-turn dialogue (``meta.dialogue``, ``generate --dialogues``).

Every format either writes the whole conversation (openai, hf, toolace) or skips the dialogue and
counts it (xlam, bfcl: single-turn entries), never a silently single-turn version of it.  The oracle
is the dialogue's own turn list read directly from the record and the peers' parsers in
tests/fixtures/stacks.py (the chat templates, the OpenAI SDK types, Python's parser for ToolACE calls).
"""

import json
import random
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from gatling_sid import TraceFormatError
from gatling_sid.cli import main
from gatling_sid.dialogue import BEHAVIOURS, DialogueMaker
from gatling_sid.export_cli import bfcl_answer_path, export_dataset

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import stacks  # noqa: E402

SINGLE_REQUEST = {"parallel", "operation"}  # one user request answered by calls


@pytest.fixture(scope="module")
def dialogues(registry):
    rng = random.Random(17)
    dm = DialogueMaker()
    return [dm.make(rng, f"d-{b}-{i}", b) for b in BEHAVIOURS for i in range(3)]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, dialogues, traces):
    ds = tmp_path_factory.mktemp("dia") / "mixed.jsonl"
    recs = [{**t.to_dict(), "label": "gold"} for t in [*traces[:6], *dialogues]]
    ds.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return ds


def _record_turns(rec):
    return rec["meta"]["dialogue"]["turns"]


def _expected(tr):
    """The dialogue's calls in the order its turns make them, with concrete arguments (from the record)."""
    outputs = {c.id: c.output for c in tr.graph.calls}
    by = {c.id: c for c in tr.graph.calls}
    turns = tr.meta["dialogue"]["turns"]
    return [(by[i].tool, tr.graph.resolve_arguments(by[i], outputs)) for t in turns if "calls" in t for i in t["calls"]]


def _words(turns):
    return [(t["role"], t["text"]) for t in turns if "calls" not in t]


def _lines(p):
    return [json.loads(x) for x in p.read_text().splitlines()]


def test_openai_and_hf_write_every_turn(tmp_path, dataset, dialogues, registry):
    for fmt in ("openai", "hf"):
        out = tmp_path / f"{fmt}.jsonl"
        stats = {}
        assert export_dataset(dataset, out, fmt, registry, stats=stats) == 6 + len(dialogues)
        assert stats["skipped_dialogues"] == 0
        recs = _lines(out)[6:]
        for tr, rec in zip(dialogues, recs, strict=True):
            msgs = rec["messages"]
            assert msgs[0]["role"] == "system"
            words = [(m["role"], m["content"]) for m in msgs[1:] if m["role"] != "tool" and not m.get("tool_calls")]
            assert words == _words(tr.meta["dialogue"]["turns"]), tr.trace_id
            for i, m in enumerate(msgs):  # every tool result answers a call of the assistant turn before it
                if m["role"] == "tool":
                    j = i - 1
                    while msgs[j]["role"] == "tool":
                        j -= 1
                    assert m["tool_call_id"] in {c["id"] for c in msgs[j]["tool_calls"]}
            if fmt == "openai" and _has_openai():
                assert stacks.load_openai(rec) == _expected(tr)
        if fmt == "hf":
            for template in stacks.TEMPLATES:
                par = not template.startswith("llama")  # Llama 3.1: one call per turn
                for tr in dialogues:
                    rec = json.loads(json.dumps(_hf(tr, registry, par)))  # as read back from JSONL
                    assert stacks.load_hf(template, rec) == _expected(tr), (template, tr.trace_id)
                    text = stacks.render(template, rec["messages"], rec["tools"])
                    for role, words in _words(tr.meta["dialogue"]["turns"]):
                        assert words in text, (template, role)


def _hf(tr, registry, parallel):
    from gatling_sid.exporters import to_hf_chat

    return to_hf_chat(tr, registry.tools, parallel=parallel)


def _has_openai():
    try:
        import openai  # noqa: F401
    except ImportError:
        return False
    return True


def test_toolace_writes_every_turn(tmp_path, dataset, dialogues, registry):
    out = tmp_path / "toolace.jsonl"
    assert export_dataset(dataset, out, "toolace", registry) == 6 + len(dialogues)
    for tr, rec in zip(dialogues, _lines(out)[6:], strict=True):
        conv = rec["conversations"]
        turns = tr.meta["dialogue"]["turns"]
        calls_at = [i for i, t in enumerate(conv) if i + 1 < len(conv) and conv[i + 1]["from"] == "tool"]
        got = [c for i in calls_at for c in stacks.parse_python_calls(conv[i]["value"])]
        assert got == _expected(tr)
        words = [(t["from"], t["value"]) for i, t in enumerate(conv) if t["from"] != "tool" and i not in calls_at]
        assert words == _words(turns)
        assert conv[0]["from"] == "user" and conv[-1]["from"] == "assistant"


def test_xlam_and_bfcl_skip_multi_turn_dialogues_and_count_them(tmp_path, dataset, dialogues, registry):
    single = [t for t in dialogues if t.meta["dialogue"]["behaviour"] in SINGLE_REQUEST]
    skipped = len(dialogues) - len(single)
    for fmt in ("xlam", "bfcl"):
        out = tmp_path / f"{fmt}.jsonl"
        stats = {}
        assert export_dataset(dataset, out, fmt, registry, stats=stats) == 6 + len(single)
        assert stats["skipped_dialogues"] == skipped
        recs = _lines(out)
        if fmt == "xlam":
            for tr, rec in zip(single, recs[6:], strict=True):
                first = tr.meta["dialogue"]["turns"][1]["calls"]
                assert rec["query"] == tr.meta["dialogue"]["turns"][0]["text"]
                assert stacks.load_xlam(rec) == _expected(tr)[: len(first)]
        else:
            answers = _lines(bfcl_answer_path(out))
            assert len(answers) == len(recs)
            assert all(stacks.load_bfcl(p) for p in zip(recs, answers, strict=True))
    # the CLI says how many it skipped
    res = CliRunner().invoke(main, ["export", str(dataset), "--format", "xlam", "--out", str(tmp_path / "c.jsonl")])
    assert res.exit_code == 0, res.output
    assert f"{6 + len(single)} xlam records" in res.output and f"{skipped} multi-turn dialogues skipped" in res.output


def test_dpo_refuses_a_dialogue_twin(tmp_path, dialogues, mutator, traces, registry):
    rng = random.Random(3)
    neg = next(n for n in (mutator.mutate(t, rng) for t in traces[:50]) if n is not None)
    twin = next(t for t in dialogues if t.meta["dialogue"]["behaviour"] == "operation")
    rec = neg.to_dict()
    rec["negative"]["twin_id"] = twin.trace_id
    ds = tmp_path / "d.jsonl"
    ds.write_text(json.dumps({**twin.to_dict(), "label": "gold"}) + "\n" + json.dumps(rec) + "\n")
    out = tmp_path / "dpo.jsonl"
    with pytest.raises(TraceFormatError, match=r"d\.jsonl:2: .*dialogue"):
        export_dataset(ds, out, "dpo", registry)
    assert not out.exists() and not Path(str(out) + ".tmp").exists()
