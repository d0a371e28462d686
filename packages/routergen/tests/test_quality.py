import random
import string

import numpy as np
from routergen.minhash import LSHIndex, MinHasher, jaccard_estimate, normalize
from routergen.quality import dispersion, distinct_n


def exact_jaccard(a: str, b: str, k: int = 5) -> float:
    def sh(t):
        t = normalize(t).encode()
        return {t[i : i + k] for i in range(len(t) - k + 1)}

    x, y = sh(a), sh(b)
    return len(x & y) / len(x | y)


def rand_text(rng, n=25):
    return " ".join("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 8))) for _ in range(n))


def test_minhash_estimates_exact_jaccard():
    rng = random.Random(0)
    m = MinHasher(num_perm=256)
    errs = []
    for _ in range(40):
        a = rand_text(rng)
        words = a.split()
        for _ in range(rng.randint(0, 12)):
            words[rng.randrange(len(words))] = rand_text(rng, 1)
        b = " ".join(words)
        errs.append(abs(jaccard_estimate(m.signature(a), m.signature(b)) - exact_jaccard(a, b)))
    # Standard error of the estimate is <= sqrt(0.25/256) ~ 0.031.
    assert np.mean(errs) < 0.04 and max(errs) < 0.13


def test_lsh_finds_planted_near_duplicates_and_not_strangers():
    rng = random.Random(1)
    m = MinHasher(64)
    idx = LSHIndex(64, 0.8)
    base = [rand_text(rng, 30) for _ in range(200)]
    for t in base:
        idx.add(m.signature(t))
    found = 0
    for t in base:
        w = t.split()
        w[rng.randrange(len(w))] = "zzz"
        found += idx.is_duplicate(m.signature(" ".join(w)))
    assert found >= 190
    strangers = sum(idx.is_duplicate(m.signature(rand_text(rng, 30))) for _ in range(200))
    assert strangers == 0


def test_distinct_n_and_dispersion_oracles():
    assert distinct_n(["a b a b"], 1) == 0.5
    assert distinct_n(["a b", "a b"], 2) == 0.5
    assert distinct_n([], 2) == 0.0
    m = MinHasher(64)
    s = m.signature("the same text here")
    assert dispersion([s, s, s]) == 0.0
    far = dispersion([m.signature(rand_text(random.Random(i))) for i in range(5)])
    assert far > 0.95


def test_shingles_are_packed_byte_windows_of_normalized_text():
    m = MinHasher(shingle=5)
    for text in ["Hello, World!  foo", "ab", "ünïcödé text with accents", ""]:
        t = normalize(text).encode()
        if len(t) >= 5:
            expected = sorted({int.from_bytes(t[i : i + 5], "little") for i in range(len(t) - 4)})
        else:
            expected = [int.from_bytes(t, "little")]
        assert sorted(int(x) for x in m.shingles(text)) == expected
