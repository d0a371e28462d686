"""lambdagen against datacore's conformance suite (every promise of the generator contract)."""

from __future__ import annotations

import pytest
from datacore.testing import check_generator
from lambdagen import LambdaConfig, LambdaGenerator

# Heavy (many builds, kills, a Ray start): run in the combined test session, not in each isolated one.
pytestmark = pytest.mark.slow


def _make() -> LambdaGenerator:
    # the generator takes the run's shard count from each ShardTask
    return LambdaGenerator(LambdaConfig(schedule="24x8,30x9", max_steps=40, max_size=120, chunk_traces=8))


def _bad() -> LambdaGenerator:
    return LambdaGenerator(LambdaConfig(schedule="0x0"))


def test_lambdagen_conforms(tmp_path) -> None:
    times = check_generator(_make, n=2000, shard_size=500, bad_configs=[_bad], workdir=tmp_path)
    assert "kill" in times
