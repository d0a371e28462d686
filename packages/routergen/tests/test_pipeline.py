import csv
import json
import signal
import subprocess
import sys

import orjson
import pytest
from datacore import ConfigMismatchError, ShortfallError
from routergen.pipeline import run_recipe
from routergen.spec import load_recipe


def test_offline_run_is_complete_deduplicated_with_lineage(small_recipe_path, tmp_path, all_records):
    r = load_recipe(small_recipe_path)
    res = run_recipe(r, tmp_path / "a", n=100, offline=True, progress=False)
    assert res.records == 100 and res.stop_reason == "target"
    recs = all_records(tmp_path / "a")
    assert [x["meta"]["index"] for x in recs] == list(range(100))
    texts = [x["text"] for x in recs]
    assert len(set(texts)) == 100
    m = recs[0]["meta"]
    assert m["recipe_hash"] == r.hash and m["model"] == "procedural" and m["generator"] == "templater"
    assert set(m) >= {"iteration", "arm", "exploration_rate", "prompt_hash", "scores"}
    assert set(m["scores"]) == {"schema", "exact_dedup", "near_dup"}
    for x in recs:
        assert x["label"] in ("a", "b") and "{" not in x["text"]
    # Exports agree with the dataset.
    rows = list(csv.DictReader(open(tmp_path / "a" / "exports" / "samples.csv", encoding="utf-8")))
    assert [row["text"] for row in rows] == texts
    assert (tmp_path / "a" / "exports" / "samples.txt").read_text().splitlines() == texts
    html = (tmp_path / "a" / "report.html").read_text()
    for title in ("Reward per arm over iterations", "Arm choices", "Validator pass rates"):
        assert title in html
    # Bandit state history: every iteration's summary counts add up.
    assert sum(h["stored"] for h in res.history) == 100
    assert all(0 <= h["reward"] <= 1 for h in res.history)


def test_same_seed_is_byte_identical_and_other_seed_differs(small_recipe_path, tmp_path, dataset_bytes):
    r = load_recipe(small_recipe_path)
    run_recipe(r, tmp_path / "a", n=80, seed=4, offline=True, progress=False)
    run_recipe(r, tmp_path / "b", n=80, seed=4, offline=True, progress=False)
    run_recipe(r, tmp_path / "c", n=80, seed=5, offline=True, progress=False)
    assert dataset_bytes(tmp_path / "a") == dataset_bytes(tmp_path / "b")
    assert dataset_bytes(tmp_path / "a") != dataset_bytes(tmp_path / "c")


class Crash(Exception):
    pass


def test_resume_after_exception_equals_uninterrupted(small_recipe_path, tmp_path, dataset_bytes):
    r = load_recipe(small_recipe_path)
    run_recipe(r, tmp_path / "full", n=110, offline=True, progress=False)

    def boom(i):
        if i == 2:
            raise Crash

    with pytest.raises(Crash):
        run_recipe(r, tmp_path / "crashed", n=110, offline=True, progress=False, on_iteration=boom)
    assert not (tmp_path / "crashed" / "dataset.json").exists()
    res = run_recipe(r, tmp_path / "crashed", n=110, offline=True, progress=False)
    assert res.records == 110
    assert dataset_bytes(tmp_path / "crashed") == dataset_bytes(tmp_path / "full")
    # The report shows all iterations, not only those after the resume.
    assert res.iterations == len(orjson.loads((tmp_path / "full" / "dataset.json").read_bytes())["shards"])


def test_resume_after_sigkill_equals_uninterrupted(small_recipe_path, tmp_path, dataset_bytes):
    r = load_recipe(small_recipe_path)
    run_recipe(r, tmp_path / "full", n=110, offline=True, progress=False)
    script = (
        "import os, signal, sys\n"
        "from routergen.pipeline import run_recipe\n"
        "from routergen.spec import load_recipe\n"
        "def kill(i):\n"
        "    if i == 3: os.kill(os.getpid(), signal.SIGKILL)\n"
        f"run_recipe(load_recipe({str(small_recipe_path)!r}), {str(tmp_path / 'killed')!r}, n=110, offline=True,"
        " progress=False, on_iteration=kill)\n"
    )
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert p.returncode == -signal.SIGKILL, p.stderr.decode()
    assert (tmp_path / "killed" / ".datacore").is_dir() and not (tmp_path / "killed" / "dataset.json").exists()
    run_recipe(r, tmp_path / "killed", n=110, offline=True, progress=False)
    assert dataset_bytes(tmp_path / "killed") == dataset_bytes(tmp_path / "full")


def test_other_config_in_same_out_is_refused(small_recipe_path, tmp_path, dataset_bytes):
    r = load_recipe(small_recipe_path)
    run_recipe(r, tmp_path / "a", n=40, offline=True, progress=False)
    with pytest.raises(ConfigMismatchError):
        run_recipe(r, tmp_path / "a", n=41, offline=True, progress=False)
    # Re-running the same config is a no-op that keeps the dataset.
    before = dataset_bytes(tmp_path / "a")
    res = run_recipe(r, tmp_path / "a", n=40, offline=True, progress=False)
    assert res.stop_reason == "complete" and dataset_bytes(tmp_path / "a") == before


def test_stalls_stop_cleanly_when_grammar_is_exhausted(tmp_path):
    p = tmp_path / "tiny.yaml"
    p.write_text(
        "name: tiny\ntask: t\nbatch_size: 5\ngrammar:\n  rules:\n    s: ['a {x}']\n  slots:\n    x: [one, two, three]\n"
        "validators: {exact_dedup: {}}\n"
    )
    with pytest.raises(ShortfallError, match=r"asked for 50 samples, made 3 .*stalled"):
        run_recipe(load_recipe(p), tmp_path / "o", n=50, offline=True, progress=False)
    assert not (tmp_path / "o" / "dataset.json").exists()
    # The iterations were kept: the same run with allow_shortfall finalizes them without redoing anything.
    res = run_recipe(load_recipe(p), tmp_path / "o", n=50, offline=True, progress=False, allow_shortfall=True)
    assert res.records == 3 and res.stop_reason.startswith("stalled")
    m = json.loads((tmp_path / "o" / "dataset.json").read_text())
    assert m["records"] == 3 and m["delivery"]["ok"] is False and m["delivery"]["shortfall_allowed"] is True


def test_max_iterations_budget_stops_and_finalizes(small_recipe_path, tmp_path):
    text = small_recipe_path.read_text() + "budget: {max_iterations: 2}\n"
    p = tmp_path / "b.yaml"
    p.write_text(text)
    with pytest.raises(ShortfallError, match="can make at most 40"):
        run_recipe(load_recipe(p), tmp_path / "o", n=100, offline=True, progress=False)
    res = run_recipe(load_recipe(p), tmp_path / "o", n=100, offline=True, progress=False, allow_shortfall=True)
    assert res.iterations == 2 and res.stop_reason == "max_iterations (2)"
    assert 0 < res.records <= 40
