import subprocess
import sys

import orjson
import pytest
from click.testing import CliRunner
from datacore import build_dataset, read_jsonl, split_of, write_jsonl
from datacore.cli import main
from toygen import ToyGenerator


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture()
def dataset(tmp_path):
    out = tmp_path / "ds"
    build_dataset(ToyGenerator(), out, 2000, 3, shard_size=500, progress=False, compress="zst")
    return out


def test_version() -> None:
    r = run("--version")
    assert r.exit_code == 0 and "datacore" in r.output


def test_split_any_jsonl(tmp_path) -> None:
    src = tmp_path / "in.jsonl"
    write_jsonl(src, [{"q": f"question {i % 700}", "a": i} for i in range(3000)])
    r = run("split", str(src), "--key", "q", "--out", str(tmp_path / "o"))
    assert r.exit_code == 0, r.output
    where: dict[str, str] = {}
    total = 0
    for s in ("train", "val", "test"):
        for rec in read_jsonl(tmp_path / "o" / s / "part-00000.jsonl"):
            total += 1
            assert split_of(rec["q"]) == s
            assert where.setdefault(rec["q"], s) == s
    assert total == 3000
    assert (tmp_path / "o" / "report.html").exists()
    assert run("verify", str(tmp_path / "o")).exit_code == 0


def test_split_errors_name_file_and_line(tmp_path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"q": "a"}\n{"q": "b"}\n{"x": 1}\n')
    r = run("split", str(src), "--key", "q", "--out", str(tmp_path / "o"))
    assert r.exit_code == 1 and "in.jsonl:3: record has no field 'q'" in r.output
    assert not (tmp_path / "o" / "dataset.json").exists()
    src.write_bytes(b'{"q": "a"}\n{"q": \n')
    r = run("split", str(src), "--key", "q", "--out", str(tmp_path / "o"))
    assert r.exit_code == 1 and "in.jsonl:2: malformed JSON" in r.output
    r = run("split", str(src), "--key", "q", "--out", str(tmp_path / "o"), "--on-error", "skip")
    assert r.exit_code == 0 and "1 malformed lines skipped" in r.output
    r = run("split", str(tmp_path / "missing.jsonl"), "--key", "q", "--out", str(tmp_path / "o"))
    assert r.exit_code == 1 and "missing.jsonl: no such file" in r.output


def test_stats(dataset) -> None:
    r = run("stats", str(dataset))
    assert r.exit_code == 0
    assert "2,000 records" in r.output and "tokens" in r.output and "train" in r.output


def test_verify_detects_and_names(dataset) -> None:
    assert run("verify", str(dataset)).exit_code == 0
    victim = dataset / "test" / "part-00002.jsonl.zst"
    victim.write_bytes(victim.read_bytes()[:-3])
    r = run("verify", str(dataset))
    assert r.exit_code == 1 and "test/part-00002.jsonl.zst" in r.output
    r = run("verify", str(dataset.parent))
    assert r.exit_code == 1 and "no manifest" in r.output


def test_report_rerenders(dataset, monkeypatch) -> None:
    (dataset / "report.html").unlink()
    r = run("report", str(dataset))
    assert r.exit_code == 0
    html = (dataset / "report.html").read_text()
    assert "<svg" in html and "Toy lengths" not in html  # from the files alone: no code the dataset names
    # An installed generator offers its class under the entry point group datacore.generators.
    import importlib.metadata as md

    ep = md.EntryPoint(name="toy", value="toygen:ToyGenerator", group="datacore.generators")
    real = md.entry_points
    monkeypatch.setattr(md, "entry_points", lambda **kw: [ep] if kw.get("group") == "datacore.generators" else real(**kw))
    assert run("report", str(dataset)).exit_code == 0
    assert "Toy lengths" in (dataset / "report.html").read_text()  # generator sections, by name


def test_corrupt_manifest_is_one_line(dataset) -> None:
    (dataset / "dataset.json").write_text("{not json")
    r = run("verify", str(dataset))
    assert r.exit_code == 1 and "corrupt manifest" in r.output and "Traceback" not in r.output


def test_export_parquet(dataset) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    r = run("export", str(dataset), "--to", "parquet")
    assert r.exit_code == 0, r.output
    m = orjson.loads((dataset / "dataset.json").read_bytes())
    for s in ("train", "val", "test"):
        assert pq.read_table(dataset / "parquet" / f"{s}.parquet").num_rows == m["splits"][s]


def test_console_script_no_traceback(tmp_path) -> None:
    r = subprocess.run([sys.executable, "-m", "datacore.cli", "verify", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr and "Error:" in r.stderr
