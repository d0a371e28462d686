"""fsmdata against datacore's conformance suite (every promise of the generator contract)."""

from __future__ import annotations

import pytest
from datacore.testing import check_generator
from fsmdata import FsmGenerator, GenConfig, compile_regex

# Heavy (many builds, kills, a Ray start): run in the combined test session, not in each isolated one.
pytestmark = pytest.mark.slow


def _make() -> FsmGenerator:
    return FsmGenerator(compile_regex("x(a|b)*y(c|d)z", "abcdxyz"), GenConfig(L_min=3, L_max=12))


def _bad_length() -> FsmGenerator:
    return FsmGenerator(compile_regex("ab", "ab"), GenConfig(L_min=5, L_max=3))


def test_fsmdata_conforms(tmp_path) -> None:
    times = check_generator(_make, n=240, shard_size=60, bad_configs=[_bad_length], workdir=tmp_path)
    assert "kill" in times


@pytest.mark.parametrize("task", ["binary"])
def test_fsmdata_binary_task_conforms(tmp_path, task) -> None:
    def make() -> FsmGenerator:
        return FsmGenerator(compile_regex("(ab|c)+d", "abcd"), GenConfig(L_min=1, L_max=10, task=task))

    check_generator(
        make, n=200, shard_size=50, ray=False, checks=("determinism", "count", "ids", "splits", "shard_size"), workdir=tmp_path
    )


def test_fsmdata_length_split_conforms(tmp_path) -> None:
    def make() -> FsmGenerator:
        return FsmGenerator(compile_regex("(ab|c)+d", "abcd"), GenConfig(L_min=1, L_max=10, split="length"))

    check_generator(
        make, n=200, shard_size=50, ray=False, checks=("determinism", "count", "ids", "splits", "shard_size"), workdir=tmp_path
    )


def test_token_generator_conforms(tmp_path) -> None:
    from fsmdata import TokenFsmGenerator, Vocabulary, compile_token_fsm

    vocab = Vocabulary((None, b"a", b"b", b"ab", b"c", b"abc", b"d"), 0, "tiny")

    def make() -> TokenFsmGenerator:
        return TokenFsmGenerator(compile_token_fsm("(ab|c)+d", vocab), GenConfig(L_min=1, L_max=8))

    check_generator(
        make, n=200, shard_size=50, ray=False, checks=("determinism", "count", "ids", "splits", "shard_size"), workdir=tmp_path
    )
