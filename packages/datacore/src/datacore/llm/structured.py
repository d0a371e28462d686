"""Structured output: ask for JSON that validates against a JSON Schema, with one repair round.

Three ways to ask: ``method="text"`` adds the schema to the system prompt and parses the reply text
(tolerating a code fence or a sentence around the JSON); ``method="tool"`` forces a call to a tool
whose ``input_schema`` is the schema, and validates the tool input; ``method="json_schema"`` (the
OpenAI backend only) sends the schema as the chat-completions ``response_format`` and parses the
reply text.  If the answer is not valid,
the model is shown its answer and the validator's complaints once; an answer still invalid after
that is a counted failure (``llm.json.failed``), returned with ``error_kind="schema"``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import jsonschema

from .types import LLMConfigError, LLMRequest, LLMResponse, canonical_json

__all__ = ["acomplete_json", "extract_json", "schema_problems"]

TOOL_NAME = "emit_json"


def _validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    if not isinstance(schema, dict):
        raise LLMConfigError(f"complete_json schema: expected a JSON Schema object (dict), got {type(schema).__name__}")
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "(root)"
        raise LLMConfigError(f"complete_json schema at {where}: not a valid JSON Schema: {e.message}") from None
    return cls(schema)


def extract_json(text: str) -> Any:
    """The JSON value in a reply: the whole text, a fenced block, or the first ``{``/``[`` value; raises ValueError."""
    s = text.strip()
    try:
        return json.loads(s)
    except ValueError:
        pass
    if "```" in s:
        parts = s.split("```")
        for block in parts[1::2]:
            body = block.split("\n", 1)[1] if "\n" in block and not block.lstrip().startswith(("{", "[")) else block
            try:
                return json.loads(body.strip())
            except ValueError:
                continue
    dec = json.JSONDecoder()
    for i, ch in enumerate(s):
        if ch in "{[":
            try:
                return dec.raw_decode(s, i)[0]
            except ValueError:
                continue
    raise ValueError("no JSON value found in the reply")


def schema_problems(validator: Any, obj: Any, limit: int = 3) -> list[str]:
    """Up to ``limit`` validation errors as ``path: message`` lines (empty when valid)."""
    out = []
    for err in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))[:limit]:
        where = "/".join(str(p) for p in err.absolute_path) or "(root)"
        out.append(f"{where}: {err.message}")
    return out


def _instruct(req: LLMRequest, schema: dict[str, Any], method: str) -> LLMRequest:
    if method == "tool":
        if schema.get("type") != "object":
            raise LLMConfigError(
                'complete_json(method="tool"): the schema must have "type": "object" (a tool input is an object)'
            )
        tool = {"name": TOOL_NAME, "description": "Return the answer as this tool's input.", "input_schema": schema}
        return attrs.evolve(req, tools=[*(req.tools or []), tool], tool_choice={"type": "tool", "name": TOOL_NAME})
    if method == "json_schema":
        # Chat-completions structured output (OpenAI, vLLM guided decoding, llama.cpp grammars):
        # the server constrains the reply text to the schema; it is still validated here.
        fmt = {"type": "json_schema", "json_schema": {"name": TOOL_NAME, "schema": schema, "strict": False}}
        return attrs.evolve(req, response_format=fmt)
    if method != "text":
        raise LLMConfigError(f"complete_json method: expected 'text', 'tool' or 'json_schema', got {method!r}")
    note = "Reply with only a JSON value (no prose, no code fence) that is valid against this JSON Schema:\n" + canonical_json(
        schema
    )
    if req.system is None:
        system: Any = note
    elif isinstance(req.system, str):
        system = req.system + "\n\n" + note
    else:
        system = [*req.system, {"type": "text", "text": note}]
    return attrs.evolve(req, system=system)


def _check(resp: LLMResponse, method: str, validator: Any) -> tuple[Any, str | None, str | None]:
    """(obj, problem, tool_use_id): problem is None when obj is valid."""
    tool_id = None
    if method == "tool":
        uses = [u for u in resp.tool_uses if u.get("name") == TOOL_NAME]
        if not uses:
            return None, f"no call to the {TOOL_NAME} tool in the reply", None
        tool_id = uses[0].get("id")
        obj = uses[0].get("input")
    else:
        try:
            obj = extract_json(resp.text)
        except ValueError as e:
            return None, f"the reply is not JSON ({e})", None
    problems = schema_problems(validator, obj)
    return obj, ("; ".join(problems) if problems else None), tool_id


def _repair_request(req: LLMRequest, resp: LLMResponse, problem: str, tool_id: str | None) -> LLMRequest:
    assistant: Any = resp.content or (resp.text or "(empty reply)")
    msg = f"That answer is invalid: {problem}. Reply again with only the corrected JSON."
    if tool_id is not None:
        user: Any = [{"type": "tool_result", "tool_use_id": tool_id, "content": msg, "is_error": True}]
    else:
        user = msg
    return attrs.evolve(
        req, messages=[*req.messages, {"role": "assistant", "content": assistant}, {"role": "user", "content": user}]
    )


async def acomplete_json(
    run_one: Callable[[LLMRequest], Awaitable[LLMResponse]],
    count: Callable[[str], None],
    req: LLMRequest,
    schema: dict[str, Any],
    *,
    method: str = "text",
) -> tuple[Any, LLMResponse]:
    """Drive one structured request through ``run_one`` (a client's single-request coroutine)."""
    validator = _validator(schema)
    first = _instruct(req, schema, method)
    count("llm.json.requests")
    resp = await run_one(first)
    if not resp.ok:
        count("llm.json.failed")
        return None, resp
    obj, problem, tool_id = _check(resp, method, validator)
    if problem is None:
        count("llm.json.ok")
        return obj, resp
    count("llm.json.repairs")
    resp2 = await run_one(_repair_request(first, resp, problem, tool_id))
    if not resp2.ok:
        count("llm.json.failed")
        return None, resp2
    obj2, problem2, _ = _check(resp2, method, validator)
    if problem2 is None:
        count("llm.json.ok")
        count("llm.json.repaired")
        return obj2, resp2
    count("llm.json.failed")
    return None, attrs.evolve(resp2, error=f"schema: still invalid after one repair round: {problem2}"[:500], error_kind="schema")
