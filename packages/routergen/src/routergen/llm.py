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
from collections.abc import Sequence
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


def make_client(cache_dir: str | os.PathLike[str] | None, budget_usd: float | None) -> Any:
    """An :class:`datacore.llm.AnthropicClient` (key from ``ANTHROPIC_API_KEY``; base URL from
    ``ANTHROPIC_BASE_URL`` if set) with the response cache in ``cache_dir``."""
    from datacore.llm import AnthropicClient

    return AnthropicClient(cache_dir=cache_dir, budget_usd=budget_usd)


class LLMBackend:
    """A model client plus the recipe's model settings; counts calls and cost per batch."""

    def __init__(self, client: Any, config: LLMConfig) -> None:
        self.client = client
        self.config = config
        self.budget_hit = False

    def request(self, system: str | None, user: str, temperature: float | None = None,
                max_tokens: int | None = None, model: str | None = None) -> Any:
        """Build an ``LLMRequest``."""
        from datacore.llm.types import LLMRequest

        return LLMRequest(
            model=model or self.config.model,
            messages=[{"role": "user", "content": user}],
            system=system,
            max_tokens=max_tokens or self.config.max_tokens,
            temperature=self.config.temperature if temperature is None else float(temperature),
        )

    def complete_many(self, reqs: Sequence[Any]) -> list[Any]:
        """Run requests (concurrently, cached); note when the budget refused any."""
        if not reqs:
            return []
        out = self.client.complete_many(list(reqs))
        if any(getattr(r, "error_kind", None) == "budget" for r in out):
            self.budget_hit = True
        return out

    def counters(self) -> dict[str, float]:
        """The client's cumulative counters (``llm.calls``, ``llm.cost_usd``, ``llm.cache_hits``...)."""
        tel = self.client.telemetry() if hasattr(self.client, "telemetry") else None
        return dict(tel.counters) if tel is not None else {}

    # -- judges -----------------------------------------------------------------------------
    def _judge_model(self) -> str:
        return self.config.judge_model or self.config.model

    def judge_samples(self, task: str, texts: Sequence[str]) -> list[float | None]:
        """Faithfulness score in [0, 1] per sample (None when the judge's reply is not valid JSON)."""
        system = "You are a strict data-quality judge for synthetic training data."
        reqs = [
            self.request(
                system,
                f"Task the sample was written for:\n{task}\n\nSample:\n{t}\n\n"
                'Does the sample fulfil the task faithfully and plausibly? Reply with only a JSON object '
                '{"score": <number between 0 and 1>}.',
                temperature=0.0, max_tokens=64, model=self._judge_model(),
            )
            for t in texts
        ]
        return [_score(r) for r in self.complete_many(reqs)]

    def judge_batch(self, task: str, texts: Sequence[str]) -> float | None:
        """Overall quality-and-diversity score in [0, 1] for a batch (None on an invalid reply)."""
        listing = "\n".join(f"{i + 1}. {t}" for i, t in enumerate(texts))
        req = self.request(
            "You are a strict data-quality judge for synthetic training data.",
            f"Task:\n{task}\n\nA batch of generated samples:\n{listing}\n\n"
            "Rate the batch as training data for this task: correctness, realism and diversity. "
            'Reply with only a JSON object {"score": <number between 0 and 1>}.',
            temperature=0.0, max_tokens=64, model=self._judge_model(),
        )
        return _score(self.complete_many([req])[0])


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
