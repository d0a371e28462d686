"""The dataset card (README.md, Hugging Face front matter) and croissant.json of a run."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from datacore import build_dataset, load_manifest
from datacore.card import card_markdown, load_hf, regenerate_command
from datacore.report import FieldStats
from toygen import ToyGenerator


def _build(out: Path, n: int = 12, seed: int = 0, **kw):
    kw.setdefault("shard_size", 4)
    return build_dataset(ToyGenerator(), out, n, seed, workers=1, executor="inline", progress=False, **kw)


def _ids(out: Path, split: str) -> list[str]:
    """Record ids of a split read with the stdlib json module (oracle independent of datacore and datasets)."""
    ids = []
    for p in sorted((out / split).glob("part-*.jsonl")):
        ids += [json.loads(line)["id"] for line in p.read_text().splitlines() if line.strip()]
    return ids


def test_run_writes_card_and_croissant_before_the_manifest(tmp_path) -> None:
    out = tmp_path / "ds"
    _build(out)
    for name in ("README.md", "croissant.json", "dataset.json"):
        assert (out / name).is_file(), name
    # the manifest is written last: nothing was written after it
    assert (out / "dataset.json").stat().st_mtime_ns >= (out / "croissant.json").stat().st_mtime_ns
    assert not list(out.glob("*.tmp"))


def test_load_dataset_dir_returns_train_validation_test(tmp_path) -> None:
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "ds"
    m = _build(out, n=40, seed=0).manifest
    assert all(m["splits"].values())
    ds = datasets.load_dataset(str(out))
    assert sorted(ds) == ["test", "train", "validation"]
    for ours, theirs in (("train", "train"), ("val", "validation"), ("test", "test")):
        assert ds[theirs].num_rows == m["splits"][ours]
        assert ds[theirs]["id"] == _ids(out, ours)


def test_load_dataset_dir_with_an_empty_split(tmp_path) -> None:
    """n=12, shard size 4: seed 1 puts no record in val (the old load_dataset("json", ...) call failed)."""
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "ds"
    m = _build(out, n=12, seed=1).manifest
    assert m["splits"]["val"] == 0 and m["splits"]["train"] and m["splits"]["test"]
    ds = datasets.load_dataset(str(out))  # no other argument
    assert ds["train"]["id"] == _ids(out, "train")
    assert ds["test"]["id"] == _ids(out, "test")
    assert "validation" not in ds  # datasets cannot hold an empty split; the card says so
    card = (out / "README.md").read_text()
    assert "Empty split(s): val" in card
    full = load_hf(out)
    assert list(full) == ["train", "validation", "test"]
    assert full["validation"].num_rows == 0
    assert full["validation"].features == full["train"].features
    assert full["train"]["id"] == _ids(out, "train")


def test_load_dataset_dir_compressed(tmp_path) -> None:
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "ds"
    m = _build(out, n=40, seed=0, compress="zst").manifest
    ds = datasets.load_dataset(str(out))
    assert {k: ds[k].num_rows for k in ds} == {
        "train": m["splits"]["train"],
        "validation": m["splits"]["val"],
        "test": m["splits"]["test"],
    }


def test_card_summary(tmp_path) -> None:
    out = tmp_path / "ds"
    m = _build(out, n=12, seed=1).manifest
    card = (out / "README.md").read_text()
    front = card.split("---")[1]
    assert "configs:" in front and "data_files:" in front
    for must in (
        "toy",
        "1.0",
        "seed 1",
        "| train | train | 11 |",
        "| val | validation | 0 |",
        "| test | test | 1 |",
        '"vocab": 50',
        "`tokens` | list[int64]",
        "`text` | string",
        "`meta.shard` | int64",
        "## License",
        "@misc{",
        regenerate_command(m),
        "Records: asked 12, delivered 12",
    ):
        assert must in card, must


def test_card_requested_vs_delivered_table() -> None:
    m = {
        "generator": "g",
        "version": "1",
        "records": 100,
        "splits": {"train": 80, "val": 10, "test": 10},
        "spec": {"seed": 3, "n": 100, "config": {}},
        "shards": [],
        "delivery": {
            "requested": 100,
            "delivered": 100,
            "ok": False,
            "shortfall_allowed": True,
            "strata": [
                {
                    "stratum": "class=R",
                    "share": 0.1,
                    "tolerance": 0.02,
                    "requested": 10,
                    "delivered": 6,
                    "delivered_share": 0.06,
                    "ok": False,
                },
                {
                    "stratum": "class=S",
                    "share": 0.9,
                    "tolerance": 0.02,
                    "requested": 90,
                    "delivered": 94,
                    "delivered_share": 0.94,
                    "ok": False,
                },
            ],
        },
    }
    fs = FieldStats()
    fs.add("x")
    card = card_markdown(m, {"id": fs})
    assert "| `class=R` | 10.0% (10) | ±2.0% | 6.0% (6) | **no** |" in card
    assert "--allow-shortfall" in card


def test_card_regenerate_snippet_reproduces_the_files(tmp_path) -> None:
    """The Python snippet of the card, run as it stands, makes byte-identical shard files."""
    out = tmp_path / "ds"
    m = _build(out, n=12, seed=5).manifest
    card = (out / "README.md").read_text()
    snippet = card.split("or in Python:")[1].split("```python")[1].split("```")[0]
    (tmp_path / "config.json").write_text(json.dumps(m["spec"]["config"]))
    again = tmp_path / "again"
    snippet = snippet.replace("'OUT'", repr(str(again))).replace("'config.json'", repr(str(tmp_path / "config.json")))
    exec(compile(snippet, "card-snippet", "exec"), {})
    m2 = load_manifest(again)
    assert [f["sha256"] for s in m2["shards"] for f in s["files"].values()] == [
        f["sha256"] for s in m["shards"] for f in s["files"].values()
    ]


def _croissant(out: Path):
    mlc = pytest.importorskip("mlcroissant")
    return mlc, mlc.Dataset(jsonld=str(out / "croissant.json"))


def test_croissant_validates_and_loads_the_records(tmp_path) -> None:
    out = tmp_path / "ds"
    m = _build(out, n=12, seed=1).manifest  # with an empty split
    mlc, ds = _croissant(out)  # raises mlc.ValidationError on any error
    assert not ds.metadata.ctx.issues.errors
    got = [r["train/id"].decode() for r in ds.records("train")]
    assert sorted(got) == sorted(_ids(out, "train"))
    assert list(ds.records("validation")) == []
    rec = next(iter(ds.records("train")))
    assert isinstance(rec["train/tokens"], list)
    assert set(rec["train/meta"]) == {"train/meta.i", "train/meta.shard"}
    del m


def test_croissant_lists_every_file_with_its_sha256(tmp_path) -> None:
    out = tmp_path / "ds"
    m = _build(out, n=12, seed=0, compress="gz").manifest
    _croissant(out)
    doc = json.loads((out / "croissant.json").read_text())
    objs = {d["contentUrl"]: d for d in doc["distribution"] if d["@type"] == "cr:FileObject"}
    paths = [f["path"] for s in m["shards"] for f in s["files"].values()]
    assert sorted(objs) == sorted(paths)
    for p in paths:
        assert objs[p]["sha256"] == hashlib.sha256((out / p).read_bytes()).hexdigest()
        assert objs[p]["encodingFormat"] == "application/gzip"
    assert re.fullmatch(r"\d+\.\d+\.\d+", doc["version"])


def test_card_of_datacore_split(tmp_path) -> None:
    from click.testing import CliRunner
    from datacore import write_jsonl
    from datacore.cli import main

    src = tmp_path / "in.jsonl"
    write_jsonl(src, [{"q": f"question {i}", "a": i} for i in range(50)])
    r = CliRunner().invoke(main, ["split", str(src), "--key", "q", "--out", str(tmp_path / "o"), "--split-ratios", "0.6,0.2,0.2"])
    assert r.exit_code == 0, r.output
    card = (tmp_path / "o" / "README.md").read_text()
    assert "datacore split in.jsonl --key q --out OUT --split-ratios 0.6,0.2,0.2" in card
    _croissant(tmp_path / "o")


def test_croissant_gzip_records_and_zstd_validates(tmp_path) -> None:
    gz = tmp_path / "gz"
    _build(gz, n=12, seed=0, compress="gz")
    _, ds = _croissant(gz)
    got = sorted(r["train/id"].decode() for r in ds.records("train"))
    import gzip

    want = sorted(json.loads(line)["id"] for p in (gz / "train").glob("*.jsonl.gz") for line in gzip.open(p, "rt"))
    assert got == want
    zst = tmp_path / "zst"
    _build(zst, n=12, seed=0, compress="zst")
    _croissant(zst)  # validates; mlcroissant 1.1.1 cannot decompress zstd to read the records


class _NestedGenerator(ToyGenerator):
    def generate_shard(self, task, telemetry):
        for rec in super().generate_shard(task, telemetry):
            rec["calls"] = [{"tool": "a", "args": {"x": 1}}]  # a list of objects
            rec["mixed"] = 1 if rec["meta"]["i"] % 2 else "one"  # two scalar types
            rec["meta"]["deep"] = {"k": [1, 2]}
            yield rec


def test_croissant_skips_nested_fields_and_names_them(tmp_path) -> None:
    out = tmp_path / "n"
    build_dataset(_NestedGenerator(), out, 12, 0, workers=1, executor="inline", shard_size=4, progress=False)
    _, ds = _croissant(out)
    rec = next(iter(ds.records("train")))
    assert "train/tokens" in rec and "train/calls" not in rec and "train/mixed" not in rec
    assert set(rec["train/meta"]) == {"train/meta.i", "train/meta.shard"}
    doc = json.loads((out / "croissant.json").read_text())
    train = next(r for r in doc["recordSet"] if r["name"] == "train")
    assert "calls" in train["description"] and "mixed" in train["description"] and "meta.deep" in train["description"]


def test_card_regenerate_of_a_pipeline_without_a_generator_class() -> None:
    base = {
        "generator": "loop",
        "version": "1",
        "records": 1,
        "splits": {"train": 1, "val": 0, "test": 0},
        "spec": {"seed": 0, "n": 1, "config": {}},
        "shards": [],
        "generator_ref": None,
    }
    card = card_markdown(base, {})
    assert "did not record its command" in card and "generate --config" not in card
    card = card_markdown({**base, "regenerate": "loop run demo --out OUT -n 1"}, {})
    assert "```sh\nloop run demo --out OUT -n 1\n```" in card
