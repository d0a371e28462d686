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
    n = out.numel()
    if top_k is not None and top_k < n:
        kth = torch.topk(out, top_k).values[-1]
        out.masked_fill_(out < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        # The kept set is a prefix of the ids in order of decreasing probability. Rather than
        # sorting all 50,257 ids (3.5 ms on CPU), take the top k by probability (k starts at 256,
        # or top_k) and grow k only while that prefix holds less than top_p of the mass; the
        # prefix, and so the result, is the same as with a full sort.
        probs = torch.softmax(out, dim=-1)
        k = min(n, max(256, top_k or 0))
        while True:
            vals, idx = torch.topk(probs, k)
            mass = torch.cumsum(vals, dim=-1)
            if float(mass[-1]) >= top_p or k == n:
                break
            k = min(n, k * 8)
        keep = max(1, int(((mass - vals) < top_p).sum()))  # mass strictly before each token < top_p
        kept = idx[:keep]
        filtered = torch.full_like(out, float("-inf"))
        filtered[kept] = out[kept]
        out = filtered
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
