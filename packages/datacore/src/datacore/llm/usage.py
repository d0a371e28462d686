"""Token and cost accounting per model, and the optional spending budget.

Prices are USD per million tokens, looked up by the longest matching model-name prefix, so
``claude-sonnet-4-5-20250929`` is priced by the ``claude-sonnet-4-5`` row.  The defaults below are
Anthropic's list prices at the time of writing; pass ``prices=`` to the client to override or
extend them (e.g. from a YAML config).  Message Batches are billed at ``batch_discount`` of that.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from .types import LLMConfigError, Usage

__all__ = ["CACHE_READ_FACTOR", "CACHE_WRITE_FACTOR", "DEFAULT_PRICES", "ModelPrice", "PriceTable"]

#: price of a prompt-cache write / read as a multiple of the model's input price (Anthropic, 5-minute cache)
CACHE_WRITE_FACTOR = 1.25
CACHE_READ_FACTOR = 0.1


@attrs.frozen
class ModelPrice:
    """USD per million input tokens and per million output tokens."""

    input_per_mtok: float = attrs.field(validator=attrs.validators.ge(0.0))
    output_per_mtok: float = attrs.field(validator=attrs.validators.ge(0.0))

    def cost(self, usage: Usage) -> float:
        """Cost in USD of ``usage`` at this price (prompt-cache writes at 1.25x and reads at 0.1x
        the input price, Anthropic's rates for the default 5-minute cache)."""
        cached = usage.cache_creation_input_tokens * CACHE_WRITE_FACTOR + usage.cache_read_input_tokens * CACHE_READ_FACTOR
        return ((usage.input_tokens + cached) * self.input_per_mtok + usage.output_tokens * self.output_per_mtok) / 1e6


# Longest prefix wins, so "claude-opus-4-5" (cheaper) is not priced as "claude-opus-4".
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "claude-opus-4-5": (5.0, 25.0),
    "claude-opus-4-1": (15.0, 75.0),
    "claude-opus-4": (15.0, 75.0),
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-3-7-sonnet": (3.0, 15.0),
    "claude-3-5-sonnet": (3.0, 15.0),
    "claude-3-5-haiku": (0.80, 4.0),
    "claude-3-opus": (15.0, 75.0),
    "claude-3-haiku": (0.25, 1.25),
}


class PriceTable:
    """Model-name prefix -> :class:`ModelPrice`, with the defaults unless ``replace_defaults``."""

    def __init__(
        self,
        prices: Mapping[str, ModelPrice | tuple[float, float] | Mapping[str, float]] | None = None,
        *,
        replace_defaults: bool = False,
        batch_discount: float = 0.5,
    ) -> None:
        if not 0.0 < batch_discount <= 1.0:
            raise LLMConfigError(f"batch_discount: expected a number in (0, 1], got {batch_discount!r}")
        self.batch_discount = batch_discount
        self._prices: dict[str, ModelPrice] = {}
        if not replace_defaults:
            for k, (i, o) in DEFAULT_PRICES.items():
                self._prices[k] = ModelPrice(i, o)
        for k, v in (prices or {}).items():
            self._prices[str(k)] = self._coerce(k, v)

    @staticmethod
    def _coerce(name: object, v: object) -> ModelPrice:
        try:
            if isinstance(v, ModelPrice):
                return v
            if isinstance(v, Mapping):
                return ModelPrice(float(v["input_per_mtok"]), float(v["output_per_mtok"]))
            pair: Any = v
            i, o = pair
            return ModelPrice(float(i), float(o))
        except (KeyError, TypeError, ValueError) as e:
            raise LLMConfigError(
                f"prices[{name!r}]: expected (input_per_mtok, output_per_mtok) or a mapping with those keys, "
                f"both numbers >= 0, got {v!r} ({e})"
            ) from None

    def price_for(self, model: str) -> ModelPrice | None:
        """The price row whose name is the longest prefix of ``model``, or None if unpriced."""
        best: str | None = None
        for k in self._prices:
            if model.startswith(k) and (best is None or len(k) > len(best)):
                best = k
        return self._prices[best] if best is not None else None

    def cost(self, model: str, usage: Usage, *, batch: bool = False) -> float | None:
        """USD cost of ``usage`` on ``model`` (None when the model has no price)."""
        p = self.price_for(model)
        if p is None:
            return None
        c = p.cost(usage)
        return c * self.batch_discount if batch else c

    def to_dict(self) -> dict[str, dict[str, float]]:
        """JSON-able copy of the table."""
        return {
            k: {"input_per_mtok": v.input_per_mtok, "output_per_mtok": v.output_per_mtok} for k, v in sorted(self._prices.items())
        }
