"""datacore.stream: the same order for any worker count and rank layout, exact resume, random access."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from datacore import DatacoreError, build_dataset
from datacore.stream import StreamingDataset
from toygen import ToyGenerator

torch = pytest.importorskip("torch", reason="datacore.stream's DataLoader tests need torch (datacore[torch])")
from torch.utils.data import DataLoader  # noqa: E402

N, SHARD, SEED = 203, 20, 7
# 4 DataLoader workers on a 2-core machine: torch warns, the order must hold all the same.
pytestmark = pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")


def as_list(batch):
    return batch


def id_and_pid(rec):
    return (rec["id"], os.getpid())


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("stream") / "ds"
    build_dataset(ToyGenerator(), out, N, 0, workers=1, executor="inline", shard_size=SHARD, progress=False)
    return out


def _oracle(out: Path, split: str) -> list[dict]:
    """The split's records in global-index order, read with the stdlib (shard by shard, line by line)."""
    recs = []
    for p in sorted((out / split).glob("part-*.jsonl")):
        recs += [json.loads(line) for line in p.read_text().splitlines()]
    return recs


def _expected(out: Path, seed: int = SEED, epoch: int = 0) -> list[str]:
    ids = [r["id"] for r in _oracle(out, "train")]
    return [ids[g] for g in np.random.default_rng([seed, epoch]).permutation(len(ids))]


def _read(ds: StreamingDataset, workers: int, batch: int = 8) -> list[str]:
    loader = DataLoader(ds, batch_size=batch, num_workers=workers, collate_fn=as_list)
    return [r["id"] for b in loader for r in b]


def test_order_is_the_same_for_0_1_2_4_workers(dataset) -> None:
    want = _expected(dataset)
    assert len(want) == len(set(want)) > 100
    for workers in (0, 1, 2, 4):
        ds = StreamingDataset(dataset, "train", seed=SEED, batch_size=8)
        got = _read(ds, workers)
        assert got == want, f"{workers} workers"


def test_two_ranks_by_two_workers_interleave_to_the_global_order(dataset) -> None:
    want = _expected(dataset)
    per_rank = []
    for rank in range(2):
        ds = StreamingDataset(dataset, "train", seed=SEED, batch_size=4, rank=rank, world_size=2)
        per_rank.append(_read(ds, 2, batch=4))
        assert len(per_rank[-1]) == len(ds)
    merged = [None] * len(want)
    merged[0::2], merged[1::2] = per_rank[0], per_rank[1]
    assert merged == want
    assert not set(per_rank[0]) & set(per_rank[1])


def test_drop_last_gives_every_rank_the_same_count(dataset) -> None:
    sizes = [len(StreamingDataset(dataset, "train", rank=r, world_size=3, drop_last=True)) for r in range(3)]
    got = [len(list(StreamingDataset(dataset, "train", rank=r, world_size=3, drop_last=True))) for r in range(3)]
    assert sizes == got and len(set(got)) == 1


def test_each_epoch_is_a_new_complete_permutation(dataset) -> None:
    ds = StreamingDataset(dataset, "train", seed=SEED)
    e0 = [r["id"] for r in ds]
    ds.set_epoch(1)
    e1 = [r["id"] for r in ds]
    assert e0 == _expected(dataset) and e1 == _expected(dataset, epoch=1)
    assert e0 != e1 and sorted(e0) == sorted(e1)
    plain = StreamingDataset(dataset, "train", shuffle=False)
    assert [r["id"] for r in plain] == [r["id"] for r in _oracle(dataset, "train")]


@pytest.mark.parametrize("trial", range(4))
def test_resume_at_a_random_point_gives_exactly_the_remainder(dataset, trial) -> None:
    rng = random.Random(trial)
    before, after = rng.choice([0, 1, 2, 4]), rng.choice([0, 1, 2, 4])
    batch = rng.choice([1, 3, 8])
    epoch = rng.choice([0, 2])
    want = _expected(dataset, epoch=epoch)
    ds = StreamingDataset(dataset, "train", seed=SEED, batch_size=batch)
    ds.set_epoch(epoch)
    loader = ds.loader(num_workers=before, collate_fn=as_list)
    stop = rng.randrange(1, len(want) // batch)
    seen = []
    for i, b in enumerate(loader):
        seen += [r["id"] for r in b]
        if i + 1 == stop:
            break
    state = loader.state_dict()
    assert state["consumed"] == len(seen) and state["epoch"] == epoch
    state = json.loads(json.dumps(state))  # a checkpoint is JSON
    fresh = StreamingDataset(dataset, "train", seed=SEED, batch_size=batch)
    fresh.load_state_dict(state)
    rest = [r["id"] for b in fresh.loader(num_workers=after, collate_fn=as_list) for r in b]
    assert seen + rest == want, (before, after, batch, stop)


def test_resume_in_process_and_twice(dataset) -> None:
    want = _expected(dataset)
    ds = StreamingDataset(dataset, "train", seed=SEED)
    it = iter(ds)
    seen = [next(it)["id"] for _ in range(50)]
    st = ds.state_dict()
    assert st["consumed"] == 50
    ds2 = StreamingDataset(dataset, "train", seed=SEED)
    ds2.load_state_dict(st)
    it2 = iter(ds2)
    seen += [next(it2)["id"] for _ in range(30)]
    ds3 = StreamingDataset(dataset, "train", seed=SEED, batch_size=2)
    ds3.load_state_dict(ds2.state_dict())
    seen += _read(ds3, 2, batch=2)
    assert seen == want


def test_resume_refuses_another_seed(dataset) -> None:
    st = StreamingDataset(dataset, "train", seed=SEED).state_dict()
    with pytest.raises(DatacoreError, match="seed"):
        StreamingDataset(dataset, "train", seed=SEED + 1).load_state_dict(st)


def test_random_access_and_line_index_beside_the_shards(dataset, monkeypatch) -> None:
    recs = _oracle(dataset, "train")
    ds = StreamingDataset(dataset, "train")
    for i in [0, 1, len(recs) // 2, len(recs) - 1, *random.Random(0).sample(range(len(recs)), 20)]:
        assert ds[i] == recs[i]
    assert ds[-1] == recs[-1]
    with pytest.raises(IndexError):
        ds[len(recs)]
    for i in range(len(recs)):
        ds[i]
    idx = sorted((dataset / "train").glob("*.lineidx"))
    assert len(idx) == len(list((dataset / "train").glob("part-*.jsonl")))
    # a second reader uses the stored index, it does not rebuild it
    import datacore.stream as st

    monkeypatch.setattr(st, "line_offsets", lambda *_: pytest.fail("index rebuilt"))
    again = StreamingDataset(dataset, "train")
    assert [again[i] for i in range(len(recs))] == recs


def test_stale_index_is_rebuilt(dataset, tmp_path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(dataset, out)
    for p in (out / "train").glob("*.lineidx"):
        p.write_bytes(b"DCLIDX01" + b"\0" * 100)  # wrong sha256, wrong size
    ds = StreamingDataset(out, "train", shuffle=False)
    assert [r["id"] for r in ds] == [r["id"] for r in _oracle(out, "train")]


def test_read_only_directory_keeps_the_index_in_memory(dataset, tmp_path, monkeypatch) -> None:
    out = tmp_path / "ro"
    shutil.copytree(dataset, out, ignore=shutil.ignore_patterns("*.lineidx"))
    import datacore.stream as st

    def refuse(self, where, data):
        raise PermissionError(30, "Read-only file system", where)

    monkeypatch.setattr(st._Source, "_store", refuse)
    ds = StreamingDataset(out, "train", shuffle=False)
    assert [r["id"] for r in ds] == [r["id"] for r in _oracle(out, "train")]
    assert not list(out.rglob("*.lineidx"))


def test_compressed_dataset_through_the_cache(tmp_path) -> None:
    out = tmp_path / "zst"
    build_dataset(ToyGenerator(), out, 60, 3, workers=1, executor="inline", shard_size=25, compress="zst", progress=False)
    plain = tmp_path / "plain"
    build_dataset(ToyGenerator(), plain, 60, 3, workers=1, executor="inline", shard_size=25, progress=False)
    ds = StreamingDataset(out, "train", seed=1, cache_dir=tmp_path / "cache")
    ref = StreamingDataset(plain, "train", seed=1)
    assert [r["id"] for r in ds] == [r["id"] for r in ref]


def test_fsspec_url(dataset) -> None:
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    for p in dataset.rglob("*"):
        if p.is_file() and not p.name.endswith(".lineidx"):
            fs.pipe_file(f"/dc-stream/{p.relative_to(dataset).as_posix()}", p.read_bytes())
    ds = StreamingDataset("memory://dc-stream", "train", seed=SEED, batch_size=4)
    assert _read(ds, 0, batch=4) == _expected(dataset)
    assert fs.exists("/dc-stream/train/part-00000.lineidx")


def test_transform_runs_in_the_workers(dataset) -> None:
    ds = StreamingDataset(dataset, "train", seed=SEED, batch_size=4, transform=id_and_pid)
    out = [x for b in DataLoader(ds, batch_size=4, num_workers=2, collate_fn=as_list) for x in b]
    assert [i for i, _ in out] == _expected(dataset)
    assert os.getpid() not in {pid for _, pid in out}


def test_empty_split_and_bad_split(tmp_path) -> None:
    out = tmp_path / "e"
    m = build_dataset(ToyGenerator(), out, 12, 1, workers=1, executor="inline", shard_size=4, progress=False).manifest
    assert m["splits"]["val"] == 0
    ds = StreamingDataset(out, "val")
    assert len(ds) == 0 and list(ds) == []
    with pytest.raises(DatacoreError, match="no split"):
        StreamingDataset(out, "dev")


def test_without_torch_it_is_a_plain_iterable_and_datacore_never_imports_torch(dataset) -> None:
    import subprocess
    import sys

    code = (
        "import sys\nimport datacore\nassert 'torch' not in sys.modules, 'import datacore pulled in torch'\n"
        "sys.modules['torch'] = None  # as if torch were not installed\n"
        "from datacore.stream import StreamingDataset\n"
        f"ds = StreamingDataset({str(dataset)!r}, 'train', seed={SEED})\n"
        "print(','.join(r['id'] for r in ds))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().split(",") == _expected(dataset)
