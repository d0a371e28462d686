"""Translation between this layer's requests (Anthropic Messages format) and OpenAI chat completions.

Requests: ``system`` becomes a leading ``system`` message; text blocks become text content parts
(one text block: a plain string); ``image`` blocks (base64 or URL source) become ``image_url``
parts; an assistant's ``tool_use`` blocks become its ``tool_calls`` (input JSON-encoded as
``arguments``); a user's ``tool_result`` blocks become ``tool`` messages placed right after
that assistant turn, as the protocol requires.  Tools ``{name, description, input_schema}``
become ``{"type": "function", "function": {name, description, parameters}}``; ``tool_choice``
``auto``/``any``/``tool``/``none`` becomes ``"auto"``/``"required"``/the named function/``"none"``.

Responses: the first choice's text and tool calls come back as Anthropic-style content blocks
(``text``, ``tool_use`` with the parsed arguments as ``input``), so the structured-output repair
turn and callers that append ``resp.content`` as an assistant turn work unchanged on either
backend.  ``finish_reason`` maps to ``stop_reason``: ``stop`` -> ``end_turn``, ``length`` ->
``max_tokens``, ``tool_calls`` -> ``tool_use`` (others are kept as sent).

Anything without a chat-completions equivalent (another block type, a server tool without an
``input_schema``) is refused with an :class:`~datacore.llm.LLMConfigError` naming the field.
"""

from __future__ import annotations

import json
from typing import Any

from .types import LLMConfigError, LLMRequest, LLMResponse, Usage

__all__ = ["from_chat_completion", "to_chat_params"]

_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use"}


def _text_of(content: Any, where: str) -> str:
    """The text of a tool result / system prompt given as a string or a list of text blocks."""
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, list):
        parts = []
        for j, b in enumerate(content):
            if not isinstance(b, dict) or b.get("type") != "text":
                kind = b.get("type") if isinstance(b, dict) else type(b).__name__
                raise LLMConfigError(f"{where}[{j}].type: only text blocks can be sent here over chat completions, got {kind!r}")
            parts.append(str(b.get("text", "")))
        return "\n\n".join(parts)
    raise LLMConfigError(f"{where}: expected a string or a list of text blocks, got {type(content).__name__}")


def _image_part(b: dict[str, Any], where: str) -> dict[str, Any]:
    src = b.get("source") or {}
    if src.get("type") == "base64":
        url = f"data:{src.get('media_type', 'image/png')};base64,{src.get('data', '')}"
    elif src.get("type") == "url":
        url = str(src.get("url", ""))
    else:
        raise LLMConfigError(f"{where}.source.type: expected 'base64' or 'url', got {src.get('type')!r}")
    return {"type": "image_url", "image_url": {"url": url}}


def _user_message(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tool_msgs: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, b in enumerate(content):
        at = f"{where}.content[{j}]"
        kind = b.get("type") if isinstance(b, dict) else None
        if kind == "text":
            parts.append({"type": "text", "text": str(b.get("text", ""))})
        elif kind == "image":
            parts.append(_image_part(b, at))
        elif kind == "tool_result":
            text = _text_of(b.get("content"), f"{at}.content")
            if b.get("is_error"):
                text = f"Error: {text}"
            tool_msgs.append({"role": "tool", "tool_call_id": str(b.get("tool_use_id", "")), "content": text})
        else:
            raise LLMConfigError(f"{at}.type: {kind!r} has no chat-completions equivalent (text, image, tool_result)")
    out = list(tool_msgs)
    if len(parts) == 1 and parts[0]["type"] == "text":
        out.append({"role": "user", "content": parts[0]["text"]})
    elif parts:
        out.append({"role": "user", "content": parts})
    return out


def _assistant_message(content: Any, where: str) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, b in enumerate(content):
        kind = b.get("type") if isinstance(b, dict) else None
        if kind == "text":
            texts.append(str(b.get("text", "")))
        elif kind == "tool_use":
            inp = b.get("input")
            args = inp if isinstance(inp, str) else json.dumps(inp if inp is not None else {}, ensure_ascii=False)
            calls.append({"id": str(b.get("id", "")), "type": "function", "function": {"name": b.get("name"), "arguments": args}})
        elif kind in ("thinking", "redacted_thinking"):
            continue  # reasoning of an earlier turn is not sent back over chat completions
        else:
            raise LLMConfigError(f"{where}.content[{j}].type: {kind!r} has no chat-completions equivalent (text, tool_use)")
    msg: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        msg["tool_calls"] = calls
    return msg


def _tool(t: dict[str, Any], i: int) -> dict[str, Any]:
    if t.get("type") == "function" and isinstance(t.get("function"), dict):
        return t  # already in chat-completions form
    if "input_schema" not in t:
        raise LLMConfigError(
            f"LLMRequest.tools[{i}]: {t.get('name')!r} has no input_schema (a server tool?); chat completions needs a function"
        )
    fn: dict[str, Any] = {"name": t["name"], "parameters": t["input_schema"]}
    if t.get("description"):
        fn["description"] = t["description"]
    return {"type": "function", "function": fn}


def _tool_choice(tc: dict[str, Any]) -> Any:
    kind = tc.get("type")
    if kind == "auto":
        return "auto"
    if kind == "any":
        return "required"
    if kind == "none":
        return "none"
    if kind == "tool":
        return {"type": "function", "function": {"name": tc.get("name")}}
    if kind == "function":
        return tc
    raise LLMConfigError(f"LLMRequest.tool_choice.type: expected auto, any, tool or none, got {kind!r}")


def to_chat_params(req: LLMRequest, *, send_temperature: bool = True) -> dict[str, Any]:
    """Keyword arguments for ``client.chat.completions.create`` (see the module docstring)."""
    messages: list[dict[str, Any]] = []
    if req.system is not None:
        messages.append({"role": "system", "content": _text_of(req.system, "LLMRequest.system")})
    for i, m in enumerate(req.messages):
        where = f"LLMRequest.messages[{i}]"
        if m["role"] == "user":
            messages.extend(_user_message(m["content"], where))
        else:
            messages.append(_assistant_message(m["content"], where))
    p: dict[str, Any] = {"model": req.model, "messages": messages, "max_tokens": req.max_tokens}
    if send_temperature:
        p["temperature"] = float(req.temperature)
    if req.tools is not None:
        p["tools"] = [_tool(t, i) for i, t in enumerate(req.tools)]
    if req.tool_choice is not None:
        p["tool_choice"] = _tool_choice(req.tool_choice)
        if req.tool_choice.get("disable_parallel_tool_use"):
            p["parallel_tool_calls"] = False
    if req.response_format is not None:
        p["response_format"] = req.response_format
    return p


def _parse_arguments(args: Any) -> Any:
    if not isinstance(args, str):
        return args
    try:
        return json.loads(args)
    except ValueError:
        return args  # kept as the raw string: schema validation reports it, the repair turn shows it


def from_chat_completion(completion: Any, attempts: int) -> LLMResponse:
    """An :class:`LLMResponse` from an SDK ``ChatCompletion``; raises ValueError for a body that is not one."""
    choices = getattr(completion, "choices", None)
    if isinstance(completion, (str, bytes)) or not choices:
        raise ValueError("response body is not a chat completion (no choices)")
    choice = choices[0]
    msg = choice.message
    content: list[dict[str, Any]] = []
    text = msg.content or ""
    if text:
        content.append({"type": "text", "text": text})
    tool_uses: list[dict[str, Any]] = []
    for tc in msg.tool_calls or []:
        fn = getattr(tc, "function", None)
        if fn is None:
            continue  # a non-function (custom) tool call has no Messages equivalent
        use = {"id": tc.id, "name": fn.name, "input": _parse_arguments(fn.arguments)}
        tool_uses.append(use)
        content.append({"type": "tool_use", **use})
    u = getattr(completion, "usage", None)
    usage = Usage(int(getattr(u, "prompt_tokens", 0) or 0), int(getattr(u, "completion_tokens", 0) or 0))
    finish = choice.finish_reason
    return LLMResponse(
        text=text,
        tool_uses=tool_uses,
        usage=usage,
        model=str(completion.model),
        stop_reason=_STOP.get(finish, finish) if finish is not None else None,
        attempts=attempts,
        content=content,
    )
