"""`GatlingGenerator`: gold traces (and labelled hard negatives) on the datacore generator protocol.

Each shard draws from ``random.Random(task.seed)`` only, so the dataset is byte-identical for
any worker count.  Every trace is validated before it is written: a gold trace that fails is
counted and replaced (never written); a negative is written only if the validator flags it
with exactly the rule its mutation breaks.  Records:

* gold: ``GoldTrace.to_dict()`` + ``label: "gold"`` (+ ``training`` with ``--with-messages``);
* negative (``negatives`` = share of gold traces that get one, written right after its twin):
  the mutated trace + ``label: "negative"`` + ``negative: {mutation, rule, call_id, twin_id, twin_request}``.

The split key is the gold request text (a negative uses its twin's), so a pair never straddles splits.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from typing import Any

import attrs
from datacore import ReportSection, ShardTask, Telemetry

from . import __version__
from .errors import GatlingError
from .models import GoldTrace
from .mutations import Mutator
from .procedural import ProceduralOracle
from .registry import DomainRegistry
from .validator import TraceValidator

__all__ = ["GatlingConfig", "GatlingGenerator"]

ORACLES = ("procedural", "anthropic")


def _in(allowed: tuple[str, ...]) -> Any:
    def check(inst: Any, attr: attrs.Attribute, value: Any) -> None:
        if value not in allowed:
            raise ValueError(f"GatlingConfig.{attr.name}: got {value!r}; allowed: {', '.join(allowed)}")
    return check


def _ratio(inst: Any, attr: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"GatlingConfig.{attr.name}: got {value!r}; allowed: a number in [0, 1]")


def _str_tuple(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value)


def _positive(inst: Any, attr: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"GatlingConfig.{attr.name}: got {value!r}; allowed: an integer >= 1")


@attrs.frozen
class GatlingConfig:
    """What a run makes.  ``negatives``: share of gold traces followed by a hard negative (0..1).

    ``domains``: restrict to these (empty: all).  ``registry_dir``: another registry directory.
    Anthropic oracle settings: ``model``, ``max_tokens``, ``batch_size`` (requests in flight per
    batch), ``base_url`` (None: the API's), ``cache_dir`` (response cache), ``budget_usd``.
    The API key is read from ``ANTHROPIC_API_KEY`` and is never part of the config.
    """

    oracle: str = attrs.field(default="procedural", validator=_in(ORACLES))
    negatives: float = attrs.field(default=0.0, validator=_ratio)
    domains: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    with_messages: bool = False
    registry_dir: str | None = None
    model: str = "claude-3-5-haiku-latest"
    max_tokens: int = attrs.field(default=2048, validator=_positive)
    batch_size: int = attrs.field(default=16, validator=_positive)
    base_url: str | None = None
    cache_dir: str | None = None
    budget_usd: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (stored in the manifest)."""
        d = attrs.asdict(self)
        d["domains"] = list(self.domains)
        return d


class GatlingGenerator:
    """The datacore generator of gatling-sid (picklable: holds only its frozen config)."""

    name = "gatling-sid"
    version = __version__

    def __init__(self, config: GatlingConfig | None = None) -> None:
        self.config = config or GatlingConfig()
        reg = self.registry()  # fail now, in the parent, on a broken registry or unknown domain
        for d in self.config.domains:
            reg.domain(d)
        ProceduralOracle(reg).check(self.config.domains)  # both oracles draw facts procedurally
        if self.config.oracle == "anthropic" and not os.environ.get("ANTHROPIC_API_KEY"):
            raise GatlingError("--oracle anthropic needs the ANTHROPIC_API_KEY environment variable")

    def registry(self) -> DomainRegistry:
        """The (cached) registry this run uses."""
        return DomainRegistry.load(self.config.registry_dir)

    def config_dict(self) -> dict[str, Any]:
        """The config for the manifest (compared on resume), without ``budget_usd``.

        The budget decides how far a run gets, not what it contains (like ``--workers``): a run
        stopped by its budget must be resumable with a larger one, which a recorded budget would
        refuse as a different config.
        """
        d = self.config.to_dict()
        d.pop("budget_usd", None)
        return d

    def split_key(self, record: dict[str, Any]) -> str:
        """Gold: its request text; negative: its gold twin's request text."""
        neg = record.get("negative")
        if isinstance(neg, dict) and isinstance(neg.get("twin_request"), str):
            return neg["twin_request"]
        return record["request"]["text"]

    def _oracle(self, reg: DomainRegistry) -> Any:
        if self.config.oracle == "anthropic":
            from .anthropic_oracle import AnthropicOracle

            return AnthropicOracle(reg, self.config)
        return ProceduralOracle(reg)

    def generate_shard(self, task: ShardTask, telemetry: Telemetry) -> Iterator[dict[str, Any]]:
        """Exactly ``task.count`` validated records, deterministic from ``task.seed``."""
        reg = self.registry()
        oracle = self._oracle(reg)
        if self.config.domains:
            oracle.domain_names = sorted(self.config.domains)
        validator = TraceValidator(reg)
        mutator = Mutator(reg)
        rng = random.Random(task.seed)
        try:
            yield from self._shard(task, telemetry, oracle, validator, mutator, rng)
        finally:
            if hasattr(oracle, "close"):
                oracle.close(telemetry)

    def _shard(self, task: ShardTask, telemetry: Telemetry, oracle: Any, validator: TraceValidator, mutator: Mutator,
               rng: random.Random) -> Iterator[dict[str, Any]]:
        made = 0
        serial = 0
        while made < task.count:
            want = min(self.config.batch_size if self.config.oracle == "anthropic" else 64, task.count - made)
            ids = [f"sid-{task.index:05d}-{serial + k:06d}" for k in range(want)]
            serial += want
            for trace in oracle.make_traces(rng, ids, telemetry):
                if made >= task.count:
                    break
                rep = validator.validate(trace)
                telemetry.count("validated")
                if not rep.ok:  # never written; counted so the report shows the oracle's failure rate
                    telemetry.count("gold_rejected")
                    for v in rep.violations:
                        telemetry.observe("gold_violation", v.rule)
                    continue
                telemetry.count("gold_passed")
                yield self._record(trace, telemetry)
                made += 1
                if made < task.count and self.config.negatives and rng.random() < self.config.negatives:
                    neg = mutator.mutate(trace, rng)
                    if neg is None:
                        continue
                    nrep = validator.validate(neg.trace)
                    if nrep.rules != {neg.rule}:
                        telemetry.count("negative_misflagged")
                        continue
                    telemetry.count("negatives")
                    telemetry.observe("mutation", neg.mutation)
                    telemetry.observe("violation", neg.rule)
                    rec = neg.to_dict()
                    rec["meta"] = {**rec["meta"], "index": task.start + made}
                    yield rec
                    made += 1

    def _record(self, trace: GoldTrace, tel: Telemetry) -> dict[str, Any]:
        tel.count("gold")
        tel.observe("domain", trace.domain)
        tel.observe("intent", trace.intent)
        tel.observe("graph_size", len(trace.graph.calls))
        tel.observe("oracle", trace.meta.get("oracle", "?"))
        for c in trace.graph.calls:
            tel.observe("tool", c.tool)
        rec = trace.to_dict()
        rec["label"] = "gold"
        if self.config.with_messages:
            rec["training"] = trace.to_training_format(self.registry().tools)
        return rec

    def report_sections(self, telemetry: Telemetry) -> list[ReportSection]:
        """Charts for report.html: domains, intents, tools, graph sizes, pass rate, violations."""
        from .report import sections

        return sections(telemetry, len(self.registry().tools))
