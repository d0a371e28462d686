"""Requests, responses, errors and the :class:`LLMClient` protocol of the LLM layer.

Messages follow the Anthropic Messages API format (``{"role": "user", "content": ...}``), so a
request converts to the SDK's keyword arguments without translation.  Requests and responses are
plain attrs classes that round-trip through JSON (the disk cache stores them that way).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from ..errors import DatacoreError

__all__ = [
    "BudgetExceeded",
    "LLMClient",
    "LLMConfigError",
    "LLMError",
    "LLMRequest",
    "LLMResponse",
    "Usage",
    "canonical_json",
]


class LLMError(DatacoreError):
    """Base class of the LLM layer's errors (bad request fields, bad config, exhausted budget)."""


class LLMConfigError(LLMError):
    """A client option or a request field has a value that is not allowed; the message names it."""


class BudgetExceeded(LLMError):
    """The client's ``budget_usd`` is spent: no further request is sent.

    Everything completed before the budget ran out is kept (returned, and in the cache).
    ``spent_usd`` and ``budget_usd`` say where the run stopped.
    """

    def __init__(self, spent_usd: float, budget_usd: float) -> None:
        self.spent_usd = spent_usd
        self.budget_usd = budget_usd
        super().__init__(f"budget exceeded: spent ${spent_usd:.4f} of budget_usd=${budget_usd:.4f}; no further requests are sent")


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal strings (cache keys)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _check_model(inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise LLMConfigError(f"LLMRequest.model: expected a non-empty model name string, got {value!r}")


def _check_messages(inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)) or len(value) == 0:
        raise LLMConfigError(f"LLMRequest.messages: expected a non-empty list of messages, got {value!r:.200}")
    for i, m in enumerate(value):
        if not isinstance(m, dict):
            raise LLMConfigError(f"LLMRequest.messages[{i}]: expected a dict with 'role' and 'content', got {m!r:.200}")
        if m.get("role") not in ("user", "assistant"):
            raise LLMConfigError(f"LLMRequest.messages[{i}].role: expected 'user' or 'assistant', got {m.get('role')!r}")
        c = m.get("content")
        if not isinstance(c, (str, list)):
            raise LLMConfigError(
                f"LLMRequest.messages[{i}].content: expected a string or a list of content blocks, got {type(c).__name__}"
            )


def _check_system(inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and not isinstance(value, (str, list)):
        raise LLMConfigError(f"LLMRequest.system: expected None, a string or a list of text blocks, got {type(value).__name__}")


def _check_max_tokens(inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LLMConfigError(f"LLMRequest.max_tokens: expected an integer >= 1, got {value!r}")


def _check_temperature(inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise LLMConfigError(f"LLMRequest.temperature: expected a number in [0, 1] (the Messages API range), got {value!r}")


def _check_tools(inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        raise LLMConfigError(f"LLMRequest.tools: expected None or a list of tool definitions, got {type(value).__name__}")
    for i, t in enumerate(value):
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            raise LLMConfigError(f"LLMRequest.tools[{i}]: expected a dict with a string 'name', got {t!r:.200}")


def _check_response_format(inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and (not isinstance(value, dict) or not isinstance(value.get("type"), str)):
        raise LLMConfigError(
            f"LLMRequest.response_format: expected None or a dict with a string 'type' (text/json_object/json_schema), "
            f"got {value!r:.200}"
        )


def _check_tool_choice(inst: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and (not isinstance(value, dict) or "type" not in value):
        raise LLMConfigError(
            f"LLMRequest.tool_choice: expected None or a dict with 'type' (auto/any/tool/none), got {value!r:.200}"
        )


@attrs.frozen(kw_only=False)
class LLMRequest:
    """One model call: model, messages (Anthropic Messages format) and sampling parameters.

    The same request goes to either backend: :class:`~datacore.llm.OpenAIClient` translates the
    messages, tools and tool choice to chat-completions form.  ``response_format``
    (keyword-only) is the chat-completions field of that name (``json_schema`` structured
    output); only the OpenAI backend sends it.

    ``metadata`` is the caller's own tag (e.g. a record index); it is neither sent to the API nor
    part of the cache key.  Treat ``messages``/``tools`` as immutable once the request is built.
    """

    model: str = attrs.field(validator=_check_model)
    messages: list[dict[str, Any]] = attrs.field(validator=_check_messages)
    system: str | list[dict[str, Any]] | None = attrs.field(default=None, validator=_check_system)
    max_tokens: int = attrs.field(default=1024, validator=_check_max_tokens)
    temperature: float = attrs.field(default=1.0, validator=_check_temperature)
    tools: list[dict[str, Any]] | None = attrs.field(default=None, validator=_check_tools)
    tool_choice: dict[str, Any] | None = attrs.field(default=None, validator=_check_tool_choice)
    metadata: dict[str, Any] | None = attrs.field(default=None, eq=False)
    response_format: dict[str, Any] | None = attrs.field(default=None, kw_only=True, validator=_check_response_format)

    def key_fields(self) -> dict[str, Any]:
        """The fields that decide the model's answer: what the cache key hashes.

        ``response_format`` is in it only when set, so keys of requests without it are unchanged.
        """
        d = {
            "model": self.model,
            "system": self.system,
            "messages": list(self.messages),
            "max_tokens": self.max_tokens,
            "temperature": float(self.temperature),
            "tools": self.tools,
            "tool_choice": self.tool_choice,
        }
        if self.response_format is not None:
            d["response_format"] = self.response_format
        return d

    def cache_key(self) -> str:
        """sha256 (hex) of the canonical JSON of :meth:`key_fields`."""
        try:
            text = canonical_json(self.key_fields())
        except (TypeError, ValueError) as e:
            raise LLMConfigError(f"LLMRequest: messages/system/tools must be JSON-serializable: {e}") from None
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def to_api_params(self, *, send_temperature: bool = False) -> dict[str, Any]:
        """Keyword arguments for ``client.messages.create`` (fields left at None are omitted).

        ``temperature`` is sent only with ``send_temperature`` (as an extra body field): API version
        2026-10-21, which the anthropic SDK 2.x sends, rejects sampling parameters even at their
        defaults, and the SDK no longer has the keyword.  It stays part of the cache key either way.
        """
        p: dict[str, Any] = {
            "model": self.model,
            "messages": list(self.messages),
            "max_tokens": self.max_tokens,
        }
        if send_temperature:
            p["extra_body"] = {"temperature": float(self.temperature)}
        if self.system is not None:
            p["system"] = self.system
        if self.tools is not None:
            p["tools"] = self.tools
        if self.tool_choice is not None:
            p["tool_choice"] = self.tool_choice
        return p


@attrs.frozen
class Usage:
    """Token counts of one response (zero for a failed request or a cache hit's saved call)."""

    input_tokens: int = 0
    output_tokens: int = 0
    #: prompt-caching tokens (Anthropic): written to the cache, and read from it (not in input_tokens)
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def to_dict(self) -> dict[str, int]:
        """JSON form; the cache fields only when set (entries without prompt caching keep their bytes)."""
        d = {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}
        if self.cache_creation_input_tokens:
            d["cache_creation_input_tokens"] = self.cache_creation_input_tokens
        if self.cache_read_input_tokens:
            d["cache_read_input_tokens"] = self.cache_read_input_tokens
        return d

    @classmethod
    def from_dict(cls, u: dict[str, Any]) -> Usage:
        """Inverse of :meth:`to_dict` (missing fields are 0)."""
        return cls(
            int(u.get("input_tokens", 0) or 0),
            int(u.get("output_tokens", 0) or 0),
            int(u.get("cache_creation_input_tokens", 0) or 0),
            int(u.get("cache_read_input_tokens", 0) or 0),
        )


@attrs.frozen
class LLMResponse:
    """The outcome of one request, successful or not.

    A failed request is never dropped: it comes back with ``error`` (a one-line reason, never the
    API key) and ``error_kind`` (``rate_limit``, ``overloaded``, ``server``, ``timeout``,
    ``connection``, ``malformed``, ``bad_request``, ``budget``, ``schema``).  ``cached`` is true
    when the answer came from the disk cache without an API call.  ``content`` holds the raw
    content blocks (as dicts), ready to append as an assistant turn.  ``cost_usd`` is the
    response priced from its usage by the client's price table (None when failed or unpriced);
    a cache hit is priced exactly as the network response it replays.
    """

    text: str = ""
    tool_uses: list[dict[str, Any]] = attrs.field(factory=list)
    usage: Usage = attrs.field(factory=Usage)
    model: str = ""
    stop_reason: str | None = None
    cached: bool = False
    error: str | None = None
    error_kind: str | None = None
    attempts: int = 0
    content: list[dict[str, Any]] = attrs.field(factory=list)
    cost_usd: float | None = None

    @property
    def ok(self) -> bool:
        """True when the request succeeded (``error`` is None)."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (what the cache stores for a success)."""
        return {
            "text": self.text,
            "tool_uses": self.tool_uses,
            "usage": self.usage.to_dict(),
            "model": self.model,
            "stop_reason": self.stop_reason,
            "content": self.content,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, cached: bool = False) -> LLMResponse:
        """Inverse of :meth:`to_dict`."""
        u = d.get("usage") or {}
        return cls(
            text=d.get("text", ""),
            tool_uses=list(d.get("tool_uses") or []),
            usage=Usage.from_dict(u),
            model=d.get("model", ""),
            stop_reason=d.get("stop_reason"),
            cached=cached,
            content=list(d.get("content") or []),
        )

    @classmethod
    def failure(cls, kind: str, message: str, *, model: str = "", attempts: int = 0) -> LLMResponse:
        """A failed outcome with ``error_kind=kind`` and ``error=message``."""
        return cls(model=model, error=message, error_kind=kind, attempts=attempts)


@runtime_checkable
class LLMClient(Protocol):
    """What a generator needs from a model client: messages in, text / tool use / JSON out, with usage.

    :class:`~datacore.llm.AnthropicClient` and :class:`~datacore.llm.OpenAIClient` implement it; tests may pass
    any object with these methods.
    """

    def complete(self, req: LLMRequest) -> LLMResponse:
        """Run one request and wait for it."""
        ...

    def complete_many(self, reqs: Sequence[LLMRequest]) -> list[LLMResponse]:
        """Run many requests concurrently; results in input order, failures with ``error`` set."""
        ...

    async def acomplete(self, req: LLMRequest) -> LLMResponse:
        """Awaitable :meth:`complete`."""
        ...

    def complete_json(self, req: LLMRequest, schema: dict[str, Any]) -> tuple[Any, LLMResponse]:
        """Ask for JSON valid against ``schema``; ``(obj or None, response)``."""
        ...
