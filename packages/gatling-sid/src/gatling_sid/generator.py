"""`GatlingGenerator`: gold traces (and labelled hard negatives) on the datacore generator protocol.

Each shard draws from ``random.Random(task.seed)`` only, so the dataset is byte-identical for
any worker count.  Every trace is validated before it is written: a gold trace that fails is
counted and replaced (never written; 500 failures in a row stop the shard with one line); a
negative is always written, and the validator's verdict on it is counted
(``negative_flagged_exactly`` / ``negative_flagged_with_others`` / ``negative_missed``) and kept in
the record (``negative.validator_rules``), so a detection figure cannot be inflated by
dropping what the validator misses.  Records:

* gold: ``GoldTrace.to_dict()`` + ``label: "gold"`` (+ ``training`` with ``--with-messages``);
* negative (``negatives`` = share of gold traces that get one, written right after its twin):
  the mutated trace + ``label: "negative"`` + ``negative: {mutation, rule, call_id, twin_id, twin_request}``.

The split key is the gold request text (a negative uses its twin's), so a pair never straddles splits.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import attrs
from datacore import STRATA, ConfigError, ReportSection, ShardTask, Target, Telemetry

from . import __version__
from .dialogue import BEHAVIOURS, DialogueMaker
from .errors import GatlingError
from .models import GoldTrace
from .mutations import Mutator
from .procedural import INTENTS, ProceduralOracle
from .registry import DomainRegistry
from .user_sim import USER_SIMULATORS
from .validator import TraceValidator
from .values import FastRandom

__all__ = ["GatlingConfig", "GatlingGenerator"]

ORACLES = ("procedural", "anthropic")
LLM_MODES = ("online", "batch")  # the anthropic oracle's (kept equal to anthropic_oracle.LLM_MODES by a test)
_MAX_REJECTED_IN_A_ROW = 500
_POLICY_DICTS: dict[int, tuple[Any, dict[str, Any]]] = {}  # id(policy) -> (policy, its to_dict())


class _ConfigValueError(ConfigError, ValueError):
    """A bad GatlingConfig value (a datacore ConfigError; still a ValueError for callers of 0.1)."""


def _in(allowed: tuple[str, ...]) -> Any:
    def check(inst: Any, attr: attrs.Attribute, value: Any) -> None:
        if value not in allowed:
            raise _ConfigValueError(f"GatlingConfig.{attr.name}: got {value!r}; allowed: {', '.join(allowed)}")

    return check


def _ratio(inst: Any, attr: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise _ConfigValueError(f"GatlingConfig.{attr.name}: got {value!r}; allowed: a number in [0, 1]")


def _str_tuple(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value)


def _positive(inst: Any, attr: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _ConfigValueError(f"GatlingConfig.{attr.name}: got {value!r}; allowed: an integer >= 1")


def _opt_positive(inst: Any, attr: attrs.Attribute, value: Any) -> None:
    if value is not None:
        _positive(inst, attr, value)


def _positive_seconds(inst: Any, attr: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value == float("inf"):
        raise _ConfigValueError(f"GatlingConfig.{attr.name}: got {value!r}; allowed: a number of seconds > 0")


def _bool(inst: Any, attr: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, bool):
        raise _ConfigValueError(f"GatlingConfig.{attr.name}: got {value!r}; allowed: true or false")


@attrs.frozen
class GatlingConfig:
    """What a run makes.  ``negatives``: share of gold traces followed by a hard negative (0..1).

    ``domains``: restrict to these (empty: all).  ``registry_dir``: another registry directory.
    Anthropic oracle settings: ``model``, ``max_tokens``, ``batch_size`` (requests in flight per
    batch), ``base_url`` (None: the API's), ``cache_dir`` (response cache), ``budget_usd``.
    The API key is read from ``ANTHROPIC_API_KEY`` and is never part of the config.
    ``fallback``: None (default) -- an unreachable oracle stops the run with one line and a model
    reply the validator rejects is dropped and counted; ``"procedural"`` -- both are replaced by
    procedural traces whose lineage says so (``meta.oracle == "procedural-fallback"``), and the
    choice is in the manifest's config.
    ``dialogues``: share of gold traces made as multi-turn dialogues (procedural oracle; the
    behaviours of :mod:`gatling_sid.dialogue` in turn, each a ``dialogue=<behaviour>`` stratum).
    LLM path at scale (anthropic oracle, see :mod:`gatling_sid.anthropic_oracle`): ``concurrency``
    (requests in flight; None: ``batch_size``; when set, a shard's requests go out together, so none
    waits for the slowest of a group), ``llm_mode`` (``online`` or ``batch``: Message Batches, needs
    ``cache_dir``), ``prompt_cache`` (the static system + tools block marked for Anthropic's prompt
    cache) and ``batch_poll_s`` (seconds between polls of a batch).
    ``user_simulator``: who writes the user turns of the dialogues: ``procedural`` (default), or a model
    playing the user through ``datacore.llm`` (``anthropic``: AnthropicClient, ``openai``: an
    OpenAI-compatible server at ``base_url``), with ``model``, ``cache_dir``, ``budget_usd`` and
    ``fallback`` as for the oracle (see :mod:`gatling_sid.user_sim`).
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
    fallback: str | None = attrs.field(default=None, validator=_in((None, "procedural")))  # type: ignore[arg-type]
    dialogues: float = attrs.field(default=0.0, validator=_ratio)
    concurrency: int | None = attrs.field(default=None, validator=_opt_positive)
    llm_mode: str = attrs.field(default="online", validator=_in(LLM_MODES))
    prompt_cache: bool = attrs.field(default=True, validator=_bool)
    batch_poll_s: float = attrs.field(default=30.0, validator=_positive_seconds)
    user_simulator: str = attrs.field(default="procedural", validator=_in(USER_SIMULATORS))

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (stored in the manifest)."""
        d = attrs.asdict(self)
        d["domains"] = list(self.domains)
        return d


def _probe(base_url: str, timeout: float = 5.0) -> None:
    """Fail fast, in the parent, when the oracle's host does not accept connections."""
    import socket
    from urllib.parse import urlsplit

    u = urlsplit(base_url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise GatlingError(f"--base-url {base_url!r}: expected an http(s):// URL")
    port = u.port or (443 if u.scheme == "https" else 80)
    try:
        socket.create_connection((u.hostname, port), timeout=timeout).close()
    except OSError as e:
        raise GatlingError(
            f"--base-url {base_url}: oracle unreachable ({e.strerror or e}); pass --fallback procedural "
            "to make procedural traces instead (recorded in the manifest and in each record's meta)"
        ) from None


class _Tally:
    """Integer counters and histograms kept in plain dicts, added to a datacore Telemetry at once.

    The same totals as calling ``Telemetry.count`` / ``observe`` per record (integer steps only; a
    Telemetry's output is sorted, so the order of the additions does not show), for less per call.
    """

    __slots__ = ("counters", "histograms")

    def __init__(self) -> None:
        self.counters: dict[str, int] = {}
        self.histograms: dict[str, dict[str, int]] = {}

    def count(self, name: str, by: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + by

    def observe(self, name: str, bucket: object, by: int = 1) -> None:
        h = self.histograms.get(name)
        if h is None:
            h = self.histograms[name] = {}
        k = str(bucket)
        h[k] = h.get(k, 0) + by

    def add_to(self, telemetry: Telemetry) -> None:
        for k, v in self.counters.items():
            telemetry.count(k, v)
        for name, h in self.histograms.items():
            telemetry.add_histogram(name, h)
        self.counters, self.histograms = {}, {}


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
        if self.config.oracle == "anthropic" and self.config.llm_mode == "batch" and not self.config.cache_dir:
            raise GatlingError("--llm-mode batch needs --cache-dir (the batch state that makes a run resumable lives there)")
        llm_user = self.config.user_simulator != "procedural" and bool(self.config.dialogues)
        if self.config.user_simulator == "anthropic" and llm_user and not os.environ.get("ANTHROPIC_API_KEY"):
            raise GatlingError("--user-simulator anthropic needs the ANTHROPIC_API_KEY environment variable")
        if self.config.user_simulator == "openai" and llm_user and not self.config.base_url:
            raise GatlingError("--user-simulator openai needs --base-url (an OpenAI-compatible server, with /v1)")
        uses_llm = self.config.oracle == "anthropic" or llm_user
        if uses_llm and self.config.base_url and self.config.fallback is None:
            _probe(self.config.base_url)

    def registry(self) -> DomainRegistry:
        """The (cached) registry this run uses."""
        return DomainRegistry.load(self.config.registry_dir)

    def config_dict(self) -> dict[str, Any]:
        """The config for the manifest (compared on resume), without ``budget_usd`` and ``batch_poll_s``.

        The budget decides how far a run gets, not what it contains (like ``--workers``): a run
        stopped by its budget must be resumable with a larger one, which a recorded budget would
        refuse as a different config; the poll interval only decides how often a batch is asked
        about.  With the procedural oracle the LLM-path settings (``concurrency``, ``llm_mode``,
        ``prompt_cache``) change nothing and are left out too, so a procedural run's manifest (and
        resume of a 0.2 run made before they existed) is unchanged.  With the anthropic oracle they
        are kept: they change the prompts (prompt cache), the repair round (batch mode) and the order
        of the shard's draws (a set ``concurrency`` asks for the whole shard at once).
        """
        d = self.config.to_dict()
        d.pop("budget_usd", None)
        d.pop("batch_poll_s", None)
        if self.config.oracle == "procedural":
            for k in ("concurrency", "llm_mode", "prompt_cache"):
                d.pop(k, None)
        if d.get("user_simulator") == "procedural":
            d.pop("user_simulator")  # a run without the LLM user simulator keeps its 0.2 manifest
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
        rng = FastRandom(task.seed)  # the same draws as random.Random, faster
        sim = None
        if self.config.user_simulator != "procedural" and self.config.dialogues:
            from .user_sim import LLMUserSimulator

            sim = LLMUserSimulator(reg, self.config)
        tel = _Tally()  # the per-record counts, added to ``telemetry`` once at the end of the shard
        try:
            if sim is None:
                yield from self._shard(task, tel, oracle, validator, mutator, rng, llm_telemetry=telemetry)
            else:  # the shard's dialogues go to the model together (rounds of complete_many), then in order
                items = list(self._shard(task, tel, oracle, validator, mutator, rng, True, telemetry))
                todo = [x for x in items if isinstance(x, GoldTrace)]
                done = iter(sim.rewrite_many(todo, telemetry))
                for x in items:
                    yield self._record(next(done), tel) if isinstance(x, GoldTrace) else x
        finally:
            tel.add_to(telemetry)
            if hasattr(oracle, "close"):
                oracle.close(telemetry)
            if sim is not None:
                sim.close(telemetry)

    def _neg_fraction(self) -> Fraction:
        """The share q = R / (1 + R) of records that are negatives, as an exact fraction (computed once)."""
        q = self.__dict__.get("_q")
        if q is None:
            r = Fraction(self.config.negatives).limit_denominator(10**6)
            q = self.__dict__["_q"] = r / (1 + r)
        return q

    def _is_negative_slot(self, j: int) -> bool:
        """Record ``j`` of the run (global index) is a negative: the schedule floor((j+1)q) > floor(jq).

        With q <= 1/2 two negative slots are never adjacent, so the record before one is a gold
        trace: its twin.  The schedule depends on the index alone, so the run's shares are exact
        up to one record per shard whatever the worker count (a shard whose first slot is a
        negative makes a gold trace there instead: its twin would be in another shard).
        """
        q = self._neg_fraction()
        return q > 0 and (j + 1) * q.numerator // q.denominator > j * q.numerator // q.denominator

    def _dialogue_for(self, j: int) -> str | None:
        """The dialogue behaviour of the gold record ``j``, or None (a single-turn trace).

        Among the gold records not followed by a negative (a negative's twin is always a
        single-turn trace), number f is a dialogue when floor((f+1)d) > floor(fd); the behaviours
        follow in turn.  Index arithmetic only, so any worker count agrees.
        """
        d = self.config.dialogues
        if not d or self.config.oracle != "procedural" or self._is_negative_slot(j) or self._is_negative_slot(j + 1):
            return None
        q = self._neg_fraction()
        # free gold records before j (a gold not followed by a negative): golds before j minus the
        # negatives at 1..j (each negative's predecessor is a gold, as q <= 1/2)
        f = j - j * q.numerator // q.denominator - (j + 1) * q.numerator // q.denominator
        dd = Fraction(d).limit_denominator(10**6)
        lo, hi = f * dd.numerator // dd.denominator, (f + 1) * dd.numerator // dd.denominator
        return BEHAVIOURS[lo % len(BEHAVIOURS)] if hi > lo else None

    def _intent_for(self, j: int) -> str:
        """Intent of the gold trace at record ``j``: the gold records cycle through the intents."""
        q = self._neg_fraction()
        gold_before = j - j * q.numerator // q.denominator
        return INTENTS[gold_before % len(INTENTS)]

    def targets(self, n: int) -> list[Target]:
        """What a run of ``n`` promises: the gold/negative shares, and (procedural oracle) equal intent shares."""
        q = float(self._neg_fraction())
        # 2% plus the rounding a small run cannot avoid (5 records cannot hold 7 intents at 1/7 each)
        tol_label = min(1.0, 0.02 + 2.0 / max(1, n))
        tol_intent = min(1.0, 0.02 + len(INTENTS) / max(1, n))
        out = [Target("label=gold", 1.0 - q, tol_label)]
        if q:
            out.append(Target("label=negative", q, tol_label))
        if self.config.oracle == "procedural" and not self.config.dialogues:
            out += [Target(f"intent={i}", (1.0 - q) / len(INTENTS), tol_intent) for i in INTENTS]
        elif self.config.oracle == "procedural":  # count the schedule: dialogues take some gold slots
            counts: dict[str, int] = {}
            for j in range(n):
                if self._is_negative_slot(j):
                    continue
                b = self._dialogue_for(j)
                key = f"dialogue={b}" if b else f"intent={self._intent_for(j)}"
                counts[key] = counts.get(key, 0) + 1
            tol = min(1.0, 0.02 + (len(INTENTS) + len(BEHAVIOURS)) / max(1, n))
            out += [Target(k, v / max(1, n), tol) for k, v in sorted(counts.items())]
        return out

    def _shard(
        self,
        task: ShardTask,
        telemetry: Telemetry | _Tally,
        oracle: Any,
        validator: TraceValidator,
        mutator: Mutator,
        rng: random.Random,
        defer_dialogues: bool = False,
        llm_telemetry: Telemetry | None = None,
    ) -> Iterator[Any]:
        """The shard's records; ``telemetry`` takes the per-record counts, ``llm_telemetry`` (default: the
        same) what the LLM oracle counts (costs are floats, summed exactly by a datacore Telemetry)."""
        made = 0
        serial = 0
        rejected_in_a_row = 0
        pending: list[GoldTrace] = []
        last_gold: GoldTrace | None = None
        procedural = isinstance(oracle, ProceduralOracle)
        dialogues: DialogueMaker | None = None
        while made < task.count:
            j = task.start + made
            if last_gold is not None and self._is_negative_slot(j):
                neg = mutator.mutate(last_gold, rng)
                last_gold = None
                if neg is not None:
                    yield self._negative(neg, validator, telemetry, j)
                    made += 1
                    continue
                telemetry.count("negative_not_applicable")
            if procedural:
                tid = f"sid-{task.index:05d}-{serial:06d}"
                serial += 1
                behaviour = self._dialogue_for(j)
                if behaviour is not None:
                    if dialogues is None:
                        dialogues = DialogueMaker(oracle)
                    trace = dialogues.make(rng, tid, behaviour, rng.choice(oracle.domain_names))
                else:
                    trace = oracle.make_trace(rng, tid, None, self._intent_for(j))
            else:
                if not pending:
                    whole = self.config.concurrency is not None or self.config.llm_mode == "batch"
                    want = task.count - made if whole else min(self.config.batch_size, task.count - made)
                    ids = [f"sid-{task.index:05d}-{serial + k:06d}" for k in range(want)]
                    serial += want
                    pending = list(oracle.make_traces(rng, ids, llm_telemetry if llm_telemetry is not None else telemetry))
                    if not pending:
                        rejected_in_a_row += len(ids)
                        self._give_up(task, rejected_in_a_row, None)
                        continue
                trace = pending.pop(0)
            rep = validator.validate(trace)
            telemetry.count("validated")
            if not rep.ok:  # never written; counted so the report shows the oracle's failure rate
                telemetry.count("gold_rejected")
                for v in rep.violations:
                    telemetry.observe("gold_violation", v.rule)
                rejected_in_a_row += 1
                self._give_up(task, rejected_in_a_row, rep)
                continue
            rejected_in_a_row = 0
            telemetry.count("gold_passed")
            # defer_dialogues: a dialogue comes back as a trace (its user turns are rewritten before it is recorded)
            yield trace if defer_dialogues and "dialogue" in trace.meta else self._record(trace, telemetry)
            made += 1
            last_gold = trace

    @staticmethod
    def _give_up(task: ShardTask, rejected_in_a_row: int, rep: Any) -> None:
        if rejected_in_a_row < _MAX_REJECTED_IN_A_ROW:
            return
        last = ""
        if rep is not None and rep.violations:
            v0 = rep.violations[0]
            last = f" (last: {v0.rule} at {v0.call_id or 'request'}: {v0.message})"
        raise GatlingError(f"shard {task.index}: {rejected_in_a_row} gold traces in a row failed or were rejected{last}")

    def _negative(self, neg: Any, validator: TraceValidator, telemetry: Telemetry | _Tally, j: int) -> dict[str, Any]:
        # Written whatever the validator says (issue 17: a negative is never dropped because the
        # validator misses it); the verdict is counted and kept in the record.
        nrep = validator.validate(neg.trace)
        if nrep.rules == {neg.rule}:
            telemetry.count("negative_flagged_exactly")
        elif neg.rule in nrep.rules:
            telemetry.count("negative_flagged_with_others")
        else:
            telemetry.count("negative_missed")
            telemetry.observe("negative_missed_mutation", neg.mutation)
        telemetry.count("negatives")
        telemetry.observe("mutation", neg.mutation)
        telemetry.observe("violation", neg.rule)
        telemetry.observe(STRATA, "label=negative")
        rec = neg.to_dict()
        rec["negative"]["validator_rules"] = sorted(nrep.rules)
        rec["meta"] = {**rec["meta"], "index": j}
        return rec

    def _record(self, trace: GoldTrace, tel: Telemetry | _Tally) -> dict[str, Any]:
        tel.count("gold")
        tel.observe("domain", trace.domain)
        tel.observe("intent", trace.intent)
        tel.observe(STRATA, "label=gold")
        dia = trace.meta.get("dialogue")
        if isinstance(dia, dict):
            tel.observe(STRATA, f"dialogue={dia['behaviour']}")
            tel.observe("dialogue", dia["behaviour"])
        elif self.config.oracle == "procedural":
            tel.observe(STRATA, f"intent={trace.intent}")
        tel.observe("graph_size", len(trace.graph.calls))
        tel.observe("oracle", trace.meta.get("oracle", "?"))
        us = trace.meta.get("user_simulator")
        if isinstance(us, dict):
            tel.observe("user_simulator", us.get("kind", "?"))
        for c in trace.graph.calls:
            tel.observe("tool", c.tool)
        rec = {
            "trace_id": trace.trace_id,
            "domain": trace.domain,
            "intent": trace.intent,
            "request": trace.request.to_dict(),
            "policy": self._policy_dict(trace.policy),
            "graph": trace.graph.to_dict(),
            "meta": trace.meta,
            "label": "gold",
        }  # = trace.to_dict() + label, the domain's policy encoded once
        if self.config.with_messages:
            rec["training"] = trace.to_training_format(self.registry().tools)
        return rec

    @staticmethod
    def _policy_dict(policy: Any) -> dict[str, Any]:
        """``policy.to_dict()``, made once per policy object in this process (a record only reads it)."""
        got = _POLICY_DICTS.get(id(policy))
        if got is None or got[0] is not policy:
            if len(_POLICY_DICTS) > 4096:  # many one-off policies (tests, imported domains): start over
                _POLICY_DICTS.clear()
            got = _POLICY_DICTS[id(policy)] = (policy, policy.to_dict())
        return got[1]

    def report_sections(self, telemetry: Telemetry) -> list[ReportSection]:
        """Charts for report.html: domains, intents, tools, graph sizes, pass rate, violations."""
        from .report import sections

        return sections(telemetry, len(self.registry().tools))
