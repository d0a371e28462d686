"""Glue to :mod:`datacore.llm`: requests, prompt hashes, JSON replies, LLM judges, accounting.

Every request routergen sends is a pure function of the recipe, the arm, the iteration and
the sample index, so the content-addressed cache of :class:`datacore.llm.AnthropicClient`
turns an identical re-run into zero model calls.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .spec import LLMConfig

_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?```$", re.DOTALL)


def parse_json_object(text: str) -> dict[str, Any] | None:
    """The JSON object a model replied with (a ```json fence is allowed), or None if invalid."""
    t = text.strip()
    m = _FENCE.match(t)
    if m:
        t = m.group(1).strip()
    try:
        obj = json.loads(t)
    except (json.JSONDecodeError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def prompt_hash(system: str | None, user: str) -> str:
    """sha256 (first 16 hex) of a prompt: lineage ties each sample to the prompt that made it."""
    return hashlib.sha256(((system or "") + "\x00" + user).encode("utf-8")).hexdigest()[:16]


#: API version that accepts sampling parameters (the SDK's default version rejects ``temperature``).
TEMPERATURE_API_VERSION = "2023-06-01"
#: With a budget, requests are sent in chunks of this many and the budget is checked between chunks.
BUDGET_CHUNK = 16


def make_client(
    cache_dir: str | os.PathLike[str] | None, prices: Any = None, *, concurrency: int | None = None, backend: str = "anthropic"
) -> Any:
    """An :class:`datacore.llm.AnthropicClient` (key from ``ANTHROPIC_API_KEY``; base URL from
    ``ANTHROPIC_BASE_URL`` if set) with the response cache in ``cache_dir``.

    It sends each request's temperature (``send_temperature`` with an API version that accepts
    it): without that every arm's temperature would be dropped and ``naive`` / ``naive-hot``
    would be the same arm.  No client-side budget: routergen enforces ``budget.max_usd`` itself
    on priced usage (see :class:`LLMBackend`), which a cached re-run reproduces exactly.
    ``concurrency``: the most requests in flight at once (default: the client's own limit).
    ``backend="openai"``: a :class:`datacore.llm.OpenAIClient` instead (``OPENAI_BASE_URL``,
    ``OPENAI_API_KEY``; chat completions accept ``temperature``), with the same cache.
    """
    kw: dict[str, Any] = {} if concurrency is None else {"max_in_flight": int(concurrency)}
    if backend == "openai":
        import datacore.llm as dllm

        return dllm.OpenAIClient(cache_dir=cache_dir, prices=prices, send_temperature=True, **kw)
    from datacore.llm import AnthropicClient

    return AnthropicClient(cache_dir=cache_dir, prices=prices, send_temperature=True, api_version=TEMPERATURE_API_VERSION, **kw)


class BatchClient:
    """A client whose ``complete_many`` goes through Message Batches (:class:`datacore.llm.BatchRunner`).

    Each call submits the requests that are neither cached nor already in a batch, polls every
    ``poll_interval_s`` until their batches end, and returns the responses in input order (a
    request the batch failed comes back as a failure, like any other).  The runner's state file
    lets a killed run pick its batches up again instead of paying twice.  Batched requests are
    priced at the batch discount (:class:`LLMBackend` with ``batch=True``).
    """

    batch = True

    def __init__(self, client: Any, state_path: str | os.PathLike[str], *, poll_interval_s: float = 30.0) -> None:
        from datacore.llm import BatchRunner

        self.client = client
        self.send_temperature = getattr(client, "send_temperature", True)
        self.runner = BatchRunner(client, state_path, poll_interval_s=poll_interval_s)

    def complete_many(self, reqs: Sequence[Any]) -> list[Any]:
        """The responses to ``reqs`` in order, through Message Batches."""
        return self.runner.run(list(reqs)) if reqs else []

    def telemetry(self) -> Any:
        """The wrapped client's telemetry (``llm.batch.*`` counters included)."""
        return self.client.telemetry()

    def close(self) -> None:
        """Close the wrapped client."""
        self.client.close()


class LLMBackend:
    """A model client plus the recipe's model settings; prices and counts every request.

    Every response is priced from its token usage with ``prices`` (a ``PriceTable``; at the batch
    discount when the client is a :class:`BatchClient`), whether it
    came from the network or the cache, and every request counts, cache hit or not: so costs,
    cost-aware rewards and the ``max_usd`` / ``max_calls`` budgets are the same in a first run,
    a cached re-run and a resumed run.  With a budget, requests go out in chunks of
    :data:`BUDGET_CHUNK` and the rest of a batch is refused (``error_kind="budget"``) once the
    priced spend or the request count reaches it.
    """

    def __init__(
        self,
        client: Any,
        config: LLMConfig,
        prices: Any = None,
        *,
        max_usd: float | None = None,
        max_calls: int | None = None,
        batch: bool | None = None,
    ) -> None:
        from datacore.llm import PriceTable

        from .errors import RoutergenError

        if getattr(client, "send_temperature", True) is False:
            raise RoutergenError(
                "the LLM client drops each request's temperature (AnthropicClient(send_temperature=False)), so arms "
                "that differ only in temperature would be the same arm: pass "
                f"AnthropicClient(send_temperature=True, api_version={TEMPERATURE_API_VERSION!r})"
            )
        self.client = client
        self.config = config
        #: price every response at the Message Batches discount (a :class:`BatchClient`)
        self.batch = bool(getattr(client, "batch", False)) if batch is None else batch
        self.prices = prices if prices is not None else PriceTable()
        self.max_usd = max_usd
        self.max_calls = max_calls
        self.budget_hit = False
        self.spent_usd = 0.0  # priced usage of every response so far (the pipeline sets the baseline)
        self.requests = 0  # requests made (cache hits included)
        self.unpriced = 0
        #: model calls that went over the network (not the cache), retries included
        self.network_calls = 0
        #: structured-output outcomes so far: asked, ok first time, repaired, failed (after the repair)
        self.structured: dict[str, int] = dict.fromkeys(STRUCTURED_COUNTS, 0)

    def view(self, spent_usd: float, requests: int, *, part: int = 0, parts: int = 1) -> LLMBackend:
        """A backend on the same client whose spend and request count start at ``spent_usd`` and
        ``requests`` and are its own (budget, structured and network counters included).

        An iteration accounts through its own view, so iterations running concurrently on one
        client each see exactly their own requests' priced cost.  ``part`` of ``parts``: the
        view is one of ``parts`` iterations that may run at once (a round), so it may spend only
        its share of what is left of the budget, ``(max_usd - spent_usd) / parts`` (and of
        ``max_calls``, the remainder going to the first parts): together the round never spends
        past the budget, whichever of its iterations run.  The shares depend on the round alone,
        never on what runs concurrently, so the bytes stay the same for every concurrency.
        """
        max_usd, max_calls = self.max_usd, self.max_calls
        if parts > 1 and max_usd is not None:
            max_usd = spent_usd + max(0.0, max_usd - spent_usd) / parts
        if parts > 1 and max_calls is not None:
            q, r = divmod(max(0, max_calls - requests), parts)
            max_calls = requests + q + (1 if part < r else 0)
        v = LLMBackend(self.client, self.config, self.prices, max_usd=max_usd, max_calls=max_calls, batch=self.batch)
        v.spent_usd, v.requests = spent_usd, requests
        return v

    def _price(self, req: Any, resp: Any) -> float:
        usage = getattr(resp, "usage", None)
        if usage is None:
            return 0.0
        c = self.prices.cost(req.model, usage, batch=self.batch)
        if c is None:
            self.unpriced += 1
            return 0.0
        return float(c)

    def request(
        self,
        system: str | None,
        user: str,
        temperature: float | None = None,
        max_tokens: int | None = None,
        model: str | None = None,
    ) -> Any:
        """Build an ``LLMRequest``."""
        from datacore.llm import LLMRequest

        return LLMRequest(
            model=model or self.config.model,
            messages=[{"role": "user", "content": user}],
            system=system,
            max_tokens=max_tokens or self.config.max_tokens,
            temperature=self.config.temperature if temperature is None else float(temperature),
        )

    def _over_budget(self) -> bool:
        return (self.max_usd is not None and self.spent_usd >= self.max_usd) or (
            self.max_calls is not None and self.requests >= self.max_calls
        )

    def complete_many(self, reqs: Sequence[Any]) -> list[Any]:
        """Run requests (concurrently, cached), pricing each; refuse what the budget does not allow."""
        from datacore.llm import LLMResponse

        reqs = list(reqs)
        if not reqs:
            return []
        budgeted = self.max_usd is not None or self.max_calls is not None
        step = BUDGET_CHUNK if budgeted else len(reqs)
        out: list[Any] = []
        for lo in range(0, len(reqs), step):
            chunk = reqs[lo : lo + step]
            if self.max_calls is not None:
                chunk = chunk[: max(0, self.max_calls - self.requests)]
            if not chunk or self._over_budget():
                break
            resps = self.client.complete_many(chunk)
            for q, r in zip(chunk, resps):
                self.requests += 1
                self.spent_usd += self._price(q, r)
                if not getattr(r, "cached", False) and getattr(r, "error_kind", None) != "budget":
                    self.network_calls += max(1, int(getattr(r, "attempts", 0) or 0))
            out.extend(resps)
        if len(out) < len(reqs):
            refused = LLMResponse.failure("budget", "refused: the run's budget (max_usd / max_calls) is spent")
            out.extend([refused] * (len(reqs) - len(out)))
        if any(getattr(r, "error_kind", None) == "budget" for r in out):
            self.budget_hit = True
        return out

    def complete_structured(
        self, reqs: Sequence[Any], schemas: Sequence[Mapping[str, Any]]
    ) -> list[tuple[dict[str, Any] | None, Any, str | None]]:
        """Ask each request for a JSON object valid against its schema, by forced tool use.

        Each request gets one tool, :data:`TOOL_NAME`, whose ``input_schema`` is its schema,
        and ``tool_choice`` forcing it; the tool input is checked with jsonschema.  An invalid
        (or missing) input is shown to the model once with the validator's complaints, as a
        ``tool_result`` with ``is_error``; still invalid after that is a counted failure.  Both
        rounds go through :meth:`complete_many`, so every attempt is priced, counted and cached.
        Returns ``(obj, response, problem)`` per request in order: ``obj`` is None when it
        failed, ``problem`` says why (``llm_error:KIND`` or ``schema_invalid``).
        """
        import attrs
        import jsonschema

        reqs = list(reqs)
        validators = [jsonschema.Draft202012Validator(dict(sc)) for sc in schemas]
        first = [
            attrs.evolve(
                r,
                tools=[{"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "input_schema": dict(sc)}],
                tool_choice={"type": "tool", "name": TOOL_NAME},
            )
            for r, sc in zip(reqs, schemas)
        ]
        self.structured["requests"] += len(first)
        out: list[tuple[dict[str, Any] | None, Any, str | None]] = []
        repairs: list[tuple[int, Any]] = []
        for i, (q, resp) in enumerate(zip(first, self.complete_many(first))):
            obj, problem, tool_id = _tool_input(resp, validators[i])
            out.append((obj if problem is None else None, resp, problem))
            if problem is not None and not problem.startswith("llm_error"):
                repairs.append((i, _repair(q, resp, problem, tool_id)))
        if repairs:
            self.structured["repairs"] += len(repairs)
            for (i, _q), resp in zip(repairs, self.complete_many([q for _, q in repairs])):
                obj, problem, _ = _tool_input(resp, validators[i])
                if problem is None:
                    self.structured["repaired"] += 1
                    out[i] = (obj, resp, None)
                else:
                    out[i] = (None, resp, problem if problem.startswith("llm_error") else "schema_invalid")
        for obj, _, _problem in out:
            if obj is None:
                self.structured["failed"] += 1
            else:
                self.structured["ok"] += 1
        return out

    def counters(self) -> dict[str, float]:
        """The client's cumulative counters (``llm.calls``, ``llm.cost_usd``, ``llm.cache_hits``...):
        what actually went over the network, which differs between a first and a cached run."""
        tel = self.client.telemetry() if hasattr(self.client, "telemetry") else None
        return dict(tel.counters) if tel is not None else {}

    # -- judges -----------------------------------------------------------------------------
    def _judge_model(self) -> str:
        return self.config.judge_model or self.config.model

    def judge_samples(self, task: str, samples: Sequence[Mapping[str, Any]]) -> list[float | None]:
        """Faithfulness score in [0, 1] per sample (None when the judge's reply is not valid JSON).

        The judge sees every field of the sample by name (labels, ratings, answers, not only the
        text) and is asked to check each: labels consistent with the text, answers computed.
        """
        reqs = [
            self.request(
                JUDGE_SYSTEM,
                f"Task the sample was written for:\n{task}\n\n"
                f"Sample (every field, as a JSON object):\n{_fields_json(f)}\n\n{CHECK_FIELDS}\n"
                'Reply with only a JSON object {"score": <number between 0 and 1>}: 1 only when the sample '
                "fulfils the task and every field is right.",
                temperature=0.0,
                max_tokens=64,
                model=self._judge_model(),
            )
            for f in samples
        ]
        return [_score(r) for r in self.complete_many(reqs)]

    def judge_batch(self, task: str, samples: Sequence[Mapping[str, Any]]) -> float | None:
        """Overall quality-and-diversity score in [0, 1] for a batch (None on an invalid reply);
        like :meth:`judge_samples` it sees every field of every sample."""
        listing = "\n".join(f"{i + 1}. {_fields_json(f)}" for i, f in enumerate(samples))
        req = self.request(
            JUDGE_SYSTEM,
            f"Task:\n{task}\n\nA batch of generated samples (one JSON object per line, every field):\n{listing}\n\n"
            f"{CHECK_FIELDS}\nRate the batch as training data for this task: correctness of every field, realism "
            'and diversity. Reply with only a JSON object {"score": <number between 0 and 1>}.',
            temperature=0.0,
            max_tokens=64,
            model=self._judge_model(),
        )
        return _score(self.complete_many([req])[0])


TOOL_NAME = "emit_sample"
TOOL_DESCRIPTION = "Return the sample (or the slot values) as this tool's input."
#: the counters of :attr:`LLMBackend.structured`: asked, repair rounds, repaired, ok in the end, failed in the end
STRUCTURED_COUNTS = ("requests", "repairs", "repaired", "ok", "failed")


def _tool_input(resp: Any, validator: Any) -> tuple[dict[str, Any] | None, str | None, str | None]:
    """(input, problem, tool_use_id) of a forced tool call; problem is None when the input is valid."""
    if getattr(resp, "error", None):
        return None, f"llm_error:{getattr(resp, 'error_kind', None) or 'error'}", None
    uses = [u for u in (getattr(resp, "tool_uses", None) or []) if u.get("name") == TOOL_NAME]
    if not uses:
        return None, f"the reply did not call the {TOOL_NAME} tool", None
    obj = uses[0].get("input")
    tool_id = uses[0].get("id")
    errs = sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path])[:3]
    if errs:
        return None, "; ".join(f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in errs), tool_id
    return obj, None, tool_id


def _repair(req: Any, resp: Any, problem: str, tool_id: str | None) -> Any:
    """The request again, with the model's answer and what is wrong with it (one repair round)."""
    import attrs

    msg = f"That input is invalid: {problem}. Call {TOOL_NAME} again with the corrected input."
    assistant: Any = list(getattr(resp, "content", None) or []) or (resp.text or "(empty reply)")
    if tool_id is not None:
        user: Any = [{"type": "tool_result", "tool_use_id": tool_id, "content": msg, "is_error": True}]
    else:
        user = msg
    return attrs.evolve(
        req, messages=[*req.messages, {"role": "assistant", "content": assistant}, {"role": "user", "content": user}]
    )


JUDGE_SYSTEM = "You are a strict data-quality judge for synthetic training data."
CHECK_FIELDS = (
    "Check every field, not only the text: each label or rating must be consistent with the text, and a "
    "numeric answer must be correct (compute it yourself from the question; do not trust a given solution)."
)


def _fields_json(fields: Mapping[str, Any]) -> str:
    return json.dumps(dict(fields), ensure_ascii=False, sort_keys=True)


def _score(resp: Any) -> float | None:
    if getattr(resp, "error", None):
        return None
    obj = parse_json_object(resp.text)
    if obj is None:
        return None
    s = obj.get("score")
    if isinstance(s, bool) or not isinstance(s, (int, float)):
        return None
    return min(1.0, max(0.0, float(s)))
