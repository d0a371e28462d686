"""MinHash signatures and an LSH index for near-duplicate detection, vectorised with numpy.

Texts are normalised (lower case, punctuation dropped, whitespace collapsed) and cut into
byte ``k``-shingles (``k <= 8``, packed exactly into one uint64, so shingles never collide).
Each of ``num_perm`` hash functions is a multiply-shift hash of the splitmix64-mixed
shingle; the signature is the minimum per function, and the fraction of equal signature
entries estimates the Jaccard similarity of the shingle sets (Broder 1997).  The LSH index
splits signatures into ``bands`` of ``rows`` entries; two texts become candidates when one
band agrees, and a candidate counts as a near-duplicate when its estimated Jaccard is at
least the threshold.  Membership is a set property, so the index answers the same whatever
order earlier texts were added in (what resume relies on).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

import numpy as np

_PUNCT = re.compile(r"[^\w\s]+", re.UNICODE)
_WS = re.compile(r"\s+")
_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def normalize(text: str) -> str:
    """Lower-case, drop punctuation, collapse whitespace."""
    return _WS.sub(" ", _PUNCT.sub(" ", text.lower())).strip()


def _splitmix(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


class MinHasher:
    """Computes MinHash signatures (uint32 arrays of length ``num_perm``)."""

    def __init__(self, num_perm: int = 64, shingle: int = 5, seed: int = 1) -> None:
        if not 1 <= shingle <= 8:
            raise ValueError(f"shingle={shingle}: must be 1..8 bytes")
        if num_perm < 1:
            raise ValueError(f"num_perm={num_perm}: must be >= 1")
        self.num_perm = num_perm
        self.shingle = shingle
        rng = np.random.default_rng(seed)
        self._a = (rng.integers(0, 2**63, size=num_perm, dtype=np.uint64) << np.uint64(1)) | np.uint64(1)
        self._b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
        self._shift = np.uint64(8 * np.arange(shingle, dtype=np.uint64))

    def shingles(self, text: str) -> np.ndarray:
        """Distinct packed shingles of the normalised text (the whole text if shorter than k)."""
        b = np.frombuffer(normalize(text).encode("utf-8"), dtype=np.uint8).astype(np.uint64)
        k = self.shingle
        if len(b) == 0:
            return np.zeros(1, dtype=np.uint64)
        if len(b) < k:
            return np.array([int((b << self._shift[: len(b)]).sum())], dtype=np.uint64)
        m = len(b) - k + 1
        packed = b[:m].copy()
        for j in range(1, k):
            packed |= b[j : j + m] << self._shift[j]
        return np.unique(packed)

    def signature(self, text: str) -> np.ndarray:
        """MinHash signature of ``text``."""
        x = _splitmix(self.shingles(text))
        with np.errstate(over="ignore"):
            h = (self._a[:, None] * x[None, :] + self._b[:, None]) >> np.uint64(32)
        return h.min(axis=1).astype(np.uint32)


def jaccard_estimate(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of two signatures."""
    return float(np.mean(a == b))


def _integrate(y: np.ndarray, x: np.ndarray) -> float:
    """Trapezoid rule (numpy renamed trapz to trapezoid; this works with either)."""
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2.0)


@functools.lru_cache(maxsize=64)
def optimal_bands(num_perm: int, threshold: float) -> tuple[int, int]:
    """(bands, rows) with bands*rows <= num_perm minimising false positives + negatives
    around ``threshold`` (the S-curve ``1 - (1 - s^r)^b`` should step at the threshold)."""
    s = np.linspace(0.0, 1.0, 201)
    best, best_err = (num_perm, 1), float("inf")
    for b in range(1, num_perm + 1):
        r = num_perm // b
        p = 1 - (1 - s**r) ** b
        fp = _integrate(np.where(s < threshold, p, 0), s)
        fn = _integrate(np.where(s >= threshold, 1 - p, 0), s)
        # False negatives weigh more: a missed duplicate survives into the dataset.
        err = 0.3 * fp + 0.7 * fn
        if err < best_err:
            best, best_err = (b, r), err
    return best


class LSHIndex:
    """Near-duplicate index over MinHash signatures."""

    def __init__(self, num_perm: int = 64, threshold: float = 0.8) -> None:
        self.num_perm = num_perm
        self.threshold = threshold
        self.bands, self.rows = optimal_bands(num_perm, threshold)
        self._tables: list[dict[bytes, list[int]]] = [{} for _ in range(self.bands)]
        self._sigs: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self._sigs)

    def _keys(self, sig: np.ndarray) -> Iterable[bytes]:
        r = self.rows
        for i in range(self.bands):
            yield sig[i * r : (i + 1) * r].tobytes()

    def best_match(self, sig: np.ndarray) -> float:
        """Highest estimated Jaccard among candidates (0 when there are none)."""
        cands: set[int] = set()
        for table, key in zip(self._tables, self._keys(sig)):
            hit = table.get(key)
            if hit:
                cands.update(hit)
        if not cands:
            return 0.0
        stacked = np.stack([self._sigs[c] for c in cands])
        return float((stacked == sig[None, :]).mean(axis=1).max())

    def is_duplicate(self, sig: np.ndarray) -> bool:
        """Whether an indexed text is a near-duplicate of ``sig``."""
        return self.best_match(sig) >= self.threshold

    def add(self, sig: np.ndarray) -> None:
        """Index a signature."""
        idx = len(self._sigs)
        self._sigs.append(sig)
        for table, key in zip(self._tables, self._keys(sig)):
            table.setdefault(key, []).append(idx)
