"""Training formats other than the Anthropic content blocks of :meth:`GoldTrace.to_training_format`.

* :func:`to_openai` -- OpenAI Chat Completions: ``tools`` as ``{"type": "function", "function": {...}}``,
  assistant turns with ``tool_calls`` (``arguments`` a JSON string), one ``role: "tool"`` message per
  result;
* :func:`to_hf_chat` -- the Hugging Face chat format that ``tokenizer.apply_chat_template(messages,
  tools=tools)`` takes: ``tool_calls`` with ``arguments`` as an object, ``role: "tool"`` results;
* :func:`dpo_pair` -- a preference pair from a hard negative and its gold twin: the prompt (system +
  the negative's user turn), ``chosen`` the twin's turns, ``rejected`` the negative's.

Tool-call ids are ``call`` + 5 digits (9 alphanumerics: the shape Mistral's tokenizer demands).
``parallel=False`` writes one call per assistant turn (Llama 3.1's template refuses parallel calls).
``tools``: ``"domain"`` (default) lists every tool of the trace's domain, so a model learns to
choose among distractors; ``"used"`` only the tools the trace calls.

A multi-turn dialogue (``meta.dialogue``, :mod:`gatling_sid.dialogue`) is exported turn by turn: the
user's and the agent's words, each wave of calls as an assistant turn with ``tool_calls`` followed by
its ``role: "tool"`` results (the dialogue's own closing words replace the ``Done`` line).  A DPO pair
is made from single-turn traces only (a negative's twin never is a dialogue; one that is is refused).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .models import GoldTrace, ToolSchema

__all__ = ["TOOL_LISTS", "dialogue_turns", "dpo_pair", "to_hf_chat", "to_openai"]

TOOL_LISTS = ("domain", "used")


def _tool_names(trace: GoldTrace, tools: Mapping[str, ToolSchema], which: str) -> list[str]:
    if which not in TOOL_LISTS:
        raise ValueError(f"tools: got {which!r}; allowed: {', '.join(TOOL_LISTS)}")
    used = list(dict.fromkeys(c.tool for c in trace.graph.calls))
    if which == "used":
        return [t for t in used if t in tools]
    return sorted(n for n, t in tools.items() if t.domain == trace.domain)


def _function(t: ToolSchema) -> dict[str, Any]:
    return {"name": t.name, "description": t.description, "parameters": t.input_schema}


def dialogue_turns(trace: GoldTrace) -> list[dict[str, Any]] | None:
    """The trace's dialogue turns (``meta.dialogue.turns``), or None for a single-turn trace."""
    dia = trace.meta.get("dialogue") if isinstance(trace.meta, dict) else None
    if isinstance(dia, dict) and isinstance(dia.get("turns"), list):
        return dia["turns"]
    return None


def _conversation(trace: GoldTrace, *, args_as_string: bool, parallel: bool) -> list[dict[str, Any]]:
    """Every message after the system prompt: the user's request and the turns that answer it."""
    turns = dialogue_turns(trace)
    if turns is None:
        return [{"role": "user", "content": trace.request.text}, *_turns(trace, args_as_string=args_as_string, parallel=parallel)]
    by = {c.id: c for c in trace.graph.calls}
    msgs: list[dict[str, Any]] = []
    ids = _ids(trace)
    for t in turns:
        if "calls" in t:
            waves = [[by[cid] for cid in t["calls"]]]
            if not parallel:
                waves = [[c] for c in waves[0]]
            for wave in waves:
                msgs += _wave(trace, wave, ids, args_as_string)
        else:
            msgs.append({"role": t["role"], "content": t["text"]})
    return msgs


def _ids(trace: GoldTrace) -> dict[str, str]:
    return {c.id: f"call{i:05d}" for i, c in enumerate(trace.graph.calls, 1)}


def _wave(trace: GoldTrace, wave: list[Any], ids: dict[str, str], args_as_string: bool) -> list[dict[str, Any]]:
    """One assistant turn with the wave's ``tool_calls``, then one ``role: "tool"`` result per call."""
    outputs = {c.id: (c.output or {}) for c in trace.graph.calls}
    calls = []
    for c in wave:
        args = trace.graph.resolve_arguments(c, outputs)
        calls.append(
            {
                "id": ids[c.id],
                "type": "function",
                "function": {"name": c.tool, "arguments": json.dumps(args, sort_keys=True) if args_as_string else args},
            }
        )
    msgs: list[dict[str, Any]] = [{"role": "assistant", "content": None if args_as_string else "", "tool_calls": calls}]
    for c in wave:
        msgs.append(
            {"role": "tool", "tool_call_id": ids[c.id], "name": c.tool, "content": json.dumps(c.output or {}, sort_keys=True)}
        )
    return msgs


def _turns(trace: GoldTrace, *, args_as_string: bool, parallel: bool = True) -> list[dict[str, Any]]:
    """Assistant/tool turns after the user's: one assistant turn per wave of independent calls
    (``parallel=False``: one call per turn, for templates such as Llama 3.1's that take one at a time)."""
    ids = _ids(trace)
    msgs: list[dict[str, Any]] = []
    waves = trace.graph.levels()
    if not parallel:
        waves = [[c] for w in waves for c in w]
    for wave in waves:
        msgs += _wave(trace, list(wave), ids, args_as_string)
    n = len(trace.graph.calls)
    msgs.append(
        {"role": "assistant", "content": f"Done: {n} step{'s' if n != 1 else ''} completed under policy {trace.policy.id}."}
    )
    return msgs


def to_openai(
    trace: GoldTrace, tools: Mapping[str, ToolSchema], *, tool_list: str = "domain", parallel: bool = True
) -> dict[str, Any]:
    """``{"messages", "tools"}`` for OpenAI chat fine-tuning (see the module docstring)."""
    names = _tool_names(trace, tools, tool_list)
    return {
        "messages": [
            {"role": "system", "content": trace.policy.render()},
            *_conversation(trace, args_as_string=True, parallel=parallel),
        ],
        "tools": [{"type": "function", "function": _function(tools[n])} for n in names],
    }


def to_hf_chat(
    trace: GoldTrace, tools: Mapping[str, ToolSchema], *, tool_list: str = "domain", parallel: bool = True
) -> dict[str, Any]:
    """``{"messages", "tools"}`` for ``apply_chat_template(messages, tools=tools)``."""
    names = _tool_names(trace, tools, tool_list)
    return {
        "messages": [
            {"role": "system", "content": trace.policy.render()},
            *_conversation(trace, args_as_string=False, parallel=parallel),
        ],
        "tools": [{"type": "function", "function": _function(tools[n])} for n in names],
    }


def dpo_pair(
    negative: GoldTrace, twin: GoldTrace, tools: Mapping[str, ToolSchema], *, rule: str, tool_list: str = "domain"
) -> dict[str, Any]:
    """A preference pair: same prompt (the negative's system + user turn), the twin's turns chosen."""
    for tr in (negative, twin):
        if dialogue_turns(tr) is not None:
            raise ValueError(f"{tr.trace_id}: a DPO pair is made from single-turn traces; this one is a dialogue")
    neg = to_openai(negative, tools, tool_list=tool_list)
    good = to_openai(twin, tools, tool_list=tool_list)
    return {
        "prompt": neg["messages"][:2],
        "chosen": good["messages"][2:],
        "rejected": neg["messages"][2:],
        "tools": neg["tools"],
        "rule": rule,
        "twin_id": twin.trace_id,
    }
