"""`AnthropicOracle`: a Claude model writes the request and the tool-call graph (the seed's OracleAgent).

For each trace the oracle draws the facts procedurally (domain, intent, ids, amount, a field to
change), shows the model the domain policy and tool schemas, and asks for
``{"request": ..., "calls": [...]}`` through a forced tool call validated against
:data:`TRACE_SCHEMA` (one repair round, by ``datacore.llm``).  Tool outputs are simulated from
the output schemas exactly as for the procedural oracle, and the whole trace goes through
:class:`~gatling_sid.validator.TraceValidator`.  A reply that is missing, malformed or
violates the policy is counted (``anthropic.rejected`` and the rules it broke) and replaced by
a procedural trace whose lineage says ``procedural-fallback``; the shard still gets its count.

Budget: one client serves every shard a worker process makes, so ``budget_usd`` is not reset
per shard.  Once it is spent, the shard in progress raises
:class:`~datacore.llm.BudgetExceeded`: the run stops with one line, the shards already finished
stay on disk, and every answer paid for is in the response cache, so ``--resume`` with a larger
budget re-asks nothing.  (datacore gives a generator no run-wide state, so with ``--workers W``
each worker process has its own budget: a run may spend up to ``W x budget_usd``.)
The API key comes from ``ANTHROPIC_API_KEY`` and is never written anywhere.

At scale (:class:`~gatling_sid.generator.GatlingConfig` fields):

* ``prompt_cache`` (default True): the static part of every request of a
  domain -- the instructions, the policy and the domain's tool schemas -- is a system block marked
  ``cache_control: ephemeral``, and the user turn holds only that trace's facts, so every request of a
  domain after the first reads the prefix from Anthropic's prompt cache (10% of the input price).
* ``concurrency`` (default ``batch_size``): requests in flight.  The client keeps that many going over
  all the ids ``make_traces`` is given, so with ``batch_size`` as large as a shard no request waits for
  the slowest of a fixed group.
* ``llm_mode="batch"``: the shard's requests go through Message Batches (``datacore.llm.BatchRunner``,
  half price, resumable state under ``cache_dir``); the reply is the forced ``emit_json`` tool input,
  checked against :data:`TRACE_SCHEMA` (no repair round: an invalid reply is rejected and counted).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any

import attrs
from datacore import Telemetry

from .errors import GatlingError
from .models import GoldTrace, ToolCall, ToolCallGraph, UserRequest
from .procedural import ProceduralOracle, _Plan
from .registry import DomainRegistry
from .text import INTENTS
from .validator import TraceValidator

__all__ = ["LLM_MODES", "SYSTEM_PROMPT", "TRACE_SCHEMA", "AnthropicOracle"]

LLM_MODES = ("online", "batch")
_EMIT = "emit_json"  # the tool name datacore.llm's complete_json(method="tool") forces, used for batches too

TRACE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "request": {"type": "string", "minLength": 10, "maxLength": 1500},
        "calls": {
            "type": "array",
            "minItems": 1,
            "maxItems": 12,
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string", "pattern": "^call_[0-9]+$"},
                    "tool": {"type": "string"},
                    "arguments": {"type": "object"},
                    "dependencies": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["id", "tool", "arguments", "dependencies"],
            },
        },
    },
    "required": ["request", "calls"],
}
SYSTEM_PROMPT = """You write training data for tool-using assistants: one realistic user request and the
tool-call graph a careful, policy-compliant assistant would execute for it.
Rules for the graph:
- calls are listed in execution order with ids call_1, call_2, ...; dependencies name earlier calls;
- an argument taken from an earlier call's output is written {"$ref": "call_N.output.<field>"} (list items by
  index: results.0.<field>) and call_N must be among the dependencies;
- every argument must satisfy the tool's input_schema; use only the tools listed;
- obey every policy rule below (verify identity first and feed its session_token to writes, get an approval
  above the limit, confirm destructive actions with the user, only message mailboxes of the domain host).
The request must sound like a real person and vary in wording and tone, and it must state every fact the calls
use literally (the subject id, date of birth and last four digits for an identity check, record ids, the
mailbox a message goes to): an argument value the user never gave, and no earlier tool output returned, is an
invented detail and the trace is rejected."""
INTENT_HINTS = {
    "account_inquiry": "a read-only question about their record",
    "account_update": "change one field of an existing record",
    "transaction": "move money (the amount given)",
    "cancellation": "irreversibly close/cancel a record",
    "creation": "open a new record",
    "report": "find records and send an internal summary",
    "account_review": "review their profile and records, then update one field",
}


# One client per worker process and client settings (keyed by pid too: a forked child must not
# reuse its parent's client, whose event-loop thread does not exist in the child).
_CLIENTS: dict[tuple[Any, ...], Any] = {}


def _close_clients() -> None:
    for k in [k for k in _CLIENTS if k[0] == os.getpid()]:
        _CLIENTS.pop(k).close()


def _shared_client(config: Any) -> Any:
    from datacore.llm import AnthropicClient

    if not _CLIENTS:
        atexit.register(_close_clients)
    # The API key's digest too: a process whose environment now holds another key gets a new client.
    secret = hashlib.sha256(os.environ.get("ANTHROPIC_API_KEY", "").encode()).hexdigest()
    in_flight = _concurrency(config)
    key = (os.getpid(), secret, config.base_url, config.cache_dir, config.budget_usd, in_flight)
    c = _CLIENTS.get(key)
    if c is None:
        c = _CLIENTS[key] = AnthropicClient(
            base_url=config.base_url, cache_dir=config.cache_dir, budget_usd=config.budget_usd, max_in_flight=in_flight
        )
    return c


def _concurrency(config: Any) -> int:
    n = config.concurrency or config.batch_size
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise GatlingError(f"concurrency: expected an integer >= 1, got {n!r}")
    return n


class AnthropicOracle:
    """Model-written traces through ``datacore.llm.AnthropicClient`` (see the module docstring)."""

    name = "anthropic"

    def __init__(self, registry: DomainRegistry, config: Any, client: Any = None) -> None:
        self.registry = registry
        self.config = config
        self.procedural = ProceduralOracle(registry)
        self.domain_names = self.procedural.domain_names
        self.validator = TraceValidator(registry)
        self._client = client
        self._own = client is None  # the process-wide client is shared by shards, not closed by one
        self.mode = config.llm_mode
        if self.mode not in LLM_MODES:
            raise GatlingError(f"llm_mode: got {self.mode!r}; allowed: {', '.join(LLM_MODES)}")
        if self.mode == "batch" and not config.cache_dir:
            raise GatlingError("llm_mode 'batch' needs a cache_dir (the batch state that makes a run resumable lives there)")
        self.prompt_cache = bool(config.prompt_cache)
        self._static: dict[str, list[dict[str, Any]]] = {}

    @property
    def client(self) -> Any:
        """The LLM client (the worker process's shared one, made on first use, unless one was given)."""
        if self._client is None:
            self._client = _shared_client(self.config)
        return self._client

    def prompt(self, domain: str, intent: str, slots: dict[str, Any]) -> Any:
        """The LLMRequest for one trace."""
        from datacore.llm import LLMRequest

        d = self.registry.domain(domain)
        facts = {
            k: slots[k]
            for k in (
                "subject_id",
                "entity_id",
                "name",
                "dob",
                "last4",
                "amount",
                "currency",
                "field_key",
                "value_raw",
                "reason_code",
                "recipient",
            )
        }
        tools = [{"name": t.name, "description": t.description, "input_schema": t.input_schema} for t in d.tools.values()]
        meta = {"domain": domain, "intent": intent}
        head = f"Domain: {domain}\nIntent: {intent} ({INTENT_HINTS[intent]})\nFACTS: {json.dumps(facts, sort_keys=True)}\n"
        if self.prompt_cache:
            return LLMRequest(
                model=self.config.model,
                messages=[{"role": "user", "content": head + "Write the request and the call graph."}],
                system=self._static_blocks(domain, tools),
                max_tokens=self.config.max_tokens,
                temperature=1.0,
                metadata=meta,
            )
        user = head + f"TOOLS: {json.dumps(tools, sort_keys=True)}\nWrite the request and the call graph."
        return LLMRequest(
            model=self.config.model,
            messages=[{"role": "user", "content": user}],
            system=SYSTEM_PROMPT + "\n\n" + d.policy.render(),
            max_tokens=self.config.max_tokens,
            temperature=1.0,
            metadata=meta,
        )

    def _static_blocks(self, domain: str, tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The system blocks every request of ``domain`` shares, the last one a prompt-cache breakpoint."""
        got = self._static.get(domain)
        if got is None:
            policy = self.registry.domain(domain).policy.render()
            got = self._static[domain] = [
                {"type": "text", "text": SYSTEM_PROMPT},
                {
                    "type": "text",
                    "text": f"{policy}\n\nTOOLS of the {domain} domain: {json.dumps(tools, sort_keys=True)}",
                    "cache_control": {"type": "ephemeral"},
                },
            ]
        return got

    def to_trace(self, obj: dict[str, Any], trace_id: str, domain: str, intent: str, slots: dict[str, Any]) -> GoldTrace:
        """Turn the model's JSON into a trace with simulated outputs (raises on an unusable reply)."""
        d = self.registry.domain(domain)
        role_of = {name: role for role, name in d.roles.items()}
        subj, ent = f"{d.subject}_id", f"{d.entity}_id"
        ctx = {subj: slots["subject_id"], ent: slots["entity_id"], "currency": slots["currency"], "full_name": slots["name"]}
        plan = _Plan(random.Random(hash_seed(trace_id)), self.registry, d, ctx)
        for c in obj["calls"]:
            if c["tool"] not in role_of:
                raise ValueError(f"tool {c['tool']!r} is not a {domain} tool")
            call = ToolCall(c["id"], c["tool"], dict(c["arguments"]), tuple(c["dependencies"]))
            resolved = ToolCallGraph(()).resolve_arguments(call, plan.outputs)
            out = plan.simulate(role_of[c["tool"]], d.tools[c["tool"]].output_schema, resolved)
            plan.calls.append(ToolCall(call.id, call.tool, call.arguments, call.dependencies, out))
            plan.outputs[call.id] = out
        req_slots = {k: slots[k] for k in ("subject_id", "entity_id", "amount", "currency", "field_key", "recipient")}
        return GoldTrace(
            trace_id,
            domain,
            intent,
            UserRequest(obj["request"], intent, domain, req_slots),
            d.policy,
            ToolCallGraph(tuple(plan.calls)),
            {"oracle": self.name, "model": self.config.model},
        )

    def make_traces(self, rng: random.Random, trace_ids: list[str], telemetry: Telemetry | None = None) -> list[GoldTrace]:
        """One trace per id: the model's where it is valid, a procedural fallback where not."""
        tel = telemetry if telemetry is not None else Telemetry()
        jobs = []
        for tid in trace_ids:
            domain, intent = rng.choice(self.domain_names), rng.choice(INTENTS)
            slots = self.procedural.slots(rng, self.registry.domain(domain))
            jobs.append((tid, domain, intent, slots))
        reqs = [self.prompt(dm, it, sl) for _, dm, it, sl in jobs]
        replies = (
            self._ask_batch(reqs, trace_ids)
            if self.mode == "batch"
            else self.client.complete_json_many(reqs, TRACE_SCHEMA, method="tool")
        )
        if any(getattr(resp, "error_kind", None) == "budget" for _, resp in replies):
            # Stop, rather than fill the rest of the run with procedural fallbacks nobody asked for.
            from datacore.llm import BudgetExceeded

            c = self.client
            raise BudgetExceeded(float(getattr(c, "spent_usd", 0.0)), float(getattr(c, "budget_usd", None) or 0.0))
        allow = self.config.fallback == "procedural"
        if not allow:
            down = [resp for _, resp in replies if getattr(resp, "error_kind", None) in ("connection", "timeout")]
            if down:
                raise GatlingError(
                    f"oracle unreachable ({getattr(down[0], 'error', '') or 'connection error'}); pass "
                    "--fallback procedural to make procedural traces instead"
                )
        out = []
        for (tid, domain, intent, slots), (obj, resp) in zip(jobs, replies):
            tel.count("anthropic.requests")
            reason = None
            trace = None
            if obj is None:
                reason = f"llm_error:{getattr(resp, 'error_kind', None) or 'invalid'}"
            else:
                try:
                    trace = self.to_trace(obj, tid, domain, intent, slots)
                except (KeyError, ValueError, TypeError, IndexError, AttributeError, GatlingError) as e:
                    # A malformed reference ({"$ref": 5}, "call_1.nowhere") is the model's fault, not the run's.
                    reason = f"unusable:{type(e).__name__}"
                if trace is not None:
                    rep = self.validator.validate(trace)
                    if not rep.ok:
                        reason = "policy_or_schema"
                        for v in rep.violations:
                            tel.observe("anthropic.rejected_rule", v.rule)
                        trace = None
            if trace is None:
                tel.count("anthropic.rejected")
                tel.observe("anthropic.rejected_reason", reason)
                if not allow:  # dropped and counted; the shard asks for more
                    continue
                tel.count("anthropic.fallback")
                trace = self.procedural.make_trace(rng, tid, domain, intent, {"oracle": "procedural-fallback"})
                trace = GoldTrace(
                    trace.trace_id,
                    trace.domain,
                    trace.intent,
                    trace.request,
                    trace.policy,
                    trace.graph,
                    {"oracle": "procedural-fallback", "fallback_reason": reason},
                )
            else:
                tel.count("anthropic.accepted")
            out.append(trace)
        return out

    def _ask_batch(self, reqs: list[Any], trace_ids: list[str]) -> list[tuple[Any, Any]]:
        """The requests through Message Batches: ``(obj or None, response)`` per request, in order."""
        import jsonschema
        from datacore.llm import BatchRunner

        tool = {"name": _EMIT, "description": "Return the answer as this tool's input.", "input_schema": TRACE_SCHEMA}
        forced = [attrs.evolve(r, tools=[*(r.tools or []), tool], tool_choice={"type": "tool", "name": _EMIT}) for r in reqs]
        digest = hashlib.sha256("\n".join([self.config.model, *trace_ids]).encode()).hexdigest()[:24]
        state = Path(self.config.cache_dir) / "gatling-batches" / f"{digest}.json"
        state.parent.mkdir(parents=True, exist_ok=True)
        runner = BatchRunner(self.client, state, poll_interval_s=float(self.config.batch_poll_s))
        check = jsonschema.Draft202012Validator(TRACE_SCHEMA)
        out: list[tuple[Any, Any]] = []
        for resp in runner.run(forced):
            obj = None
            if resp.ok:
                got = next((u.get("input") for u in resp.tool_uses if u.get("name") == _EMIT), None)
                if isinstance(got, dict) and check.is_valid(got):
                    obj = got
            out.append((obj, resp))
        return out

    def close(self, telemetry: Telemetry) -> None:
        """Add the client's counters since the last shard (calls, tokens, cost, retries, cache hits).

        A client handed to the constructor is closed; the process-wide shared one stays open for
        the worker's next shard (its counters are reset, so each shard reports only its own).
        """
        if self._client is not None:
            telemetry.merge(self._client.telemetry(reset=True))
            if not self._own:
                self._client.close()
            self._client = None


def hash_seed(text: str) -> int:
    """A stable 64-bit seed from a string (Python's hash() is salted per process)."""
    import xxhash

    return xxhash.xxh64_intdigest(text.encode())
