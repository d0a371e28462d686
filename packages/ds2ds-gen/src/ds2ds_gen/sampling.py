"""Choosing the next token from logits: temperature, top-k, top-p (nucleus), greedy."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["filter_logits", "greedy_sample", "race", "race_shape", "sample_rows", "sample_token"]


def greedy_sample(logits: torch.Tensor) -> int:
    """The argmax token (ties: the lowest id)."""
    return int(torch.argmax(logits.float(), dim=-1))


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """``logits`` (1-D) with everything outside the top-k / top-p set at ``-inf``.

    Top-p keeps the smallest set of most likely tokens whose probability reaches ``top_p``
    (always at least the most likely one), so filtering never empties the distribution, and
    every token tied with the last one of that set (:func:`_nucleus`).
    """
    out = logits.float().clone()
    n = out.numel()
    if top_k is not None and top_k < n:
        kth = torch.topk(out, top_k).values[-1]
        out.masked_fill_(out < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        probs = torch.softmax(out, dim=-1)
        out.masked_fill_(probs < _thresholds(probs[None], [top_k], [top_p])[0], float("-inf"))
    return out


#: rows up to this many ids get their top-p threshold from one NumPy sort of all rows (a few us
#: per row); wider rows (all 50,257 ids) from :func:`_nucleus`'s growing ``topk`` prefix, row by row
_SORT_WIDTH = 4096


def _thresholds(probs: torch.Tensor, top_k: Sequence[int | None], top_p: Sequence[float]) -> list[float]:
    """:func:`_nucleus`'s threshold for every row of ``probs`` (``[R, n]``). Up to
    :data:`_SORT_WIDTH` ids, the rows are sorted together in NumPy (each row sorted and summed on
    its own, so a row gets the same threshold alone or with others); beyond, row by row."""
    n_rows, n = probs.shape
    if n > _SORT_WIDTH:
        return [_nucleus(probs[r], max(256, top_k[r] or 0), top_p[r]) for r in range(n_rows)]
    vals = -np.sort(-probs.numpy(), axis=1)  # decreasing
    mass = np.cumsum(vals, axis=1)
    p = np.asarray(top_p, dtype=vals.dtype)[:, None]
    keep = np.maximum(((mass - vals) < p).sum(axis=1), 1)
    return vals[np.arange(n_rows), keep - 1].tolist()


def _nucleus(probs: torch.Tensor, k: int, top_p: float) -> float:
    """The top-p threshold of 1-D ``probs``: top-p keeps the ids whose probability is at least
    this, i.e. the smallest prefix, in order of decreasing probability, whose mass reaches
    ``top_p`` (an id is in it when the mass strictly before it is below ``top_p``, compared in
    the dtype of ``probs``; at least the most likely id), plus any id tied with its last one.

    Rather than sorting all ids, take the top ``k`` and grow ``k`` x8 only while that prefix
    holds less than ``top_p``; once ``k`` would cover half the ids, sort them all (on CPU a sort
    of 1,650 ids costs 30 us, ``topk`` of all of them 53 us). Batched sampling calls this very
    function for each row (:func:`_top_p_rows`), so a row keeps the same ids alone or in a batch
    (a multi-row ``topk`` or ``sort`` is also slower here: 1.1 ms for 8 x 1,650 ids)."""
    n = probs.numel()
    k = min(n, k)
    while True:
        if 2 * k >= n:
            vals = torch.sort(probs, descending=True).values
            k = n
        else:
            vals = torch.topk(probs, k).values
        mass = torch.cumsum(vals, dim=-1)
        if k == n or float(mass[-1]) >= top_p:
            break
        k = min(n, k * 8)
    keep = max(1, int(((mass - vals) < top_p).sum()))
    return float(vals[keep - 1])


def sample_token(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    support: torch.Tensor | None = None,
) -> int:
    """Sample one token id from 1-D ``logits``; ``temperature == 0`` means greedy.

    A two-level exponential race (:func:`race`): ``2 ceil(sqrt(n))`` float64 uniforms from
    ``generator`` per token, whatever the logits (none for greedy or degenerate rows), so a seed
    gives one stream. Exact, insensitive to last-bit changes of the logits (batched and single
    rows agree; 0.2 before this used inverse-CDF, which is not), and over 10x cheaper on CPU than
    ``torch.multinomial`` over the 50,257 GPT-2 ids (6 ms a call).

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
    if top_p is not None and top_p < 1.0:  # the rejection race of sample_rows (one code path)
        return sample_rows(logits[None], [temperature], [top_k], [generator], [top_p])[0]
    x = logits.float()
    if temperature != 1.0:  # x / 1.0 is x: skip the op
        x = x / temperature
    if top_k is not None or top_p is not None:
        x = filter_logits(x, top_k, top_p)
    if _degenerate(x[None])[0]:  # every logit -inf, or NaN / +inf: greedy on the raw logits, no draw
        return greedy_sample(logits)
    return race(x[None], [generator])[0]


def _top_p_rows(x: torch.Tensor, top_k: Sequence[int | None], top_p: Sequence[float]) -> torch.Tensor:
    """Rows of ``x`` (already temperature-scaled and top-k filtered) with everything outside each
    row's top-p set at ``-inf``: the set :func:`filter_logits` keeps for that row alone (one
    softmax for all rows, the thresholds of :func:`_thresholds`, one mask for all rows)."""
    probs = torch.softmax(x, dim=-1)
    thr = torch.tensor(_thresholds(probs, top_k, top_p), dtype=probs.dtype)
    return x.masked_fill(probs < thr[:, None], float("-inf"))


def sample_rows(
    logits: torch.Tensor,
    temperature: Sequence[float],
    top_k: Sequence[int | None],
    generators: Sequence[torch.Generator | None],
    top_p: Sequence[float | None] | None = None,
) -> list[int]:
    """Row ``r`` of 2-D ``logits`` sampled exactly as ``sample_token(logits[r], temperature[r],
    top_k[r], top_p[r], generators[r])`` samples it (same token, same draws from the row's own
    generator; tested), with one vectorized race (:func:`race`) for all rows.

    Top-p rows are sampled by rejection: a race over the row before top-p, kept when the winner
    is in the top-p set, else raced again (after ``_REJECTIONS`` rounds, one race over the set):
    exact, and a last-bit change that moves the set's boundary changes the token only if the
    boundary id wins. Batched decoding samples every row of a step at once this way; each row
    still draws its uniforms from its own generator (none when the row is greedy or its distribution is
    degenerate, as in :func:`sample_token`), so rows share no randomness. Top-p rows are
    filtered together (:func:`_top_p_rows`); a link-target constraint is applied by the caller
    to the rows' logits beforehand (ids outside the allowed set at ``-inf``)."""
    x = logits.detach().cpu().float()
    n_rows, n = x.shape
    tp = list(top_p) if top_p is not None else [None] * n_rows
    out = [0] * n_rows
    greedy = [r for r in range(n_rows) if temperature[r] == 0]
    if greedy:
        plain = [r for r in greedy if tp[r] is None or tp[r] >= 1.0]  # type: ignore[operator]
        # argmax of the top-k-filtered row is the argmax of the row (the maximum is kept)
        if plain:
            for r, t in zip(plain, torch.argmax(x[plain] if len(plain) < n_rows else x, dim=-1).tolist()):
                out[r] = t
        for r in greedy:
            if r not in plain:  # greedy with top-p: which of tied maxima is kept follows topk (rare)
                out[r] = greedy_sample(filter_logits(x[r], top_k[r], tp[r]))
        rows = [r for r in range(n_rows) if temperature[r] != 0]
        if not rows:
            return out
        x = x[rows]  # a copy
    else:
        rows = list(range(n_rows))
        if any(t != 1.0 for t in temperature) or any(k is not None and k < n for k in top_k):
            x = x.clone()  # the caller's logits stay as they are (logprobs are read from them)
    # per distinct temperature / top-k, the same tensor ops as sample_token applies to one row
    temps = [temperature[r] for r in rows]
    for t in set(temps):
        if t != 1.0:
            sel = [j for j, tj in enumerate(temps) if tj == t]
            x[sel] = x[sel] / t
    ks = [top_k[r] for r in rows]
    for k in set(ks):
        if k is not None and k < n:
            sel = [j for j, kj in enumerate(ks) if kj == k]
            xs = x[sel]
            kth = torch.topk(xs, k, dim=-1).values[:, -1:]
            x[sel] = xs.masked_fill(xs < kth, float("-inf"))
    nucleus = [j for j, r in enumerate(rows) if tp[r] is not None and tp[r] < 1.0]  # type: ignore[operator]
    pre = x.clone() if nucleus else x  # the nucleus rows before top-p: their rejection race
    if nucleus:
        if len(nucleus) == len(rows):
            x = _top_p_rows(x, ks, [tp[r] for r in rows])  # type: ignore[misc]
        else:
            x = x.clone() if x.data_ptr() == logits.data_ptr() else x
            x[nucleus] = _top_p_rows(x[nucleus], [ks[j] for j in nucleus], [tp[rows[j]] for j in nucleus])  # type: ignore[misc]
    bad = _degenerate(x)
    ok = [j for j, b in enumerate(bad) if not b]
    for j, b in enumerate(bad):
        if b:  # every logit -inf, or NaN / +inf: sample_token's greedy fallback, no draw
            out[rows[j]] = greedy_sample(logits[rows[j]].detach().cpu())
    if not ok:
        return out
    nuc = set(nucleus) if nucleus else set()
    plain = [j for j in ok if j not in nuc]
    if plain:
        toks = race(x[plain] if len(plain) < len(rows) else x, [generators[rows[j]] for j in plain])
        for j, t in zip(plain, toks):
            out[rows[j]] = t
    pending = [j for j in ok if j in nuc]
    if pending:
        pending_bad = _degenerate(pre[pending])
        pending, direct = [j for j, b in zip(pending, pending_bad) if not b], [j for j, b in zip(pending, pending_bad) if b]
        # top-p by rejection: race over the row before top-p, keep the winner if top-p kept it.
        # Exact (a race over the unfiltered row, conditioned on landing in the set, samples the
        # set), and a last-bit change that moves the set's boundary changes the token only when
        # the boundary id itself wins; after _REJECTIONS rounds, one race over the set itself.
        for _ in range(_REJECTIONS):
            if not pending:
                break
            toks = race(pre[pending], [generators[rows[j]] for j in pending])
            kept = x[pending, toks].tolist()
            still = []
            for j, t, v in zip(pending, toks, kept):
                if v > float("-inf"):
                    out[rows[j]] = t
                else:
                    still.append(j)
            pending = still
        pending += direct
        if pending:
            toks = race(x[pending], [generators[rows[j]] for j in pending])
            for j, t in zip(pending, toks):
                out[rows[j]] = t
    return out


#: rejection rounds of a top-p row before it races over its kept set directly
_REJECTIONS = 4


def _degenerate(x: torch.Tensor) -> list[bool]:
    """Rows with nothing to sample: every logit ``-inf``, or a NaN or ``+inf`` logit (a softmax
    of them is undefined)."""
    return (~np.isfinite(x.numpy().max(axis=-1))).tolist()  # max is NaN when a NaN is in the row


def race_shape(n: int) -> tuple[int, int, int]:
    """``(blocks, block, draws)`` of :func:`race` for ``n`` ids: ``block = ceil(sqrt(n))`` ids per
    block, ``blocks = ceil(n / block)``, and ``draws``, the uniforms a token takes:
    ``blocks + block`` rounded up to a multiple of 16 (see :func:`race`)."""
    b = math.isqrt(n - 1) + 1 if n > 1 else 1
    nb = -(-n // b)
    return nb, b, -(-(nb + b) // 16) * 16


def race(x: torch.Tensor, generators: Sequence[torch.Generator | None]) -> list[int]:
    """One token per row of ``x`` (``[R, n]`` float32 logits, already temperature-scaled and
    filtered, ``-inf`` = excluded; no row degenerate), distributed exactly as ``softmax(x[r])``.

    A two-level exponential race (Gumbel-max): the ids are cut into ``blocks`` consecutive blocks
    of ``block`` ids (:func:`race_shape`); the row draws ``draws`` float64 uniforms from its own
    generator (always that many, so its stream does not depend on the logits), picks the block
    ``argmax(log(mass) + G)`` (probability: the block's share of the mass) and then the id
    ``argmax(x + G')`` inside it (probability: the id's share of the block), with Gumbel noise
    ``G = -log(-log(U))`` (the first ``blocks`` uniforms for ``G``, the next ``block`` for ``G'``).
    Why not inverse-CDF: there the token is where ``u * total`` falls in the cumulative sum, so
    a change of the logits in their last bits (a batched matrix product rounds differently from
    a single row's) moves the token whenever ``u`` lies within that change of one of the ``n``
    CDF steps; a race changes its winner only if the two best perturbed scores tie within that
    change, which for flat distributions is hundreds of times rarer (measured in
    docs/benchmarks/ds2ds-gen.md). Two levels instead of one race over all ids: ``2 sqrt(n)``
    uniforms a token instead of ``n`` (96 for a 1,650-id active vocabulary, 464 for 50,257 ids).
    The arithmetic runs in NumPy, a few large ops for all rows (a torch op costs 5-10 us here).
    """
    n_rows, n = x.shape
    nb, b, draws = race_shape(n)
    if n_rows == 1:
        u = torch.rand(draws, generator=generators[0], dtype=torch.float64).numpy()[None]
    else:
        u = np.empty((n_rows, draws))
        for r, g in enumerate(generators):
            u[r] = torch.rand(draws, generator=g, dtype=torch.float64).numpy()
    xs = x.numpy()
    nlg = np.log(-np.log(np.maximum(u, _TINY)))  # -G, U = 0 kept finite
    p = np.exp(xs - xs.max(axis=1, keepdims=True))  # float32, the largest 1 in every row
    # a block of mass 0 gets log(1e-38) = -87.5, below the block holding the row's largest id
    # (>= log(1) - 6.6 since U >= 2**-1022): it never wins
    score = np.log(np.add.reduceat(p, range(0, n, b), axis=1) + np.float32(1e-38)) - nlg[:, :nb]
    block = np.argmax(score, axis=1).tolist()
    out = []
    for r, k in enumerate(block):
        seg = xs[r, k * b : k * b + b]
        out.append(k * b + int(np.argmax(seg - nlg[r, nb : nb + seg.shape[0]])))
    return out


_TINY = 2.2250738585072014e-308  # smallest normal float64
