"""Dataset-level diversity: intent/domain/tool coverage and near-duplicate requests.

Near-duplicates: each request becomes a set of word n-gram shingles (lowercased words, n=3 by
default); MinHash signatures (``num_perm`` permutations of 32-bit xxhash values) are banded for
LSH to find candidate pairs, and every candidate is confirmed by the *exact* Jaccard
similarity of the shingle sets, so the reported pairs have no false positives.  A request
counts as a near-duplicate if an earlier request has Jaccard >= ``threshold`` with it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import numpy as np
import xxhash

from .models import GoldTrace

__all__ = ["DiversityCounter", "DiversityReport", "diversity_report", "jaccard", "near_duplicates", "shingles"]

_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
_PRIME = np.uint64((1 << 61) - 1)
_MASK32 = np.uint64(0xFFFFFFFF)


def shingles(text: str, n: int = 3) -> set[int]:
    """Hashed word n-grams of ``text`` (a text shorter than n words is one shingle)."""
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return {xxhash.xxh32_intdigest(" ".join(words).encode())}
    return {xxhash.xxh32_intdigest(" ".join(words[i : i + n]).encode()) for i in range(len(words) - n + 1)}


def jaccard(a: set[int], b: set[int]) -> float:
    """Exact Jaccard similarity of two sets (1.0 for two empty sets)."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _shingle_array(text: str, n: int) -> np.ndarray:
    """Sorted unique uint64 shingle hashes (compact: 100k+ requests stay in memory cheaply)."""
    sh = shingles(text, n)
    return np.fromiter(sorted(sh), dtype=np.uint64, count=len(sh))


def _jaccard_arrays(a: np.ndarray, b: np.ndarray) -> float:
    inter = len(np.intersect1d(a, b, assume_unique=True))
    union = len(a) + len(b) - inter
    return inter / union if union else 1.0


def _signatures(sets: Sequence[np.ndarray], num_perm: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 1 << 32, size=num_perm, dtype=np.uint64)
    b = rng.integers(0, 1 << 32, size=num_perm, dtype=np.uint64)
    sig = np.empty((len(sets), num_perm), dtype=np.uint64)
    chunk = 4096
    for lo in range(0, len(sets), chunk):
        part = sets[lo : lo + chunk]
        lens = np.fromiter((len(s) for s in part), dtype=np.int64, count=len(part))
        flat = np.concatenate(part)
        # a*h + b fits in 64 bits (a, h < 2^32, b < 2^32); the universal-hash modulus then a 32-bit mask
        vals = ((flat[:, None] * a[None, :] + b[None, :]) % _PRIME) & _MASK32
        starts = np.concatenate(([0], np.cumsum(lens)[:-1]))
        sig[lo : lo + len(part)] = np.minimum.reduceat(vals, starts, axis=0)
    return sig


def near_duplicates(
    texts: Sequence[str], threshold: float = 0.8, n: int = 3, num_perm: int = 64, bands: int = 16, seed: int = 1
) -> list[tuple[int, int, float]]:
    """``(i, j, jaccard)`` with i < j for each text ``j`` whose earliest near-duplicate is ``i``.

    LSH bands of ``num_perm // bands`` rows; with 64 permutations in 16 bands a pair at
    Jaccard 0.8 becomes a candidate with probability > 0.999.
    """
    if not texts:
        return []
    if num_perm % bands:
        raise ValueError(f"num_perm ({num_perm}) must be a multiple of bands ({bands})")
    sets = [_shingle_array(t, n) for t in texts]
    sig = _signatures(sets, num_perm, seed)
    rows = num_perm // bands
    cands: dict[int, set[int]] = {}
    for bnd in range(bands):
        block = np.ascontiguousarray(sig[:, bnd * rows : (bnd + 1) * rows]).view(np.dtype((np.void, 8 * rows))).ravel()
        _, inverse, counts = np.unique(block, return_inverse=True, return_counts=True)
        multi = np.nonzero(counts[inverse] > 1)[0]
        groups: dict[int, list[int]] = {}
        for idx in multi.tolist():
            groups.setdefault(int(inverse[idx]), []).append(idx)
        for members in groups.values():
            for k, j in enumerate(members):
                if k:
                    cands.setdefault(j, set()).update(members[:k])
    out = []
    for j in sorted(cands):
        best = None
        for i in sorted(cands[j]):
            s = _jaccard_arrays(sets[i], sets[j])
            if s >= threshold:
                best = (i, j, s)
                break
        if best:
            out.append(best)
    return out


@attrs.frozen
class DiversityReport:
    """Coverage and near-duplicate figures of a set of traces."""

    traces: int
    domains: int
    intents: dict[str, int]
    tools_used: int
    tools_available: int
    distinct_requests: int
    near_duplicates: int
    near_duplicate_rate: float
    threshold: float
    examples: tuple[tuple[str, str, float], ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return attrs.asdict(self)

    def problems(self, *, max_near_dup_rate: float = 0.01, min_intents: int = 6) -> list[str]:
        """Dataset-level violations (empty if diverse enough)."""
        out = []
        if self.traces and self.near_duplicate_rate > max_near_dup_rate:
            out.append(
                f"diversity.near_duplicates: {self.near_duplicate_rate:.2%} of requests have a near-duplicate "
                f"(Jaccard >= {self.threshold}); allowed {max_near_dup_rate:.2%}"
            )
        if self.traces >= 1000 and len(self.intents) < min_intents:
            out.append(f"diversity.intents: {len(self.intents)} intent categories; need >= {min_intents}")
        return out


class DiversityCounter:
    """Accumulates what :func:`diversity_report` needs, one trace at a time (texts and counts only)."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.domains: set[str] = set()
        self.intents: Counter[str] = Counter()
        self.tools: set[str] = set()

    def add(self, t: GoldTrace) -> None:
        """Count one trace."""
        self.texts.append(t.request.text)
        self.domains.add(t.domain)
        self.intents[t.intent] += 1
        self.tools.update(c.tool for c in t.graph.calls)

    def report(self, tools_available: int, threshold: float = 0.8) -> DiversityReport:
        """The report over everything added."""
        return _report(self.texts, self.domains, self.intents, self.tools, tools_available, threshold)


def diversity_report(traces: Iterable[GoldTrace], tools_available: int, threshold: float = 0.8) -> DiversityReport:
    """Coverage of domains, intents and tools, and the near-duplicate rate of request texts."""
    acc = DiversityCounter()
    for t in traces:
        acc.add(t)
    return acc.report(tools_available, threshold)


def _report(
    texts: list[str], domains: set[str], intents: Counter[str], tools: set[str], tools_available: int, threshold: float
) -> DiversityReport:
    dups = near_duplicates(texts, threshold)
    ex = tuple((texts[i], texts[j], round(s, 3)) for i, j, s in dups[:5])
    return DiversityReport(
        len(texts),
        len(domains),
        dict(sorted(intents.items())),
        len(tools),
        tools_available,
        len(set(texts)),
        len(dups),
        len(dups) / len(texts) if texts else 0.0,
        threshold,
        ex,
    )
