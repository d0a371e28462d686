"""Executable domains: a seeded in-memory state per domain and an implementation of every tool.

``World(registry, domain, seed)`` builds the domain's records deterministically from ``seed``:
the subject the request is about (id, name, date of birth, last four digits, tier), their
records (the first is the one the request names), and other subjects with records of their
own.  ``world.execute(tool, args)`` runs one call against it and returns ``(output, problems)``:

* lookups read state (a profile is the subject's, a search lists the subject's records, a get
  returns the record as stored); a missing record is a problem (``state.not_found``);
* writes change state: create inserts a record owned by the verified subject, update sets the
  fields it names, a destructive call moves the record to its terminal status, a money call
  books a ledger entry, a notification lands in the outbox, operations append to the record's
  history; identity checks compare the stated date of birth and last four digits with the
  subject's and issue a session token only when they match;
* policies are checked against state: the ``verification_token`` must be a session issued for
  the record's owner (``state.session`` / ``state.ownership``), a confirmation or approval id
  must exist, be for this record and (approval) cover the amount (``state.confirmation``,
  ``state.approval``), a closed record takes no write (``state.terminal``), the same charge
  twice is ``state.double_charge``; operation guards (``state_tier``, ``state_period_limit``,
  ``state_time_window``, ``state_ownership``, ``state_terminal``) cite their rule id.

A trace is graded as tau-bench grades: re-run its calls from the seed (``grade``) and compare
the final state's hash with the one recorded at generation (``meta.world.state_sha256``) and
every recorded output with what the state returns (outputs are consequences of state).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from typing import Any

import attrs
import orjson

from .models import GoldTrace
from .registry import Domain, DomainRegistry
from .values import FastRandom, from_pattern, full_name, rand_date, value_for

__all__ = ["GradeReport", "World", "grade"]

_TERMINAL = ("closed", "cancelled", "terminated", "void", "deleted", "revoked", "withdrawn")
_PERIOD_DAYS = {"day": 1, "week": 7, "month": 30}


def _tier_rank(tiers: list[str], tier: str) -> int:
    return tiers.index(tier) if tier in tiers else -1


@attrs.frozen
class GradeReport:
    """The verdict of re-executing a trace: problems, outputs that differ, and the state hashes."""

    problems: tuple[tuple[str, str, str], ...]  # (rule, call id, message)
    output_mismatches: tuple[str, ...]  # call ids whose recorded output is not what the state returns
    state_sha256: str
    expected_sha256: str | None

    @property
    def ok(self) -> bool:
        """No problem, every output reproduced, and the final state equals the expected one."""
        return not self.problems and not self.output_mismatches and self.state_sha256 == self.expected_sha256


class World:
    """One domain's state, seeded; ``execute`` runs a tool call against it."""

    def __init__(self, registry: DomainRegistry, domain: str | Domain, seed: int, min_records: int = 1) -> None:
        self.registry = registry
        self.d = d = registry.domain(domain) if isinstance(domain, str) else domain
        self.rng = rng = FastRandom(seed)
        self.skey, self.ekey = f"{d.subject}_id", f"{d.entity}_id"
        cache = registry.__dict__.setdefault("_world_shapes", {})  # per registry: what the tools say, once
        shape = cache.get(d.name)
        if shape is None:
            get_tool = d.tools[d.roles["get"]] if "get" in d.roles else None
            if get_tool is None:  # e.g. an imported domain: the first lookup by record id shapes the records
                get_tool = next(
                    (t for t in d.tools.values() if t.kind == "read" and self.ekey in t.input_schema.get("properties", {})), None
                )
            prof = d.tools[d.roles["profile"]].output_schema["properties"] if "profile" in d.roles else {}
            tiers = list((prof.get("tier") or {}).get("enum") or ["standard", "preferred", "vip"])
            shape = cache[d.name] = (
                get_tool,
                tiers,
                self._id_pattern(self.skey) or "^SUB-[0-9]{6}$",
                self._id_pattern(self.ekey) or "^REC-[0-9]{8}$",
                {n: r for r, n in d.roles.items()},
                {},
            )
        self.get_tool, self.tiers, self.spat, self.epat, self.role_of, self.guard_rules = shape
        self.subjects: dict[str, dict[str, Any]] = {}
        self.records: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, str] = {}
        self.confirmations: dict[str, dict[str, Any]] = {}
        self.approvals: dict[str, dict[str, Any]] = {}
        self.ledger: list[dict[str, Any]] = []
        self.outbox: list[dict[str, Any]] = []
        self.usage: dict[str, int] = {}
        self.usage_data: dict[str, Any] = {}
        self._drawn: dict[
            str, dict[str, Any]
        ] = {}  # record fields drawn from their seeds (not state: a cache)  # what domain-wide lookups (no record, no subject) returned
        self.clock = _dt.datetime(2026, rng.randint(1, 12), rng.randint(1, 28), rng.randint(8, 17), rng.choice((0, 15, 30, 45)))
        self.primary = self._add_subject(tier_at_least=1)
        for _ in range(max(min_records, rng.randint(1, 3))):
            self._add_record(self.primary)
        for _ in range(rng.randint(1, 2)):
            other = self._add_subject()
            self._add_record(other)
        self.primary_record = next(r for r in self.records.values() if r[self.skey] == self.primary)

    # -- building ---------------------------------------------------------------------
    def _id_pattern(self, key: str) -> str | None:
        for t in self.d.tools.values():
            pat = (t.input_schema.get("properties", {}).get(key) or {}).get("pattern")
            if isinstance(pat, str):
                return pat
        return None

    def _add_subject(self, tier_at_least: int = 0) -> str:
        rng = self.rng
        sid = from_pattern(rng, self.spat)
        while sid in self.subjects:
            sid = from_pattern(rng, self.spat)
        tiers = self.tiers[min(tier_at_least, len(self.tiers) - 1) :]
        self.subjects[sid] = {
            self.skey: sid,
            "full_name": full_name(rng),
            "date_of_birth": rand_date(rng, 1940, 2005),
            "last4": f"{rng.randrange(10000):04d}",
            "tier": rng.choice(tiers),
            "history": [],
        }
        return sid

    def _add_record(self, owner: str, fields: dict[str, Any] | None = None) -> str:
        rng = self.rng
        eid = from_pattern(rng, self.epat)
        while eid in self.records:
            eid = from_pattern(rng, self.epat)
        # the record's other fields are a function of its own seed, drawn when first read (view)
        rec: dict[str, Any] = {self.ekey: eid, self.skey: owner, "status": "active", "history": [], "seed": rng.getrandbits(32)}
        if fields:
            rec.update(fields)
        self.records[eid] = rec
        return eid

    def view(self, rec: dict[str, Any]) -> dict[str, Any]:
        """A record as a lookup returns it: the fields drawn from its seed, overridden by what is stored."""
        eid = rec[self.ekey]
        base = self._drawn.get(eid)
        if base is None:
            base = {}
            if self.get_tool is not None:
                r = FastRandom(rec["seed"])
                for k, sub in self.get_tool.output_schema["properties"].items():
                    base[k] = value_for(r, sub, k)
            self._drawn[eid] = base
        return {**base, **{k: v for k, v in rec.items() if k != "seed"}}

    # -- reading ----------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The whole mutable state (what the hash covers)."""
        return {
            "subjects": self.subjects,
            "records": self.records,
            "sessions": self.sessions,
            "confirmations": self.confirmations,
            "approvals": self.approvals,
            "ledger": self.ledger,
            "outbox": self.outbox,
            "usage": self.usage,
            "usage_data": self.usage_data,
        }

    def digest(self) -> str:
        """sha256 of the canonical JSON of the state."""
        return hashlib.sha256(orjson.dumps(self.snapshot(), option=orjson.OPT_SORT_KEYS)).hexdigest()

    def _fill(self, schema: dict[str, Any], known: dict[str, Any]) -> dict[str, Any]:
        """An output of ``schema``: known values where the state has them, new ids/values drawn from the world."""
        out: dict[str, Any] = {}
        for k, sub in schema.get("properties", {}).items():
            if k == "error":
                continue
            if k in known:
                out[k] = known[k]
            elif k in schema.get("required", ()) or sub.get("type") != "object":
                out[k] = value_for(self.rng, sub, k)
        return out

    # -- executing --------------------------------------------------------------------
    def execute(self, tool: str, args: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """Run one call; ``(output, problems)`` where a problem is ``(rule id, message)``."""
        d = self.d
        t = d.tools.get(tool)
        if t is None:
            return {}, [("state.unknown_tool", f"{tool} is not a tool of {d.name}")]
        role = self.role_of.get(tool, "")
        probs: list[tuple[str, str]] = []
        rec = self.records.get(args.get(self.ekey, "")) if self.ekey in args else None
        if self.ekey in args and rec is None and t.kind != "write" or (t.kind == "write" and role == "update" and rec is None):
            probs.append(("state.not_found", f"{self.ekey} {args.get(self.ekey)!r} does not exist"))
            return self._error(t, args, "not_found"), probs
        who = self.sessions.get(args.get("verification_token", "")) if "verification_token" in args else None
        if t.kind in ("write", "destructive", "transfer") and "verification_token" in args:
            if who is None:
                probs.append(("state.session", f"verification_token {args['verification_token']!r} was never issued"))
            owner = rec[self.skey] if rec is not None else args.get(self.skey)
            if who is not None and owner is not None and owner != who:
                probs.append(("state.ownership", f"{owner} owns this, the session is {who}'s"))
        if rec is not None and t.kind in ("write", "destructive", "transfer") and rec["status"] in _TERMINAL:
            probs.append(("state.terminal", f"{rec[self.ekey]} is {rec['status']}"))
        probs += self._guards(tool, args, rec, who)
        if t.kind == "identity":
            return self._identity(t, args), probs
        if role == "confirm" and rec is not None:
            cid = value_for(self.rng, t.output_schema["properties"]["confirmation_id"], "confirmation_id")
            self.confirmations[cid] = {"record": rec[self.ekey], "action": args.get("action"), "confirmed": True}
            return {"confirmation_id": cid, "confirmed": True}, probs
        if role == "approval" and rec is not None:
            aid = value_for(self.rng, t.output_schema["properties"]["approval_id"], "approval_id")
            self.approvals[aid] = {"record": rec[self.ekey], "amount": args.get("amount"), "used": False}
            return {"approval_id": aid, "amount": args.get("amount"), "status": "approved"}, probs
        if t.kind == "read":
            return self._read(t, role, args, rec, probs), probs
        if t.kind == "notify":
            self.outbox.append({"recipient": args.get("recipient"), "subject": args.get("subject")})
            return self._fill(t.output_schema, {"delivered": True}), probs
        if t.kind == "bulk_export":
            return self._fill(t.output_schema, {"record_count": len(self.records)}), probs
        return self._write(t, role, args, rec, who, probs), probs

    def _error(self, t: Any, args: dict[str, Any], code: str) -> dict[str, Any]:
        props = t.output_schema.get("properties", {})
        if "error" in props and code in props["error"]["properties"]["code"]["enum"]:
            out = {k: args[k] for k in (self.ekey,) if k in props and k in args}
            out["error"] = {"code": code, "message": code.replace("_", " ")}
            return out
        return {}

    def _identity(self, t: Any, args: dict[str, Any]) -> dict[str, Any]:
        sid = args.get(self.skey)
        s = self.subjects.get(sid or "")
        ok = s is not None and s["date_of_birth"] == args.get("date_of_birth") and s["last4"] == args.get("last4")
        tok = f"tok_{self.rng.getrandbits(64):016x}"
        if ok:
            self.sessions[tok] = sid  # type: ignore[assignment]
        return self._fill(t.output_schema, {"verified": ok, self.skey: sid, "session_token": tok})

    def _read(self, t: Any, role: str, args: dict[str, Any], rec: dict[str, Any] | None, probs: list[Any]) -> dict[str, Any]:
        props = t.output_schema.get("properties", {})
        if t.name in self.d.ops:
            return self._op_read(t, args, rec)
        if rec is not None:
            return self._fill(t.output_schema, {k: v for k, v in self.view(rec).items() if k in props})
        sid = args.get(self.skey)
        if sid is not None:
            s = self.subjects.get(sid)
            if s is None:
                probs.append(("state.not_found", f"{self.skey} {sid!r} does not exist"))
                return {}
            if "results" in props and role == "search":
                mine = [r for r in self.records.values() if r[self.skey] == sid]
                if isinstance(args.get("status"), str):
                    mine = [r for r in mine if r["status"] == args["status"]]
                lim = int(args.get("limit") or 50)
                return self._fill(
                    t.output_schema,
                    {"results": [{self.ekey: r[self.ekey], "status": r["status"]} for r in mine[:lim]], "total": len(mine)},
                )
            return self._fill(t.output_schema, {k: v for k, v in s.items() if k in props})
        return self._fill(t.output_schema, {})

    def _op_read(self, t: Any, args: dict[str, Any], rec: dict[str, Any] | None) -> dict[str, Any]:
        """An operation's lookup: the data it reads is part of the state (made once, then stored)."""
        target = rec if rec is not None else self.subjects.get(args.get(self.skey, ""))
        store = target.setdefault("data", {}) if target is not None else self.usage_data
        key = (
            t.name
            + "|"
            + orjson.dumps(
                {k: v for k, v in args.items() if k not in ("page_size", "page_token")}, option=orjson.OPT_SORT_KEYS
            ).decode()
        )
        full = store.get(key)
        if full is None:
            known = {self.ekey: rec[self.ekey]} if rec is not None else {}
            full = store[key] = self._fill(t.output_schema, known)
            full.pop("next_page_token", None)
        out = dict(full)
        if self.d.ops[t.name]["page"]:
            size = int(args.get("page_size") or 20)
            start = int(str(args.get("page_token") or "pg_0")[3:] or 0)
            for k, v in list(out.items()):
                if isinstance(v, list):
                    out[k] = v[start : start + size]
                    if start + size < len(v):
                        out["next_page_token"] = f"pg_{start + size}"
        return out

    def _write(
        self, t: Any, role: str, args: dict[str, Any], rec: dict[str, Any] | None, who: str | None, probs: list[Any]
    ) -> dict[str, Any]:
        plain = {k: v for k, v in args.items() if k not in ("verification_token", "confirmation_id", "approval_id")}
        if role == "create":
            eid = self._add_record(args.get(self.skey) or who or "", {k: v for k, v in plain.items() if k != self.skey})
            return self._fill(t.output_schema, {self.ekey: eid, "status": "active"})
        if rec is None and self.ekey in t.input_schema.get("properties", {}):
            return {}
        if role == "update" and rec is not None:
            changed = sorted(k for k in plain if k != self.ekey)
            for k in changed:
                rec[k] = plain[k]
            return self._fill(t.output_schema, {self.ekey: rec[self.ekey], "updated_fields": changed, "status": rec["status"]})
        if t.kind == "destructive" and role == "destroy" and rec is not None:
            c = self.confirmations.get(args.get("confirmation_id", ""))
            if c is None or c["record"] != rec[self.ekey] or not c["confirmed"]:
                probs.append(("state.confirmation", f"no confirmation of this action on {rec[self.ekey]}"))
            enum = t.output_schema["properties"].get("status", {}).get("enum") or ["closed"]
            rec["status"] = enum[0]
            return self._fill(t.output_schema, {self.ekey: rec[self.ekey], "status": rec["status"]})
        if t.kind == "transfer" and role == "money" and rec is not None:
            amt = args.get("amount")
            rule = self.d.policy.rule("approval_above_limit")
            limit = float(rule.params["limit"]) if rule is not None else float("inf")
            if isinstance(amt, (int, float)) and amt > limit:
                a = self.approvals.get(args.get("approval_id", ""))
                if a is None or a["record"] != rec[self.ekey] or not isinstance(a["amount"], (int, float)) or a["amount"] < amt:
                    probs.append(("state.approval", f"no approval on file for {amt} on {rec[self.ekey]}"))
                elif a["used"]:
                    probs.append(("state.approval", f"approval {args['approval_id']} was already used"))
                else:
                    a["used"] = True
            if any(x["tool"] == t.name and x["record"] == rec[self.ekey] and x["amount"] == amt for x in self.ledger):
                probs.append(("state.double_charge", f"{t.name} of {amt} on {rec[self.ekey]} booked twice"))
            self.ledger.append({"tool": t.name, "record": rec[self.ekey], "amount": amt, "currency": args.get("currency")})
            return self._fill(t.output_schema, {"amount": amt, "status": "completed"})
        # an operation: recorded in the history of what it acts on
        target = rec if rec is not None else self.subjects.get(args.get(self.skey, ""))
        entry = {"op": t.name, "args": plain, "at": self.clock.isoformat()}
        if target is not None:
            target["history"].append(entry)
        if t.kind == "destructive" and rec is not None:
            rec["status"] = "closed"
        if t.kind == "transfer":
            self.ledger.append({"tool": t.name, "record": (rec or {}).get(self.ekey), "amount": args.get("amount")})
        known = {k: v for k, v in plain.items() if k in t.output_schema.get("properties", {})}
        if rec is not None:
            props = t.output_schema.get("properties", {})
            known.update({k: v for k, v in self.view(rec).items() if k in props and k not in known})
        return self._fill(t.output_schema, known)

    def _guards(self, tool: str, args: dict[str, Any], rec: dict[str, Any] | None, who: str | None) -> list[tuple[str, str]]:
        probs: list[tuple[str, str]] = []
        rules = self.guard_rules.get(tool)
        if rules is None:  # the domain's state rules that apply to ``tool``, in policy order (once per registry)
            rules = self.guard_rules[tool] = [
                r for r in self.d.policy.rules if r.type.startswith("state_") and tool in r.params["applies_to"]
            ]
        if not rules:
            return probs
        subj = who or (rec[self.skey] if rec is not None else args.get(self.skey))
        for r in rules:
            p = r.params
            if r.type == "state_terminal" and rec is not None and rec["status"] in p["statuses"]:
                probs.append((r.id, f"{rec[self.ekey]} is {rec['status']}"))
            elif r.type == "state_ownership" and rec is not None and who is not None and rec[self.skey] != who:
                probs.append((r.id, f"{rec[self.ekey]} belongs to {rec[self.skey]}, not {who}"))
            elif r.type == "state_tier" and subj in self.subjects:
                have = self.subjects[subj]["tier"]
                if _tier_rank(self.tiers, have) < _tier_rank(self.tiers, p["min_tier"]):
                    probs.append((r.id, f"{subj} is {have}; {p['min_tier']} needed"))
            elif r.type == "state_time_window":
                lo, hi = p["hours"]
                if not lo <= self.clock.hour < hi:
                    probs.append((r.id, f"it is {self.clock:%H:%M}, outside {lo}:00-{hi}:00"))
            elif r.type == "state_period_limit" and subj is not None:
                key = f"{tool}|{subj}|{p['period']}"
                n = self.usage.get(key, 0) + 1
                self.usage[key] = n
                if n > p["max"]:
                    probs.append((r.id, f"{n} {tool} calls for {subj} this {p['period']} (max {p['max']})"))
        return probs

    def seed_usage(self, tool: str, subject: str, period: str, n: int) -> None:
        """Pre-existing use of a per-period limit (a subject who already used ``n`` this period)."""
        self.usage[f"{tool}|{subject}|{period}"] = n


def grade(registry: DomainRegistry, trace: GoldTrace) -> GradeReport:
    """Re-run ``trace`` from its recorded world seed; compare outputs and the final state hash."""
    from .models import ToolCallGraph

    w = trace.meta.get("world") if isinstance(trace.meta, dict) else None
    if not isinstance(w, dict) or not isinstance(w.get("seed"), int):
        return GradeReport((("state.no_world", "", "the trace records no world seed"),), (), "", None)
    world = World(registry, trace.domain, w["seed"], min_records=int(w.get("min_records", 1)))
    for u in w.get("usage") or []:
        world.seed_usage(*u)
    if isinstance(w.get("clock"), str):
        world.clock = _dt.datetime.fromisoformat(w["clock"])
    outs: dict[str, Any] = {}
    probs: list[tuple[str, str, str]] = []
    bad: list[str] = []
    g = ToolCallGraph(())
    for c in trace.graph.calls:
        try:
            args = g.resolve_arguments(c, outs)
        except Exception:  # noqa: BLE001 - an unresolvable reference: graded as a problem
            probs.append(("state.unresolved", c.id, "arguments do not resolve"))
            outs[c.id] = c.output
            continue
        got, p = world.execute(c.tool, args)
        probs += [(rule, c.id, msg) for rule, msg in p]
        if got != c.output:
            bad.append(c.id)
        outs[c.id] = c.output
    return GradeReport(tuple(probs), tuple(bad), world.digest(), w.get("state_sha256"))
