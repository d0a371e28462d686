"""The sequential variant: a feedback loop written through datacore, resumable and honest about -n."""

from __future__ import annotations

import os
import signal
import time

import pytest
from conformance_toys import BanditLoopToy
from datacore import ShortfallError, build_sequential
from datacore.testing import dataset_digest


def test_loop_writes_n_records_and_is_reproducible(tmp_path) -> None:
    a = build_sequential(BanditLoopToy(), tmp_path / "a", 100, 3, progress=False)
    build_sequential(BanditLoopToy(), tmp_path / "b", 100, 3, progress=False)
    assert a.records == 100 and a.manifest["delivery"]["ok"]
    assert dataset_digest(tmp_path / "a") == dataset_digest(tmp_path / "b")


def test_sigkill_mid_loop_then_resume_is_byte_identical(tmp_path) -> None:
    ref = tmp_path / "ref"
    build_sequential(BanditLoopToy(), ref, 140, 5, progress=False)
    out = tmp_path / "killed"
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            build_sequential(BanditLoopToy(delay=0.05), out, 140, 5, progress=False)
        finally:
            os._exit(0)
    deadline = time.monotonic() + 30
    while len(list((out / ".datacore").glob("shard-*.json"))) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert not (out / "dataset.json").exists()
    r = build_sequential(BanditLoopToy(delay=0.05), out, 140, 5, progress=False)
    assert r.shards_run < 20  # only the missing units were made
    assert dataset_digest(out) == dataset_digest(ref)


def test_a_loop_short_of_n_fails_unless_allowed(tmp_path) -> None:
    with pytest.raises(ShortfallError, match="-n asked 100 records, delivered 30"):
        build_sequential(BanditLoopToy(stop_early=30), tmp_path / "a", 100, progress=False)
    assert not (tmp_path / "a").exists()
    r = build_sequential(BanditLoopToy(stop_early=30), tmp_path / "b", 100, progress=False, allow_shortfall=True)
    assert r.records == 30 and r.manifest["delivery"]["shortfall_allowed"]
