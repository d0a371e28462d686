"""`ProceduralOracle`: the offline oracle.  Requests from intent templates, graphs from a planner.

For a domain and an intent the planner lays out the calls the domain's policy demands
(identity check before writes, approval above the limit, confirmation before destructive
calls, internal-only recipients), wires later arguments to earlier outputs with ``$ref``s,
fills literal arguments from the tool schemas, and simulates each tool's output (consistent
with its inputs: ``get_account(ACC-1)`` returns ``ACC-1``).  Everything is drawn from the
``random.Random`` it is handed, so a seed fixes the trace.
"""

from __future__ import annotations

import random
from typing import Any

from .errors import GatlingError, RegistryError
from .models import REF_KEY, GoldTrace, ToolCall, ToolCallGraph, UserRequest, parse_ref, resolve_path
from .registry import PLANNER_ROLES, Domain, DomainRegistry
from .state import World
from .text import INTENTS, compose, has_token, humanize
from .values import PAGE_SIZES, _compile_pattern, said_value, value_for

__all__ = ["INTENTS", "ProceduralOracle"]

MAILBOXES = ("support", "reports", "ops-team", "compliance", "billing", "case-review", "service-desk", "records")
MEMO_KINDS = ("Invoice", "Order", "Booking ref", "Policy", "Case", "Receipt", "Contract")
QUERIES = ("recent", "open items", "last quarter", "pending", "this year", "flagged", "renewals", "high value")
_FORCED = {"verified": True, "confirmed": True, "delivered": True}


def ref(call_id: str, path: str) -> dict[str, str]:
    """A reference argument ``{"$ref": "<call_id>.output.<path>"}``."""
    return {REF_KEY: f"{call_id}.output.{path}"}


def _resolve(args: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
    """``args`` with every reference replaced by its value (as ``ToolCallGraph.resolve_arguments``)."""
    for v in args.values():  # is_ref, inline (the planner's hot path)
        if type(v) is dict and len(v) == 1 and REF_KEY in v:
            break
    else:
        return args
    res = {}
    for k, v in args.items():
        if type(v) is dict and len(v) == 1 and REF_KEY in v:
            cid, path = parse_ref(v[REF_KEY])
            res[k] = resolve_path(outputs[cid], path)
        else:
            res[k] = v
    return res


class _Plan:
    """Accumulates calls; executes each against the trace's world as it is added."""

    def __init__(
        self, rng: random.Random, registry: DomainRegistry, domain: Domain, ctx: dict[str, Any], world: World | None = None
    ) -> None:
        self.rng, self.registry, self.domain, self.ctx, self.world = rng, registry, domain, ctx, world
        self.calls: list[ToolCall] = []
        self.outputs: dict[str, Any] = {}
        self.problems: list[tuple[str, str, str]] = []

    def add(self, role: str, args: dict[str, Any], deps: tuple[str, ...] = ()) -> str:
        tool = self.domain.tool(role)
        cid = f"call_{len(self.calls) + 1}"
        resolved = _resolve(args, self.outputs)
        if self.world is None:  # the LLM oracle's path: outputs simulated from the schemas
            out = self.simulate(role, tool.output_schema, resolved)
        else:
            out, probs = self.world.execute(tool.name, resolved)
            self.problems += [(r, cid, m) for r, m in probs]
        self.calls.append(ToolCall(cid, tool.name, args, deps, out))
        self.outputs[cid] = out
        return cid

    def simulate(self, role: str, schema: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
        rng, ctx = self.rng, self.ctx
        out: dict[str, Any] = {}
        for name, sub in schema["properties"].items():
            if name in _FORCED:
                out[name] = _FORCED[name]
            elif name == "results":
                n = rng.randint(1, 4)
                ent = f"{self.domain.entity}_id"
                item = sub["items"]
                out[name] = [
                    {ent: ctx[ent] if i == 0 else value_for(rng, item["properties"][ent]), "status": "active"} for i in range(n)
                ]
            elif name == "total":
                out[name] = len(out.get("results", ())) + rng.randint(0, 3)
            elif name in args and name != "status":
                out[name] = args[name]
            elif name in ctx:
                out[name] = ctx[name]
            elif name == "status":
                out[name] = {"approval": "approved", "money": "completed", "destroy": "closed"}.get(role, "active")
            elif name == "notes":
                out[name] = value_for(rng, sub, "notes")
            else:
                out[name] = value_for(rng, sub, name)
        return out


def _where(d: Domain, tool: str, which: str, path: str) -> str:
    i = list(d.tools).index(tool)
    return f"{d.source}: tools[{i}] ({tool}): {which}" + (f"/{path}" if path else "")


def check_domain(d: Domain) -> None:
    """Refuse, naming file, tool and field, a domain the procedural planner cannot draw values for.

    The registry loader checks that schemas are valid JSON Schemas; this checks what the planner
    needs beyond that: every property has a ``type`` or ``enum`` it can generate (a ``$ref`` is
    not followed), every ``pattern`` is in the subset :func:`~gatling_sid.values.from_pattern`
    draws from, and the ids and enums the planner reads exist.
    """
    missing = [r for r in PLANNER_ROLES if r not in d.roles]
    if missing:
        raise RegistryError(f"{d.source}: tools: the procedural oracle needs a tool for role(s) {', '.join(missing)}")
    for name, t in d.tools.items():
        for which in ("input_schema", "output_schema"):
            stack: list[tuple[Any, str]] = [(getattr(t, which), "")]
            while stack:
                node, path = stack.pop()
                if not isinstance(node, dict):
                    continue
                if (
                    path
                    and "enum" not in node
                    and node.get("type") not in ("string", "integer", "number", "boolean", "array", "object")
                ):
                    raise RegistryError(
                        f"{_where(d, name, which, path)}: the procedural oracle needs a 'type' or an "
                        f"'enum' here to draw a value (got keys {', '.join(sorted(node)) or 'none'})"
                    )
                if isinstance(node.get("pattern"), str) and node.get("format") != "date":
                    try:
                        _compile_pattern(node["pattern"])
                    except GatlingError as e:
                        raise RegistryError(f"{_where(d, name, which, path + '/pattern' if path else 'pattern')}: {e}") from None
                for k, v in (node.get("properties") or {}).items():
                    stack.append((v, f"{path}/properties/{k}" if path else f"properties/{k}"))
                if isinstance(node.get("items"), dict):
                    stack.append((node["items"], f"{path}/items" if path else "items"))
    needs = (
        ("identity", f"{d.subject}_id", "pattern"),
        ("get", f"{d.entity}_id", "pattern"),
        ("money", "currency", "enum"),
        ("destroy", "reason", "enum"),
    )
    for role, field, key in needs:
        tool = d.tool(role)
        if key not in tool.input_schema.get("properties", {}).get(field, {}):
            raise RegistryError(
                f"{_where(d, tool.name, 'input_schema', 'properties/' + field)}: needs a {key!r} "
                f"(the procedural oracle draws {field} from it)"
            )
    if d.policy.rule("approval_above_limit") is None:
        raise RegistryError(f"{d.source}: policy: the procedural oracle needs an 'approval_above_limit' rule")


class ProceduralOracle:
    """Offline oracle: ``make_trace(rng, trace_id, domain, intent)`` -> a policy-compliant :class:`GoldTrace`."""

    name = "procedural"

    def __init__(self, registry: DomainRegistry | None = None) -> None:
        self.registry = registry or DomainRegistry.load()
        self.domain_names = self.registry.get_all_domains()

    def check(self, names: list[str] | tuple[str, ...] | None = None) -> None:
        """Run :func:`check_domain` on these domains (default: all); raises RegistryError naming the field."""
        for n in names or self.domain_names:
            check_domain(self.registry.domain(n))

    def pick(self, rng: random.Random) -> tuple[str, str]:
        """A (domain, intent) pair, uniform over both."""
        return rng.choice(self.domain_names), rng.choice(INTENTS)

    def slots(self, rng: random.Random, d: Domain, world: World | None = None) -> dict[str, Any]:
        """The values a request of domain ``d`` talks about (ids and person from ``world``, amounts, a field to set)."""
        if world is None:
            world = World(self.registry, d, rng.getrandbits(63))
        subj = world.subjects[world.primary]
        rec = world.view(world.primary_record)
        money_op = d.roles["money"].split("__", 1)[1]
        destroy = d.roles["destroy"].split("__", 1)[1]
        upd = d.tool("update").input_schema["properties"]
        fields = [k for k in upd if k not in (f"{d.entity}_id", "verification_token")]
        field = rng.choice(fields)
        value = said_value(rng, upd[field], field)  # a value the user states: never empty, never "n/a"
        if value == rec.get(field):  # an update to what is already on file changes nothing: ask for a change
            if isinstance(value, bool):
                value = not value
            elif len(upd[field].get("enum") or ()) > 1:
                value = rng.choice([v for v in upd[field]["enum"] if v != value])
        limit = float(d.policy.rule("approval_above_limit").params["limit"])  # type: ignore[union-attr]
        big = rng.random() < 0.4
        amount = round(rng.uniform(limit * 1.01, limit * 4.5) if big else rng.uniform(5, limit), 2)
        return {
            "subject": humanize(d.subject),
            "entity": humanize(d.entity),
            "subject_id": world.primary,
            "entity_id": rec[world.ekey],
            "name": subj["full_name"],
            "dob": subj["date_of_birth"],
            "last4": subj["last4"],
            "money_op": money_op,
            "money": humanize(money_op),
            "destroy": humanize(destroy),
            "destroy_op": destroy,
            "amount": amount,
            "currency": rec.get("currency") or rng.choice(d.tool("money").input_schema["properties"]["currency"]["enum"]),
            "field_key": field,
            "field": humanize(field),
            "value_raw": value,
            "value": ("yes" if value else "no") if isinstance(value, bool) else value,
            "memo": f"{rng.choice(MEMO_KINDS)} {rng.randint(100, 9999)}",
            "reason_code": rng.choice(d.tool("destroy").input_schema["properties"]["reason"]["enum"]),
            "recipient": f"{rng.choice(MAILBOXES)}@{d.host}",
            "query": rng.choice(QUERIES),
        }

    def make_traces(self, rng: random.Random, trace_ids: list[str], telemetry: Any = None) -> list[GoldTrace]:
        """One trace per id (the oracle interface shared with AnthropicOracle)."""
        return [self.make_trace(rng, tid) for tid in trace_ids]

    def make_trace(
        self,
        rng: random.Random,
        trace_id: str,
        domain: str | None = None,
        intent: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> GoldTrace:
        """One gold trace (domain and intent drawn from ``rng`` unless given)."""
        if domain is None or intent is None:
            dd, ii = self.pick(rng)
            domain, intent = domain or dd, intent or ii
        d = self.registry.domain(domain)
        seed = rng.getrandbits(63)
        world = World(self.registry, d, seed)
        s = self.slots(rng, d, world)
        graph, problems = self.plan(rng, d, intent, s, world)
        text = compose(rng, intent, s, self.needs(d, graph, s))
        text = self._state_fields(rng, d, graph, text)
        wmeta: dict[str, Any] = {"seed": seed, "state_sha256": world.digest()}
        if problems:  # a planner bug; kept visible (tests require none), never dropped
            wmeta["problems"] = [list(p) for p in problems]
        req_slots = {k: s[k] for k in ("subject_id", "entity_id", "amount", "currency", "field_key", "recipient")}
        return GoldTrace(
            trace_id,
            domain,
            intent,
            UserRequest(text, intent, domain, req_slots),
            d.policy,
            graph,
            {"oracle": self.name, "world": wmeta, **(meta or {})},
        )

    @staticmethod
    def _state_fields(rng: random.Random, d: Domain, graph: ToolCallGraph, text: str) -> str:
        """The user also gives every field value a create call sets (else the agent would invent them)."""
        create = d.roles["create"]
        vals = []
        for c in graph.calls:
            if c.tool != create:
                continue
            for k, v in c.arguments.items():
                if isinstance(v, dict) or k.endswith("_id") or k == "verification_token":
                    continue
                if isinstance(v, bool):  # stated once, one way: "organic: no" unless the request already names it
                    if not has_token(text, humanize(k)):
                        vals.append(f"{humanize(k)}: {'yes' if v else 'no'}")
                    continue
                shown = str(v)
                if not has_token(text, shown):  # "17" inside "1177" is not the user saying 17
                    vals.append(f"{humanize(k)} {shown}")
        for c in graph.calls:  # a memo or a search filter is the user's words too
            for k in ("memo", "query"):
                v = c.arguments.get(k)
                if isinstance(v, str) and v not in text and f"{humanize(k)} '{v}'" not in vals:
                    vals.append(f"{'memo' if k == 'memo' else 'filter'} '{v}'")
        if not vals:
            return text
        lead = rng.choice(("Details:", "Other details -", "The rest:", "Also:", "For the form:", "Fill in"))
        return f"{text} {lead} {', '.join(vals)}."

    @staticmethod
    def needs(d: Domain, graph: ToolCallGraph, s: dict[str, Any]) -> set[str]:
        """The facts the user must state for ``graph`` to be grounded (literal ids, identity details, mailbox)."""
        need: set[str] = set()
        subj, ent = f"{d.subject}_id", f"{d.entity}_id"
        for c in graph.calls:
            a = c.arguments
            if c.tool == d.roles["identity"]:
                need.add("identity")
            if a.get(subj) == s["subject_id"]:
                need.add("subject_id")
            if a.get(ent) == s["entity_id"]:
                need.add("entity_id")
            if a.get("recipient") == s["recipient"]:
                need.add("recipient")
        return need

    def plan(
        self, rng: random.Random, d: Domain, intent: str, s: dict[str, Any], world: World | None = None
    ) -> tuple[ToolCallGraph, list[tuple[str, str, str]]]:
        """The compliant call graph for ``intent`` in domain ``d`` with slots ``s``, executed on ``world``."""
        subj, ent = f"{d.subject}_id", f"{d.entity}_id"
        ctx = {subj: s["subject_id"], ent: s["entity_id"], "currency": s["currency"], "full_name": s["name"]}
        if world is None:
            world = World(self.registry, d, rng.getrandbits(63))
        p = _Plan(rng, self.registry, d, ctx, world)

        def verify() -> str:
            return p.add("identity", {subj: s["subject_id"], "date_of_birth": s["dob"], "last4": s["last4"]})

        def notify(deps: tuple[str, ...], subject: str, body: str) -> str:
            return p.add("notify", {"recipient": s["recipient"], "subject": subject, "body": body}, deps)

        def update_args(target: str, token_call: str) -> dict[str, Any]:
            return {ent: ref(target, ent), "verification_token": ref(token_call, "session_token"), s["field_key"]: s["value_raw"]}

        notify_p = rng.random() < 0.5
        if intent == "account_inquiry":
            shape = rng.randrange(3)
            if shape == 0:
                p.add("get", {ent: s["entity_id"]})
            elif shape == 1:
                c1 = p.add("profile", {subj: s["subject_id"]})
                c2 = p.add("search", {subj: ref(c1, subj), "limit": rng.choice(PAGE_SIZES)}, (c1,))
                p.add("get", {ent: ref(c2, f"results.0.{ent}")}, (c2,))
            else:  # two independent reads in one wave
                p.add("profile", {subj: s["subject_id"]})
                p.add("get", {ent: s["entity_id"]})
        elif intent == "account_update":
            c1 = verify()
            c2 = p.add("get", {ent: s["entity_id"]})
            c3 = p.add("update", update_args(c2, c1), (c1, c2))
            if notify_p:
                notify((c3,), f"{humanize(d.entity).capitalize()} updated", f"{s['field']} changed for {s['entity_id']}.")
        elif intent == "transaction":
            c1 = verify()
            c2 = p.add("get", {ent: s["entity_id"]})
            limit = float(d.policy.rule("approval_above_limit").params["limit"])  # type: ignore[union-attr]
            args: dict[str, Any] = {
                ent: ref(c2, ent),
                "amount": s["amount"],
                "currency": ref(c2, "currency"),
                "verification_token": ref(c1, "session_token"),
            }
            deps: tuple[str, ...] = (c1, c2)
            if s["amount"] > limit:
                c3 = p.add(
                    "approval",
                    {
                        ent: ref(c2, ent),
                        "amount": s["amount"],
                        "currency": ref(c2, "currency"),
                        "justification": f"{humanize(s['money_op'])} requested by {s['subject_id']}",
                    },
                    (c2,),
                )
                args["approval_id"] = ref(c3, "approval_id")
                deps = (c1, c2, c3)
            if rng.random() < 0.6:
                args["memo"] = s["memo"]
            c4 = p.add("money", args, deps)
            if notify_p:
                notify((c4,), "Transaction processed", f"{s['amount']} {s['currency']} on {s['entity_id']}.")
        elif intent == "cancellation":
            c1 = verify()
            c2 = p.add("get", {ent: s["entity_id"]})
            c3 = p.add(
                "confirm",
                {
                    ent: ref(c2, ent),
                    "action": s["destroy_op"],
                    "prompt": f"Please confirm: {s['destroy']} {s['entity_id']} cannot be undone.",
                },
                (c2,),
            )
            c4 = p.add(
                "destroy",
                {
                    ent: ref(c2, ent),
                    "reason": s["reason_code"],
                    "verification_token": ref(c1, "session_token"),
                    "confirmation_id": ref(c3, "confirmation_id"),
                },
                (c1, c2, c3),
            )
            if notify_p:
                notify((c4,), "Closure completed", f"{s['entity_id']} closed ({s['reason_code']}).")
        elif intent == "creation":
            c1 = verify()
            create = d.tool("create").input_schema
            args = {subj: ref(c1, subj), "verification_token": ref(c1, "session_token")}
            for k in create["required"]:
                if k not in args:
                    args[k] = s["value_raw"] if k == s["field_key"] else said_value(rng, create["properties"][k], k)
            c2 = p.add("create", args, (c1,))
            if notify_p:
                notify((c2,), f"New {humanize(d.entity)}", f"Created for {s['subject_id']}.")
        elif intent == "report":
            args = {subj: s["subject_id"], "limit": rng.choice(PAGE_SIZES)}
            if rng.random() < 0.5:
                args["query"] = s["query"]
            c1 = p.add("search", args)
            c2 = p.add("get", {ent: ref(c1, f"results.0.{ent}")}, (c1,))
            notify(
                (c1, c2),
                f"Report: {humanize(d.entity)}s of {s['subject_id']}",
                f"Summary of {humanize(d.entity)}s for {s['subject_id']} ({s['query']}).",
            )
        elif intent == "account_review":
            c1 = verify()
            c2 = p.add("profile", {subj: ref(c1, subj)}, (c1,))
            c3 = p.add("search", {subj: ref(c1, subj), "limit": rng.choice(PAGE_SIZES[:2])}, (c1,))
            c4 = p.add("get", {ent: ref(c3, f"results.0.{ent}")}, (c3,))
            c5 = p.add("update", update_args(c4, c1), (c1, c4))
            if notify_p:
                notify((c2, c5), "Review complete", f"Reviewed {s['subject_id']}.")
        else:
            raise ValueError(f"unknown intent {intent!r}; known: {', '.join(INTENTS)}")
        return ToolCallGraph(tuple(p.calls)), p.problems
