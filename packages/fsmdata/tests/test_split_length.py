"""``--split length``: out-of-distribution lengths in val/test, per-split class x length quotas,
the rule in the manifest, and the same bytes whichever write path or worker count."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from datacore import ShardTask, Splitter, Telemetry, content_id
from fsmdata import FsmGenerator, GenConfig, compile_regex
from fsmdata.cli import main
from fsmdata.config import ConfigError


def _records(out: Path) -> dict[str, list[dict]]:
    return {
        s: [json.loads(line) for f in sorted((out / s).glob("part-*")) for line in f.read_text().splitlines()]
        for s in ("train", "val", "test")
    }


def test_cli_length_split_bands_quotas_and_manifest(tmp_path) -> None:
    out = tmp_path / "ds"
    n = 2000
    r = CliRunner().invoke(
        main,
        ["generate", "--regex", "x(a|b)*y(c|d)z", "--out", str(out), "-n", str(n), "--l-max", "20", "--split", "length"]
        + ["--split-lengths", "12,16", "--quiet"],
    )
    assert r.exit_code == 0, r.output
    recs = _records(out)
    bands = {"train": (1, 12), "val": (13, 16), "test": (17, 20)}
    for s, (lo, hi) in bands.items():
        assert recs[s] and all(lo <= x["length"] <= hi for x in recs[s]), s
        # every class the FSM can produce at these lengths is in the split
        assert {x["class"] for x in recs[s]} == {"A", "I", "R"}
    spec = json.loads((out / "dataset.json").read_text())["spec"]["config"]
    rule = spec["split"]
    assert rule["rule"] == "length" and rule["bands"] == {k: list(v) for k, v in bands.items()}
    assert spec["gen"]["split"] == "length" and spec["gen"]["split_lengths"] == [12, 16]
    # per-split class x length quotas: delivered counts match the planned cells of that split
    for s, cells in rule["planned_cells"].items():
        got = Counter(f"class={x['class']},length={x['length']}" for x in recs[s])
        assert set(got) <= set(cells)
        for cell, share in cells.items():
            assert abs(got[cell] / n - share) <= 0.005, (s, cell, got[cell], share * n)
    # a token sequence (the split key) is in one split only: its length decides
    where: dict[tuple, str] = {}
    for s, rs in recs.items():
        for x in rs:
            assert where.setdefault(tuple(x["tokens"]), s) == s


def test_fast_path_and_record_path_split_alike(tmp_path) -> None:
    """The fast shard writer applies the same length bands as ``split_of`` (datacore's record
    path), line for line."""
    fsm = compile_regex("(ab|c)+d?", "abcd")
    cfg = GenConfig(L_min=1, L_max=12, split="length")
    task = ShardTask(0, 5, 600, 0)
    paths = {s: tmp_path / f"{s}.jsonl" for s in ("train", "val", "test")}
    counts = FsmGenerator(fsm, cfg).write_shard_files(task, paths, Splitter(), None, Telemetry())
    g = FsmGenerator(fsm, cfg)
    want: dict[str, list[dict]] = {s: [] for s in paths}
    for rec in g.generate_shard(task, Telemetry()):
        want[g.split_of(rec)].append({"id": content_id(rec), **rec})
    for s, path in paths.items():
        got = [json.loads(line) for line in path.read_text().splitlines()]
        assert got == want[s] and counts[s] == len(got) and got, s
    assert cfg.split_bounds() == {"train": (1, 10), "val": (11, 11), "test": (12, 12)}


def test_bad_split_lengths_refused(tmp_path) -> None:
    with pytest.raises(ConfigError, match="split_lengths"):
        GenConfig(L_min=1, L_max=10, split="length", split_lengths=(8, 12))
    with pytest.raises(ConfigError, match="split_lengths"):
        GenConfig(L_min=1, L_max=2, split="length")
    with pytest.raises(ConfigError, match="only with split='length'"):
        GenConfig(split_lengths=(3, 4))
    r = CliRunner().invoke(
        main, ["generate", "--regex", "ab*", "--out", str(tmp_path / "o"), "--split", "length", "--split-lengths", "3"]
    )
    assert r.exit_code != 0 and "--split-lengths" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o" / "dataset.json").exists()
    # the default config keeps its identity (no split fields in to_dict)
    assert "split" not in GenConfig().to_dict()
    assert GenConfig.from_dict(GenConfig(split="length", L_max=20).to_dict()).split == "length"
