"""Choosing the next token from logits: temperature, top-k, top-p (nucleus), greedy."""

from __future__ import annotations

import torch

__all__ = ["filter_logits", "greedy_sample", "sample_token"]


def greedy_sample(logits: torch.Tensor) -> int:
    """The argmax token (ties: the lowest id)."""
    return int(torch.argmax(logits.float(), dim=-1))


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """``logits`` (1-D) with everything outside the top-k / top-p set at ``-inf``.

    Top-p keeps the smallest set of most likely tokens whose probability reaches ``top_p``
    (always at least the most likely one), so filtering never empties the distribution.
    """
    out = logits.float().clone()
    if top_k is not None and top_k < out.numel():
        kth = torch.topk(out, top_k).values[-1]
        out[out < kth] = float("-inf")
    if top_p is not None and top_p < 1.0:
        sorted_l, idx = torch.sort(out, descending=True)
        probs = torch.softmax(sorted_l, dim=-1)
        before = torch.cumsum(probs, dim=-1) - probs  # mass strictly before each token
        drop = before >= top_p
        drop[0] = False
        out[idx[drop]] = float("-inf")
    return out


def sample_token(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, generator: torch.Generator | None = None) -> int:
    """Sample one token id from 1-D ``logits``; ``temperature == 0`` means greedy."""
    if temperature == 0:
        return greedy_sample(filter_logits(logits, top_k, top_p))
    filtered = filter_logits(logits.float() / temperature, top_k, top_p)
    if not torch.isfinite(filtered).any():
        return greedy_sample(logits)
    probs = torch.softmax(filtered, dim=-1)
    return int(torch.multinomial(probs.cpu(), 1, generator=generator))
