"""Dataset-level files a generator adds (an FSM's JSON, a vocabulary): written before the
manifest, listed with their sha256, checked on resume and by verify, removed only as ours."""

from __future__ import annotations

import hashlib

import attrs
import orjson
import pytest
from conformance_toys import StrataToy
from datacore import DatacoreError, ManifestError, build_dataset
from datacore.manifest import verify_dataset


@attrs.frozen
class FileToy(StrataToy):
    def dataset_files(self, telemetry) -> dict[str, bytes]:
        return {"vocab.json": orjson.dumps({"size": self.vocab, "records": telemetry.counters.get("records")})}


@attrs.frozen
class BadNameToy(StrataToy):
    def dataset_files(self, telemetry) -> dict[str, bytes]:
        return {"../escape.json": b"{}"}


def _build(gen, out, **kw):
    return build_dataset(gen, out, n=60, shard_size=30, executor="inline", progress=False, **kw)


def test_files_are_listed_checked_and_removed_as_ours(tmp_path) -> None:
    out = tmp_path / "ds"
    m = _build(FileToy(), out).manifest
    data = (out / "vocab.json").read_bytes()
    assert orjson.loads(data) == {"size": 20, "records": 60}
    assert m["extra_files"] == [{"path": "vocab.json", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}]
    assert verify_dataset(out) == []
    (out / "vocab.json").write_bytes(data.replace(b"20", b"21"))
    assert verify_dataset(out) == ["vocab.json: sha256 differs from the manifest"]
    with pytest.raises(ManifestError, match="vocab.json: sha256 differs"):
        _build(FileToy(), out)  # a damaged finished dataset is not kept as complete
    (out / "notes.txt").write_text("the user's own")
    _build(FileToy(), out, resume="never")
    assert (out / "notes.txt").read_text() == "the user's own"  # never deletes what it did not create
    assert verify_dataset(out) == []


def test_a_bad_file_name_is_refused_and_nothing_is_left(tmp_path) -> None:
    with pytest.raises(DatacoreError, match="dataset file name '../escape.json' is not allowed"):
        _build(BadNameToy(), tmp_path / "bad")
    assert not (tmp_path / "escape.json").exists()
