"""Integrity of JSONL files: corruption is always detected, records JSON cannot carry are refused.

Oracles share no code with the reader/writer: Python's json module (strict, allow_nan=False),
bit flips made here, and plain equality with the records written.
"""

from __future__ import annotations

import gzip
import json
import random
import zlib

import numpy as np
import pytest
from datacore import DatacoreError, JsonlError, JsonlWriter, read_jsonl, write_jsonl
from datacore.errors import RecordError
from datacore.jsonl import dumps
from hypothesis import given, settings
from hypothesis import strategies as st

RECS = [
    {"id": f"{i:04x}", "tokens": list(range(i % 23)), "text": "ab\u03bb" * (i % 7), "meta": {"k": i, "f": i / 7}}
    for i in range(300)
]


@pytest.mark.parametrize("ext", [".jsonl.zst", ".jsonl.gz"])
def test_random_bit_flips_detected_or_identical(tmp_path, ext) -> None:
    """Every single-bit flip is either one clean JsonlError naming the file, or reads back identical."""
    src = tmp_path / f"src{ext}"
    write_jsonl(src, RECS)
    data = src.read_bytes()
    rng = random.Random(12)
    bad = tmp_path / f"bad{ext}"
    outcomes = {"error": 0, "identical": 0}
    for _ in range(150):
        b = bytearray(data)
        pos = rng.randrange(len(b))
        b[pos] ^= 1 << rng.randrange(8)
        bad.write_bytes(bytes(b))
        try:
            got = list(read_jsonl(bad))
        except JsonlError as e:
            assert str(bad) in str(e) and "\n" not in str(e)
            outcomes["error"] += 1
            continue
        assert got == RECS, f"bit flip at byte {pos} of {len(b)} read back as different records"
        outcomes["identical"] += 1
    assert outcomes["error"] > 100


def test_zstd_frames_carry_a_checksum(tmp_path) -> None:
    p = tmp_path / "c.jsonl.zst"
    write_jsonl(p, RECS)
    # frame header descriptor: bit 2 is the Content_Checksum_flag (RFC 8878, 3.1.1.1.1)
    assert p.read_bytes()[:4] == b"\x28\xb5\x2f\xfd" and p.read_bytes()[4] & 0b100


def test_corrupt_gzip_is_one_line_not_zlib_error(tmp_path) -> None:
    p = tmp_path / "g.jsonl.gz"
    raw = b"".join(json.dumps(r).encode() + b"\n" for r in RECS)
    comp = bytearray(gzip.compress(raw, mtime=0))
    comp[len(comp) // 2] ^= 0xFF  # inside the deflate data: zlib raises "invalid ..." here
    p.write_bytes(bytes(comp))
    try:
        gzip.decompress(bytes(comp))
        pytest.skip("this flip happens to be valid deflate")
    except zlib.error:
        pass
    except (OSError, EOFError):
        pass
    with pytest.raises(JsonlError, match=r"g\.jsonl\.gz:\d+: corrupt or truncated gz stream"):
        list(read_jsonl(p))


@pytest.mark.parametrize(
    "text,line",
    [
        (b'{"a":1}\n\n{"b":2}{"c":3}\n', 3),
        (b'{"a":1}\n{"b":2} {"c":3}\n', 2),
        (b'{"a":1}\n{"b":\n2}\n{"c":3}{"d":4}\n', 2),
        (b'{"a":1}\n{"b":2}\n{"c":3}{"d":4}', 3),
        (b'{"a":1}{"b":2}\n', 1),
    ],
)
def test_several_values_on_one_line_is_an_error(tmp_path, text, line) -> None:
    p = tmp_path / "m.jsonl"
    p.write_bytes(text)
    with pytest.raises(JsonlError, match=rf"m\.jsonl:{line}: malformed JSON"):
        list(read_jsonl(p))
    # the oracle agrees that this line is not one JSON value
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.split(b"\n")[line - 1])


def test_fast_path_still_reads_good_blocks_with_blank_lines(tmp_path) -> None:
    p = tmp_path / "ok.jsonl"
    p.write_bytes(b"".join(json.dumps(r).encode() + b"\n" + (b"\n" if i % 50 == 0 else b"") for i, r in enumerate(RECS)))
    assert list(read_jsonl(p)) == RECS


BAD = [
    ({"id": "r1", "meta": {"scores": [0.1, 0.2, 0.3, float("nan")]}}, "meta.scores[3]", "nan"),
    ({"x": float("inf")}, "x", "inf"),
    ({"meta": {"tags": {"a", "b"}}}, "meta.tags", "set"),
    ({"meta": {"tags": frozenset({"a"})}}, "meta.tags", "frozenset"),
    ({"meta": {"counts": {1: 2}}}, "meta.counts", "key 1 is int"),
    ({"blob": b"\x00"}, "blob", "bytes"),
    ({"when": __import__("datetime").date(2020, 1, 1)}, "when", "date"),
    ({"o": [1, {"deep": object()}]}, "o[1].deep", "object"),
    ({"arr": np.array([1.0, np.inf])}, "arr[1]", "inf"),
    ({"big": 2**70}, "big", "64 bits"),
]


@pytest.mark.parametrize("rec,field,why", BAD)
@pytest.mark.parametrize("how", ["write", "write_many", "dumps"])
def test_unfaithful_values_refused_naming_record_and_field(tmp_path, rec, field, why, how) -> None:
    p = tmp_path / "r.jsonl"
    good = [{"id": f"g{i}", "v": i, "n": None} for i in range(5)]
    with pytest.raises(RecordError) as ei:
        if how == "dumps":
            dumps(rec)
        else:
            with JsonlWriter(p) as w:
                if how == "write":
                    for r in good:
                        w.write(r)
                    w.write(rec)
                else:
                    w.write_many([*good, rec, *good])
    e = ei.value
    assert isinstance(e, DatacoreError) and isinstance(e, TypeError)
    msg = str(e)
    assert f"field {field}:" in msg and why in msg and "\n" not in msg
    if how != "dumps":
        assert "record 5" in msg and str(p) in msg
        assert not p.exists() and not (tmp_path / "r.jsonl.tmp").exists()
    if "id" in rec:
        assert "'r1'" in msg
    # the oracle: Python's strict json refuses it too (or, for numpy/int keys, it is not plain JSON)


def test_refused_record_leaves_no_partial_line(tmp_path) -> None:
    """A set (refused at once) leaves nothing and writing goes on; a NaN (found by the batch
    check) makes the writer refuse to commit the file at all, even if the error is caught."""
    p = tmp_path / "p.jsonl"
    with JsonlWriter(p) as w:
        w.write({"a": 1})
        with pytest.raises(RecordError, match="field b: a set"):
            w.write({"b": {2}})
        w.write({"d": None, "t": "looks like :null, in a string"})
    assert [json.loads(line) for line in p.read_bytes().splitlines()] == [
        {"a": 1},
        {"d": None, "t": "looks like :null, in a string"},
    ]
    q = tmp_path / "q.jsonl"
    with pytest.raises(RecordError, match=r"record 1: field c: nan"):
        with JsonlWriter(q) as w:
            w.write({"a": 1})
            try:
                w.write({"b": 2, "c": float("nan")})
            except RecordError:
                pass  # swallowed: the file must still not be committed
            w.write({"d": 3})
    assert not q.exists() and not (tmp_path / "q.jsonl.tmp").exists()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.dictionaries(
            st.text(max_size=6),
            st.recursive(
                st.none()
                | st.booleans()
                | st.integers(-(2**63), 2**63)
                | st.floats(allow_nan=False, allow_infinity=False)
                | st.text(max_size=8),
                lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=4), kids, max_size=4),
                max_leaves=12,
            ),
            max_size=5,
        ),
        max_size=30,
    )
)
def test_bytes_are_the_reference_encoders(recs) -> None:
    """write(), write_many() and dumps() give msgspec's bytes (datacore 0.1's encoder) for any JSON
    record, exponents ("1e300", never "1e+300") and strings holding "1e+5" included."""
    import msgspec

    recs = [*recs, {"f": 1e300, "s": '1e+5 and \\"2e+7\\"', "g": [1.5e-300, -2e22]}]
    ref = b"".join(msgspec.json.encode(r) + b"\n" for r in recs)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "a.jsonl"
        write_jsonl(p, recs)
        assert p.read_bytes() == ref
        with JsonlWriter(p) as w:
            for r in recs:
                w.write(r)
        assert p.read_bytes() == ref
    assert b"".join(dumps(r) for r in recs) == ref
    assert [json.loads(line) for line in ref.splitlines()] == recs


def test_allow_nan_writes_null(tmp_path) -> None:
    p = tmp_path / "n.jsonl"
    write_jsonl(p, [{"x": float("nan")}], allow_nan=True)
    assert p.read_bytes() == b'{"x":null}\n'


def test_ordinary_records_unchanged_and_strict_json(tmp_path) -> None:
    """What generators write passes, byte for byte as before, and reads with a strict parser."""
    recs = [*RECS, {"id": "z", "n": None, "b": True, "f": 1.5e300, "np": np.arange(3), "t": ("a", 1)}]
    p = tmp_path / "o.jsonl"
    write_jsonl(p, recs)
    for line in p.read_bytes().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert list(read_jsonl(p))[-1] == {"id": "z", "n": None, "b": True, "f": 1.5e300, "np": [0, 1, 2], "t": ["a", 1]}


def test_record_error_pickles() -> None:
    import pickle

    with pytest.raises(RecordError) as ei:
        dumps({"a": {1, 2}})
    e2 = pickle.loads(pickle.dumps(ei.value))
    assert str(e2) == str(ei.value)
    e3 = pickle.loads(pickle.dumps(JsonlError("f.jsonl", 3, "bad")))
    assert str(e3) == "f.jsonl:3: bad"


def test_stats_on_corrupt_files_is_one_line(tmp_path) -> None:
    """`datacore stats` on a corrupt gzip/zstd file: exit 1, one line naming the file, no traceback."""
    from click.testing import CliRunner
    from datacore.cli import main

    for ext in (".jsonl.gz", ".jsonl.zst"):
        p = tmp_path / f"c{ext}"
        write_jsonl(p, RECS)
        b = bytearray(p.read_bytes())
        b[len(b) // 2] ^= 0x10
        p.write_bytes(bytes(b))
        r = CliRunner().invoke(main, ["stats", str(p)])
        assert r.exit_code == 1 and "Traceback" not in r.output and r.exception is None or isinstance(r.exception, SystemExit)
        assert f"c{ext}" in r.output and "corrupt" in r.output and len(r.output.strip().splitlines()) == 1, r.output


def test_deeply_nested_line_is_one_error_naming_the_line(tmp_path) -> None:
    from datacore import JsonlError, read_jsonl

    p = tmp_path / "deep.jsonl"
    p.write_text('{"ok": 1}\n' + '{"a":' * 100_000 + "1" + "}" * 100_000 + "\n")
    with pytest.raises(JsonlError, match=r"deep.jsonl:2: malformed JSON"):
        list(read_jsonl(p))
