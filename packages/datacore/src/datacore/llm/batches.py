"""Message Batches: the same requests at half price, for large offline runs; resumable.

:class:`BatchRunner` submits requests as Message Batches, polls them, and collects the results in
input order.  Its state file (JSON) records the intent to create a batch (its requests and the time) *before*
``create`` is called, every batch id the moment the API returns it, which requests each batch
carries, and every result collected.  A run killed at any point (during ``create`` included: the
API may have made the batch while its id never reached us) and started again with the same state
file reconciles each open intent with the batch listing: a batch created after the intent, not
known yet, with as many requests, is adopted instead of paying for it twice; several such
batches are refused with an error naming them; none means ``create`` never arrived, and only
then is the batch created.  The same reconciliation runs before ``create`` is retried after a
lost response.  A request's ``custom_id`` is its cache
key, so identical requests share one slot.  Successful results also go to the client's disk
cache (when it has one), where ordinary ``complete`` calls find them.  Requests that errored or
expired in a batch come back with ``error`` set; the next ``run`` with the same state re-submits
only those.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anthropic

from .client import AnthropicClient, _api_message, _parse_retry_after
from .types import LLMConfigError, LLMError, LLMRequest, LLMResponse

__all__ = ["BatchRunner"]

T = TypeVar("T")
STATE_VERSION = 1
# How far the API's clock may run behind ours when matching a batch to an intent.
CLOCK_SKEW_S = 300.0


class BatchRunner:
    """Run requests through Message Batches with a resumable JSON state file.

    Parameters:
        client: the :class:`AnthropicClient` whose SDK connection, cache, prices and telemetry are used.
        state_path: JSON file holding batch ids and collected results (created if missing).
        poll_interval_s: wait between polls of unfinished batches.
        max_batch_size: requests per batch (the API allows up to 100,000).
    """

    def __init__(
        self,
        client: AnthropicClient,
        state_path: str | os.PathLike[str],
        *,
        poll_interval_s: float = 30.0,
        max_batch_size: int = 10_000,
    ) -> None:
        if not isinstance(client, AnthropicClient):
            raise LLMConfigError(
                f"BatchRunner.client: Message Batches are an Anthropic API; got a {type(client).__name__} "
                "(run OpenAI-compatible requests with complete_many)"
            )
        if poll_interval_s < 0:
            raise LLMConfigError(f"BatchRunner.poll_interval_s: expected a number >= 0, got {poll_interval_s!r}")
        if not 1 <= max_batch_size <= 100_000:
            raise LLMConfigError(f"BatchRunner.max_batch_size: expected an integer in [1, 100000], got {max_batch_size!r}")
        self.client = client
        self.state_path = Path(state_path)
        self.poll_interval_s = float(poll_interval_s)
        self.max_batch_size = int(max_batch_size)
        self.state = self._load()

    # ------------------------------------------------------------------ state

    def _load(self) -> dict[str, Any]:
        if not self.state_path.exists():
            return {"version": STATE_VERSION, "batches": [], "results": {}, "errors": {}, "intents": []}
        try:
            st = json.loads(self.state_path.read_text(encoding="utf-8"))
            if st.get("version") != STATE_VERSION or not isinstance(st.get("batches"), list):
                raise ValueError(f"expected version {STATE_VERSION} with a 'batches' list")
            st.setdefault("results", {})
            st.setdefault("errors", {})
            st.setdefault("intents", [])
            return st
        except (ValueError, OSError) as e:
            raise LLMConfigError(f"{self.state_path}: not a BatchRunner state file: {e}") from None

    def _save(self) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".batches.", suffix=".tmp", dir=self.state_path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(self.state, f, sort_keys=True)
        os.replace(tmp, self.state_path)

    # ------------------------------------------------------------------ API calls with retries

    async def _retrying(self, fn: Callable[[], Awaitable[T]]) -> T:
        c = self.client
        for attempt in range(1, c.max_retries + 2):
            try:
                return await fn()
            except anthropic.APIStatusError as e:
                transient = e.status_code in (408, 409, 429) or e.status_code >= 500
                if not transient or attempt > c.max_retries:
                    raise LLMError(c._scrub(f"Message Batches call failed: HTTP {e.status_code}: {_api_message(e)}")) from None
                ra = _parse_retry_after(e.response.headers)
            except anthropic.APIConnectionError as e:
                if attempt > c.max_retries:
                    raise LLMError(c._scrub(f"Message Batches call failed: {e}")) from None
                ra = None
            c._count("llm.batch.retries")
            await asyncio.sleep(c._delay(attempt, ra))
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ steps

    def submit(self, reqs: Sequence[LLMRequest]) -> list[str]:
        """Submit every request not yet collected, cached or in a known batch; returns the new batch ids."""
        return self.client._run(self._asubmit(list(reqs)))

    async def _asubmit(self, reqs: list[LLMRequest]) -> list[str]:
        c = self.client
        if self.state["intents"]:
            await self._areconcile()
        in_batches = {k for b in self.state["batches"] if not b.get("collected") for k in b["keys"]}
        todo: dict[str, LLMRequest] = {}
        for r in reqs:
            c._check_priced(r)
            k = r.cache_key()
            if k in self.state["results"] or k in in_batches or k in todo:
                continue
            if c.cache is not None and c.cache.get(k) is not None:
                continue
            todo[k] = r
        new_ids = []
        items = list(todo.items())
        for i in range(0, len(items), self.max_batch_size):
            chunk = items[i : i + self.max_batch_size]
            c._check_budget()
            payload: list[dict[str, Any]] = []
            for k, r in chunk:
                params = r.to_api_params(send_temperature=c.send_temperature)
                # Batch params are a plain body: extra_body is an SDK call option, not a field.
                params.update(params.pop("extra_body", {}))
                payload.append({"custom_id": k, "params": params})

            keys = [k for k, _ in chunk]
            # Persist the intent before create: if we die (or the response is lost) after the API
            # made the batch, the next run finds it in the listing instead of paying twice.
            intent = {"keys": keys, "n": len(keys), "t": time.time()}
            self.state["intents"].append(intent)
            self._save()
            tried = False

            async def create(payload: list[dict[str, Any]] = payload, intent: dict[str, Any] = intent) -> Any:
                nonlocal tried
                if tried:  # an earlier attempt may have reached the API: look before creating again
                    found = await self._find_created(intent)
                    if found is not None:
                        return found
                tried = True
                return await c._sdk.messages.batches.create(requests=payload)  # type: ignore[arg-type]

            batch = await self._retrying(create)
            self._adopt(intent, batch.id)
            c._count("llm.batch.submitted")
            c._count("llm.batch.requests", len(chunk))
            new_ids.append(batch.id)
        return new_ids

    def _adopt(self, intent: dict[str, Any], batch_id: str) -> None:
        """Record ``batch_id`` as the batch of ``intent`` (and drop the intent), atomically."""
        self.state["batches"].append({"id": batch_id, "keys": intent["keys"], "collected": False})
        for k in intent["keys"]:
            self.state["errors"].pop(k, None)
        self.state["intents"] = [i for i in self.state["intents"] if i is not intent]
        self._save()

    async def _find_created(self, intent: dict[str, Any]) -> Any:
        """The batch an unanswered ``create`` of ``intent`` made, from the listing; None if none.

        A candidate was created after the intent (less a clock-skew margin), is not in the state
        yet and carries as many requests.  More than one candidate cannot be told apart (the API
        keeps no client id): that is an error naming them, never a second payment.
        """
        c = self.client
        known = {b["id"] for b in self.state["batches"]}
        since = float(intent["t"]) - CLOCK_SKEW_S
        candidates = []

        async def listing() -> list[Any]:
            out = []
            async for b in c._sdk.messages.batches.list(limit=100):
                created = getattr(b, "created_at", None)
                ts = created.timestamp() if created is not None and hasattr(created, "timestamp") else None
                if ts is not None and ts < since:
                    break  # the listing is newest first
                out.append(b)
            return out

        for b in await self._retrying(listing):
            counts = getattr(b, "request_counts", None)
            total = sum(int(getattr(counts, f, 0) or 0) for f in ("processing", "succeeded", "errored", "canceled", "expired"))
            if b.id not in known and total == intent["n"]:
                candidates.append(b)
        c._count("llm.batch.reconciled")
        if len(candidates) > 1:
            ids = ", ".join(b.id for b in candidates[:5])
            raise LLMError(
                f"{self.state_path}: an interrupted create of {intent['n']} requests may have made any of the batches "
                f"{ids}; cannot tell which, so nothing is submitted again. Cancel the extra ones, then remove the "
                "open intent from the state file (or add the right batch id to its 'batches')"
            )
        return candidates[0] if candidates else None

    async def _areconcile(self) -> None:
        """Settle every intent left by an interrupted run: adopt its batch, or forget it."""
        for intent in list(self.state["intents"]):
            found = await self._find_created(intent)
            if found is not None:
                self._adopt(intent, found.id)
                self.client._count("llm.batch.adopted")
            else:
                self.state["intents"] = [i for i in self.state["intents"] if i is not intent]
                self._save()

    def poll(self) -> dict[str, str]:
        """Check every uncollected batch once, collecting those that ended: ``{batch_id: status}``."""
        return self.client._run(self._apoll())

    async def _apoll(self) -> dict[str, str]:
        c = self.client
        out: dict[str, str] = {}
        for b in self.state["batches"]:
            if b.get("collected"):
                continue
            bid: str = b["id"]

            async def retrieve(bid: str = bid) -> Any:
                return await c._sdk.messages.batches.retrieve(bid)

            async def results(bid: str = bid) -> Any:
                return await c._sdk.messages.batches.results(bid)

            info = await self._retrying(retrieve)
            c._count("llm.batch.polls")
            out[b["id"]] = info.processing_status
            if info.processing_status != "ended":
                continue
            decoder = await self._retrying(results)
            async for item in decoder:
                k = item.custom_id
                res = item.result
                if res.type == "succeeded":
                    resp = c._to_response(res.message, attempts=1)
                    self.state["results"][k] = resp.to_dict()
                    c._account(resp.model, resp.usage, batch=True)
                    c._count("llm.batch.succeeded")
                else:
                    err = getattr(res, "error", None)
                    detail = getattr(getattr(err, "error", None), "message", None) or res.type
                    self.state["errors"][k] = c._scrub(f"batch {res.type}: {detail}")[:300]
                    c._count(f"llm.batch.{res.type}")
            b["collected"] = True
            self._save()
        return out

    def collect(self, reqs: Sequence[LLMRequest]) -> list[LLMResponse]:
        """Responses for ``reqs`` in order from the state and the cache; not-yet-done ones have ``error_kind="pending"``."""
        c = self.client
        out = []
        for r in reqs:
            k = r.cache_key()
            if k in self.state["results"]:
                resp = LLMResponse.from_dict(self.state["results"][k])
                if c.cache is not None and c.cache.get(k) is None:
                    c.cache.put(k, r, resp)
                out.append(resp)
            elif c.cache is not None and (hit := c.cache.get(k)) is not None:
                out.append(hit)
            elif k in self.state["errors"]:
                out.append(LLMResponse.failure("batch", self.state["errors"][k], model=r.model, attempts=1))
            else:
                out.append(LLMResponse.failure("pending", "not collected yet: its batch has not ended", model=r.model))
        return out

    def run(self, reqs: Sequence[LLMRequest], *, timeout_s: float | None = None) -> list[LLMResponse]:
        """Submit what is missing, poll until every batch has ended (or ``timeout_s``), collect in order."""
        reqs = list(reqs)
        self.submit(reqs)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while any(not b.get("collected") for b in self.state["batches"]):
            self.poll()
            if not any(not b.get("collected") for b in self.state["batches"]):
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            time.sleep(self.poll_interval_s)
        return self.collect(reqs)
