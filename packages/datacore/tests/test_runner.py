import filecmp
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import attrs
import orjson
import pytest
from datacore import ConfigMismatchError, DatacoreError, build_dataset, read_jsonl, split_of, verify_dataset
from datacore.runner import DatasetBuilder
from toygen import ToyConfig, ToyGenerator

HERE = Path(__file__).parent


def tree(d: Path) -> dict[str, bytes]:
    # report.html is a view that also shows shard timings and the environment, so it is the one
    # file allowed to differ between runs; everything a dataset's identity rests on is compared.
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file() and p.name != "report.html"}


def build(out, **kw):
    kw.setdefault("progress", False)
    return build_dataset(ToyGenerator(), out, kw.pop("n", 5000), kw.pop("seed", 7), shard_size=kw.pop("shard_size", 700), **kw)


@pytest.mark.parametrize("compress", [None, "gz", "zst"])
def test_byte_identical_across_workers(tmp_path, compress) -> None:
    a = build(tmp_path / "a", workers=1, compress=compress)
    build(tmp_path / "b", workers=2, compress=compress)
    build(tmp_path / "c", executor="inline", compress=compress)
    ta, tb, tc = tree(tmp_path / "a"), tree(tmp_path / "b"), tree(tmp_path / "c")
    assert ta == tb == tc
    assert a.records == 5000 and sum(a.manifest["splits"].values()) == 5000
    assert (tmp_path / "a" / "report.html").exists()
    assert set(ta) >= {
        "dataset.json",
        "telemetry.json",
        "README.md",
        "croissant.json",
        "train/part-00000.jsonl" + ("" if not compress else f".{compress}"),
    }
    assert not any(k.startswith(".datacore") for k in ta)


def test_records_land_in_their_split_and_are_complete(tmp_path) -> None:
    r = build(tmp_path / "d", workers=2)
    seen = set()
    for split in ("train", "val", "test"):
        for p in sorted((tmp_path / "d" / split).glob("part-*.jsonl")):
            for rec in read_jsonl(p):
                assert split_of(rec["tokens"]) == split
                assert rec["id"] and "meta" in rec
                seen.add(rec["meta"]["i"])
    assert seen == set(range(5000))
    assert r.telemetry.counters["records"] == 5000
    assert sum(r.telemetry.histograms["length"].values()) == 5000
    assert verify_dataset(tmp_path / "d") == []
    assert "Toy lengths" in (tmp_path / "d" / "report.html").read_text()


def test_other_seed_differs(tmp_path) -> None:
    build(tmp_path / "a", seed=1)
    build(tmp_path / "b", seed=2)
    assert tree(tmp_path / "a")["train/part-00000.jsonl"] != tree(tmp_path / "b")["train/part-00000.jsonl"]


def test_verify_names_tampered_file(tmp_path) -> None:
    build(tmp_path / "d")
    p = tmp_path / "d" / "val" / "part-00003.jsonl"
    p.write_bytes(p.read_bytes().replace(b"1", b"2", 1))
    problems = verify_dataset(tmp_path / "d")
    assert problems and "val/part-00003.jsonl" in problems[0]


def test_config_mismatch_refused(tmp_path) -> None:
    build(tmp_path / "d")
    with pytest.raises(ConfigMismatchError, match="seed: 7 != 8"):
        build(tmp_path / "d", seed=8)
    with pytest.raises(ConfigMismatchError, match="config.vocab"):
        build_dataset(ToyGenerator(ToyConfig(vocab=9)), tmp_path / "d", 5000, 7, shard_size=700, progress=False)
    # a finished run re-run with the same config does nothing
    r = build(tmp_path / "d")
    assert r.shards_run == 0 and r.records == 5000
    # --no-resume starts over
    r = build(tmp_path / "d", seed=8, resume=False)
    assert r.shards_run == 8


def test_bad_arguments(tmp_path) -> None:
    with pytest.raises(DatacoreError, match="executor"):
        build(tmp_path / "x", executor="threads")
    with pytest.raises(DatacoreError, match="sum to 1"):
        build(tmp_path / "x", split_ratios=(0.5, 0.5, 0.5))
    with pytest.raises(DatacoreError, match="compress"):
        build(tmp_path / "x", compress="bz2")


def test_worker_failure_leaves_resumable_state(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TOYGEN_FAIL_SHARD", "3")
    with pytest.raises(RuntimeError, match="injected"):
        build(tmp_path / "d", workers=1)
    assert not (tmp_path / "d" / "dataset.json").exists()
    assert not list((tmp_path / "d").rglob("*.tmp"))
    monkeypatch.delenv("TOYGEN_FAIL_SHARD")
    r = build(tmp_path / "d", workers=1)
    assert r.shards_run == 5  # shards 3..7
    build(tmp_path / "ref", workers=1)
    assert tree(tmp_path / "d") == tree(tmp_path / "ref")


KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {here!r})
    from toygen import ToyConfig, ToyGenerator
    from datacore import build_dataset
    build_dataset(ToyGenerator(ToyConfig(delay=0.3)), sys.argv[1], 3000, 11, shard_size=250,
                  workers=int(sys.argv[2]), progress=False, compress="zst")
    """
)


def _wait_markers(progress: Path, k: int, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while len(list(progress.glob("shard-*.json"))) < k and time.monotonic() < end:
        time.sleep(0.02)


@pytest.mark.parametrize("after_shards,workers", [(0, 1), (3, 2), (7, 1)])
def test_sigkill_then_resume_is_byte_identical(tmp_path, after_shards, workers) -> None:
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT.format(here=str(HERE)))
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(script), str(out), str(workers)], start_new_session=True)
    _wait_markers(out / ".datacore", after_shards)
    time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole group: workers die too
    proc.wait()
    assert not (out / "dataset.json").exists(), "run finished before the kill; raise delay"
    done_before = len(list((out / ".datacore").glob("shard-*.json")))
    subprocess.run([sys.executable, str(script), str(out), str(workers)], check=True)
    subprocess.run([sys.executable, str(script), str(tmp_path / "clean"), "1"], check=True)
    assert tree(out) == tree(tmp_path / "clean")
    assert done_before < 12, "the kill should land mid-run"
    m = orjson.loads((out / "dataset.json").read_bytes())
    assert m["records"] == 3000


def test_dataset_builder_extra_state_survives(tmp_path) -> None:
    from datacore import Telemetry

    def make(resume=True):
        return DatasetBuilder(tmp_path / "d", "loop", "1", {"k": 1}, 3, resume=resume)

    b = make()
    b.write_shard(0, [{"t": "a"}, {"t": "b"}], lambda r: r["t"], Telemetry(), extra={"arm_values": [0.5, 0.1]})
    b2 = make()  # a new process would see the same
    assert b2.done[0]["extra"] == {"arm_values": [0.5, 0.1]}
    b2.write_shard(1, [{"t": "c"}], lambda r: r["t"], Telemetry())
    m = b2.finalize()
    assert m["records"] == 3 and m["spec"]["n"] is None
    assert filecmp.cmp(tmp_path / "d" / "dataset.json", tmp_path / "d" / "dataset.json")


def test_huggingface_datasets_loads_it(tmp_path) -> None:
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "hf"
    r = build(out, compress="gz")
    ds = datasets.load_dataset(
        "json",
        data_files={s: str(out / s / "*.jsonl.gz") for s in ("train", "val", "test")},
        cache_dir=str(tmp_path / "cache"),
    )
    for s in ("train", "val", "test"):
        assert ds[s].num_rows == r.manifest["splits"][s]
    assert set(ds["train"].column_names) >= {"id", "tokens", "text", "meta"}


def test_ray_executor_matches_process_pool(tmp_path) -> None:
    pytest.importorskip("ray")
    build(tmp_path / "p", workers=2)
    build(tmp_path / "r", workers=2, executor="ray")
    assert tree(tmp_path / "p") == tree(tmp_path / "r")


@attrs.frozen
class _TaskEcho(ToyGenerator):
    """Writes the run-level fields of each task it is given into its records."""

    def generate_shard(self, task, telemetry):
        for i in range(task.count):
            yield {"tokens": [task.start + i], "meta": {"total": task.total, "run_seed": task.run_seed, "shards": task.shards}}


def test_shard_tasks_carry_the_run_total_and_seed(tmp_path) -> None:
    # a generator whose plan spans the run (lambdagen's curriculum) needs -n and --seed in each task,
    # also for the shards a resumed run makes
    build_dataset(_TaskEcho(), tmp_path / "o", 50, 11, shard_size=20, progress=False)
    recs = [r for p in sorted((tmp_path / "o").rglob("part-*.jsonl")) for r in read_jsonl(p)]
    assert len(recs) == 50
    assert {(r["meta"]["total"], r["meta"]["run_seed"], r["meta"]["shards"]) for r in recs} == {(50, 11, 3)}
