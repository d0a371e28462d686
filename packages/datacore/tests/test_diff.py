"""datacore diff A B: config, histogram/stratum and field differences, records by id, splits; exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from datacore import build_dataset
from datacore.cli import main
from datacore.diff import diff_datasets
from toygen import ToyConfig, ToyGenerator


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _build(out: Path, n: int = 120, seed: int = 0, gen: ToyGenerator | None = None, **kw) -> Path:
    kw.setdefault("shard_size", 40)
    build_dataset(gen or ToyGenerator(), out, n, seed, workers=1, executor="inline", progress=False, **kw)
    return out


def _split_of_ids(out: Path) -> dict[str, str]:
    """id -> split, read with the stdlib (oracle)."""
    got = {}
    for split in ("train", "val", "test"):
        for p in (out / split).glob("part-*.jsonl"):
            for line in p.read_text().splitlines():
                got[json.loads(line)["id"]] = split
    return got


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return _build(tmp_path_factory.mktemp("diff") / "a")


def test_identical_reruns_exit_0(base, tmp_path) -> None:
    b = _build(tmp_path / "b")
    d = diff_datasets(base, b)
    assert d.identical and d.same_files and d.splits_agree
    r = run("diff", str(base), str(b))
    assert r.exit_code == 0, r.output
    assert "identical" in r.output


def test_other_seed(base, tmp_path) -> None:
    b = _build(tmp_path / "b", seed=1)
    ia, ib = _split_of_ids(base), _split_of_ids(b)
    d = diff_datasets(base, b)
    assert not d.identical
    assert "seed: A 0, B 1" in d.config
    assert d.only_a == len(set(ia) - set(ib)) and d.only_b == len(set(ib) - set(ia))
    assert "length" in d.histograms  # per-bucket differences of the telemetry histograms
    r = run("diff", str(base), str(b))
    assert r.exit_code == 1
    assert "config: 1 difference(s)" in r.output and "seed: A 0, B 1" in r.output
    js = json.loads(run("diff", "--json", str(base), str(b)).output)
    assert js["identical"] is False and js["only_a"] == d.only_a


def test_other_split_ratios_disagree(base, tmp_path) -> None:
    b = _build(tmp_path / "b", split_ratios=(0.5, 0.25, 0.25))
    ia, ib = _split_of_ids(base), _split_of_ids(b)
    moved = sum(1 for k in ia if k in ib and ia[k] != ib[k])
    assert moved > 0
    d = diff_datasets(base, b)
    assert d.only_a == d.only_b == 0 and d.content_differs == 0
    assert not d.splits_agree and sum(d.split_moves.values()) == moved
    assert any(c.startswith("split_ratios") for c in d.config)
    out = run("diff", str(base), str(b)).output
    assert f"splits: DISAGREE for {moved:,} common record(s)" in out


def test_other_config_and_field_distributions(base, tmp_path) -> None:
    b = _build(tmp_path / "b", gen=ToyGenerator(ToyConfig(max_len=30)))
    d = diff_datasets(base, b)
    assert "config.max_len: A 12, B 30" in d.config
    assert any(line.startswith("tokens: length mean") for line in d.fields["train"])


def test_records_removed_or_changed(base, tmp_path) -> None:
    import shutil

    b = tmp_path / "b"
    shutil.copytree(base, b)
    p = b / "train" / "part-00000.jsonl"
    lines = p.read_text().splitlines()
    removed = json.loads(lines[0])["id"]
    changed = json.loads(lines[1])
    changed["text"] += " extra"
    p.write_text("\n".join([json.dumps(changed, separators=(",", ":"))] + lines[2:]) + "\n")
    # the manifest names the file's old hash: the fast path must not be taken
    d = diff_datasets(base, b)
    assert d.only_a == 1 and d.only_a_examples == [removed] and d.only_b == 0
    assert d.content_differs == 1 and d.content_examples == [changed["id"]]
    assert d.splits_agree
    assert d.integrity and d.integrity[0].startswith("B: train/part-00000.jsonl")
    assert not d.identical


def test_stratum_differences(base, tmp_path) -> None:
    import shutil

    b = tmp_path / "b"
    shutil.copytree(base, b)
    for root, counts in ((base, {"class=R": 60, "class=S": 60}), (b, {"class=R": 50, "class=S": 70})):
        t = json.loads((root / "telemetry.json").read_text())
        t["histograms"]["strata"] = counts
        (root / "telemetry.json").write_text(json.dumps(t))
    try:
        d = diff_datasets(base, b)
        rows = {r["bucket"]: r for r in d.histograms["strata"]}
        assert rows["class=R"]["a"] == 60 and rows["class=R"]["b"] == 50
        assert "strata" in d.to_text() and "class=R: A 60 (50.00%)  B 50 (41.67%)  -8.33 pp" in d.to_text()
    finally:
        t = json.loads((base / "telemetry.json").read_text())
        del t["histograms"]["strata"]
        (base / "telemetry.json").write_text(json.dumps(t))


def test_not_a_dataset_is_one_line(base, tmp_path) -> None:
    r = CliRunner().invoke(main, ["diff", str(base), str(tmp_path)])
    assert r.exit_code == 1
    assert r.output.startswith("Error: ") and "Traceback" not in r.output and r.output.count("\n") == 1
