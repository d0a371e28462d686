"""The conformance suite passes a correct generator and catches a broken one, one toy per check."""

from __future__ import annotations

import attrs
import pytest
from conformance_toys import (
    _COUNTER,
    FalselyGrowableToy,
    GrowableToy,
    LengthSplitToy,
    LitteringToy,
    MiscountingWriterToy,
    ProcessStateToy,
    RandomKeyToy,
    RandomSplitOfToy,
    SameIdToy,
    ShardEdgeToy,
    StdlibWriterToy,
    StrataToy,
)
from datacore import ConfigError, DatacoreError, Target
from datacore.testing import ConformanceError, check_generator
from toygen import ToyConfig, ToyGenerator


def _toy() -> ToyGenerator:
    return ToyGenerator(ToyConfig(vocab=30))


def test_a_correct_generator_passes_every_check() -> None:
    times = check_generator(
        StrataToy, n=120, shard_size=30, ray=False, bad_configs=[lambda: StrataToy(vocab=1), lambda: StrataToy(vocab="x")]
    )
    assert {"determinism", "kill", "failure", "bad_config", "shard_size"} <= set(times)


def test_the_toy_generator_of_the_other_tests_passes() -> None:
    check_generator(_toy, n=100, shard_size=25, ray=False, checks=("determinism", "count", "ids", "splits", "failure"))


def test_a_generator_that_chooses_its_splits_passes_and_is_obeyed(tmp_path) -> None:
    check_generator(LengthSplitToy, n=120, shard_size=30, ray=False, checks=("determinism", "count", "ids", "splits"))
    from datacore import build_dataset
    from datacore.jsonl import read_jsonl

    build_dataset(LengthSplitToy(), tmp_path / "ds", n=120, shard_size=30, workers=1, seed=3)
    by_split = {
        s: [r for p in sorted((tmp_path / "ds" / s).glob("part-*")) for r in read_jsonl(p)] for s in ("train", "val", "test")
    }
    assert all(len(r["tokens"]) < 5 for s in ("train", "val") for r in by_split[s])
    assert sum(len(r["tokens"]) >= 5 for r in by_split["test"]) == 40  # lengths 5 and 6 of 1..6, 120 records


def test_a_growable_dataset_grows_and_shrinks_in_place(tmp_path) -> None:
    """Growing -n keeps the finished shards (made once), remakes the partial last one, and ends
    byte-identical to a fresh run; shrinking drops the surplus shards; a damaged kept shard is refused."""
    from datacore import build_dataset
    from datacore.testing import dataset_digest

    check_generator(GrowableToy, n=120, shard_size=30, ray=False, checks=("growth",))
    fresh = {k: tmp_path / f"fresh{k}" for k in (70, 130)}
    for k, p in fresh.items():
        build_dataset(GrowableToy(), p, n=k, shard_size=30, executor="inline", progress=False, seed=5)
    ds = tmp_path / "ds"
    build_dataset(GrowableToy(), ds, n=70, shard_size=30, executor="inline", progress=False, seed=5)
    first = (ds / "train" / "part-00000.jsonl").stat().st_ino
    r = build_dataset(GrowableToy(), ds, n=130, shard_size=30, executor="inline", progress=False, seed=5)
    assert r.shards_run == 3  # shards 2 (was partial), 3 and 4
    assert (ds / "train" / "part-00000.jsonl").stat().st_ino == first  # kept, not rewritten
    assert dataset_digest(ds) == dataset_digest(fresh[130])
    r = build_dataset(GrowableToy(), ds, n=70, shard_size=30, executor="inline", progress=False, seed=5)
    assert r.shards_run == 1 and dataset_digest(ds) == dataset_digest(fresh[70])
    assert not (ds / "train" / "part-00003.jsonl").exists()
    with open(ds / "train" / "part-00001.jsonl", "r+b") as f:
        f.write(b"X")
    with pytest.raises(DatacoreError, match="part-00001.jsonl: sha256 differs"):
        build_dataset(GrowableToy(), ds, n=130, shard_size=30, executor="inline", progress=False, seed=5)
    # A generator that does not declare growable: another n is another dataset.
    other = tmp_path / "other"
    build_dataset(StrataToy(), other, n=60, shard_size=30, executor="inline", progress=False)
    with pytest.raises(DatacoreError, match="n: 60 != 90"):
        build_dataset(StrataToy(), other, n=90, shard_size=30, executor="inline", progress=False)


@pytest.mark.parametrize(
    ("make", "check", "words"),
    [
        (ProcessStateToy, "determinism", "determinism"),
        (ProcessStateToy, "kill", "kill"),
        (SameIdToy, "ids", "appears twice"),
        (RandomKeyToy, "splits", "splits"),
        (RandomSplitOfToy, "splits", "splits"),
        (ShardEdgeToy, "shard_size", "kind=A"),
        (MiscountingWriterToy, "count", "count"),
        (StdlibWriterToy, "encoding", "encoding"),
        (FalselyGrowableToy, "growth", "growth"),
    ],
)
def test_each_check_catches_its_broken_toy(make, check, words) -> None:
    _COUNTER["shards"] = 0
    with pytest.raises(ConformanceError, match=words):
        check_generator(make, n=150, shard_size=50, ray=False, checks=(check,))


def test_failure_check_catches_leftovers(tmp_path) -> None:
    # The toy litters inside the run's output directory, which the suite makes under workdir.
    def make() -> LitteringToy:
        return LitteringToy(scratch=str(sorted(tmp_path.glob("conformance-*"))[-1] / "failure"))

    with pytest.raises(ConformanceError, match="failure: a failed run left"):
        check_generator(make, n=60, shard_size=30, ray=False, checks=("failure",), workdir=tmp_path)


def test_bad_config_check_catches_an_accepted_or_raw_error() -> None:
    with pytest.raises(ConformanceError, match="was accepted"):
        check_generator(
            StrataToy, n=60, shard_size=30, ray=False, checks=("bad_config",), bad_configs=[lambda: StrataToy(vocab=5)]
        )

    def raw() -> StrataToy:
        raise ValueError("boom")

    with pytest.raises(ConformanceError, match="ValueError"):
        check_generator(StrataToy, n=60, shard_size=30, ray=False, checks=("bad_config",), bad_configs=[raw])


def test_shortfall_is_an_error_unless_allowed(tmp_path) -> None:
    from datacore import ShortfallError, build_dataset

    @attrs.frozen
    class Short(StrataToy):
        def generate_shard(self, task, telemetry):
            yield from list(super().generate_shard(task, telemetry))[:-2]

    with pytest.raises(ShortfallError, match="-n asked 60 records, delivered 56"):
        build_dataset(Short(), tmp_path / "a", 60, shard_size=30, executor="inline", progress=False)
    assert not (tmp_path / "a").exists()  # nothing left behind
    r = build_dataset(Short(), tmp_path / "b", 60, shard_size=30, executor="inline", progress=False, allow_shortfall=True)
    assert r.manifest["delivery"]["ok"] is False and r.manifest["delivery"]["shortfall_allowed"] is True
    assert r.records == 56


def test_stratum_miss_names_the_worst_stratum(tmp_path) -> None:
    from datacore import ShortfallError, build_dataset

    @attrs.frozen
    class Skewed(StrataToy):
        def targets(self, n):
            return [Target("parity=even", 0.9, 0.02), Target("parity=odd", 0.1, 0.02)]

    with pytest.raises(
        ShortfallError, match=r"stratum parity=even: asked 90.0% \(54 records\), got 50.0% \(30\), tolerance 2.0%"
    ):
        build_dataset(Skewed(), tmp_path / "a", 60, shard_size=30, executor="inline", progress=False)


def test_bad_config_errors_are_config_errors() -> None:
    from datacore.config import integer, number, one_of

    @attrs.frozen
    class C:
        k: int = attrs.field(default=1, validator=integer(1, 10))
        p: float = attrs.field(default=0.5, validator=number(0, 1))
        mode: str = attrs.field(default="a", validator=one_of(("a", "b")))

    for kw, words in [
        ({"k": 0}, "C.k = 0: expected an integer in \\[1, 10\\]"),
        ({"k": True}, "C.k = True"),
        ({"p": float("nan")}, "C.p = nan"),
        ({"mode": "c"}, "expected one of 'a', 'b'"),
    ]:
        with pytest.raises(ConfigError, match=words):
            C(**kw)
    assert issubclass(ConfigError, DatacoreError)


def test_load_config_names_file_and_field(tmp_path) -> None:
    from datacore import load_config

    p = tmp_path / "c.yaml"
    p.write_text("vocab: 1\n")
    with pytest.raises(DatacoreError, match="c.yaml"):
        load_config(StrataToy, p)
    p.write_text("vocabb: 3\n")
    with pytest.raises(ConfigError, match="unknown field 'vocabb'"):
        load_config(StrataToy, p)
    p.write_text("vocab: [1\n")
    with pytest.raises(ConfigError, match="c.yaml:"):
        load_config(StrataToy, p)
    p.write_text("vocab: 7\n")
    assert load_config(StrataToy, p).vocab == 7


def test_a_sequential_loop_passes_the_suite() -> None:
    """The suite runs on the sequential variant too (routergen's kind): reruns, a forked child, kills, failure."""
    from conformance_toys import BanditLoopToy

    times = check_generator(lambda: BanditLoopToy(delay=0.01), n=80, ray=False, kills=1)
    assert {"determinism", "kill", "failure"} <= set(times)


def test_the_determinism_check_catches_a_loop_that_depends_on_its_process() -> None:
    from conformance_toys import ProcessLoopToy

    with pytest.raises(ConformanceError, match="determinism: a run in a forked child"):
        check_generator(ProcessLoopToy, n=60, ray=False, checks=("determinism",))
