"""`lambdagen score`: predictions scored against a dataset, checked with the pure-Python reference."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from datacore import read_jsonl
from lambdagen import LambdaConfig, LambdaValueError, generate, score_predictions
from lambdagen import reference as ref
from lambdagen.cli import main


def _redexes(t, out):
    """Every redex subtree of a reference tree, in pre-order (outermost-leftmost first)."""
    if t[0] == "app":
        if t[1][0] == "lam":
            out.append(t)
        _redexes(t[1], out)
        _redexes(t[2], out)
    elif t[0] == "lam":
        _redexes(t[1], out)
    return out


def _contract(t, target):
    """Contract the redex ``target`` (by identity) inside ``t``."""
    if t is target:
        return ref.beta(t[1][1], t[2])
    if t[0] == "lam":
        return ("lam", _contract(t[1], target))
    if t[0] == "app":
        return ("app", _contract(t[1], target), _contract(t[2], target))
    return t


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "d"
    cfg = LambdaConfig(schedule="16x6,24x8", max_steps=20, max_size=100)
    generate(out, 600, seed=5, config=cfg, workers=1, shard_size=600, executor="inline", compress=None)
    return out, [r for p in sorted(out.glob("*/part-*")) for r in read_jsonl(p)]


def _write(path: Path, rows) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def test_step_scores_exact_valid_and_garbage(tmp_path, dataset):
    out, recs = dataset
    rows, want_exact, want_valid, wrong = [], 0, 0, 0
    for i, r in enumerate(recs):
        tree = ref.parse(r["input"])
        reds = _redexes(tree, [])
        if i % 3 == 0:
            pred = r["target"]
            want_exact += 1
            want_valid += 1
        elif i % 3 == 1 and len(reds) > 1:
            pred = ref.show(_contract(tree, reds[-1]))  # a beta step, not the normal-order one
            if pred == r["target"]:
                want_exact += 1
            else:
                wrong += 1
            want_valid += 1
        else:
            pred = "(\\0" if i % 2 else r["input"]  # unparsable, or no step taken
        rows.append({"id": r["id"], "prediction": pred})
    s = score_predictions(_write(tmp_path / "p.jsonl", rows), out)
    assert wrong > 10
    assert s["scored"] == len(recs)
    assert (s["overall"]["exact"], s["overall"]["valid"]) == (want_exact, want_valid)
    for dim, buckets in s["by"].items():
        assert sum(t["n"] for t in buckets.values()) == len(recs), dim
    # Growth, from the terms themselves.
    grows = sum(ref.size(ref.parse(r["target"])) > ref.size(ref.parse(r["input"])) for r in recs)
    assert s["by"]["growth"].get("grows", {"n": 0})["n"] == grows


def test_normal_form_task_is_alpha_equality(tmp_path, dataset):
    out, recs = dataset
    rows, want = [], 0
    nf_recs = [r for r in recs if r["meta"]["status"] == "normal_form"]
    for i, r in enumerate(nf_recs):
        terms, status = ref.trace(r["input"], 100, 10_000)
        assert status == "normal_form"
        pred = terms[-1] if i % 2 == 0 else r["target"]
        want += pred == terms[-1]
        rows.append({"id": r["id"], "prediction": pred})
    s = score_predictions(_write(tmp_path / "p.jsonl", rows), out, task="nf")
    assert s["overall"]["exact"] == want and s["scored"] == len(nf_recs)


def test_cli_table_json_and_report(tmp_path, dataset):
    out, recs = dataset
    p = _write(tmp_path / "p.jsonl", [{"id": r["id"], "prediction": r["target"]} for r in recs[:50]])
    r = CliRunner().invoke(main, ["score", str(p), "--against", str(out), "--out", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.output
    assert "exact 100.00%" in r.output and "redex_lambdas" in r.output
    assert (tmp_path / "rep" / "report.html").read_text().count("<svg") >= 5
    assert json.loads((tmp_path / "rep" / "score.json").read_text())["overall"]["exact"] == 50
    r = CliRunner().invoke(main, ["score", str(p), "--against", str(out), "--json"])
    assert json.loads(r.output)["overall"]["exact_rate"] == 1.0


@pytest.mark.parametrize(
    ("rows", "msg"),
    [
        ([b"not json"], "line 1: not JSON"),
        ([b'{"id": "x"}'], 'line 1: expected {"id"'),
        ([b'{"id": "nope", "prediction": "\\\\0"}'], "not in"),
    ],
)
def test_bad_prediction_files_are_one_line_errors(tmp_path, dataset, rows, msg):
    out, _ = dataset
    p = tmp_path / "p.jsonl"
    p.write_bytes(b"\n".join(rows) + b"\n")
    with pytest.raises(LambdaValueError, match=msg):
        score_predictions(p, out)
    r = CliRunner().invoke(main, ["score", str(p), "--against", str(out)])
    assert r.exit_code == 1 and r.output.startswith("Error:") and r.output.strip().count("\n") == 0, r.output
