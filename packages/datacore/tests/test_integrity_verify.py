"""`datacore verify` is strict, and no reader leaves the dataset directory.

Oracles: hashlib + json (sorted, compact) for the manifest digest; files and edits made here.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from datacore import write_jsonl
from datacore.cli import main
from datacore.manifest import dataset_path, manifest_digest


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture()
def ds(tmp_path) -> Path:
    src = tmp_path / "src.jsonl"
    write_jsonl(src, [{"id": f"r{i}", "q": f"question {i % 97}", "a": i} for i in range(600)])
    out = tmp_path / "ds"
    r = run("split", src, "--key", "q", "--out", out, "--compress", "zst")
    assert r.exit_code == 0, r.output
    return out


def _edit(ds: Path, fn) -> None:
    m = orjson.loads((ds / "dataset.json").read_bytes())
    fn(m)
    (ds / "dataset.json").write_bytes(orjson.dumps(m, option=orjson.OPT_INDENT_2))


def _assert_one_line_failure(r, *needles: str) -> None:
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output and "KeyError" not in r.output
    for n in needles:
        assert n in r.output, r.output


def test_clean_dataset_verifies(ds) -> None:
    r = run("verify", ds)
    assert r.exit_code == 0 and "ok: 3 files" in r.output


@pytest.mark.parametrize("field", ["sha256", "bytes", "path", "records"])
def test_entry_missing_a_field_is_one_line(ds, field) -> None:
    _edit(ds, lambda m: m["shards"][0]["files"]["train"].pop(field))
    _assert_one_line_failure(run("verify", ds), f"file entry lacks a valid '{field}'")


def test_shard_missing_files_is_one_line(ds) -> None:
    _edit(ds, lambda m: m["shards"][0].pop("files"))
    _assert_one_line_failure(run("verify", ds), "shard 0 has no 'files' table")
    _assert_one_line_failure(run("stats", ds), "shard 0 has no 'files' table")


def test_unlisted_file_in_a_split_dir_fails(ds) -> None:
    shutil.copy(ds / "train" / "part-00000.jsonl.zst", ds / "train" / "part-00001.jsonl.zst")
    (ds / "val" / "notes.txt").write_text("x")
    _assert_one_line_failure(run("verify", ds), "train/part-00001.jsonl.zst: not listed", "val/notes.txt: not listed")


def test_edited_record_counts_fail(ds) -> None:
    def bump(m):  # a consistent edit: the entry, the split total and the grand total
        m["shards"][0]["files"]["val"]["records"] += 5
        m["shards"][0]["count"] += 5
        m["splits"]["val"] += 5
        m["records"] += 5

    _edit(ds, bump)
    _assert_one_line_failure(run("verify", ds), "val/part-00000.jsonl.zst: ", "records, manifest says")


def test_inconsistent_totals_fail(ds) -> None:
    _edit(ds, lambda m: m["splits"].__setitem__("test", m["splits"]["test"] + 1))
    _assert_one_line_failure(run("verify", ds), "splits.test is")


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_paths_outside_the_dataset_fail_everywhere(ds, tmp_path, kind) -> None:
    outside = tmp_path / "outside.jsonl"
    outside.write_bytes(b'{"secret": 1}\n')
    entry = {
        "path": "../outside.jsonl",
        "records": 1,
        "bytes": outside.stat().st_size,
        "sha256": hashlib.sha256(outside.read_bytes()).hexdigest(),
    }
    if kind == "absolute":
        entry["path"] = str(outside)
    if kind == "symlink":
        link = ds / "train" / "part-00000.jsonl.zst"
        link.unlink()
        link.symlink_to(outside)
        entry["path"] = "train/part-00000.jsonl.zst"

    def plant(m):
        m["shards"][0]["files"]["train"] = entry
        m["splits"]["train"] = 1
        m["records"] = sum(m["splits"].values())
        m["shards"][0]["count"] = sum(e["records"] for e in m["shards"][0]["files"].values())

    _edit(ds, plant)
    _assert_one_line_failure(run("verify", ds), "outside the dataset")
    for cmd in (["stats", ds], ["report", ds], ["export", ds, "--to", "parquet", "--dest", tmp_path / "pq"]):
        r = run(*cmd)
        _assert_one_line_failure(r, "outside the dataset")
        assert "secret" not in r.output
    assert not (tmp_path / "pq" / "train.parquet").exists()


@pytest.mark.parametrize("rel", ["../x.jsonl", "/etc/passwd", "a/../../x", "C:\\x.jsonl", "train\\..\\..\\x", "", 5])
def test_dataset_path_refuses(tmp_path, rel) -> None:
    from datacore.errors import ManifestError

    with pytest.raises(ManifestError):
        dataset_path(tmp_path, rel)


def test_manifest_digest_checked_when_recorded(ds) -> None:
    m = orjson.loads((ds / "dataset.json").read_bytes())
    assert m.pop("manifest_sha256") == manifest_digest(m)  # the run records it
    # the oracle: sha256 of the key-sorted compact JSON, by the standard library
    expect = hashlib.sha256(json.dumps(m, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()
    assert manifest_digest(m) == expect
    assert manifest_digest(dict(reversed(list(m.items())))) == expect  # key order does not matter
    _edit(ds, lambda m: m.__setitem__("manifest_sha256", manifest_digest(m)))
    assert run("verify", ds).exit_code == 0
    _edit(ds, lambda m: m.__setitem__("version", "9.9.9"))  # an edit the file hashes cannot see
    _assert_one_line_failure(run("verify", ds), "manifest_sha256 does not match")
