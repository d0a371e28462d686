"""Exports in the shapes public tool-calling datasets use: xLAM/APIGen, BFCL and ToolACE.

* :func:`to_xlam` -- one record of Salesforce's xlam-function-calling-60k shape: ``id`` (int), ``query``,
  ``tools`` and ``answers`` (both JSON *strings*); tool parameters are xLAM's flat map ``{name: {type,
  description, default?}}`` with Python-style type names (``str``, ``int``, ``List[str]``, ``, optional``).
* :func:`to_bfcl` -- a Berkeley Function Calling Leaderboard test entry and its possible answer:
  ``{"id", "question": [[messages]], "function": [docs]}`` with BFCL's parameter types (``dict``,
  ``float``, ``integer``, ...), and ``{"id", "ground_truth": [{name: {param: [acceptable, ...]}}]}``, where
  each parameter lists every value BFCL's AST checker should accept (``""`` marks an optional parameter
  that may be left out; a dict parameter lists ``{key: [values]}``).  The category is in the id
  (``gatling_parallel_multiple_7``), as BFCL derives it (``id.rsplit("_", 1)[0]``).
* :func:`to_toolace` -- a ToolACE conversation: ``system`` (ToolACE's prompt with the function list as
  JSON, then the domain policy) and ``conversations`` of ``{"from": user|assistant|tool, "value"}``; tool
  calls are written ``[name(param=value, ...)]`` with Python literals, results ``[{"name", "results"}]``.

xLAM and BFCL single-turn entries are one request and the calls that answer it at once; a trace's
later calls need earlier outputs the request does not contain.  So these two take the trace's
**first step** (the calls with no dependencies: what the request alone determines); ToolACE is
multi-turn and carries the whole trace.  :func:`first_step_is_whole` says when the first step is the
entire trace.

Dialogues (``meta.dialogue``): ToolACE writes every turn (the user's and the agent's words, each wave
of calls and its results).  xLAM and BFCL hold one request answered by calls, so they take a dialogue
only when it is one (:func:`single_request`: the first user message, then calls, then the closing
words -- the ``parallel`` and ``operation`` behaviours); any other dialogue (asking for missing details,
confirmation, refusal, clarification, no call) is skipped by ``gatling-sid export`` and the number
skipped is printed, never written as a single-turn entry it is not.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .exporters import _tool_names, dialogue_turns
from .models import GoldTrace, ToolSchema

__all__ = [
    "BFCL_TYPES",
    "TOOLACE_SYSTEM",
    "bfcl_category",
    "first_step_is_whole",
    "single_request",
    "to_bfcl",
    "to_toolace",
    "to_xlam",
]

BFCL_TYPES = {
    "object": "dict",
    "number": "float",
    "integer": "integer",
    "string": "string",
    "boolean": "boolean",
    "array": "array",
}
_XLAM_TYPES = {"object": "Dict[str, Any]", "number": "float", "integer": "int", "string": "str", "boolean": "bool"}
# ToolACE's system prompt, verbatim from the ToolACE data (the function list goes where {functions} is).
TOOLACE_SYSTEM = (
    "You are an expert in composing functions. You are given a question and a set of possible functions. \n"
    "Based on the question, you will need to make one or more function/tool calls to achieve the purpose. \n"
    "If none of the function can be used, point it out. If the given question lacks the parameters required by "
    "the function,\nalso point it out. You should only return the function call in tools call sections.\n"
    "Here is a list of functions in JSON format that you can invoke:\n{functions}. \n"
    "Should you decide to return the function call(s). \n"
    "Put it in the format of [func1(params_name=params_value, params_name2=params_value2...), func2(params)]\n\n"
    "NO other text MUST be included."
)


def _type(schema: Mapping[str, Any]) -> str | None:
    t = schema.get("type")
    if isinstance(t, list):  # a union: its first non-null member
        t = next((x for x in t if x != "null"), None)
    return t if isinstance(t, str) else None


def _describe(name: str, schema: Mapping[str, Any]) -> str:
    """The schema's description, else one written from its constraints (the registry has few descriptions)."""
    if isinstance(schema.get("description"), str) and schema["description"]:
        return str(schema["description"])
    bits = [name.replace("_", " ")]
    if "enum" in schema:
        bits.append("one of " + ", ".join(map(str, schema["enum"])))
    if schema.get("format") == "date":
        bits.append("a date YYYY-MM-DD")
    elif "format" in schema:
        bits.append(f"format {schema['format']}")
    if "pattern" in schema:
        bits.append(f"matching {schema['pattern']}")
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if lo is not None or hi is not None:
        bits.append(f"between {lo if lo is not None else '-inf'} and {hi if hi is not None else 'inf'}")
    if "maxLength" in schema:
        bits.append(f"at most {schema['maxLength']} characters")
    return "; ".join(bits)


def _calls(trace: GoldTrace, first_only: bool) -> list[list[tuple[str, dict[str, Any], dict[str, Any]]]]:
    """Waves of ``(tool, resolved arguments, output)``."""
    outputs = {c.id: (c.output or {}) for c in trace.graph.calls}
    waves = trace.graph.levels()
    if first_only:
        waves = waves[:1]
    return [[(c.tool, trace.graph.resolve_arguments(c, outputs), c.output or {}) for c in w] for w in waves]


def first_step_is_whole(trace: GoldTrace) -> bool:
    """True when the trace is one step of independent calls (xLAM/BFCL then hold all of it)."""
    return len(trace.graph.levels()) <= 1


def single_request(trace: GoldTrace) -> bool:
    """True when the trace is one user request answered by calls (a single-turn trace, or a dialogue
    whose only user turn is the first and whose only words of the agent are the closing line)."""
    turns = dialogue_turns(trace)
    if turns is None:
        return True
    if not turns or turns[0].get("role") != "user" or not any("calls" in t for t in turns):
        return False
    rest = turns[1:]
    return all("calls" in t for t in rest[:-1]) and bool(rest) and rest[-1].get("role") == "assistant" and "calls" not in rest[-1]


# ---- xLAM / APIGen -------------------------------------------------------------------------------


def _xlam_type(schema: Mapping[str, Any]) -> str:
    t = _type(schema)
    if t == "array":
        items = schema.get("items")
        return f"List[{_xlam_type(items) if isinstance(items, dict) else 'Any'}]"
    return _XLAM_TYPES.get(t or "", "Any")


def _xlam_tool(t: ToolSchema) -> dict[str, Any]:
    props = t.input_schema.get("properties") or {}
    required = set(t.input_schema.get("required") or ())
    params: dict[str, Any] = {}
    for name, s in props.items():
        p: dict[str, Any] = {
            "description": _describe(name, s),
            "type": _xlam_type(s) + ("" if name in required else ", optional"),
        }
        if "default" in s:
            p["default"] = s["default"]
        params[name] = p
    return {"name": t.name, "description": t.description, "parameters": params}


def to_xlam(
    trace: GoldTrace, tools: Mapping[str, ToolSchema], *, tool_list: str = "domain", record_id: int = 0
) -> dict[str, Any]:
    """One xlam-function-calling-60k record: the request and its first step of calls (see the module docstring)."""
    names = _tool_names(trace, tools, tool_list)
    answers = [{"name": tool, "arguments": args} for tool, args, _ in _calls(trace, True)[0]]
    return {
        "id": record_id,
        "query": trace.request.text,
        "answers": json.dumps(answers, ensure_ascii=False),
        "tools": json.dumps([_xlam_tool(tools[n]) for n in names], ensure_ascii=False),
    }


# ---- BFCL ----------------------------------------------------------------------------------------


def _bfcl_schema(name: str, s: Mapping[str, Any]) -> dict[str, Any]:
    t = _type(s)
    out: dict[str, Any] = {"type": BFCL_TYPES.get(t or "", "any"), "description": _describe(name, s)}
    if "enum" in s:
        out["enum"] = list(s["enum"])
    if "default" in s:
        out["default"] = s["default"]
    if t == "array" and isinstance(s.get("items"), dict):
        out["items"] = _bfcl_schema(name + " item", s["items"])
    if t == "object" and isinstance(s.get("properties"), dict):
        out["properties"] = {k: _bfcl_schema(k, v) for k, v in s["properties"].items()}
        out["required"] = list(s.get("required") or [])
    return out


def _bfcl_function(t: ToolSchema) -> dict[str, Any]:
    props = t.input_schema.get("properties") or {}
    return {
        "name": t.name,
        "description": t.description,
        "parameters": {
            "type": "dict",
            "properties": {k: _bfcl_schema(k, v) for k, v in props.items()},
            "required": list(t.input_schema.get("required") or []),
        },
    }


def _accept(value: Any) -> Any:
    """A value as BFCL's possible answers write it: a dict becomes ``{key: [value]}`` (one level, as BFCL
    nests), a list of dicts a list of such dicts; anything else stays itself."""
    if isinstance(value, dict):
        return {k: [_accept(v) if isinstance(v, dict) else v] for k, v in value.items()}
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [_accept(v) for v in value]
    return value


def _acceptable(args: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, list[Any]]:
    props = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    out: dict[str, list[Any]] = {}
    for name, s in props.items():
        if name in args:
            vals = [_accept(args[name])]
            if name not in required and "default" in s and s["default"] == args[name]:
                vals.append("")  # the default given explicitly or left out: the same call
        elif name in required:
            continue  # a gold call always has its required arguments; the checker reports it if not
        else:
            vals = [""] + ([s["default"]] if "default" in s else [])
        out[name] = vals
    return out


def bfcl_category(n_calls: int, n_functions: int) -> str:
    """BFCL's name for a step of ``n_calls`` calls with ``n_functions`` functions offered."""
    if n_calls > 1:
        return "parallel_multiple" if n_functions > 1 else "parallel"
    return "multiple" if n_functions > 1 else "simple"


def to_bfcl(
    trace: GoldTrace, tools: Mapping[str, ToolSchema], *, tool_list: str = "domain", index: int = 0
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(question entry, possible-answer entry)`` for the trace's first step (see the module docstring)."""
    names = _tool_names(trace, tools, tool_list)
    step = _calls(trace, True)[0]
    eid = f"gatling_{bfcl_category(len(step), len(names))}_{index}"
    question = {
        "id": eid,
        "question": [[{"role": "system", "content": trace.policy.render()}, {"role": "user", "content": trace.request.text}]],
        "function": [_bfcl_function(tools[n]) for n in names],
    }
    truth = [{tool: _acceptable(args, tools[tool].input_schema)} for tool, args, _ in step]
    return question, {"id": eid, "ground_truth": truth}


# ---- ToolACE -------------------------------------------------------------------------------------


def _py(v: Any) -> str:
    """A JSON value as a Python literal (what ToolACE's ``name(param=value)`` calls hold)."""
    if v is None:
        return "None"
    if v is True:
        return "True"
    if v is False:
        return "False"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # JSON string escapes are valid Python escapes
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_py(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(str(k), ensure_ascii=False)}: {_py(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"not a JSON value: {type(v).__name__}")


def _toolace_call(tool: str, args: Mapping[str, Any]) -> str:
    return f"{tool}(" + ", ".join(f"{k}={_py(v)}" for k, v in args.items()) + ")"


def _toolace_wave(wave: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> list[dict[str, str]]:
    return [
        {"from": "assistant", "value": "[" + ", ".join(_toolace_call(t, a) for t, a, _ in wave) + "]"},
        {"from": "tool", "value": json.dumps([{"name": t, "results": o} for t, _, o in wave], ensure_ascii=False)},
    ]


def to_toolace(trace: GoldTrace, tools: Mapping[str, ToolSchema], *, tool_list: str = "domain") -> dict[str, Any]:
    """A ToolACE record of the whole trace (see the module docstring)."""
    names = _tool_names(trace, tools, tool_list)
    functions = json.dumps([_bfcl_function(tools[n]) for n in names], ensure_ascii=False)
    turns = dialogue_turns(trace)
    conv: list[dict[str, str]] = []
    if turns is None:
        conv.append({"from": "user", "value": trace.request.text})
        for wave in _calls(trace, False):
            conv += _toolace_wave(wave)
        n = len(trace.graph.calls)
        conv.append(
            {"from": "assistant", "value": f"Done: {n} step{'s' if n != 1 else ''} completed under policy {trace.policy.id}."}
        )
    else:
        outputs = {c.id: (c.output or {}) for c in trace.graph.calls}
        by = {c.id: c for c in trace.graph.calls}
        for t in turns:
            if "calls" in t:
                wave = [(by[i].tool, trace.graph.resolve_arguments(by[i], outputs), by[i].output or {}) for i in t["calls"]]
                conv += _toolace_wave(wave)
            else:
                conv.append({"from": t["role"], "value": t["text"]})
    system = TOOLACE_SYSTEM.replace("{functions}", functions) + "\n\n" + trace.policy.render()
    return {"system": system, "conversations": conv}
