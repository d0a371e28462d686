"""datacore integration (build_dataset, splits, determinism), FsmDataset and the CLI."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from datacore import build_dataset, read_jsonl, split_of
from fsmdata import FSM, FsmDataset, FsmGenerator, GenConfig, collate, compile_regex, reject_subtype_holds
from fsmdata.cli import main


def _records(out: Path) -> dict[str, list[dict]]:
    return {s: [r for p in sorted((out / s).glob("part-*")) for r in read_jsonl(p)] for s in ("train", "val", "test")}


def test_build_dataset_labels_splits_and_report(tmp_path: Path) -> None:
    fsm = compile_regex("x(a|b)*y(c|d)z", "abcdxyz")
    gen = FsmGenerator(fsm, GenConfig(L_min=3, L_max=12))
    res = build_dataset(gen, tmp_path / "ds", 3000, seed=5, executor="inline", shard_size=1000, progress=False)
    assert res.records == 3000
    recs = _records(tmp_path / "ds")
    seen: dict[tuple, str] = {}
    for split, rs in recs.items():
        for r in rs:
            assert fsm.classify(r["tokens"]) == r["class"]
            if r["class"] == "R":
                assert reject_subtype_holds(fsm, r["tokens"], r["reject_subtype"], "ternary", r["meta"].get("branch_pos"))
            assert split_of(r["tokens"]) == split
            key = tuple(r["tokens"])
            assert seen.setdefault(key, split) == split  # a string never lands in two splits
    tel = json.loads((tmp_path / "ds" / "telemetry.json").read_text())
    hist = tel["histograms"]
    assert sum(hist["class"].values()) == 3000 and sum(hist["reject_subtype"].values()) == hist["class"]["R"]
    assert "edge_coverage" in hist and "state_coverage" in hist and tel["counters"]["samples"] == 3000
    html = (tmp_path / "ds" / "report.html").read_text()
    assert "Edge coverage (state x symbol)" in html and "Samples by class and length" in html and "<svg" in html


def test_dataset_identical_for_any_worker_count(tmp_path: Path) -> None:
    fsm = compile_regex("(ab|cd)+e?", "abcde")
    gen = FsmGenerator(fsm, GenConfig(L_min=1, L_max=10))
    build_dataset(gen, tmp_path / "a", 1200, seed=9, executor="inline", shard_size=400, progress=False)
    build_dataset(gen, tmp_path / "b", 1200, seed=9, executor="process", workers=2, shard_size=400, progress=False)
    for split in ("train", "val", "test"):
        for p in sorted((tmp_path / "a" / split).glob("part-*")):
            assert p.read_bytes() == (tmp_path / "b" / split / p.name).read_bytes()


@pytest.mark.parametrize(
    ("compress", "pattern", "alphabet"),
    [
        (None, "x(a|b)*y(c|d)z", "abcdxyz"),  # directly formatted JSON
        ("gz", "x(a|b)*y(c|d)z", "abcdxyz"),
        ("zst", "x(a|b)*y(c|d)z", "abcdxyz"),
        (None, '"(a|\\\\)+"', 'a"\\x'),  # quote and backslash in the alphabet: orjson path
        (None, "k(a|b|c|d|e)*[f-l]+", "abcdefghijkl"),  # 12 symbols: two-digit token ids
    ],
)
def test_shard_file_writer_matches_datacore_record_path(
    tmp_path: Path, compress: str | None, pattern: str, alphabet: str
) -> None:
    """write_shard_files (one serialization per record) == datacore writing generate_shard's records."""
    from datacore import ShardTask, Splitter, Telemetry
    from datacore.runner import content_id, write_records

    fsm = compile_regex(pattern, alphabet)
    assert (FsmGenerator(fsm, GenConfig())._tok_table is None) == ('"' in alphabet)
    gen = FsmGenerator(fsm, GenConfig(L_min=0, L_max=20))
    task = ShardTask(index=3, seed=77, count=3000, start=9000)
    ext = ".jsonl" + (f".{compress}" if compress else "")
    fast = {s: tmp_path / "fast" / f"{s}{ext}.tmp" for s in ("train", "val", "test")}
    slow = {s: tmp_path / "slow" / f"{s}{ext}" for s in ("train", "val", "test")}
    (tmp_path / "fast").mkdir()
    t1, t2 = Telemetry(), Telemetry()
    counts = gen.write_shard_files(task, fast, Splitter(), compress, t1)
    info = write_records(slow, gen.generate_shard(task, t2), gen.split_key, Splitter())
    assert t1.to_dict() == t2.to_dict()
    for s in fast:
        assert counts[s] == info[s]["records"]
        assert fast[s].read_bytes() == slow[s].read_bytes(), s
    assert sum(counts.values()) == 3000 and min(counts.values()) > 0
    rec = next(iter(read_jsonl(slow["train"])))
    assert rec["id"] == content_id({k: v for k, v in rec.items() if k != "id"})


def test_generator_pickles_as_json() -> None:
    fsm = compile_regex("a(b|c)*", "abc")
    gen = FsmGenerator(fsm, GenConfig(L_max=6))
    back = pickle.loads(pickle.dumps(gen))
    assert back.fsm == fsm and back.cfg == gen.cfg and back.config_dict() == gen.config_dict()


def test_fsm_dataset_alignment_and_collate() -> None:
    pytest.importorskip("torch")
    fsm = compile_regex("ab+c", "abc")
    samples = [[0, 1, 1, 2], [0, 1], [2, 0, 1]]
    ds = FsmDataset(fsm, samples, eos_id=9)
    item = ds[0]
    assert item["tokens"].tolist() == [0, 1, 1, 2] and item["next_tokens"].tolist() == [1, 1, 2, 9]
    assert len(item["next_tokens"]) == len(item["tokens"]) == len(item["states"]) == len(item["classes"])
    # class j is the class of the prefix tokens[:j+1], i.e. of the state before next_tokens[j]
    for j in range(4):
        assert item["classes"][j].item() == "AIR".index(fsm.classify(samples[0][: j + 1]))
    assert item["valid_next"][0].tolist() == [False, True, False, False]  # after "a": only b
    assert item["valid_next"][3].tolist() == [False, False, False, True]  # after "abbc": EOS only
    assert item["label"].item() == 0 and ds[2]["label"].item() == 2
    again = FsmDataset(fsm, samples, eos_id=9)[0]
    assert all(np.array_equal(item[k].numpy(), again[k].numpy()) for k in item)
    batch = collate([ds[0], ds[1], ds[2]])
    assert batch["tokens"].shape == (3, 4) and batch["attention_mask"].sum().item() == 9
    assert batch["next_tokens"][1, 2].item() == -100 and batch["valid_next"].shape == (3, 4, 4)
    train = FsmDataset(fsm, [{"tokens": s} for s in samples], split="train")
    assert all(split_of(s) == "train" for s in train.samples)


def test_cli_compile_trace_generate(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["compile", "a(b|c)*d", "--json", str(tmp_path / "f.json"), "--dot", str(tmp_path / "f.dot")])
    assert r.exit_code == 0 and "states=4" in r.output and "*2" in r.output
    assert FSM.load(tmp_path / "f.json").accepts("abcd") and "digraph" in (tmp_path / "f.dot").read_text()
    r = CliRunner().invoke(main, ["compile", "--fsm", str(tmp_path / "f.json"), "--format", "json"])
    assert r.exit_code == 0 and json.loads(r.output)["alphabet"] == ["a", "b", "c", "d"]
    r = CliRunner().invoke(main, ["trace", "a(b|c)*d", "abd"])
    assert r.exit_code == 0 and "class: A" in r.output
    r = CliRunner().invoke(main, ["trace", "the (big|small)* dog", "the big", "--tokens"])
    assert r.exit_code == 0 and "class: I" in r.output
    out = tmp_path / "ds"
    r = CliRunner().invoke(
        main,
        [
            "generate",
            "--regex",
            "(ab|cd)+e?",
            "--alphabet",
            "abcde",
            "--out",
            str(out),
            "-n",
            "500",
            "--l-max",
            "8",
            "--p-class",
            "A=2,I=1,R=1",
            "--executor",
            "inline",
            "--quiet",
        ],
    )
    assert r.exit_code == 0, r.output
    recs = [x for rs in _records(out).values() for x in rs]
    assert len(recs) == 500 and abs(sum(x["class"] == "A" for x in recs) - 250) <= 2
    assert FSM.load(out / "fsm.json") == compile_regex("(ab|cd)+e?", "abcde")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["compile", "a(?<=b)+"], "quantified lookaround"),
        (["compile", "(ab"], "missing )"),
        (["generate", "--regex", "abc", "--l-max", "2"], "raise L_max to at least 3"),
        (["generate", "--regex", "a[b]", "--alphabet", "ac"], "accepts no string"),
        (["generate", "--regex", "a+", "--alphabet", "a", "--p-class", "A=1,R=1"], "R=0"),
        (["generate", "--regex", "a+", "--alphabet", "ab", "--p-class", "A=1,X=1"], "unknown key 'X'"),
        (["generate", "--regex", "a+", "--l-min", "5", "--l-max", "2"], "L_max"),
        (["generate", "--regex", "a+", "--alphabet", "ab", "--reject-mix", "premature=1"], "premature"),
        (["generate", "--fsm", "/nonexistent.json"], "nonexistent"),
    ],
)
def test_cli_bad_input_is_one_clear_error(tmp_path: Path, args: list[str], needle: str) -> None:
    if args[0] == "generate":
        args = [*args, "--out", str(tmp_path / "o"), "-n", "10", "--quiet"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code != 0 and needle in r.output and "Traceback" not in r.output
    assert r.output.startswith("Error: ")


def test_split_helpers() -> None:
    from fsmdata import generate_corpus, split_counts_by
    from fsmdata import split_of as fsm_split_of

    fsm = compile_regex("(ab|cd)+e?", "abcde")
    recs = list(generate_corpus(fsm, GenConfig(L_max=10), 2000, seed=3).records())
    for r in recs[:200]:
        assert fsm_split_of(r["tokens"]) == fsm_split_of(list(r["tokens"])) == split_of(r["tokens"])
    by = split_counts_by(recs)
    assert sum(sum(v.values()) for v in by.values()) == 2000
    assert all(by[s].get(c, 0) > 0 for s in ("train", "val", "test") for c in "AIR")
    where: dict[tuple, set] = {}
    for r in recs:
        where.setdefault(tuple(r["tokens"]), set()).add(fsm_split_of(r["tokens"]))
    assert all(len(v) == 1 for v in where.values())


def test_report_sections_do_not_import_matplotlib() -> None:
    """fsmdata's report sections (coverage heatmap, tables) load no matplotlib (its import cost
    ~1.5 CPU-s per run): the heatmap is datacore's plain-SVG one."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from datacore import Telemetry\n"
        "from fsmdata import FsmGenerator, GenConfig, compile_regex\n"
        "from fsmdata.generator import generate_corpus\n"
        "fsm = compile_regex('x(a|b)*y', 'abxy'); gen = FsmGenerator(fsm, GenConfig(L_max=8)); t = Telemetry()\n"
        "generate_corpus(fsm, gen.cfg, 200, _engine=gen.engine).report.to_telemetry(t)\n"
        "secs = gen.report_sections(t)\n"
        "assert secs[0].html.startswith('<svg'), secs[0].title\n"
        "print('matplotlib' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
