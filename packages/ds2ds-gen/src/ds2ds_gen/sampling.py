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


def sample_token(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    support: torch.Tensor | None = None,
) -> int:
    """Sample one token id from 1-D ``logits``; ``temperature == 0`` means greedy.

    Inverse-CDF sampling: one uniform draw from ``generator`` (float64) against the float64
    cumulative sum of the probabilities (``searchsorted(..., right=True)`` never lands on an id
    of probability 0: its CDF step has zero width). Exact, and over 10x cheaper on CPU than
    ``torch.multinomial`` over the 50,257 GPT-2 ids (6 ms a call, which dominated batched
    decoding); one draw per token, so a seed gives one stream.

    ``support`` (sorted ids, e.g. a trained model's active vocabulary) restricts sampling to
    those ids: exact when every other id has probability 0 (the ``-1e4`` logit bias of ids never
    seen in training), and 30x less work per token than the whole vocabulary.
    """
    if support is not None:
        return int(support[sample_token(logits[support], temperature, top_k, top_p, generator)])
    # the generator is a CPU one (seeded per sample); a token id is read on the host anyway
    logits = logits.detach().cpu()
    if temperature == 0:
        return greedy_sample(filter_logits(logits, top_k, top_p))
    x = logits.float()
    if temperature != 1.0:  # x / 1.0 is x: skip the op
        x = x / temperature
    if top_k is not None or top_p is not None:
        x = filter_logits(x, top_k, top_p)
    cdf = torch.cumsum(torch.softmax(x, dim=-1), dim=0, dtype=torch.float64)
    total = float(cdf[-1])
    if not total > 0 or total != total:  # every logit -inf, or NaN
        return greedy_sample(logits)
    u = torch.rand((), generator=generator, dtype=torch.float64) * total
    return min(int(torch.searchsorted(cdf, u, right=True)), cdf.numel() - 1)
