"""`AnthropicClient`: the official ``anthropic`` SDK with admission control, retries, cache and budget.

The SDK's own retries are turned off (``max_retries=0``) because retrying is this module's job:
it must feed 429/529 push-back into the shared :class:`AdaptiveLimiter`, honour ``retry-after``
per request, and report a request that still fails instead of raising it out of a batch.

Threading model: the client owns one private event loop on a daemon thread, where the
``AsyncAnthropic`` client, the limiter, the cache bookkeeping and the telemetry live.  The sync
facade (:meth:`complete`, :meth:`complete_many`, :meth:`complete_json`) submits coroutines to that
loop and waits; :meth:`acomplete` awaits the same work from any other event loop.  So a script,
a process-pool worker and an async application all use one code path.
"""

from __future__ import annotations

import os
from typing import Any

import anthropic

from .engine import ClientEngine, Outcome, Prices, classify_status, parse_retry_after
from .ledger import BudgetLedger
from .types import LLMConfigError, LLMRequest, LLMResponse, Usage

__all__ = ["AnthropicClient"]

# Kept under their old names for the batch runner and older callers.
_parse_retry_after = parse_retry_after


def _api_message(e: anthropic.APIStatusError) -> str:
    """The server's ``error.message`` (SDK 2.x has ``api_message``; older SDKs only the raw body)."""
    msg = getattr(e, "api_message", None)
    if msg:
        return str(msg)
    body = getattr(e, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict) and body["error"].get("message"):
        return str(body["error"]["message"])
    return "no message"


class AnthropicClient(ClientEngine):
    """Anthropic Messages client for data generation (implements :class:`~datacore.llm.LLMClient`).

    Parameters:
        api_key: the key; default ``ANTHROPIC_API_KEY`` from the environment.  It is handed to the
            SDK and never written to the cache, telemetry, logs, reprs or error messages.
        base_url: API root (default: the SDK's, or ``ANTHROPIC_BASE_URL``); tests point it at
            :class:`~datacore.llm.testing.FakeMessagesServer`.
        max_in_flight: upper bound of concurrent requests (the adaptive limit never exceeds it).
        cache_dir: folder of the content-addressed response cache; None turns the cache off.
        budget_usd: stop sending once this much has been spent (None: no budget).
        prices: extra/overriding price rows, ``{model_prefix: (usd_in_per_mtok, usd_out_per_mtok)}``.
        timeout: seconds per HTTP attempt; a timed-out attempt is retried.
        max_retries: retries per request after the first attempt (so at most ``max_retries + 1`` calls).
        seed: seeds the backoff jitter.
        backoff_base_s / backoff_max_s: exponential backoff ``base * 2**(n-1)``, capped, times a
            jitter factor in [0.5, 1).
        max_retry_after_s: cap on an honoured ``retry-after``.
        cooldown_s / min_in_flight: see :class:`~datacore.llm.admission.AdaptiveLimiter`.
        send_temperature: send ``LLMRequest.temperature`` (only for API versions that accept it,
            e.g. ``api_version="2023-06-01"``; the SDK's default version rejects it).
        api_version: override the ``anthropic-version`` header the SDK sends.
        ledger: a run-wide :class:`~datacore.llm.ledger.BudgetLedger` shared with the run's other
            worker processes: every call checks the run's spending first and charges its cost
            after.  Default: the ledger named by ``DATACORE_LLM_LEDGER`` if set; ``False`` for none.
    """

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
        send_temperature: bool = False,
        api_version: str | None = None,
        ledger: BudgetLedger | None | bool = None,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("ANTHROPIC_API_KEY")
        if not key:
            raise LLMConfigError(
                "AnthropicClient.api_key: no API key; set the ANTHROPIC_API_KEY environment variable or pass api_key="
            )
        self._start_engine(
            secret=key,
            base_url=base_url,
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
        headers = {"anthropic-version": api_version} if api_version else None
        self._sdk = anthropic.AsyncAnthropic(
            api_key=key, base_url=base_url, max_retries=0, timeout=self.timeout, default_headers=headers
        )

    # ------------------------------------------------------------------ one attempt

    def _to_response(self, msg: Any, attempts: int) -> LLMResponse:
        if isinstance(msg, (str, bytes)) or not hasattr(msg, "content"):
            raise ValueError("response body is not a Messages API message")
        texts: list[str] = []
        tool_uses: list[dict[str, Any]] = []
        content: list[dict[str, Any]] = []
        for b in msg.content:
            d = b.model_dump(mode="json", exclude_none=True)
            content.append(d)
            if d.get("type") == "text":
                texts.append(d.get("text", ""))
            elif d.get("type") == "tool_use":
                tool_uses.append({"id": d.get("id"), "name": d.get("name"), "input": d.get("input")})
        u = msg.usage
        return LLMResponse(
            text="".join(texts),
            tool_uses=tool_uses,
            usage=Usage(
                int(u.input_tokens or 0),
                int(u.output_tokens or 0),
                int(getattr(u, "cache_creation_input_tokens", 0) or 0),
                int(getattr(u, "cache_read_input_tokens", 0) or 0),
            ),
            model=str(msg.model),
            stop_reason=msg.stop_reason,
            attempts=attempts,
            content=content,
        )

    def _check_request(self, req: LLMRequest) -> None:
        super()._check_request(req)
        if req.response_format is not None:
            raise LLMConfigError(
                "LLMRequest.response_format: an OpenAI chat-completions field, not sent by AnthropicClient; "
                'use complete_json(method="tool") or method="text"'
            )

    async def _attempt(self, req: LLMRequest, attempts: int) -> Outcome:
        def on_status(e: anthropic.APIStatusError) -> Outcome:
            detail = self._scrub(f"HTTP {e.status_code}: {_api_message(e)}")
            return classify_status(e.status_code, detail, parse_retry_after(e.response.headers), overload=(529,))

        params = req.to_api_params(send_temperature=self.send_temperature)
        return await self._guarded(
            anthropic, self._sdk.messages.create(**params), lambda msg: self._to_response(msg, attempts), on_status
        )
