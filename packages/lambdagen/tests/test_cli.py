"""The lambdagen command: generate, stats, reduce, and one-line errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from lambdagen.cli import main


def test_generate_then_stats(tmp_path):
    out = tmp_path / "ds"
    r = CliRunner().invoke(
        main,
        [
            "generate",
            "--out",
            str(out),
            "-n",
            "1500",
            "--shard-size",
            "500",
            "-w",
            "1",
            "--schedule",
            "20x7,28x8",
            "--max-steps",
            "30",
            "--max-size",
            "100",
            "-q",
            "--compress",
            "zst",
        ],
    )
    assert r.exit_code == 0, r.output
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["records"] == 1500 and manifest["spec"]["config"]["max_steps"] == 30
    assert (out / "report.html").read_text().count("<svg") >= 3
    r = CliRunner().invoke(main, ["stats", str(out), "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.output)
    assert s["records"] == 1500 and s["duplicate_start_terms"] == 0 and s["traces_in_two_splits"] == 0
    assert sum(s["histograms"]["depth"].values()) == 1500
    assert s["traces_labelled"] == s["traces"] and s["traces_unlabelled"] == 0
    r = CliRunner().invoke(main, ["stats", str(out)])
    assert "total_steps:" in r.output
    assert "traces labelled 100.00%" in r.output


@pytest.mark.parametrize(
    ("option", "spec", "field"),
    [("--size-quotas", "2-15:0.5,16-:0.5", "size_quotas"), ("--depth-quotas", "1-6:0.5,7-:0.5", "depth_quotas")],
)
def test_generate_with_size_or_depth_quotas(tmp_path, option, spec, field):
    out = tmp_path / "q"
    args = [
        "generate",
        "--out",
        str(out),
        "-n",
        "600",
        "-w",
        "1",
        "--schedule",
        "20x7,28x8",
        "--max-steps",
        "30",
        "--max-size",
        "100",
        "-q",
        option,
        spec,
    ]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["spec"]["config"][field] == [
        [int(a), int(b) if b else 2**31 - 1, float(c)] for a, b, c in (q.replace("-", ":").split(":") for q in spec.split(","))
    ]
    tel = json.loads((out / "telemetry.json").read_text())
    assert sum(tel["histograms"][f"quota_examples_{field.split('_')[0]}"].values()) == 600


def test_reduce_prints_a_trace():
    r = CliRunner().invoke(main, ["reduce", "((\\\\1 \\0) (\\(0 0) \\(0 0)))", "--named"])
    assert r.exit_code == 0
    lines = r.output.splitlines()
    assert lines[0].split(None, 1)[1].split("  [")[0] == "((\\\\1 \\0) (\\(0 0) \\(0 0)))"
    assert "λa. λb. a" in r.output
    assert lines[-1] == "normal_form after 2 step(s)"


def test_errors_are_one_line_without_traceback(tmp_path):
    for args in (
        ["reduce", "(\\0 \\0"],
        ["generate", "--out", str(tmp_path / "x"), "-n", "10", "--schedule", "100x6"],
        ["generate", "--out", str(tmp_path / "x"), "-n", "10", "--quotas", "1-2:1.5"],
        ["generate", "--out", str(tmp_path / "x"), "-n", "10", "--quotas", "1-:1", "--depth-quotas", "1-:1"],
        ["generate", "--out", str(tmp_path / "x"), "-n", "10", "--size-quotas", "9-:1"],
    ):
        r = CliRunner().invoke(main, args)
        assert r.exit_code != 0
        assert "Traceback" not in r.output and r.exception is None or isinstance(r.exception, SystemExit)
        assert r.output.strip().count("\n") == 0, r.output
        assert r.output.startswith("Error:")
