"""The protocol-independent engine every client of this layer runs on.

:class:`ClientEngine` holds what does not depend on the wire protocol: the private event loop
(sync facade over async work), adaptive admission control, retries with ``retry-after`` /
jittered backoff, the content-addressed cache with in-flight dedup, token and cost accounting,
the budget and run-wide ledger, telemetry, and the structured-output driver.  A backend
(:class:`~datacore.llm.AnthropicClient`, :class:`~datacore.llm.OpenAIClient`) subclasses it and
supplies only the protocol: :meth:`ClientEngine._attempt` (one HTTP attempt, classified into an
:class:`Outcome`), :meth:`ClientEngine._cache_key` and :meth:`ClientEngine._close_sdk`.

Pricing: every successful response carries ``cost_usd``, priced from its token usage with the
client's price table whether it came from the network, the disk cache or an in-flight duplicate,
so a first run and its cached re-run price the same responses the same (``priced_usd``,
``llm.priced_usd``).  Money actually spent (``spent_usd``, ``llm.cost_usd``: network responses
only) is what ``budget_usd`` and the ledger enforce.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

import attrs

from ..telemetry import Telemetry
from .admission import AdaptiveLimiter
from .cache import ResponseCache
from .ledger import BudgetLedger
from .structured import acomplete_json
from .types import BudgetExceeded, LLMConfigError, LLMRequest, LLMResponse, Usage
from .usage import ModelPrice, PriceTable

__all__ = ["REDACTED", "ClientEngine", "Outcome", "Prices", "classify_status", "parse_retry_after"]

T = TypeVar("T")

#: what a credential echoed in an error message is replaced by
REDACTED = "[redacted]"

#: the ``prices=`` a client accepts: rows ``{model_prefix: (in, out)}`` / mappings / ModelPrice, or a PriceTable
Prices = Mapping[str, ModelPrice | tuple[float, float] | Mapping[str, float]] | PriceTable | None


class Outcome:
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


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
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


def classify_status(status: int, detail: str, retry_after: float | None, *, overload: Sequence[int] = (529,)) -> Outcome:
    """The retry policy of an HTTP error status: 429 and ``overload`` throttle, 5xx/408/409 retry, other 4xx are final."""
    if status == 429:
        return Outcome(kind="rate_limit", message=detail, retryable=True, throttle=True, retry_after=retry_after)
    if status in overload:
        return Outcome(kind="overloaded", message=detail, retryable=True, throttle=True, retry_after=retry_after)
    if status == 408:
        return Outcome(kind="timeout", message=detail, retryable=True, retry_after=retry_after)
    if status >= 500 or status == 409:
        return Outcome(kind="server", message=detail, retryable=True, retry_after=retry_after)
    return Outcome(kind="bad_request", message=detail)


class ClientEngine:
    """Base of the protocol clients (see the module docstring); not used directly.

    Subclasses call :meth:`_start_engine` from their ``__init__`` with the shared options, after
    building their SDK client as ``self._sdk``.
    """

    #: structured-output methods this backend supports (``complete_json(method=...)``)
    json_methods: tuple[str, ...] = ("text", "tool")

    _sdk: Any

    # ------------------------------------------------------------------ construction

    def _check_number(self, name: str, value: Any, lo: float, *, allow_none: bool = False, strict: bool = False) -> None:
        if value is None and allow_none:
            return
        bad = isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
        if bad or value < lo or (strict and value == lo):
            rel = ">" if strict else ">="
            raise LLMConfigError(
                f"{type(self).__name__}.{name}: expected a number {rel} {lo}{' or None' if allow_none else ''}, got {value!r}"
            )

    def _start_engine(
        self,
        *,
        secret: str | None,
        base_url: str | None,
        max_in_flight: int,
        cache_dir: str | os.PathLike[str] | None,
        budget_usd: float | None,
        prices: Prices,
        timeout: float,
        max_retries: int,
        seed: int,
        backoff_base_s: float,
        backoff_max_s: float,
        max_retry_after_s: float,
        cooldown_s: float,
        min_in_flight: int,
        send_temperature: bool,
        ledger: BudgetLedger | None | bool,
    ) -> None:
        """Validate the shared options and set up the limiter, cache, accounting and the event loop."""
        self._check_number("budget_usd", budget_usd, 0.0, allow_none=True)
        self._check_number("timeout", timeout, 0.0, strict=True)
        self._check_number("backoff_base_s", backoff_base_s, 0.0)
        self._check_number("backoff_max_s", backoff_max_s, 0.0)
        self._check_number("max_retry_after_s", max_retry_after_s, 0.0)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise LLMConfigError(f"{type(self).__name__}.max_retries: expected an integer >= 0, got {max_retries!r}")
        self._secret = secret  # only for scrubbing error text; never printed
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
        self.send_temperature = bool(send_temperature)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._tel = Telemetry()
        self._reported: dict[str, int] = {}  # limiter/cache totals already handed out by telemetry(reset=True)
        self._spent = 0.0
        self._priced = 0.0
        self.ledger: BudgetLedger | None = (
            BudgetLedger.from_env() if ledger is None else None if ledger is False or ledger is True else ledger
        )
        self._pending: dict[str, asyncio.Future[LLMResponse]] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="datacore-llm-loop", daemon=True)
        self._thread.start()
        self._closed = False

    # ------------------------------------------------------------------ protocol hooks

    async def _attempt(self, req: LLMRequest, attempts: int) -> Outcome:
        """One HTTP attempt for ``req``, classified (subclasses)."""
        raise NotImplementedError

    def _cache_key(self, req: LLMRequest) -> str:
        """The cache / dedup key of ``req`` on this protocol."""
        return req.cache_key()

    async def _close_sdk(self) -> None:
        await self._sdk.close()

    async def _guarded(
        self,
        errors: Any,
        call: Awaitable[Any],
        convert: Callable[[Any], LLMResponse],
        on_status: Callable[[Any], Outcome],
    ) -> Outcome:
        """Await one SDK ``call`` and classify what happened.

        ``errors`` is the SDK module (``anthropic`` and ``openai`` name their exceptions alike);
        ``convert`` turns the SDK's reply into an :class:`LLMResponse`; ``on_status`` classifies
        an HTTP error status (the protocols differ there).
        """
        try:
            raw = await call
        except errors.APIStatusError as e:
            return on_status(e)
        except errors.APITimeoutError:
            return Outcome(kind="timeout", message=f"no response within timeout={self.timeout:g}s", retryable=True)
        except errors.APIConnectionError as e:
            return Outcome(kind="connection", message=self._scrub(f"connection error: {e}"), retryable=True)
        except (errors.APIResponseValidationError, ValueError) as e:
            # ValueError covers json.JSONDecodeError: a 200 whose body is not valid JSON.
            return Outcome(
                kind="malformed", message=self._scrub(f"malformed response: {type(e).__name__}: {e}"[:300]), retryable=True
            )
        try:
            return Outcome(resp=convert(raw))
        except (ValueError, TypeError, AttributeError) as e:
            return Outcome(kind="malformed", message=self._scrub(f"malformed response: {e}"[:300]), retryable=True)

    # ------------------------------------------------------------------ lifecycle

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, max_in_flight={self.limiter.max_limit}, "
            f"cache_dir={str(self.cache.root) if self.cache else None!r}, budget_usd={self.budget_usd!r})"
        )

    def __getstate__(self) -> Any:
        # Pickling would copy the key into whatever the pickle lands on; make one per process instead.
        raise TypeError(f"{type(self).__name__} cannot be pickled; create one in each worker process")

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close HTTP connections and stop the private event loop (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            asyncio.run_coroutine_threadsafe(self._close_sdk(), self._loop).result(timeout=10)
        except Exception:  # closing must not mask the caller's own error
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise LLMConfigError(f"{type(self).__name__}: the client is closed")
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result()
        except BaseException:
            fut.cancel()  # Ctrl-C in the caller stops the work on the loop too
            raise

    async def _on_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise LLMConfigError(f"{type(self).__name__}: the client is closed")
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    # ------------------------------------------------------------------ accounting

    def _count(self, name: str, by: float = 1) -> None:
        with self._lock:
            self._tel.count(name, by)

    def _observe(self, name: str, bucket: object) -> None:
        with self._lock:
            self._tel.observe(name, bucket)

    @property
    def spent_usd(self) -> float:
        """USD actually spent so far by this client: network responses only (cache hits cost nothing)."""
        return self._spent

    @property
    def priced_usd(self) -> float:
        """USD of every successful response so far priced from its usage, cache hits included.

        Equal for a first run and its cached re-run (what cost-aware callers should use).
        """
        return self._priced

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

    def _account(self, model: str, usage: Usage, *, batch: bool = False) -> float | None:
        """Count the tokens and cost of a paid (network or batch) response; returns its cost."""
        cost = self.prices.cost(model, usage, batch=batch)
        with self._lock:
            tel = self._tel
            tel.count("llm.input_tokens", usage.input_tokens)
            tel.count("llm.output_tokens", usage.output_tokens)
            tel.count(f"llm.input_tokens.{model}", usage.input_tokens)
            tel.count(f"llm.output_tokens.{model}", usage.output_tokens)
            if usage.cache_creation_input_tokens or usage.cache_read_input_tokens:
                tel.count("llm.cache_write_tokens", usage.cache_creation_input_tokens)
                tel.count("llm.cache_read_tokens", usage.cache_read_input_tokens)
            if cost is None:
                tel.count("llm.unpriced_calls")
            else:
                self._spent += cost
                if self.ledger is not None:
                    self.ledger.charge(cost)
                tel.count("llm.cost_usd", cost)
                tel.count(f"llm.cost_usd.{model}", cost)
        return cost

    def _priced_response(self, req: LLMRequest, resp: LLMResponse, *, saved: bool) -> LLMResponse:
        """``resp`` with ``cost_usd`` from its usage (same price for a network reply and a cache hit)."""
        cost = self.prices.cost(req.model, resp.usage)
        if cost is None:
            return resp
        with self._lock:
            self._priced += cost
            self._tel.count("llm.priced_usd", cost)
            if saved:
                self._tel.count("llm.saved_usd", cost)
        return attrs.evolve(resp, cost_usd=cost)

    def _check_priced(self, req: LLMRequest) -> None:
        if (self.budget_usd is not None or self.ledger is not None) and self.prices.price_for(req.model) is None:
            raise LLMConfigError(
                f"LLMRequest.model: {req.model!r} has no price, so budget_usd cannot be enforced; add it with prices={{...}}"
            )

    def _check_request(self, req: LLMRequest) -> None:
        """Refuse, before anything is sent, a request this client cannot send or price (subclasses add protocol checks)."""
        self._check_priced(req)

    def _check_budget(self) -> None:
        if self.budget_usd is not None and self._spent >= self.budget_usd:
            raise BudgetExceeded(self._spent, self.budget_usd)
        if self.ledger is not None:
            self.ledger.check()  # the run's spending, all workers together

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, REDACTED) if self._secret else text

    # ------------------------------------------------------------------ retries

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            # Honour the server's wait; a little jitter on top keeps the retries from arriving together.
            base = min(retry_after, self.max_retry_after_s)
            return base + self._rng.uniform(0.0, 0.1) * max(base, 0.01)
        cap = min(self.backoff_max_s, self.backoff_base_s * (2 ** (attempt - 1)))
        return cap * self._rng.uniform(0.5, 1.0)

    async def _call_with_retries(self, req: LLMRequest) -> LLMResponse:
        attempts = 0
        while True:
            attempts += 1
            await self.limiter.acquire()
            try:
                self._check_budget()
                self._count("llm.calls")
                out = await self._attempt(req, attempts)
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
                return self._priced_response(req, out.resp, saved=False)
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
        self._check_request(req)
        self._count("llm.requests")
        if self.cache is None:
            return await self._call_with_retries(req)
        key = self._cache_key(req)
        hit = self.cache.get(key)
        if hit is not None:
            self._count("llm.cache_hits")
            return self._priced_response(req, hit, saved=True)
        pending = self._pending.get(key)
        if pending is not None:
            # The same request is already in flight: one call serves both, so a re-run agrees with this run.
            self._count("llm.dedup_hits")
            resp = await asyncio.shield(pending)
            return self._priced_response(req, attrs.evolve(resp, cached=True), saved=True) if resp.ok else resp
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

    def _check_method(self, method: str) -> None:
        if method not in self.json_methods:
            raise LLMConfigError(
                f"{type(self).__name__}.complete_json method: expected one of {', '.join(self.json_methods)}, got {method!r}"
            )

    def _json(self, req: LLMRequest, schema: dict[str, Any], method: str) -> Coroutine[Any, Any, tuple[Any, LLMResponse]]:
        self._check_method(method)
        return acomplete_json(self._run_one, self._count, req, schema, method=method)

    # ------------------------------------------------------------------ public API

    def complete(self, req: LLMRequest) -> LLMResponse:
        """Run one request.  Failures come back with ``error`` set; raises :class:`BudgetExceeded` when the budget is spent."""
        return self._run(self._run_one(req))

    async def acomplete(self, req: LLMRequest) -> LLMResponse:
        """Awaitable :meth:`complete`, usable from any event loop."""
        return await self._on_loop(self._run_one(req))

    def complete_many(self, reqs: Sequence[LLMRequest]) -> list[LLMResponse]:
        """Run all requests with up to ``max_in_flight`` in flight; results in input order.

        Never raises for a request's failure: each failed request (including those refused once the
        budget is spent, ``error_kind == "budget"``) comes back with ``error`` set.
        """
        reqs = list(reqs)
        for i, r in enumerate(reqs):
            if not isinstance(r, LLMRequest):
                raise LLMConfigError(f"complete_many: reqs[{i}] is a {type(r).__name__}, expected LLMRequest")
            self._check_request(r)
        return self._run(self._many(reqs))

    def complete_json(self, req: LLMRequest, schema: dict[str, Any], *, method: str = "text") -> tuple[Any, LLMResponse]:
        """Ask for JSON valid against ``schema``: ``(obj, response)``, or ``(None, response)`` with ``error_kind="schema"``.

        ``method`` is one of :attr:`json_methods`: ``"text"`` asks for the JSON in the reply text;
        ``"tool"`` forces a tool call whose input schema is ``schema`` (object schemas only).
        One repair round-trip on invalid output.
        """
        return self._run(self._json(req, schema, method))

    async def acomplete_json(self, req: LLMRequest, schema: dict[str, Any], *, method: str = "text") -> tuple[Any, LLMResponse]:
        """Awaitable :meth:`complete_json`."""
        return await self._on_loop(self._json(req, schema, method))

    def complete_json_many(
        self, reqs: Sequence[LLMRequest], schema: dict[str, Any], *, method: str = "text"
    ) -> list[tuple[Any, LLMResponse]]:
        """:meth:`complete_json` for many requests concurrently, in input order; budget refusals come back as failures."""

        async def one(r: LLMRequest) -> tuple[Any, LLMResponse]:
            try:
                return await self._json(r, schema, method)
            except BudgetExceeded as e:
                self._count("llm.budget_refused")
                return None, LLMResponse.failure("budget", str(e), model=r.model)

        async def run() -> list[tuple[Any, LLMResponse]]:
            return list(await asyncio.gather(*(one(r) for r in reqs)))

        for r in reqs:
            self._check_request(r)
        self._check_method(method)
        return self._run(run())
