"""No datacore command deletes what it did not create or runs code a dataset names; export streams.

Oracles: snapshots of every file (path -> sha256) taken here, pyarrow's own reader, a marker
file a planted module would write.
"""

from __future__ import annotations

import hashlib
import textwrap
import tracemalloc
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from datacore import read_jsonl, write_jsonl
from datacore.cli import main
from datacore.manifest import manifest_digest


def run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def snapshot(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
        for p in sorted(root.rglob("*"))
    }


def make_split(tmp_path: Path, name: str = "ds", n: int = 400, recs: list | None = None, *extra: str) -> Path:
    src = tmp_path / f"{name}.src.jsonl"
    write_jsonl(src, recs if recs is not None else [{"id": f"r{i}", "q": f"q{i % 53}", "a": i} for i in range(n)])
    out = tmp_path / name
    r = run("split", src, "--key", "q", "--out", out, *extra)
    assert r.exit_code == 0, r.output
    return out


def test_split_of_a_dataset_file_into_that_dataset_is_refused_untouched(tmp_path) -> None:
    ds = make_split(tmp_path)
    before = snapshot(ds)
    r = run("split", ds / "train" / "part-00000.jsonl", "--key", "q", "--out", ds)
    assert r.exit_code == 1 and "inside --out" in r.output and "nothing was changed" in r.output
    assert snapshot(ds) == before


def test_split_into_another_dataset_is_refused_untouched(tmp_path) -> None:
    ds = make_split(tmp_path)
    m = orjson.loads((ds / "dataset.json").read_bytes())
    m["generator"] = "toy"  # a dataset some generator made
    (ds / "dataset.json").write_bytes(orjson.dumps(m))
    before = snapshot(ds)
    src = tmp_path / "x.jsonl"
    write_jsonl(src, [{"q": "a"}])
    r = run("split", src, "--key", "q", "--out", ds)
    assert r.exit_code == 1 and "generator 'toy'" in r.output and "nothing was changed" in r.output
    assert snapshot(ds) == before


def test_split_into_a_foreign_non_empty_dir_is_refused_untouched(tmp_path) -> None:
    d = tmp_path / "mine"
    (d / "train").mkdir(parents=True)
    (d / "train" / "part-00000.jsonl").write_text("my own file\n")
    (d / "notes.md").write_text("keep me")
    before = snapshot(d)
    src = tmp_path / "x.jsonl"
    write_jsonl(src, [{"q": "a"}])
    r = run("split", src, "--key", "q", "--out", d)
    assert r.exit_code == 1 and "nothing was changed" in r.output
    assert snapshot(d) == before


def test_split_own_run_resumes_or_refuses_other_arguments(tmp_path) -> None:
    ds = make_split(tmp_path)
    before = snapshot(ds)
    src = tmp_path / "ds.src.jsonl"
    r = run("split", src, "--key", "q", "--out", ds)
    assert r.exit_code == 0 and "already complete" in r.output
    assert snapshot(ds) == before
    r = run("split", src, "--key", "q", "--out", ds, "--split-ratios", "0.5,0.25,0.25")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert snapshot(ds) == before
    write_jsonl(src, [{"q": "changed"}])  # same name, other content: not the same run
    r = run("split", src, "--key", "q", "--out", ds)
    assert r.exit_code == 1
    assert snapshot(ds) == before


def test_split_resumes_its_own_unfinished_run(tmp_path, monkeypatch) -> None:
    """Killed after its shard, before the manifest: the same command finishes it (and nothing else)."""
    import datacore.cli as cli

    ref = make_split(tmp_path, "ref")
    src = tmp_path / "ref.src.jsonl"
    real = cli.DatasetBuilder.finalize

    def killed(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.DatasetBuilder, "finalize", killed)
    r = CliRunner().invoke(main, ["split", str(src), "--key", "q", "--out", str(tmp_path / "ds")])
    assert r.exit_code != 0  # click turns the interrupt into "Aborted!"
    ds = tmp_path / "ds"
    assert (ds / ".datacore" / "run.json").exists() and not (ds / "dataset.json").exists()
    monkeypatch.setattr(cli.DatasetBuilder, "finalize", real)
    r = run("split", src, "--key", "q", "--out", ds)
    assert r.exit_code == 0, r.output
    for s in ("train", "val", "test"):
        assert (ds / s / "part-00000.jsonl").read_bytes() == (ref / s / "part-00000.jsonl").read_bytes()
    assert run("verify", ds).exit_code == 0


def test_report_never_imports_the_module_a_dataset_names(tmp_path, monkeypatch) -> None:
    ds = make_split(tmp_path)
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evilmod"
    evil.mkdir()
    (evil / "planted_gen.py").write_text(
        textwrap.dedent(f"""
        open({str(marker)!r}, "w").write("ran")
        class Gen:
            @classmethod
            def from_config_dict(cls, d): return cls()
            def report_sections(self, tel): return []
    """)
    )
    monkeypatch.syspath_prepend(str(evil))
    m = orjson.loads((ds / "dataset.json").read_bytes())
    m["generator_ref"] = "planted_gen:Gen"
    (ds / "dataset.json").write_bytes(orjson.dumps(m))
    for cmd in (["report", ds], ["verify", ds], ["stats", ds], ["export", ds, "--to", "parquet"]):
        run(*cmd)
    assert not marker.exists(), "a command imported the module named by the dataset's manifest"
    assert (ds / "report.html").exists()


# -- export ------------------------------------------------------------------------------------


def test_export_refuses_mixed_types_naming_field_and_records(tmp_path) -> None:
    recs = [{"id": f"r{i}", "q": f"q{i}", "meta": {"score": i}} for i in range(50)]
    recs[37]["meta"]["score"] = "high"
    ds = make_split(tmp_path, recs=recs)
    r = run("export", ds, "--to", "parquet")
    assert r.exit_code == 1 and "Traceback" not in r.output and "ArrowTypeError" not in r.output
    assert "field meta.score: int in " in r.output and "str in " in r.output and "'r37'" in r.output
    assert not list((ds / "parquet").glob("*.parquet"))


def test_export_unifies_null_int_float_and_missing_keys(tmp_path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    recs = [
        {
            "id": f"r{i}",
            "q": f"q{i}",
            "x": (i if i % 3 else i + 0.5),
            "n": (None if i % 2 else "s"),
            "meta": ({"a": 1} if i % 4 else {"b": [1, 2]}),
            "l": [] if i % 5 else [1.5, None],
        }
        for i in range(200)
    ]
    ds = make_split(tmp_path, recs=recs)
    r = run("export", ds, "--to", "parquet")
    assert r.exit_code == 0, r.output
    rows = []
    for s in ("train", "val", "test"):
        t = pq.read_table(ds / "parquet" / f"{s}.parquet")
        assert str(t.schema.field("x").type) == "double" and str(t.schema.field("n").type) == "string"
        rows += t.to_pylist()
    got = {r["id"]: r for r in rows}
    assert len(got) == 200
    for rec in recs:
        g = got[rec["id"]]
        assert g["x"] == float(rec["x"]) and g["n"] == rec["n"] and g["l"] == rec["l"]
        assert {k: v for k, v in g["meta"].items() if v is not None} == rec["meta"]


def test_export_streams_row_groups_with_provenance(tmp_path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    n = 20000
    ds = make_split(tmp_path, n=n)
    m = orjson.loads((ds / "dataset.json").read_bytes())
    from datacore.parquet import export_parquet

    export_parquet(ds, tmp_path / "warm", row_group_size=250)  # one-time caches out of the figure
    tracemalloc.start()
    rows = export_parquet(ds, tmp_path / "pq", row_group_size=250)
    _, peak_stream = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert sum(rows.values()) == n
    tracemalloc.start()
    everything = [r for s in ("train", "val", "test") for r in read_jsonl(ds / s / "part-00000.jsonl")]
    _, peak_all = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(everything) == n
    assert peak_stream < peak_all / 4, (peak_stream, peak_all)  # the old export held every record
    groups = 0
    for s in ("train", "val", "test"):
        f = pq.ParquetFile(tmp_path / "pq" / f"{s}.parquet")
        groups += f.metadata.num_row_groups
        assert all(f.metadata.row_group(i).num_rows <= 250 for i in range(f.metadata.num_row_groups))
        meta = {k.decode(): v.decode() for k, v in f.schema_arrow.metadata.items()}
        assert meta["datacore.manifest_sha256"] == manifest_digest(m)
        assert meta["datacore.generator"] == "datacore.split" and meta["datacore.seed"] == "0"
        assert meta["datacore.version"] == m["version"] and meta["datacore.split"] == s
    assert groups >= n // 250
