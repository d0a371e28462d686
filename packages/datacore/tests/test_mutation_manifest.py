"""verify_dataset, dataset_path and _entry_problems (datacore.manifest) on hand-built datasets.

Written to kill mutmut survivors.  Oracles: hashlib for sha256, byte lengths and line counts
computed here, messages written out by hand.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from datacore.errors import ManifestError
from datacore.manifest import _entry_problems, dataset_path, verify_dataset

LINES = {"train": b'{"a":1}\n{"a":2}\n{"a":3}\n', "val": b'{"a":4}\n', "test": b'{"a":5}\n{"a":6}\n'}


def _entry(rel: str, data: bytes) -> dict:
    return {"path": rel, "records": data.count(b"\n"), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _build(out: Path, edit=None) -> Path:
    out.mkdir()
    files = {}
    for split, data in LINES.items():
        (out / split).mkdir()
        (out / split / "part-00000.jsonl").write_bytes(data)
        files[split] = _entry(f"{split}/part-00000.jsonl", data)
    m = {
        "format": "datacore-dataset/1",
        "generator": {"name": "hand"},
        "records": 6,
        "splits": {"train": 3, "val": 1, "test": 2},
        "shards": [{"index": 0, "count": 6, "files": files}],
    }
    if edit:
        edit(m)
    (out / "dataset.json").write_text(json.dumps(m))
    return out


def test_hand_built_dataset_verifies(tmp_path) -> None:
    assert verify_dataset(_build(tmp_path / "d")) == []
    assert verify_dataset(str(_build(tmp_path / "e"))) == []


def test_recorded_digest(tmp_path) -> None:
    d = _build(tmp_path / "d", lambda m: m.__setitem__("manifest_sha256", "0" * 64))
    assert verify_dataset(d) == ["dataset.json: manifest_sha256 does not match the manifest (it was edited)"]


def test_wrong_size_sha_and_count(tmp_path) -> None:
    def edit(m):
        f = m["shards"][0]["files"]
        f["train"]["bytes"] += 1
        f["val"]["sha256"] = "f" * 64
        f["test"]["records"] = 5
        m["splits"]["test"] = 5
        m["records"] = 9
        m["shards"][0]["count"] = 9

    d = _build(tmp_path / "d", edit)
    n = len(LINES["train"])
    assert verify_dataset(d) == [
        f"train/part-00000.jsonl: {n} bytes, manifest says {n + 1}",
        "val/part-00000.jsonl: sha256 differs from the manifest",
        "test/part-00000.jsonl: 2 records, manifest says 5",
    ]


def test_missing_listed_twice_and_unlisted(tmp_path) -> None:
    def edit(m):
        f = m["shards"][0]["files"]
        f["again"] = dict(f["train"])
        f["ghost"] = _entry("train/ghost.jsonl", b"x\n")

    d = _build(tmp_path / "d", edit)
    (d / "val" / "stray.jsonl").write_bytes(b"{}\n")
    (d / "test" / "sub").mkdir()
    (d / "test" / "sub" / "deep.txt").write_bytes(b"")
    (d / "notes.txt").write_bytes(b"top-level files are not checked")
    probs = verify_dataset(d)
    assert probs == [
        "train/part-00000.jsonl: listed twice",
        "train/ghost.jsonl: missing",
        "dataset.json: shard 0 count 6 != 7 records in its files",
        "dataset.json: splits.ghost is 0, its files hold 1",
        "dataset.json: records is 6, the files hold 7",
        "val/stray.jsonl: not listed in the manifest",
        "test/sub/deep.txt: not listed in the manifest",
    ]


def test_totals(tmp_path) -> None:
    def edit(m):
        m["splits"] = {"train": 3, "val": 2, "test": 2, "extra": 1}
        m["records"] = 7
        m["shards"][0]["count"] = 5

    probs = verify_dataset(_build(tmp_path / "d", edit))
    assert probs == [
        "dataset.json: shard 0 count 5 != 6 records in its files",
        "dataset.json: splits.extra is 1, its files hold 0",
        "dataset.json: splits.val is 2, its files hold 1",
        "dataset.json: records is 7, the files hold 6",
    ]


def test_optional_totals_may_be_absent(tmp_path) -> None:
    def edit(m):
        del m["records"]
        del m["shards"][0]["count"]
        m["splits"] = "not a table"

    assert verify_dataset(_build(tmp_path / "d", edit)) == []


def test_two_shards_are_totalled_apart(tmp_path) -> None:
    def edit(m):
        val = m["shards"][0]["files"].pop("val")
        m["shards"][0]["count"] = 5
        m["shards"].append({"index": 7, "count": 1, "files": {"val": val}})

    assert verify_dataset(_build(tmp_path / "d", edit)) == []

    def edit2(m):
        edit(m)
        m["shards"][1]["count"] = 2

    assert verify_dataset(_build(tmp_path / "e", edit2)) == ["dataset.json: shard 7 count 2 != 1 records in its files"]


def test_path_outside_is_reported_not_raised(tmp_path) -> None:
    (tmp_path / "secret.jsonl").write_bytes(b"{}\n")
    d = _build(tmp_path / "d", lambda m: m["shards"][0]["files"]["val"].__setitem__("path", "../secret.jsonl"))
    probs = verify_dataset(d)
    assert probs[0] == "../secret.jsonl: path points outside the dataset"
    assert "val/part-00000.jsonl: not listed in the manifest" in probs


def test_corrupt_compressed_file_is_one_line(tmp_path) -> None:
    data = b"\x28\xb5\x2f\xfd garbage"

    def edit(m):
        m["shards"][0]["files"]["val"] = _entry("val/part-00000.jsonl.zst", data)

    d = _build(tmp_path / "d", edit)
    (d / "val" / "part-00000.jsonl").unlink()
    (d / "val" / "part-00000.jsonl.zst").write_bytes(data)
    probs = verify_dataset(d)
    assert len(probs) >= 1 and probs[0].startswith("val/part-00000.jsonl.zst: corrupt or truncated zst stream")


def test_structure_problems_skip_the_totals(tmp_path) -> None:
    def edit(m):
        m["shards"].append({"index": 3, "files": {"val": "nope"}})
        m["records"] = 99

    assert verify_dataset(_build(tmp_path / "d", edit)) == ["dataset.json: shard 3, split 'val': file entry is not an object"]


def test_extra_files(tmp_path) -> None:
    card = b"# card\n"

    def edit(m):
        m["extra_files"] = [
            {"path": "README.md", "bytes": len(card), "sha256": hashlib.sha256(card).hexdigest()},
            {"path": "gone.md", "bytes": 1, "sha256": "0"},
            {"path": "sized.md", "bytes": 99, "sha256": "0"},
            {"path": "hashed.md", "bytes": 1, "sha256": "0"},
            {"path": "sub/x.md", "bytes": 1, "sha256": "0"},
            {"path": "..", "bytes": 1, "sha256": "0"},
            {"path": "a\\b", "bytes": 1, "sha256": "0"},
            {"path": "nosha.md", "bytes": 1},
            "str",
        ]

    d = _build(tmp_path / "d", edit)
    (d / "README.md").write_bytes(card)
    (d / "sized.md").write_bytes(b"12")
    (d / "hashed.md").write_bytes(b"1")
    assert verify_dataset(d) == [
        "gone.md: missing",
        "sized.md: 2 bytes, manifest says 99",
        "hashed.md: sha256 differs from the manifest",
        "sub/x.md: an extra file must sit in the dataset's top folder",
        "..: an extra file must sit in the dataset's top folder",
        "a\\b: an extra file must sit in the dataset's top folder",
        "dataset.json: a malformed extra_files entry: {'path': 'nosha.md', 'bytes': 1}",
        "dataset.json: a malformed extra_files entry: str",
    ]
    e = _build(tmp_path / "e", lambda m: m.__setitem__("extra_files", {"x": 1}))
    assert verify_dataset(e) == ["dataset.json: a malformed extra_files entry: None"]


def test_extra_file_symlink_is_missing(tmp_path) -> None:
    (tmp_path / "real.md").write_bytes(b"r")

    def edit(m):
        m["extra_files"] = [{"path": "link.md", "bytes": 1, "sha256": hashlib.sha256(b"r").hexdigest()}]

    d = _build(tmp_path / "d", edit)
    (d / "link.md").symlink_to(tmp_path / "real.md")
    assert verify_dataset(d) == ["link.md: missing"]


def test_symlink_in_split_dir_counts_as_unlisted(tmp_path) -> None:
    d = _build(tmp_path / "d")
    (d / "train" / "dangling.jsonl").symlink_to(tmp_path / "nowhere")
    assert verify_dataset(d) == ["train/dangling.jsonl: not listed in the manifest"]


def test_entry_problems_messages() -> None:
    good = {"path": "a", "records": 1, "bytes": 2, "sha256": "h"}
    assert _entry_problems([]) == ([], ["dataset.json: 'shards' is not a list"])
    assert _entry_problems({"shards": {}}) == ([], ["dataset.json: 'shards' is not a list"])
    files, probs = _entry_problems(
        {
            "shards": [
                {"index": 4, "files": {"train": good, "val": dict(good, records=True), "test": dict(good, bytes="2")}},
                "x",
                {"files": []},
                {"index": 9, "files": {"train": dict(good, path=None, sha256=1)}},
                {"files": {"val": good}},
            ]
        }
    )
    assert files == [{"split": "train", **good, "shard": 4}, {"split": "val", **good, "shard": 4}]
    assert probs == [
        "dataset.json: shard 4, split 'val': file entry lacks a valid 'records'",
        "dataset.json: shard 4, split 'test': file entry lacks a valid 'bytes'",
        "dataset.json: shard 1 has no 'files' table",
        "dataset.json: shard 2 has no 'files' table",
        "dataset.json: shard 9, split 'train': file entry lacks a valid 'path', 'sha256'",
    ]


def test_dataset_path(tmp_path) -> None:
    p = dataset_path(tmp_path, "train/x.jsonl")
    assert p == tmp_path / "train" / "x.jsonl" and isinstance(p, Path)
    assert dataset_path(str(tmp_path), "a") == tmp_path / "a"
    where = tmp_path / "dataset.json"
    for rel, msg in [
        ("", "is not a relative path"),
        (None, "is not a relative path"),
        (b"a", "is not a relative path"),
        ("/abs", "points outside the dataset"),
        ("C:x", "points outside the dataset"),
        ("a\\b", "points outside the dataset"),
        ("a/../b", "points outside the dataset"),
        ("a\x00b", "points outside the dataset"),
    ]:
        with pytest.raises(ManifestError) as e:
            dataset_path(tmp_path, rel)
        assert str(e.value) == f"{where}: file path {rel!r} {msg}"
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "out").symlink_to(tmp_path.parent)
    for rel in ("out/x", "loop/x"):
        with pytest.raises(ManifestError) as e:
            dataset_path(tmp_path, rel)
        assert str(e.value) == f"{where}: file path {rel!r} leads outside the dataset (symlink)"
    (tmp_path / "in").symlink_to(tmp_path / "train")
    assert dataset_path(tmp_path, "in/x") == tmp_path / "in" / "x"


def test_totals_edge_cases(tmp_path) -> None:
    def edit(m):
        f = m["shards"][0]["files"]
        f["empty"] = _entry("train/empty.jsonl", b"")  # 0 records in a split the totals do not name: fine
        m["shards"].append({"index": 5, "count": 2, "files": {}})  # a count but no files: 0 records

    d = _build(tmp_path / "d", edit)
    (d / "train" / "empty.jsonl").write_bytes(b"")
    assert verify_dataset(d) == ["dataset.json: shard 5 count 2 != 0 records in its files"]


def test_every_file_is_checked_after_a_corrupt_one(tmp_path) -> None:
    data = b"\x28\xb5\x2f\xfd garbage"

    def edit(m):
        m["shards"][0]["files"]["val"] = dict(_entry("val/part-00000.jsonl.zst", data), records=1)
        m["shards"][0]["files"]["test"]["sha256"] = "0" * 64

    d = _build(tmp_path / "d", edit)
    (d / "val" / "part-00000.jsonl").unlink()
    (d / "val" / "part-00000.jsonl.zst").write_bytes(data)
    probs = verify_dataset(d)
    assert probs[0].startswith("val/part-00000.jsonl.zst: corrupt or truncated zst stream")
    assert probs[1:] == ["test/part-00000.jsonl: sha256 differs from the manifest"]


def test_malformed_extra_entry_is_cut_at_80_chars(tmp_path) -> None:
    entry = {"path": "x" * 200}
    d = _build(tmp_path / "d", lambda m: m.__setitem__("extra_files", [entry]))
    assert verify_dataset(d) == [f"dataset.json: a malformed extra_files entry: {str(entry)[:80]}"]
    assert len(str(entry)[:80]) == 80
