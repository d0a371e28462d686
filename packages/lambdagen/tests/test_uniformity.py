"""The sampler is uniform: chi-square over the full enumeration of closed terms at small sizes."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from lambdagen import count_terms, sample_terms
from lambdagen import reference as ref


def _chi2_upper(df: int, z: float = 3.719) -> float:
    """Wilson-Hilferty upper quantile of chi-square(df) (z = 3.719: p = 1e-4)."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


@pytest.mark.parametrize(("size", "depth", "n"), [(7, 7, 40_000), (8, 4, 60_000), (6, 3, 10_000)])
def test_chi_square_over_full_enumeration(size, depth, n):
    universe = ref.enumerate_terms(size, depth)
    assert len(universe) == len(set(universe)) == count_terms(size, depth) >= 10
    got = Counter(sample_terms(size, depth, n, seed=99))
    assert set(got) <= set(universe)
    expected = n / len(universe)
    chi2 = sum((got.get(t, 0) - expected) ** 2 / expected for t in universe)
    df = len(universe) - 1
    assert chi2 < _chi2_upper(df), (chi2, df)
    # and not suspiciously perfect either (a sampler cycling through the enumeration)
    assert chi2 > df * (1 - 2 / (9 * df) - 3.719 * math.sqrt(2 / (9 * df))) ** 3


def test_biased_sampler_would_fail():
    # The test has power: a naive "uniform choice at each node" sampler is rejected.
    import random

    rng = random.Random(0)
    universe = ref.enumerate_terms(7, 7)

    def naive(s: int, d: int, k: int) -> str:
        options = []
        if s == 1 and k:
            return str(rng.randrange(k))
        if d and ref.count(s - 1, d - 1, k + 1):
            options.append(("lam", 0))
        options += [("app", i) for i in range(1, s - 1) if ref.count(i, d - 1, k) and ref.count(s - 1 - i, d - 1, k)]
        kind, i = rng.choice(options)
        if kind == "lam":
            return "\\" + naive(s - 1, d - 1, k + 1)
        return f"({naive(i, d - 1, k)} {naive(s - 1 - i, d - 1, k)})"

    n = 40_000
    got = Counter(naive(7, 7, 0) for _ in range(n))
    expected = n / len(universe)
    chi2 = sum((got.get(t, 0) - expected) ** 2 / expected for t in universe)
    assert chi2 > _chi2_upper(len(universe) - 1)


def test_permutation_path_is_a_bijection_and_uniform():
    from lambdagen import _core

    size, depth = 8, 5
    universe = ref.enumerate_terms(size, depth)
    n = len(universe)
    assert _core.permuted_terms(200, 15, [0], 1) is None  # big cells are sampled freely
    every = _core.permuted_terms(size, depth, list(range(n)), 123)
    assert sorted(every) == sorted(universe)
    # The first quarter of the keys lands evenly over the enumeration order (no clustering
    # by shape): chi-square over 20 rank bins of the reference enumeration.
    pos = {t: i for i, t in enumerate(universe)}
    m = n // 4
    bins = Counter(pos[t] * 20 // n for t in _core.permuted_terms(size, depth, list(range(m)), 123))
    expected = m / 20
    chi2 = sum((bins.get(b, 0) - expected) ** 2 / expected for b in range(20))
    assert chi2 < _chi2_upper(19), chi2
