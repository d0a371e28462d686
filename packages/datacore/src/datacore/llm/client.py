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

import asyncio
import email.utils
import math
import os
import random
import threading
import time
from collections.abc import Coroutine, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

import anthropic
import attrs

from ..telemetry import Telemetry
from .admission import AdaptiveLimiter
from .cache import ResponseCache
from .ledger import BudgetLedger
from .structured import acomplete_json
from .types import BudgetExceeded, LLMConfigError, LLMRequest, LLMResponse, Usage
from .usage import ModelPrice, PriceTable

__all__ = ["AnthropicClient"]

T = TypeVar("T")

_REDACTED = "[redacted]"


class _Outcome:
    """What one attempt produced: a response, or an error with its retry policy."""

    __slots__ = ("resp", "kind", "message", "retryable", "throttle", "retry_after")

    def __init__(
        self,
        resp: LLMResponse | None = None,
        kind: str = "",
        message: str = "",
        retryable: bool = False,
        throttle: bool = False,
        retry_after: float | None = None,
    ) -> None:
        self.resp = resp
        self.kind = kind
        self.message = message
        self.retryable = retryable
        self.throttle = throttle
        self.retry_after = retry_after


def _parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``retry-after`` (seconds or an HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            v = float(ms) / 1000.0
            if math.isfinite(v) and v >= 0:
                return v
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if ra is None:
        return None
    try:
        v = float(ra)
        return v if math.isfinite(v) and v >= 0 else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _api_message(e: anthropic.APIStatusError) -> str:
    """The server's ``error.message`` (SDK 2.x has ``api_message``; older SDKs only the raw body)."""
    msg = getattr(e, "api_message", None)
    if msg:
        return str(msg)
    body = getattr(e, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict) and body["error"].get("message"):
        return str(body["error"]["message"])
    return "no message"


def _check_number(name: str, value: Any, lo: float, *, allow_none: bool = False, strict: bool = False) -> None:
    if value is None and allow_none:
        return
    bad = isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
    if bad or value < lo or (strict and value == lo):
        rel = ">" if strict else ">="
        raise LLMConfigError(
            f"AnthropicClient.{name}: expected a number {rel} {lo}{' or None' if allow_none else ''}, got {value!r}"
        )


class AnthropicClient:
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
        prices: Mapping[str, ModelPrice | tuple[float, float] | Mapping[str, float]] | PriceTable | None = None,
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
        _check_number("budget_usd", budget_usd, 0.0, allow_none=True)
        _check_number("timeout", timeout, 0.0, strict=True)
        _check_number("backoff_base_s", backoff_base_s, 0.0)
        _check_number("backoff_max_s", backoff_max_s, 0.0)
        _check_number("max_retry_after_s", max_retry_after_s, 0.0)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise LLMConfigError(f"AnthropicClient.max_retries: expected an integer >= 0, got {max_retries!r}")
        self._secret = key  # only for scrubbing error text; never printed
        self.base_url = base_url
        self.max_retries = max_retries
        self.timeout = float(timeout)
        self.budget_usd = None if budget_usd is None else float(budget_usd)
        self.prices = prices if isinstance(prices, PriceTable) else PriceTable(prices)
        self.backoff_base_s = float(backoff_base_s)
        self.backoff_max_s = float(backoff_max_s)
        self.max_retry_after_s = float(max_retry_after_s)
        self.limiter = AdaptiveLimiter(max_in_flight, min_limit=min_in_flight, cooldown_s=cooldown_s)
        self.cache = ResponseCache(cache_dir) if cache_dir is not None else None
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._tel = Telemetry()
        self._reported: dict[str, int] = {}  # limiter/cache totals already handed out by telemetry(reset=True)
        self._spent = 0.0
        self.ledger: BudgetLedger | None = (
            BudgetLedger.from_env() if ledger is None else None if ledger is False or ledger is True else ledger
        )
        self._pending: dict[str, asyncio.Future[LLMResponse]] = {}
        # The SDK does no retrying of its own: every retry decision is made (and counted) here.
        self.send_temperature = bool(send_temperature)
        headers = {"anthropic-version": api_version} if api_version else None
        self._sdk = anthropic.AsyncAnthropic(
            api_key=key, base_url=base_url, max_retries=0, timeout=self.timeout, default_headers=headers
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="datacore-llm-loop", daemon=True)
        self._thread.start()
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    def __repr__(self) -> str:
        return (
            f"AnthropicClient(base_url={self.base_url!r}, max_in_flight={self.limiter.max_limit}, "
            f"cache_dir={str(self.cache.root) if self.cache else None!r}, budget_usd={self.budget_usd!r})"
        )

    def __getstate__(self) -> Any:
        # Pickling would copy the key into whatever the pickle lands on; make one per process instead.
        raise TypeError("AnthropicClient cannot be pickled; create one in each worker process")

    def __enter__(self) -> AnthropicClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close HTTP connections and stop the private event loop (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            asyncio.run_coroutine_threadsafe(self._sdk.close(), self._loop).result(timeout=10)
        except Exception:  # closing must not mask the caller's own error
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise LLMConfigError("AnthropicClient: the client is closed")
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result()
        except BaseException:
            fut.cancel()  # Ctrl-C in the caller stops the work on the loop too
            raise

    # ------------------------------------------------------------------ accounting

    def _count(self, name: str, by: float = 1) -> None:
        with self._lock:
            self._tel.count(name, by)

    def _observe(self, name: str, bucket: object) -> None:
        with self._lock:
            self._tel.observe(name, bucket)

    @property
    def spent_usd(self) -> float:
        """USD spent so far by this client (cache hits cost nothing)."""
        return self._spent

    def telemetry(self, *, reset: bool = False) -> Telemetry:
        """A copy of the client's counters: requests, calls, retries, cache hits, tokens, cost, failures.

        With ``reset=True`` the counters start again from zero, so a generator can merge the
        returned part into each shard's telemetry without counting anything twice.
        """
        with self._lock:
            t = Telemetry.from_dict(self._tel.to_dict())
            lim = self.limiter
            totals = {
                "llm.admission.decreases": lim.decreases,
                "llm.admission.increases": lim.increases,
                "llm.cache_corrupt": self.cache.corrupt if self.cache is not None else 0,
                "llm.cache_read_errors": self.cache.read_errors if self.cache is not None else 0,
            }
            for name, value in totals.items():
                if value - self._reported.get(name, 0):
                    t.counters[name] = value - self._reported.get(name, 0)
            if reset:
                self._tel = Telemetry()
                self._reported = totals
        return t

    def _account(self, model: str, usage: Usage, *, batch: bool = False) -> None:
        cost = self.prices.cost(model, usage, batch=batch)
        with self._lock:
            tel = self._tel
            tel.count("llm.input_tokens", usage.input_tokens)
            tel.count("llm.output_tokens", usage.output_tokens)
            tel.count(f"llm.input_tokens.{model}", usage.input_tokens)
            tel.count(f"llm.output_tokens.{model}", usage.output_tokens)
            if cost is None:
                tel.count("llm.unpriced_calls")
            else:
                self._spent += cost
                if self.ledger is not None:
                    self.ledger.charge(cost)
                tel.count("llm.cost_usd", cost)
                tel.count(f"llm.cost_usd.{model}", cost)

    def _check_priced(self, req: LLMRequest) -> None:
        if (self.budget_usd is not None or self.ledger is not None) and self.prices.price_for(req.model) is None:
            raise LLMConfigError(
                f"LLMRequest.model: {req.model!r} has no price, so budget_usd cannot be enforced; add it with prices={{...}}"
            )

    def _check_budget(self) -> None:
        if self.budget_usd is not None and self._spent >= self.budget_usd:
            raise BudgetExceeded(self._spent, self.budget_usd)
        if self.ledger is not None:
            self.ledger.check()  # the run's spending, all workers together

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, _REDACTED) if self._secret else text

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
            usage=Usage(int(u.input_tokens or 0), int(u.output_tokens or 0)),
            model=str(msg.model),
            stop_reason=msg.stop_reason,
            attempts=attempts,
            content=content,
        )

    async def _attempt(self, params: dict[str, Any], attempts: int) -> _Outcome:
        try:
            msg = await self._sdk.messages.create(**params)
        except anthropic.APIStatusError as e:
            status = e.status_code
            detail = self._scrub(f"HTTP {status}: {_api_message(e)}")
            ra = _parse_retry_after(e.response.headers)
            if status == 429:
                return _Outcome(kind="rate_limit", message=detail, retryable=True, throttle=True, retry_after=ra)
            if status == 529:
                return _Outcome(kind="overloaded", message=detail, retryable=True, throttle=True, retry_after=ra)
            if status == 408:
                return _Outcome(kind="timeout", message=detail, retryable=True, retry_after=ra)
            if status >= 500 or status == 409:
                return _Outcome(kind="server", message=detail, retryable=True, retry_after=ra)
            return _Outcome(kind="bad_request", message=detail)
        except anthropic.APITimeoutError:
            return _Outcome(kind="timeout", message=f"no response within timeout={self.timeout:g}s", retryable=True)
        except anthropic.APIConnectionError as e:
            return _Outcome(kind="connection", message=self._scrub(f"connection error: {e}"), retryable=True)
        except (anthropic.APIResponseValidationError, ValueError) as e:
            # ValueError covers json.JSONDecodeError: a 200 whose body is not valid JSON.
            return _Outcome(
                kind="malformed", message=self._scrub(f"malformed response: {type(e).__name__}: {e}"[:300]), retryable=True
            )
        try:
            return _Outcome(resp=self._to_response(msg, attempts))
        except (ValueError, TypeError, AttributeError) as e:
            return _Outcome(kind="malformed", message=self._scrub(f"malformed response: {e}"[:300]), retryable=True)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            # Honour the server's wait; a little jitter on top keeps the retries from arriving together.
            base = min(retry_after, self.max_retry_after_s)
            return base + self._rng.uniform(0.0, 0.1) * max(base, 0.01)
        cap = min(self.backoff_max_s, self.backoff_base_s * (2 ** (attempt - 1)))
        return cap * self._rng.uniform(0.5, 1.0)

    async def _call_with_retries(self, req: LLMRequest) -> LLMResponse:
        params = req.to_api_params(send_temperature=self.send_temperature)
        attempts = 0
        while True:
            attempts += 1
            await self.limiter.acquire()
            try:
                self._check_budget()
                self._count("llm.calls")
                out = await self._attempt(params, attempts)
                if out.resp is not None:
                    self.limiter.on_success()
                elif out.throttle and self.limiter.on_throttle():
                    self._count("llm.admission.cooldowns")
            finally:
                await self.limiter.release()
            if out.resp is not None:
                self._account(req.model, out.resp.usage)
                self._count("llm.ok")
                self._observe("llm.attempts", attempts)
                return out.resp
            self._observe("llm.attempt_errors", out.kind)
            if not out.retryable or attempts > self.max_retries:
                self._count("llm.failed")
                self._observe("llm.failures", out.kind)
                self._observe("llm.attempts", attempts)
                return LLMResponse.failure(
                    out.kind, f"{out.kind} after {attempts} attempt(s): {out.message}", model=req.model, attempts=attempts
                )
            self._count("llm.retries")
            await asyncio.sleep(self._delay(attempts, out.retry_after))

    # ------------------------------------------------------------------ one request

    async def _run_one(self, req: LLMRequest) -> LLMResponse:
        """Cache, in-flight dedup, retries.  Raises only BudgetExceeded / LLMConfigError."""
        self._check_priced(req)
        self._count("llm.requests")
        if self.cache is None:
            return await self._call_with_retries(req)
        key = req.cache_key()
        hit = self.cache.get(key)
        if hit is not None:
            self._count("llm.cache_hits")
            return hit
        pending = self._pending.get(key)
        if pending is not None:
            # The same request is already in flight: one call serves both, so a re-run agrees with this run.
            self._count("llm.dedup_hits")
            resp = await asyncio.shield(pending)
            return attrs.evolve(resp, cached=True) if resp.ok else resp
        fut: asyncio.Future[LLMResponse] = self._loop.create_future()
        self._pending[key] = fut
        try:
            resp = await self._call_with_retries(req)
            if resp.ok:
                # File I/O off the event loop: a slow disk must not stall the requests in flight.
                try:
                    await asyncio.get_running_loop().run_in_executor(None, self.cache.put, key, req, resp)
                except OSError:
                    # A paid-for answer is still returned; the run just loses its replay for this one.
                    self._count("llm.cache_write_errors")
            fut.set_result(resp)
            return resp
        except asyncio.CancelledError:
            fut.cancel()
            raise
        except Exception as e:
            fut.set_exception(e)
            fut.exception()  # mark retrieved: nobody else may be waiting on it
            raise
        finally:
            del self._pending[key]

    async def _run_one_no_raise(self, req: LLMRequest) -> LLMResponse:
        try:
            return await self._run_one(req)
        except BudgetExceeded as e:
            self._count("llm.budget_refused")
            return LLMResponse.failure("budget", str(e), model=req.model)

    async def _many(self, reqs: Sequence[LLMRequest]) -> list[LLMResponse]:
        return list(await asyncio.gather(*(self._run_one_no_raise(r) for r in reqs)))

    # ------------------------------------------------------------------ public API

    def complete(self, req: LLMRequest) -> LLMResponse:
        """Run one request.  Failures come back with ``error`` set; raises :class:`BudgetExceeded` when the budget is spent."""
        return self._run(self._run_one(req))

    async def acomplete(self, req: LLMRequest) -> LLMResponse:
        """Awaitable :meth:`complete`, usable from any event loop."""
        if self._closed:
            raise LLMConfigError("AnthropicClient: the client is closed")
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._run_one(req), self._loop))

    def complete_many(self, reqs: Sequence[LLMRequest]) -> list[LLMResponse]:
        """Run all requests with up to ``max_in_flight`` in flight; results in input order.

        Never raises for a request's failure: each failed request (including those refused once the
        budget is spent, ``error_kind == "budget"``) comes back with ``error`` set.
        """
        reqs = list(reqs)
        for i, r in enumerate(reqs):
            if not isinstance(r, LLMRequest):
                raise LLMConfigError(f"complete_many: reqs[{i}] is a {type(r).__name__}, expected LLMRequest")
            self._check_priced(r)
        return self._run(self._many(reqs))

    def complete_json(self, req: LLMRequest, schema: dict[str, Any], *, method: str = "text") -> tuple[Any, LLMResponse]:
        """Ask for JSON valid against ``schema``: ``(obj, response)``, or ``(None, response)`` with ``error_kind="schema"``.

        ``method="text"`` asks for the JSON in the reply text; ``method="tool"`` forces a tool call
        whose ``input_schema`` is ``schema`` (object schemas only).  One repair round-trip on invalid output.
        """
        return self._run(acomplete_json(self._run_one, self._count, req, schema, method=method))

    async def acomplete_json(self, req: LLMRequest, schema: dict[str, Any], *, method: str = "text") -> tuple[Any, LLMResponse]:
        """Awaitable :meth:`complete_json`."""
        coro = acomplete_json(self._run_one, self._count, req, schema, method=method)
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    def complete_json_many(
        self, reqs: Sequence[LLMRequest], schema: dict[str, Any], *, method: str = "text"
    ) -> list[tuple[Any, LLMResponse]]:
        """:meth:`complete_json` for many requests concurrently, in input order; budget refusals come back as failures."""

        async def one(r: LLMRequest) -> tuple[Any, LLMResponse]:
            try:
                return await acomplete_json(self._run_one, self._count, r, schema, method=method)
            except BudgetExceeded as e:
                self._count("llm.budget_refused")
                return None, LLMResponse.failure("budget", str(e), model=r.model)

        async def run() -> list[tuple[Any, LLMResponse]]:
            return list(await asyncio.gather(*(one(r) for r in reqs)))

        for r in reqs:
            self._check_priced(r)
        return self._run(run())
