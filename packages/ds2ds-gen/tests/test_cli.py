from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from ds2ds_gen.cli import main


def ok(args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exit_code == 0, (r.output, r.exception)
    return r


def err(args, match):
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exit_code != 0 and "Traceback" not in r.output, r.output
    assert match in r.output, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    return r


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    ok(["corpus", "synth", d / "md", "--regions", 2, "--rivers", 2, "--cities", 5, "--people", 5, "--organizations", 3])
    ok(["pretokenize", d / "md", d / "corpus"])
    ok(
        [
            "train",
            d / "corpus",
            "--out",
            d / "ckpt",
            "--steps",
            3,
            "--d-model",
            32,
            "--layers",
            1,
            "--heads",
            2,
            "--seq-len",
            64,
            "--batch-size",
            2,
            "--threads",
            1,
            "-q",
        ]
    )
    return d


def test_generate(pipeline) -> None:
    d = pipeline
    out = d / "gen"
    ok(
        [
            "generate",
            "--model",
            d / "ckpt",
            "--corpus",
            d / "corpus",
            "--prompt",
            "# Root\n\nSee [X](../../evil) now",
            "--out",
            out,
            "--max-new-tokens",
            8,
            "--max-context-length",
            1024,
            "--seed",
            1,
        ]
    )
    res = json.loads((out / "result.json").read_text())
    assert res["root"]["title"] == "Root" and res["config"]["seed"] == 1
    assert res["links"][0]["target"] == "../../evil" and res["links"][0]["outcome"] == "generated"
    files = sorted(p.name for p in out.iterdir())
    assert len(files) == 1 + 1 + 2 + len(res["auxiliary"]) and all(f.endswith((".md", ".json", ".dot", ".html")) for f in files)
    assert not (d / "evil.md").exists()
    assert (out / res["files"]["Root"]).read_text().startswith("# Root\n\nSee [X](../../evil) now")


def test_batch_is_deterministic(pipeline) -> None:
    d = pipeline
    (d / "prompts.txt").write_text('# A\\n\\nA is\n{"prompt": "# B\\n\\nB is"}\n')
    common = [
        "batch",
        "--model",
        d / "ckpt",
        "--corpus",
        d / "corpus",
        "--prompts",
        d / "prompts.txt",
        "-n",
        6,
        "--shard-size",
        2,
        "--max-new-tokens",
        6,
        "--max-context-length",
        1024,
        "-q",
    ]
    ok([*common, "--out", d / "ds1", "--executor", "inline"])
    ok([*common, "--out", d / "ds2", "--workers", 2])
    for split in ("train", "val", "test"):
        a = sorted((d / "ds1" / split).glob("*.jsonl"))
        b = sorted((d / "ds2" / split).glob("*.jsonl"))
        assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    tel = json.loads((d / "ds1" / "telemetry.json").read_text())
    assert "samples" in json.dumps(tel) and "link_depth" in json.dumps(tel)
    recs = [
        json.loads(line)
        for s in ("train", "val", "test")
        for p in (d / "ds1" / s).glob("*.jsonl")
        for line in p.read_text().splitlines()
    ]
    assert len(recs) == 6 and {r["prompt"] for r in recs} == {"# A\n\nA is", "# B\n\nB is"}


def test_bad_inputs(pipeline, tmp_path) -> None:
    d = pipeline
    base = ["generate", "--prompt", "hi", "--out", tmp_path / "o"]
    err([*base, "--model", tmp_path / "none"], "checkpoint folder not found")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text((d / "ckpt" / "config.json").read_text())
    (bad / "model.pt").write_bytes(b"not a checkpoint")
    err([*base, "--model", bad], "corrupt")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "index.json").write_text("{oops")
    err([*base, "--model", d / "ckpt", "--corpus", tmp_path / "c"], "not valid JSON")
    err(["generate", "--model", d / "ckpt", "--prompt", "word " * 400, "--out", tmp_path / "o"], "prompt has")
    err(
        ["generate", "--model", d / "ckpt", "--prompt", "x", "--out", tmp_path / "o", "--max-tokens-per-document", 4096],
        "max_tokens_per_document",
    )
    err(["pretokenize", tmp_path / "c", tmp_path / "x"], "no *.md")
    (tmp_path / "p.txt").write_text('{"prompt": 3}\n')
    err(["batch", "--model", d / "ckpt", "--prompts", tmp_path / "p.txt", "--out", tmp_path / "ds"], "p.txt:1")


def test_batch_size_does_not_change_samples(pipeline) -> None:
    """Batched linked decoding: the dataset is the same whether samples are decoded one at a
    time or 4 together (each sample has its own seed and its own KV-cache row)."""
    d = pipeline
    (d / "prompts3.txt").write_text("# A\\n\\nA is\n# B\\n\\nSee [Q](Q) and\nplain\n")
    common = [
        "batch",
        "--model",
        d / "ckpt",
        "--corpus",
        d / "corpus",
        "--prompts",
        d / "prompts3.txt",
        "-n",
        6,
        "--shard-size",
        6,
        "--max-new-tokens",
        6,
        "--max-context-length",
        1024,
        "-q",
        "--executor",
        "inline",
    ]
    ok([*common, "--out", d / "bs1", "--batch-size", 1])
    ok([*common, "--out", d / "bs4", "--batch-size", 4])

    def recs(root):
        return sorted(
            line for s in ("train", "val", "test") for p in (root / s).glob("*.jsonl") for line in p.read_text().splitlines()
        )

    assert recs(d / "bs1") == recs(d / "bs4") and len(recs(d / "bs1")) == 6


def test_batch_with_a_worker_pool_does_not_hang_in_a_real_process(pipeline) -> None:
    # The constructor runs torch in the parent; forked pool workers of such a process deadlock
    # in their first torch call (OpenMP), so the generator asks datacore for spawned workers.
    import os
    import subprocess
    import sys

    d = pipeline
    (d / "p2.txt").write_text("# Alpha\n\n\n# Beta\n\n")
    env = {k: v for k, v in os.environ.items() if k != "DATACORE_MP_START"}
    cmd = [
        sys.executable,
        "-c",
        "from ds2ds_gen.cli import main; main()",
        "batch",
        "--model",
        str(d / "ckpt"),
        "--prompts",
        str(d / "p2.txt"),
        "-n",
        "4",
        "--shard-size",
        "2",
        "--workers",
        "2",
        "--max-new-tokens",
        "4",
        "--out",
        str(d / "pool"),
        "-q",
    ]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
