"""A tiny deterministic generator used by datacore's tests."""

from __future__ import annotations

import os
import random
import time
from typing import Any

import attrs
from datacore import ReportSection, ShardTask, Telemetry
from datacore.report import bar_chart_svg


@attrs.frozen
class ToyConfig:
    vocab: int = attrs.field(default=50, validator=attrs.validators.ge(2))
    max_len: int = 12
    # seconds to sleep per shard (lets tests kill a run mid-way)
    delay: float = 0.0


@attrs.frozen
class ToyGenerator:
    config: ToyConfig = ToyConfig()
    name: str = "toy"
    version: str = "1.0"

    def config_dict(self) -> dict[str, Any]:
        return attrs.asdict(self.config)

    @classmethod
    def from_config_dict(cls, d: dict[str, Any]) -> ToyGenerator:
        return cls(ToyConfig(**d))

    def generate_shard(self, task: ShardTask, telemetry: Telemetry):
        rng = random.Random(task.seed)
        if self.config.delay:
            time.sleep(self.config.delay)
        if os.environ.get("TOYGEN_FAIL_SHARD") == str(task.index):
            raise RuntimeError("injected failure")
        for i in range(task.count):
            n = rng.randint(1, self.config.max_len)
            tokens = [rng.randrange(self.config.vocab) for _ in range(n)]
            telemetry.observe("length", n)
            telemetry.count("tokens", n)
            yield {"tokens": tokens, "text": " ".join(map(str, tokens)), "meta": {"shard": task.index, "i": task.start + i}}

    def split_key(self, record: dict[str, Any]):
        return record["tokens"]

    def report_sections(self, telemetry: Telemetry) -> list[ReportSection]:
        return [ReportSection("Toy lengths", bar_chart_svg(telemetry.histograms.get("length", {}), "length"))]
