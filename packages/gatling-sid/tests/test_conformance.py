"""gatling-sid against datacore's conformance suite (every promise of the generator contract)."""

from __future__ import annotations

import pytest
from datacore.testing import check_generator
from gatling_sid import GatlingConfig, GatlingGenerator

# Heavy (many builds, kills, a Ray start): run in the combined test session, not in each isolated one.
pytestmark = pytest.mark.slow


def _make() -> GatlingGenerator:
    return GatlingGenerator(GatlingConfig())


def _bad() -> GatlingGenerator:
    return GatlingGenerator(GatlingConfig(batch_size=0))


def test_gatling_sid_conforms(tmp_path) -> None:
    times = check_generator(_make, n=160, shard_size=40, bad_configs=[_bad], workdir=tmp_path)
    assert "kill" in times
