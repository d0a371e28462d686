import numpy as np
import pytest
import xxhash
from datacore import SPLITS, Splitter, encode_key, split_counts, split_of
from datacore.split import bucket_of
from hypothesis import given
from hypothesis import strategies as st


def test_known_values_are_stable() -> None:
    # Fixed once; a change here means every existing dataset would re-split.
    assert xxhash.xxh64_intdigest(b"hello") == 0x26C7827D889F6DA3  # published xxh64 test vector
    assert bucket_of("hello") == 659 and split_of("hello") == "train"
    assert bucket_of("") == 921 and split_of("") == "test"
    assert bucket_of([1, 2, 3]) == 756
    assert bucket_of(b"\x00\xff") == 981
    assert bucket_of("λx.x") == 2
    assert bucket_of("hello", salt="salt") == 825


def test_encoding() -> None:
    assert encode_key("λ") == "λ".encode()
    assert encode_key([1, 256]) == b"\x01\x00\x00\x00\x00\x01\x00\x00"
    assert encode_key(np.array([1, 256], dtype=np.int64)) == encode_key((1, 256))
    assert encode_key(b"ab") == b"ab"
    assert encode_key([]) == b""
    with pytest.raises(ValueError):
        encode_key([-1])
    with pytest.raises(ValueError):
        encode_key([2**32])
    with pytest.raises(TypeError):
        encode_key([[1]])


def test_ratios_validated() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        split_of("x", (0.5, 0.1, 0.1))
    with pytest.raises(ValueError, match="three"):
        split_of("x", (0.5, 0.5))
    assert split_of("x", (1.0, 0.0, 0.0)) == "train"
    assert split_of("x", (0.0, 0.0, 1.0)) == "test"


@given(st.one_of(st.text(), st.binary(), st.lists(st.integers(0, 2**32 - 1), max_size=20)), st.text(max_size=5))
def test_same_key_same_split(key, salt) -> None:
    s = split_of(key, salt=salt)
    assert s in SPLITS
    assert s == split_of(key, salt=salt) == Splitter(salt=salt)(key)


def test_shares_and_strata() -> None:
    recs = [{"k": f"key-{i}", "c": i % 3} for i in range(30000)]
    counts = split_counts(recs, key=lambda r: r["k"], stratum=lambda r: r["c"])
    assert set(counts) == {"0", "1", "2"}
    for per in counts.values():
        total = sum(per.values())
        assert abs(per["train"] / total - 0.8) < 0.02
        assert abs(per["val"] / total - 0.1) < 0.015
    # a key is in exactly one split, so duplicates follow their first copy
    seen: dict[str, str] = {}
    for r in recs * 2:
        s = split_of(r["k"])
        assert seen.setdefault(r["k"], s) == s


@pytest.mark.parametrize("salt", ["", "s1"])
def test_split_many_matches_the_documented_hash(salt) -> None:
    import random as _random
    import struct

    import xxhash as _xx
    from datacore import Splitter

    rng = _random.Random(5)
    keys = [[rng.randrange(2**32) for _ in range(rng.randrange(0, 9))] for _ in range(3000)]
    packed = [struct.pack(f"<{len(k)}I", *k) for k in keys]
    buf = b"".join(packed)
    ends, pos = [], 0
    for p in packed:
        pos += len(p)
        ends.append(pos)
    sp = Splitter(salt=salt)

    def oracle(b: bytes) -> str:  # the module docstring's formula, written out
        bucket = _xx.xxh64_intdigest(salt.encode() + b, seed=0) % 1000
        return "train" if bucket < 800 else "val" if bucket < 900 else "test"

    got = sp.split_many(bytearray(buf), ends)
    assert got == [oracle(p) for p in packed] == [sp(k) for k in keys]
    assert {"train", "val", "test"} <= set(got)
    with pytest.raises(ValueError, match="outside"):
        sp.split_many(buf, [len(buf) + 1])
