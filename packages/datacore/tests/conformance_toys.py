"""Toy generators for the conformance suite's own tests: one correct, one broken per check.

They live in a plain module (not a test module) so spawned pool workers can import them.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import attrs
from datacore import STRATA, ShardTask, Target, Telemetry
from datacore.config import integer

_COUNTER = {"shards": 0}  # per-process state: what a correct generator must never depend on


@attrs.frozen
class StrataToy:
    """Correct: declares a 50/50 target on token-length parity and counts every record into it."""

    name: str = "strata-toy"
    version: str = "1"
    vocab: int = attrs.field(default=20, validator=integer(2))

    def config_dict(self) -> dict[str, Any]:
        return {"vocab": self.vocab}

    def targets(self, n: int) -> list[Target]:
        return [Target("parity=even", 0.5, 0.1), Target("parity=odd", 0.5, 0.1)]

    def generate_shard(self, task: ShardTask, telemetry: Telemetry):
        rng = random.Random(task.seed)
        for i in range(task.count):
            length = 1 + (task.start + i) % 6
            toks = [rng.randrange(self.vocab) for _ in range(length)]
            telemetry.observe(STRATA, f"parity={'even' if length % 2 == 0 else 'odd'}")
            yield {"tokens": toks, "meta": {"i": task.start + i}}

    def split_key(self, record: dict[str, Any]):
        return record["tokens"]


@attrs.frozen
class ProcessStateToy(StrataToy):
    """Broken: content depends on how many shards this process made before (worker-count dependent)."""

    def generate_shard(self, task: ShardTask, telemetry: Telemetry):
        _COUNTER["shards"] += 1
        seen = _COUNTER["shards"]
        for rec in super().generate_shard(task, telemetry):
            rec["meta"]["order"] = seen
            yield rec


@attrs.frozen
class SameIdToy(StrataToy):
    """Broken: every record carries the same id."""

    def generate_shard(self, task: ShardTask, telemetry: Telemetry):
        for rec in super().generate_shard(task, telemetry):
            yield {"id": "same", **rec}


@attrs.frozen
class RandomKeyToy(StrataToy):
    """Broken: a split key that is not a function of the record."""

    def split_key(self, record: dict[str, Any]):
        return [random.randrange(10**9)]


@attrs.frozen
class ShardEdgeToy(StrataToy):
    """Broken: the first 10 records of every shard are stratum A, so shares follow the shard size."""

    def targets(self, n: int) -> list[Target]:
        return [Target("kind=A", 0.2, 0.05), Target("kind=B", 0.8, 0.05)]

    def generate_shard(self, task: ShardTask, telemetry: Telemetry):
        for i, rec in enumerate(super().generate_shard(task, Telemetry())):
            telemetry.observe(STRATA, "kind=A" if i < 10 else "kind=B")
            yield rec


@attrs.frozen
class MiscountingWriterToy(StrataToy):
    """Broken: a file-writing generator that reports one record more per shard than it wrote."""

    def write_shard_files(self, task, paths, splitter, compress, telemetry) -> dict[str, int]:
        from datacore import write_records

        recs = list(self.generate_shard(task, telemetry))[:-1]
        files = write_records(paths, recs, self.split_key, splitter)
        counts = {s: f["records"] for s, f in files.items()}
        counts["train"] += 1
        return counts


@attrs.frozen
class LitteringToy(StrataToy):
    """Broken: leaves a scratch file in the output directory when it fails."""

    scratch: str = ""

    def config_dict(self) -> dict[str, Any]:
        return {"vocab": self.vocab}

    def generate_shard(self, task: ShardTask, telemetry: Telemetry):
        Path(self.scratch).mkdir(parents=True, exist_ok=True)
        (Path(self.scratch) / "scratch.tmp").write_text("x")
        yield from super().generate_shard(task, telemetry)


@attrs.frozen
class SpendingToy(StrataToy):
    """Charges $0.01 per record to the run-wide LLM ledger and stops when the budget is spent."""

    budget: float = 0.5

    def llm_budget_usd(self) -> float:
        return self.budget

    def generate_shard(self, task: ShardTask, telemetry: Telemetry):
        from datacore.llm import BudgetLedger

        ledger = BudgetLedger.from_env()
        assert ledger is not None, "the run did not name its ledger to the worker"
        for rec in super().generate_shard(task, telemetry):
            ledger.check()
            ledger.charge(0.01)
            yield rec


@attrs.frozen
class BanditLoopToy:
    """A sequential generator: an epsilon-greedy loop whose every step depends on the last (for build_sequential)."""

    name: str = "bandit-loop"
    version: str = "1"
    batch: int = 7
    delay: float = 0.0
    stop_early: int = 0  # >0: stop after this many records (a loop that cannot reach -n)

    def config_dict(self) -> dict[str, Any]:
        return {"batch": self.batch}

    def targets(self, n: int) -> list[Target]:
        return [Target("arm=a", 0.5, 0.5), Target("arm=b", 0.5, 0.5)]

    def split_key(self, record: dict[str, Any]):
        return record["text"]

    def run(self, loop) -> None:
        import time

        state = loop.resumed[-1] if loop.resumed else {"values": [0.0, 0.0], "pulls": [0, 0], "step": 0}
        rng = random.Random(loop.seed * 1000 + state["step"])
        limit = loop.n if not self.stop_early else min(loop.n, self.stop_early)
        while loop.written < limit:
            arm = rng.randrange(2) if rng.random() < 0.2 else int(state["values"][1] > state["values"][0])
            k = min(self.batch, limit - loop.written)
            tel = Telemetry()
            recs = []
            for i in range(k):
                text = f"{'ab'[arm]}-{state['step']}-{i}-{rng.randrange(10**6)}"
                tel.observe(STRATA, f"arm={'ab'[arm]}")
                recs.append({"text": text, "meta": {"arm": arm, "step": state["step"]}})
            reward = rng.random() * (0.4 if arm == 0 else 0.6)
            state = {
                "values": [
                    v + (reward - v) / (p + 1) if j == arm else v for j, (v, p) in enumerate(zip(state["values"], state["pulls"]))
                ],
                "pulls": [p + (j == arm) for j, p in enumerate(state["pulls"])],
                "step": state["step"] + 1,
            }
            rng = random.Random(loop.seed * 1000 + state["step"])
            loop.write(recs, self.split_key, tel, extra=state)
            if self.delay:
                time.sleep(self.delay)


@attrs.frozen
class LengthSplitToy(StrataToy):
    """Correct: chooses its own splits (records of 5+ tokens only in test, out of distribution)."""

    def split_of(self, record: dict[str, Any]) -> str | None:
        return "test" if len(record["tokens"]) >= 5 else None


@attrs.frozen
class RandomSplitOfToy(StrataToy):
    """Broken: split_of is not a function of the record."""

    def split_of(self, record: dict[str, Any]) -> str | None:
        return random.choice(["train", "val", "test"])


@attrs.frozen
class StdlibWriterToy(StrataToy):
    """Broken: a pre-encoded fast path with its own JSON (stdlib json, spaces after separators)."""

    def write_shard_files(self, task, paths, splitter, compress, telemetry) -> dict[str, int]:
        import json

        from datacore import content_id

        counts = dict.fromkeys(paths, 0)
        lines: dict[str, list[str]] = {s: [] for s in paths}
        for rec in self.generate_shard(task, telemetry):
            s = splitter(self.split_key(rec))
            lines[s].append(json.dumps({"id": content_id(rec), **rec}) + "\n")
            counts[s] += 1
        for s, p in paths.items():
            p.write_text("".join(lines[s]))
        return counts


@attrs.frozen
class GrowableToy(StrataToy):
    """Correct: declares that its shards depend only on their tasks, so a dataset may grow."""

    growable = True


@attrs.frozen
class FalselyGrowableToy(StrataToy):
    """Broken: declares growable, but its records depend on the run's shard count (so on n)."""

    growable = True

    def generate_shard(self, task: ShardTask, telemetry: Telemetry):
        for rec in super().generate_shard(task, telemetry):
            rec["meta"]["of"] = task.shards
            yield rec


@attrs.frozen
class ProcessLoopToy(BanditLoopToy):
    """Broken: a loop whose records carry the id of the process that made them."""

    def run(self, loop) -> None:
        import os

        write = loop.write

        def stamped(recs, split_key, tel, extra=None):
            return write([{**r, "meta": {**r["meta"], "pid": os.getpid()}} for r in recs], split_key, tel, extra=extra)

        loop.write = stamped
        super().run(loop)
