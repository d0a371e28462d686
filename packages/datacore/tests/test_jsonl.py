import gzip

import pytest
from datacore import JsonlError, JsonlWriter, ReadStats, read_jsonl, write_jsonl

RECS = [{"a": i, "s": "x" * (i % 7), "l": [i, i + 1], "u": "λ"} for i in range(2500)]


@pytest.mark.parametrize("ext", [".jsonl", ".jsonl.gz", ".jsonl.zst"])
def test_round_trip(tmp_path, ext) -> None:
    p = tmp_path / f"d{ext}"
    assert write_jsonl(p, RECS) == len(RECS)
    assert list(read_jsonl(p)) == RECS
    assert not (tmp_path / f"d{ext}.tmp").exists()


@pytest.mark.parametrize("ext", [".jsonl.gz", ".jsonl.zst", ".jsonl"])
def test_byte_reproducible(tmp_path, ext) -> None:
    write_jsonl(tmp_path / f"a{ext}", RECS)
    write_jsonl(tmp_path / f"b{ext}", RECS)
    assert (tmp_path / f"a{ext}").read_bytes() == (tmp_path / f"b{ext}").read_bytes()


def test_malformed_line_named(tmp_path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a": \n[1,2]\n{"a": 5}\n')
    with pytest.raises(JsonlError, match=r"bad.jsonl:3: malformed JSON"):
        list(read_jsonl(p))
    stats = ReadStats()
    assert [r["a"] for r in read_jsonl(p, on_error="skip", stats=stats)] == [1, 2, 5]
    assert stats.skipped == 2 and stats.skipped_lines == [3, 4]


def test_line_numbers_past_blank_lines_and_blocks(tmp_path) -> None:
    """Blank and CRLF lines are skipped; two values on one line is an error; numbers stay exact
    across the reader's 64 KiB blocks (the bad line sits in the third block)."""
    good = [b'{"i": %d, "pad": "%s"}' % (i, b"x" * 200) for i in range(900)]
    lines = good[:300] + [b"", b"  "] + good[300:600] + [b'{"i": -1}\r'] + good[600:700] + [b'{"a": 1} {"b": 2}'] + good[700:]
    p = tmp_path / "mixed.jsonl"
    p.write_bytes(b"\n".join(lines) + b"\n")
    bad_line = lines.index(b'{"a": 1} {"b": 2}') + 1
    with pytest.raises(JsonlError, match=rf"mixed.jsonl:{bad_line}: malformed JSON"):
        list(read_jsonl(p))
    stats = ReadStats()
    got = [r["i"] for r in read_jsonl(p, on_error="skip", stats=stats)]
    assert got == list(range(600)) + [-1] + list(range(600, 900))
    assert stats.skipped_lines == [bad_line] and stats.records == 901


def test_unterminated_last_line_and_non_object(tmp_path) -> None:
    p = tmp_path / "t.jsonl"
    p.write_bytes(b'{"a": 1}\n{"a": 2}')
    assert [r["a"] for r in read_jsonl(p)] == [1, 2]
    p.write_bytes(b'{"a": 1}\n"text"\n')
    with pytest.raises(JsonlError, match=r"t.jsonl:2: expected a JSON object, got str"):
        list(read_jsonl(p))


def test_truncated_gzip_raises(tmp_path) -> None:
    p = tmp_path / "t.jsonl.gz"
    write_jsonl(p, RECS)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(JsonlError, match="corrupt or truncated gz"):
        list(read_jsonl(p))
    p.write_bytes(b"not gzip at all")
    with pytest.raises(JsonlError, match="t.jsonl.gz"):
        list(read_jsonl(p))


def test_truncated_zstd_raises(tmp_path) -> None:
    p = tmp_path / "t.jsonl.zst"
    write_jsonl(p, RECS)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(JsonlError, match="t.jsonl.zst"):
        list(read_jsonl(p))


def test_missing_file(tmp_path) -> None:
    with pytest.raises(JsonlError, match="no such file"):
        list(read_jsonl(tmp_path / "nope.jsonl"))


def test_failed_write_leaves_nothing(tmp_path) -> None:
    p = tmp_path / "x.jsonl"
    p.write_bytes(b'{"old": true}\n')
    with pytest.raises(RuntimeError):
        with JsonlWriter(p) as w:
            w.write({"a": 1})
            raise RuntimeError("boom")
    assert p.read_bytes() == b'{"old": true}\n'  # the old complete file is untouched
    assert not (tmp_path / "x.jsonl.tmp").exists()


def test_gzip_is_standard(tmp_path) -> None:
    p = tmp_path / "s.jsonl.gz"
    write_jsonl(p, RECS[:3])
    assert gzip.decompress(p.read_bytes()).count(b"\n") == 3


def test_numpy_values_and_unencodable_record(tmp_path) -> None:
    """numpy arrays/scalars are written as JSON lists/numbers; a record that cannot be encoded
    raises and leaves no partial line in what the writer holds."""
    import numpy as np
    import orjson

    rec = {"a": np.arange(3, dtype=np.int32), "b": np.float64(0.5), "c": [np.int64(7)], "d": 1.5e300}
    p = tmp_path / "n.jsonl"
    with JsonlWriter(p) as w:
        w.write(rec)
        with pytest.raises(TypeError, match="object"):
            w.write({"ok": 1, "bad": object()})
        w.write_many([{"i": 1}, {"i": 2}])
    assert list(read_jsonl(p)) == [{"a": [0, 1, 2], "b": 0.5, "c": [7], "d": 1.5e300}, {"i": 1}, {"i": 2}]
    assert w.count == 3
    # the same bytes as orjson for ordinary records (what every generator writes)
    plain = [{"id": "x", "tokens": [1, 2, 3], "t": 'λ "q" \n', "f": 0.1, "n": None, "b": True, "m": {"k": -5}}]
    write_jsonl(p, plain)
    assert p.read_bytes() == b"".join(orjson.dumps(r) + b"\n" for r in plain)


def test_two_objects_on_one_line_are_an_error_even_with_a_comma(tmp_path) -> None:
    p = tmp_path / "c.jsonl"
    p.write_bytes(b'{"a":1}\n{"b":2},{"c":3}\n{"d":4}\n')
    with pytest.raises(JsonlError, match=r"c.jsonl:2: malformed JSON"):
        list(read_jsonl(p))
    p.write_bytes(b'{"a":1}\n[{"b":2}]\n')
    with pytest.raises(JsonlError, match=r"c.jsonl:2: expected a JSON object, got list"):
        list(read_jsonl(p))
