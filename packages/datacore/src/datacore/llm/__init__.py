"""`datacore.llm`: one LLM client layer for every generator that calls a model (extra ``datacore[llm]``).

- :class:`AnthropicClient` on the official ``anthropic`` SDK: many requests in flight under
  adaptive admission control, retries with ``retry-after`` / jittered backoff, a content-addressed
  disk cache (re-runs make zero calls), token and cost accounting, an optional budget, and
  JSON-Schema structured output with one repair round.
- :class:`OpenAIClient` on the official ``openai`` SDK: the same engine for any OpenAI-compatible
  chat-completions endpoint (OpenAI, local models behind vLLM or the llama.cpp server).
- :class:`BatchRunner`: the same requests through Message Batches (half price), resumable.
- :class:`BudgetLedger`: one budget for a whole run, shared by its worker processes (a file-locked
  ledger; clients attach to the one named by ``DATACORE_LLM_LEDGER``).
- :mod:`datacore.llm.testing`: ``FakeMessagesServer``, a loopback fake of both APIs for tests.

Import needs the extra: ``pip install 'datacore[llm]'``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:
    import anthropic as _anthropic  # noqa: F401
    import jsonschema as _jsonschema  # noqa: F401
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"datacore.llm needs the 'llm' extra: pip install 'datacore[llm]' ({e})") from e

from .admission import AdaptiveLimiter
from .batches import BatchRunner
from .cache import ResponseCache
from .client import AnthropicClient
from .ledger import LEDGER_ENV, BudgetLedger
from .structured import extract_json
from .types import BudgetExceeded, LLMClient, LLMConfigError, LLMError, LLMRequest, LLMResponse, Usage, canonical_json
from .usage import DEFAULT_PRICES, ModelPrice, PriceTable

if TYPE_CHECKING:
    from .openai_client import OpenAIClient


def __getattr__(name: str) -> Any:
    # OpenAIClient is imported on first use, so an install with only the anthropic SDK keeps working.
    if name == "OpenAIClient":
        try:
            from .openai_client import OpenAIClient
        except ImportError as e:  # pragma: no cover - exercised only without the openai SDK
            raise ImportError(f"datacore.llm.OpenAIClient needs the openai SDK: pip install 'datacore[llm]' ({e})") from e
        return OpenAIClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_PRICES",
    "LEDGER_ENV",
    "AdaptiveLimiter",
    "AnthropicClient",
    "BatchRunner",
    "BudgetLedger",
    "BudgetExceeded",
    "LLMClient",
    "LLMConfigError",
    "LLMError",
    "LLMRequest",
    "LLMResponse",
    "ModelPrice",
    "OpenAIClient",
    "PriceTable",
    "ResponseCache",
    "Usage",
    "canonical_json",
    "extract_json",
]
