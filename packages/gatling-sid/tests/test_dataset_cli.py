import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from datacore import build_dataset, read_jsonl, split_of
from gatling_sid import GatlingConfig, GatlingGenerator
from gatling_sid.cli import main
from gatling_sid.registry import DEFAULT_DOMAINS_DIR


def _files(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.rglob("*.jsonl*"))}


def _records(out: Path) -> list[dict]:
    return [r for p in sorted(out.rglob("*.jsonl")) for r in read_jsonl(p)]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "a"
    gen = GatlingGenerator(GatlingConfig(negatives=0.3))
    res = build_dataset(gen, out, 900, seed=3, workers=2, shard_size=300, progress=False)
    return out, res


def test_deterministic_across_workers(dataset, tmp_path):
    out, res = dataset
    assert res.records == 900
    res2 = build_dataset(
        GatlingGenerator(GatlingConfig(negatives=0.3)),
        tmp_path / "b",
        900,
        seed=3,
        workers=1,
        executor="inline",
        shard_size=300,
        progress=False,
    )
    assert _files(out) == _files(tmp_path / "b")
    assert res2.telemetry.counters == res.telemetry.counters


def test_records_pairs_and_splits(dataset):
    out, res = dataset
    recs = _records(out)
    gold = {r["trace_id"]: r for r in recs if r["label"] == "gold"}
    negs = [r for r in recs if r["label"] == "negative"]
    assert 0.15 < len(negs) / len(recs) < 0.3
    split_of_file = {}
    for p in out.rglob("*.jsonl"):
        for r in read_jsonl(p):
            split_of_file[r["trace_id"]] = p.parent.name
    for n in negs:
        twin = gold[n["negative"]["twin_id"]]
        assert split_of_file[twin["trace_id"]] == split_of_file[n["trace_id"]]  # a pair never straddles splits
        assert n["negative"]["twin_request"] == twin["request"]["text"]
        assert split_of(twin["request"]["text"]) == split_of_file[n["trace_id"]]
    tel = res.telemetry
    assert tel.counters["gold_passed"] == tel.counters["validated"] == tel.counters["gold"]
    assert set(tel.histograms["intent"]) >= {"account_inquiry", "transaction", "cancellation"}
    html = (out / "report.html").read_text()
    for title in ("Validation summary", "Traces per intent category", "Hard negatives per violated rule", "Tool calls per trace"):
        assert title in html


def test_cli_generate_validate_domains(tmp_path):
    r = CliRunner()
    out = tmp_path / "d"
    res = r.invoke(
        main,
        [
            "generate",
            "--out",
            str(out),
            "-n",
            "300",
            "--negatives",
            "0.2",
            "--workers",
            "1",
            "--shard-size",
            "150",
            "-q",
            "--with-messages",
            "--domains",
            "banking,hotel",
        ],
    )
    assert res.exit_code == 0, res.output
    recs = _records(out)
    assert {x["domain"] for x in recs} == {"banking", "hotel"}
    assert all("training" in x for x in recs if x["label"] == "gold")
    res = r.invoke(main, ["validate", str(out)])
    assert res.exit_code == 0, res.output
    assert "OK" in res.output and "pass" in res.output
    res = r.invoke(main, ["domains", "--json"])
    doc = json.loads(res.output)
    assert res.exit_code == 0 and len(doc["domains"]) >= 50 and doc["tools"] >= 245
    res = r.invoke(main, ["generate", "--out", str(tmp_path / "e"), "-n", "5", "--domains", "atlantis"])
    assert res.exit_code == 1 and "unknown domain 'atlantis'" in res.output


def _tamper_first_gold(out: Path, fn) -> Path:
    f = next(p for p in sorted(out.rglob("*.jsonl")) if p.stat().st_size)
    lines = f.read_text().splitlines()
    for i, line in enumerate(lines):
        rec = json.loads(line)
        if rec["label"] == "gold":
            lines[i] = fn(rec, line)
            break
    f.write_text("\n".join(lines) + "\n")
    return f


def test_validate_flags_violations_and_corruption(dataset, tmp_path):
    src, _ = dataset
    out = tmp_path / "copy"
    shutil.copytree(src, out)

    def exfil(rec, line):
        for c in rec["graph"]["calls"]:
            if "recipient" in c["arguments"]:
                c["arguments"]["recipient"] = "leak@evil.example.com"
                break
        else:
            rec["graph"]["calls"][0]["tool"] = "nowhere__tool"
        return json.dumps(rec)

    f = _tamper_first_gold(out, exfil)
    before = f.read_bytes()
    res = CliRunner().invoke(main, ["validate", str(out)])
    assert res.exit_code == 1 and "FAILED" in res.output
    assert "violation data_stays_in_domain: 1" in res.output or "violation scope: 1" in res.output
    assert f.read_bytes() == before  # validate never writes

    out2 = tmp_path / "corrupt"
    shutil.copytree(src, out2)
    f2 = _tamper_first_gold(out2, lambda rec, line: line[: len(line) // 2])
    res = CliRunner().invoke(main, ["validate", str(out2)])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert str(f2) in res.output and ":1" in res.output and len(res.output.strip().splitlines()) == 1

    out3 = tmp_path / "shape"
    shutil.copytree(src, out3)
    _tamper_first_gold(out3, lambda rec, line: json.dumps({**rec, "graph": {"calls": "nope"}}))
    res = CliRunner().invoke(main, ["validate", str(out3)])
    assert res.exit_code == 1 and "graph.calls: expected list" in res.output and len(res.output.strip().splitlines()) == 1

    res = CliRunner().invoke(main, ["validate", str(tmp_path / "nothing-here")])
    assert res.exit_code != 0


def test_validate_checks_shards_against_the_manifest(dataset, tmp_path):
    src, _ = dataset
    # A shard cut at a line boundary still parses: only the manifest's counts and hashes show it.
    out = tmp_path / "cut"
    shutil.copytree(src, out)
    f = next(p for p in sorted(out.rglob("*.jsonl")) if p.stat().st_size)
    lines = f.read_text().splitlines()
    f.write_text("\n".join(lines[:-2]) + "\n")
    res = CliRunner().invoke(main, ["validate", str(out)])
    assert res.exit_code == 1 and "FAILED" in res.output and "Traceback" not in res.output
    assert f"{f}: {len(lines) - 2:,} records, the manifest says {len(lines):,}" in res.output
    # A listed shard that is gone, and an unlisted one dropped in.
    out = tmp_path / "gone"
    shutil.copytree(src, out)
    gone = sorted(out.rglob("*.jsonl"))[0]
    extra = gone.with_name("part-09999.jsonl")
    gone.rename(extra)
    res = CliRunner().invoke(main, ["validate", str(out), "--json"])
    doc = json.loads(res.output)
    assert res.exit_code == 1 and not doc["ok"]
    assert f"{out}/{gone.relative_to(out)}: missing" in doc["dataset_problems"]
    assert any(str(extra) in q and "not listed" in q for q in doc["dataset_problems"])
    # Nothing to validate is not a pass.
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    res = CliRunner().invoke(main, ["validate", str(empty)])
    assert res.exit_code == 1 and "no records to validate" in res.output


def test_broken_registry_is_one_line_and_writes_nothing(tmp_path):
    reg = tmp_path / "reg"
    shutil.copytree(DEFAULT_DOMAINS_DIR, reg)
    doc = yaml.safe_load((reg / "pharmacy.yaml").read_text())
    doc["policy"]["rules"][3]["tools"] = ["pharmacy__print_money"]
    (reg / "pharmacy.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    out = tmp_path / "o"
    for args in (["generate", "--out", str(out), "-n", "10", "--registry", str(reg)], ["domains", "--registry", str(reg)]):
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 1, res.output
        assert "pharmacy.yaml" in res.output and "forbidden_tools" in res.output and "pharmacy__print_money" in res.output
        assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert not out.exists()


def test_anthropic_without_key_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    res = CliRunner().invoke(main, ["generate", "--out", str(tmp_path / "x"), "-n", "5", "--oracle", "anthropic"])
    assert res.exit_code == 1 and "ANTHROPIC_API_KEY" in res.output


def test_config_validation():
    with pytest.raises(ValueError, match=r"GatlingConfig.negatives: got 1.5; allowed: a number in \[0, 1\]"):
        GatlingConfig(negatives=1.5)
    with pytest.raises(ValueError, match="GatlingConfig.oracle: got 'gpt'"):
        GatlingConfig(oracle="gpt")


def test_resume_refuses_a_different_config_and_validate_json(dataset, tmp_path):
    src, _ = dataset
    out = tmp_path / "r"
    shutil.copytree(src, out)
    before = _files(out)
    res = CliRunner().invoke(
        main, ["generate", "--out", str(out), "-n", "900", "--seed", "3", "--shard-size", "300", "--negatives", "0.5", "-q"]
    )
    assert res.exit_code == 1 and "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
    assert _files(out) == before  # nothing overwritten
    res = CliRunner().invoke(main, ["validate", str(out), "--json"])
    doc = json.loads(res.output)
    assert (
        res.exit_code == 0
        and doc["ok"]
        and doc["gold"] == doc["gold_passed"]
        and doc["negatives"] == doc["negatives_exact"] + doc["negatives_with_others"]
    )
    assert doc["diversity"]["near_duplicate_rate"] < 0.01


def test_negative_also_flagged_by_another_rule_passes_but_a_missed_one_fails(tmp_path) -> None:
    # A tampered argument is often ungrounded too: flagged with its rule and another, it is still caught.
    from gatling_sid.dataset_check import DatasetValidation

    fields = dict(gold=1, gold_passed=1, negatives=3, violations={}, examples=(), diversity=None, dataset_problems=())
    assert DatasetValidation(negatives_exact=2, negatives_with_others=1, **fields).ok
    assert not DatasetValidation(negatives_exact=2, negatives_with_others=0, **fields).ok
