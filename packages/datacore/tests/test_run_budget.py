"""A generator's LLM budget is held once per run, not once per worker process."""

from __future__ import annotations

import orjson
import pytest
from conformance_toys import SpendingToy
from datacore import DatacoreError, build_dataset


def test_two_workers_share_one_budget(tmp_path) -> None:
    # 40 shards of 10 records at $0.01 each would cost $4; the run may spend $0.50 in all.
    with pytest.raises(DatacoreError, match="budget exceeded"):
        build_dataset(SpendingToy(budget=0.5), tmp_path / "d", 400, shard_size=10, workers=2, progress=False)
    ledger = orjson.loads((tmp_path / "d" / ".datacore" / "llm-budget.json").read_bytes())
    # Each worker checks before every charge, so the overshoot is at most one charge per worker.
    assert 0.5 <= ledger["spent_usd"] <= 0.5 + 2 * 0.01 + 1e-9


def test_resume_goes_on_counting(tmp_path) -> None:
    with pytest.raises(DatacoreError, match="budget exceeded"):
        build_dataset(SpendingToy(budget=0.3), tmp_path / "d", 100, shard_size=10, workers=1, progress=False)
    # the same run with a larger budget finishes, charging only the missing shards
    r = build_dataset(SpendingToy(budget=2.0), tmp_path / "d", 100, shard_size=10, workers=1, progress=False)
    assert r.records == 100
