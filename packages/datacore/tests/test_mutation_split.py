"""Hash splits (datacore.split) against a separately written reference; written to kill mutmut survivors.

Oracle: the module docstring's specification re-implemented here with struct (little-endian
uint32 packing) and xxhash.xxh64(...).intdigest(); thresholds computed by hand.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
import xxhash
from datacore.split import (
    DEFAULT_RATIOS,
    SPLITS,
    Splitter,
    _pack_u32,
    bucket_of,
    encode_key,
    split_counts,
    split_of,
    thresholds,
)


def _ref_bytes(key) -> bytes:
    if isinstance(key, str):
        return key.encode("utf-8")
    if isinstance(key, (bytes, bytearray, memoryview)):
        return bytes(key)
    return b"".join(struct.pack("<I", int(v)) for v in key)


def _ref_bucket(key, salt: str = "") -> int:
    return xxhash.xxh64(salt.encode("utf-8") + _ref_bytes(key), seed=0).intdigest() % 1000


def _ref_split(key, t1: int, t2: int, salt: str = "") -> str:
    b = _ref_bucket(key, salt)
    return "train" if b < t1 else "val" if b < t2 else "test"


def test_constants() -> None:
    assert SPLITS == ("train", "val", "test")
    assert DEFAULT_RATIOS == (0.8, 0.1, 0.1)


@pytest.mark.parametrize(
    ("ratios", "expect"),
    [
        ((0.8, 0.1, 0.1), (800, 900)),
        ((0.7, 0.2, 0.1), (700, 900)),
        ((1 / 3, 1 / 3, 1 / 3), (333, 667)),
        ((0.0, 0.0, 1.0), (0, 0)),
        ((1.0, 0.0, 0.0), (1000, 1000)),
        ((0.0, 1.0, 0.0), (0, 1000)),
        ((0.5, 0.5 + 5e-7, 0.0), (500, 1000)),
    ],
)
def test_thresholds(ratios, expect) -> None:
    assert thresholds(ratios) == expect
    s = Splitter(ratios)
    assert (s.t1, s.t2) == expect and s.ratios == tuple(float(r) for r in ratios)


@pytest.mark.parametrize("bad", [(0.5, 0.5 + 2e-6, 0.0), (0.5, 0.5 - 2e-6, 0.0), (1.2, -0.2, 0.0), (0.5, 0.6, -0.1)])
def test_thresholds_refuse_bad_sums_and_negatives(bad) -> None:
    with pytest.raises(ValueError) as e:
        thresholds(bad)
    assert str(e.value) == f"split ratios must be >= 0 and sum to 1, got {list(bad)}"


@pytest.mark.parametrize("bad", [(), (1.0,), (0.5, 0.5), (0.25, 0.25, 0.25, 0.25)])
def test_thresholds_need_three(bad) -> None:
    with pytest.raises(ValueError) as e:
        thresholds(bad)
    assert str(e.value) == f"split ratios need three values (train, val, test), got {list(bad)}"


def test_default_ratios_are_the_default() -> None:
    assert thresholds() == (800, 900)
    s = Splitter()
    assert (s.t1, s.t2, s.ratios) == (800, 900, (0.8, 0.1, 0.1))


KEYS = [
    "",
    "hello",
    "λx.x",
    b"\x00\xff",
    bytearray(b"abc"),
    memoryview(b"xyz"),
    [],
    [0],
    [1, 2, 3],
    (7, 2**32 - 1),
    np.array([5, 6], dtype=np.int64),
    np.array([5, 6], dtype=np.uint16),
]


@pytest.mark.parametrize("key", KEYS, ids=range(len(KEYS)))
def test_encoding_and_bucket_match_the_reference(key) -> None:
    assert encode_key(key) == _ref_bytes(key)
    assert type(encode_key(key)) is bytes
    for salt in ("", "s", "λ"):
        assert bucket_of(key, salt) == _ref_bucket(key, salt)
        assert bucket_of(key, salt=salt) == _ref_bucket(key, salt)
    assert bucket_of(key) == _ref_bucket(key)


def test_encode_key_errors() -> None:
    with pytest.raises(ValueError) as e:
        encode_key([3, -1])
    assert str(e.value) == "split key ints must lie in [0, 2**32)"
    with pytest.raises(ValueError):
        encode_key(np.array([2**32], dtype=np.int64))
    with pytest.raises(ValueError):
        encode_key(np.array([-1], dtype=np.int64))
    assert encode_key(np.array([2**32 - 1], dtype=np.int64)) == b"\xff\xff\xff\xff"
    assert encode_key(np.array([0], dtype=np.int64)) == b"\x00" * 4
    for bad in ([1.5], [[1, 2]], np.zeros((2, 2), dtype=np.int64), np.array([1.0]), 5):
        with pytest.raises(TypeError) as e:
            encode_key(bad)
        assert str(e.value) == f"split key must be str, bytes or a 1-D sequence of ints, got {type(bad).__name__}"
    assert encode_key(np.array([], dtype=np.float64)) == b""  # empty: no dtype to check


def test_pack_u32() -> None:
    a = _pack_u32([1, 256, 2**32 - 1])
    assert a is not None and a.tobytes() == struct.pack("<3I", 1, 256, 2**32 - 1)
    assert _pack_u32(()).tobytes() == b""
    assert _pack_u32([2**32]) is None
    assert _pack_u32([-1]) is None
    assert _pack_u32(["a"]) is None
    assert _pack_u32([1.0]) is None


def _key_with_bucket(target: int, salt: str = "") -> str:
    i = 0
    while _ref_bucket(f"k{i}", salt) != target:
        i += 1
    return f"k{i}"


@pytest.mark.parametrize("salt", ["", "salt"])
def test_bucket_edges_decide_the_split(salt) -> None:
    # t1 = 800, t2 = 900: bucket 799 train, 800 val, 899 val, 900 test
    for b, expect in ((0, "train"), (799, "train"), (800, "val"), (899, "val"), (900, "test"), (999, "test")):
        k = _key_with_bucket(b, salt)
        assert split_of(k, salt=salt) == expect, b
        assert Splitter(salt=salt)(k) == expect, b
        assert split_of(k, DEFAULT_RATIOS, salt) == expect


@pytest.mark.parametrize("ratios", [(0.8, 0.1, 0.1), (0.6, 0.3, 0.1), (0.1, 0.1, 0.8), (0.0, 0.5, 0.5), (0.5, 0.0, 0.5)])
@pytest.mark.parametrize("salt", ["", "x"])
def test_split_brute_force(ratios, salt) -> None:
    t1, t2 = round(1000 * ratios[0]), round(1000 * (ratios[0] + ratios[1]))
    sp = Splitter(ratios, salt)
    keys: list = [f"r{i}" for i in range(300)] + [[i, i * 7] for i in range(300)] + [(i,) for i in range(100)]
    keys += [np.array([i, 3], dtype=np.int32) for i in range(50)] + [f"b{i}".encode() for i in range(50)]
    for k in keys:
        expect = _ref_split(k, t1, t2, salt)
        assert sp(k) == expect, k
        assert split_of(k, ratios, salt) == expect, k


def test_split_counts_brute_force() -> None:
    recs = [{"k": [i, i + 1], "c": ("odd", "even")[i % 2]} for i in range(500)]
    ratios = (0.5, 0.3, 0.2)
    got = split_counts(recs, key=lambda r: r["k"], stratum=lambda r: r["c"], ratios=ratios, salt="z")
    expect: dict[str, dict[str, int]] = {}
    for r in recs:
        per = expect.setdefault(r["c"], {"train": 0, "val": 0, "test": 0})
        per[_ref_split(r["k"], 500, 800, "z")] += 1
    assert got == expect and list(got) == ["even", "odd"]
    assert all(list(per) == ["train", "val", "test"] for per in got.values())
    # no stratum: one "all" row; a split with no record is still listed with 0
    allrow = split_counts([{"k": _key_with_bucket(10)}], key=lambda r: r["k"])
    assert allrow == {"all": {"train": 1, "val": 0, "test": 0}}
    assert split_counts([], key=lambda r: r["k"]) == {}
    s3 = split_counts([{"k": "a", "c": 3}, {"k": "b", "c": 12}], key=lambda r: r["k"], stratum=lambda r: r["c"])
    assert list(s3) == ["12", "3"]  # keys are str() of the stratum, sorted as strings


def test_split_counts_default_salt_is_none() -> None:
    recs = [{"k": f"q{i}"} for i in range(400)]
    got = split_counts(recs, key=lambda r: r["k"])
    expect = {"train": 0, "val": 0, "test": 0}
    for r in recs:
        expect[_ref_split(r["k"], 800, 900)] += 1
    assert got == {"all": expect}
