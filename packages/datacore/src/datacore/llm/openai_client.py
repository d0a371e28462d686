"""`OpenAIClient`: any OpenAI-compatible chat-completions endpoint through the official ``openai`` SDK.

Meant for local models behind vLLM or the llama.cpp server (``base_url="http://host:8000/v1"``)
as much as for OpenAI itself.  It runs on the same engine as :class:`~datacore.llm.AnthropicClient`
(:mod:`datacore.llm.engine`): adaptive admission control, retries, the content-addressed cache,
token and cost accounting, budget and ledger, structured JSON output with one repair round; only
the wire protocol differs (:mod:`datacore.llm.openai_format` translates requests and replies).
So a caller switches backend by changing the class it builds, nothing else.

Protocol specifics: the SDK's own retries are off (``max_retries=0``); 429 is a rate limit, 503
and 529 are overload (vLLM and llama.cpp answer 503 while busy or loading), both shrink the
admission limit and are retried honouring ``retry-after``; a 429 whose error code is
``insufficient_quota`` is final (``error_kind="quota"``): waiting does not refill an account.
The temperature is sent (chat completions accept it).  A reply without ``usage`` (some servers
omit it) counts as 0 tokens and is counted in ``llm.usage_missing``.  The cache key is the request's usual key
salted with the protocol, so an OpenAI-backend answer is never served to the Anthropic backend
for the same request, nor the other way round.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import openai

from .engine import ClientEngine, Outcome, Prices, classify_status, parse_retry_after
from .ledger import BudgetLedger
from .openai_format import from_chat_completion, to_chat_params
from .types import LLMConfigError, LLMRequest, LLMResponse, canonical_json

__all__ = ["LOCAL_KEY", "OpenAIClient"]

#: the key sent to a local server when none is configured (vLLM / llama.cpp accept any key)
LOCAL_KEY = "EMPTY"

_PROTOCOL = "openai-chat-completions"


def _api_message(e: openai.APIStatusError) -> tuple[str, str | None]:
    """The server's error message and code, from an OpenAI-style or Anthropic-style error body."""
    body = getattr(e, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    if isinstance(body, dict) and body.get("message"):
        code = body.get("code")
        return str(body["message"]), str(code) if code is not None else None
    return "no message", None


class OpenAIClient(ClientEngine):
    """OpenAI-compatible chat-completions client (implements :class:`~datacore.llm.LLMClient`).

    Parameters are those of :class:`~datacore.llm.AnthropicClient`, with these differences:
        api_key: default ``OPENAI_API_KEY``.  With neither but a ``base_url`` (or
            ``OPENAI_BASE_URL``), the placeholder ``"EMPTY"`` is sent, as local servers expect.
            The key is never written to the cache, telemetry, logs, reprs or error messages.
        base_url: the API root including ``/v1`` (default: ``OPENAI_BASE_URL``, else OpenAI's);
            e.g. ``http://127.0.0.1:8000/v1`` for vLLM, ``FakeMessagesServer.openai_base_url`` in tests.
        prices: local models have no list price: pass ``prices={"my-model": (in, out)}`` (USD per
            million tokens; ``(0, 0)`` for a free local model) to get costs, or a budget.
        send_temperature: default True (chat completions accept ``temperature``).
        organization / project: passed to the SDK.
    """

    json_methods = ("text", "tool", "json_schema")

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        max_in_flight: int = 16,
        cache_dir: str | os.PathLike[str] | None = None,
        budget_usd: float | None = None,
        prices: Prices = None,
        timeout: float = 60,
        max_retries: int = 6,
        *,
        seed: int = 0,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        max_retry_after_s: float = 60.0,
        cooldown_s: float = 1.0,
        min_in_flight: int = 1,
        send_temperature: bool = True,
        ledger: BudgetLedger | None | bool = None,
        organization: str | None = None,
        project: str | None = None,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        url = base_url if base_url is not None else (os.environ.get("OPENAI_BASE_URL") or None)
        if not key:
            if url is None:
                raise LLMConfigError(
                    "OpenAIClient.api_key: no API key; set OPENAI_API_KEY or pass api_key= "
                    "(a local server needs only base_url=, e.g. http://127.0.0.1:8000/v1)"
                )
            key = None
        self._start_engine(
            secret=key,
            base_url=url,
            max_in_flight=max_in_flight,
            cache_dir=cache_dir,
            budget_usd=budget_usd,
            prices=prices,
            timeout=timeout,
            max_retries=max_retries,
            seed=seed,
            backoff_base_s=backoff_base_s,
            backoff_max_s=backoff_max_s,
            max_retry_after_s=max_retry_after_s,
            cooldown_s=cooldown_s,
            min_in_flight=min_in_flight,
            send_temperature=send_temperature,
            ledger=ledger,
        )
        # The SDK does no retrying of its own: every retry decision is made (and counted) here.
        self._sdk = openai.AsyncOpenAI(
            api_key=key or LOCAL_KEY,
            base_url=url,
            organization=organization,
            project=project,
            max_retries=0,
            timeout=self.timeout,
        )

    def _cache_key(self, req: LLMRequest) -> str:
        text = canonical_json({"protocol": _PROTOCOL, "request": req.key_fields()})
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _check_request(self, req: LLMRequest) -> None:
        super()._check_request(req)
        to_chat_params(req)  # a block or tool without a chat-completions form fails here, before anything is sent

    async def _attempt(self, req: LLMRequest, attempts: int) -> Outcome:
        def on_status(e: openai.APIStatusError) -> Outcome:
            message, code = _api_message(e)
            detail = self._scrub(f"HTTP {e.status_code}: {message}")
            if e.status_code == 429 and code == "insufficient_quota":
                return Outcome(kind="quota", message=detail)  # waiting does not refill an account
            return classify_status(e.status_code, detail, parse_retry_after(e.response.headers), overload=(503, 529))

        def convert(completion: Any) -> LLMResponse:
            resp = from_chat_completion(completion, attempts)
            if getattr(completion, "usage", None) is None:
                self._count("llm.usage_missing")  # priced as 0 tokens: visible, never silent
            return resp

        params = to_chat_params(req, send_temperature=self.send_temperature)
        return await self._guarded(openai, self._sdk.chat.completions.create(**params), convert, on_status)
