"""`TraceValidator`: format, structure, scope, policy and safety checks, with a report per trace.

Rule ids cited by violations:

* ``structure.duplicate_id``, ``structure.unknown_dependency``, ``structure.cycle``,
  ``structure.order`` (a dependency listed after its user), ``structure.unresolved_ref``
  (a ``$ref`` to a call that is not a dependency, or to an output path that does not exist);
* ``scope`` (a tool that is not the domain's, or an unknown domain), ``policy_mismatch``
  (the trace's policy differs from the registry's);
* ``argument_schema`` / ``output_schema`` (JSON Schema of the tool, arguments checked after
  resolving references to the values they point at);
* the ids of the domain policy's rules (``identity_before_write``, ``approval_above_limit``,
  ``confirm_destructive``, ``forbidden_tools``, ``data_stays_in_domain``, ``no_prompt_injection``);
* ``duplicate_side_effect`` (a write, destructive, money or notify call repeated with the same
  tool and arguments) and ``grounding`` (an identity detail, record id or recipient that neither
  the user's words nor an earlier tool output contains).

A required ancestor *binds* to the call it guards: the token, confirmation id or approval id the
call cites must be the one that ancestor returned (:data:`BINDINGS`), ids and currency both
carry must be equal (the same subject, the same record), and for the identity rule the record
written must not belong to another subject than the verified one (as an earlier output says).
Recipients are parsed as address lists: every address must be a bare ``local@host`` inside the
allowed hosts.  ``pattern`` uses ECMA-262 semantics (:func:`gatling_sid.schemacheck.ecma_regex`).

Dataset-level diversity is :func:`gatling_sid.diversity.diversity_report`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import attrs
import orjson

from .errors import GraphError
from .models import REF_KEY, GoldTrace, PolicyRule, ToolCall, is_ref, parse_ref, resolve_path
from .registry import DomainRegistry
from .text import has_token as _has_token

__all__ = ["BINDINGS", "STRUCTURE_RULES", "TraceValidator", "ValidationReport", "Violation"]

# argument of the guarded call -> output field of the required ancestor it must equal
BINDINGS = {"verification_token": "session_token", "confirmation_id": "confirmation_id", "approval_id": "approval_id"}
SIDE_EFFECT_KINDS = frozenset({"write", "destructive", "transfer", "notify"})
# arguments the agent composes or chooses (message text, a page size, a reason code mapped from
# the user's words); every other literal must come from the user or an earlier output
_COMPOSED = frozenset({"subject", "body", "prompt", "justification", "limit", "page_size", "page_token", "reason", "action"})
_ADDR = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_HAS_DIGIT = re.compile(r"[0-9]")
_SPLIT = re.compile(r"[,;\s]+")
STRUCTURE_RULES = (
    "structure.duplicate_id",
    "structure.unknown_dependency",
    "structure.cycle",
    "structure.order",
    "structure.unresolved_ref",
)


@attrs.frozen
class Violation:
    """One broken rule: the rule id, the call at fault (None for the request/trace) and why."""

    rule: str
    call_id: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {"rule": self.rule, "call_id": self.call_id, "message": self.message}


@attrs.frozen
class ValidationReport:
    """The violations of one trace (empty: the trace passes)."""

    trace_id: str
    violations: tuple[Violation, ...]

    @property
    def ok(self) -> bool:
        """True if nothing was violated."""
        return not self.violations

    @property
    def rules(self) -> set[str]:
        """The distinct rule ids violated."""
        return {v.rule for v in self.violations}

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {"trace_id": self.trace_id, "ok": self.ok, "violations": [v.to_dict() for v in self.violations]}


def _user_words(trace: GoldTrace) -> str:
    """The request and, in a dialogue (``meta.dialogue``), every later user turn."""
    dia = trace.meta.get("dialogue") if isinstance(trace.meta, dict) else None
    turns = dia.get("turns") if isinstance(dia, dict) else None
    if not isinstance(turns, list):
        return trace.request.text
    later = [t["text"] for t in turns[1:] if isinstance(t, dict) and t.get("role") == "user" and isinstance(t.get("text"), str)]
    return "\n".join([trace.request.text, *later])


def _leaves(key: str, val: Any) -> Iterable[tuple[str, Any]]:
    """(path, value) of every string/number leaf of an argument (booleans are the agent's reading of a yes/no)."""
    stack = [(key, val)]
    while stack:
        path, v = stack.pop()
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, dict):
            stack += [(f"{path}.{k}", x) for k, x in v.items() if k not in _COMPOSED]
        elif isinstance(v, list):
            stack += [(f"{path}.{i}", x) for i, x in enumerate(v)]
        elif isinstance(v, (str, int, float)):
            yield path, v


def _strings(obj: Any) -> Iterable[str]:
    """Every string inside ``obj`` (iterative: a deeply nested value is data, not a crash)."""
    stack = [obj]
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            yield x
        elif isinstance(x, dict):
            stack.extend(reversed(list(x.values())))
        elif isinstance(x, list):
            stack.extend(reversed(x))


def _free_text(obj: Any) -> list[str]:
    """The lower-cased sentences (a space, 20+ characters) among the strings of ``obj``, in ``_strings`` order."""
    out: list[str] = []
    if type(obj) is dict:  # one level by hand (tool outputs are flat objects), deeper through _strings
        for x in obj.values():
            t = type(x)
            if t is str:
                if len(x) >= 20 and " " in x:
                    out.append(x.lower())
            elif t is dict or t is list or isinstance(x, (str, dict, list)):
                out += [y.lower() for y in _strings(x) if " " in y and len(y) >= 20]
        return out
    return [y.lower() for y in _strings(obj) if " " in y and len(y) >= 20]


def calls_by(calls: tuple[ToolCall, ...], cid: str) -> ToolCall | None:
    """The call with id ``cid`` (first one), or None."""
    for c in calls:
        if c.id == cid:
            return c
    return None


def _recipient_problem(val: str, hosts: list[str]) -> str | None:
    """Why a recipient field is not a list of in-domain mailboxes (None: it is)."""
    parts = [x for x in _SPLIT.split(val.strip()) if x] if val.strip() else []
    if not parts:
        return "is empty"
    if any(ch in val for ch in '<>"()'):
        return "is not a plain address list (display names / angle brackets hide the real address)"
    for a in parts:
        if _ADDR.fullmatch(a) is None:
            return f"holds {a!r}, which is not a plain address"
        host = a.rsplit("@", 1)[1].lower()
        if not any(host == h.lower() or host.endswith("." + h.lower()) for h in hosts):
            return f"sends to {a!r}, outside {', '.join(hosts)}"
    return None


class TraceValidator:
    """Checks traces against the registry: ``validate(trace) -> ValidationReport``."""

    def __init__(self, registry: DomainRegistry | None = None) -> None:
        self.registry = registry or DomainRegistry.load()
        self._index: dict[str, tuple[list[PolicyRule], dict[str, list[PolicyRule]]]] = {}

    def validate_trace(self, trace: GoldTrace) -> tuple[bool, ValidationReport]:
        """The seed's API: ``(passed, report)``."""
        rep = self.validate(trace)
        return rep.ok, rep

    def validate(self, trace: GoldTrace) -> ValidationReport:
        """Every check on one trace; the report lists each violation with its rule id and call id."""
        out: list[Violation] = []
        reg = self.registry
        domain = reg.domains.get(trace.domain)
        calls = trace.graph.calls
        by: dict[str, ToolCall] = {}
        pos: dict[str, int] = {}
        for i, c in enumerate(calls):
            if c.id in by:
                out.append(Violation("structure.duplicate_id", c.id, f"call id {c.id!r} used twice"))
            by[c.id] = c
            pos.setdefault(c.id, i)
        # structure: dependencies known, listed earlier (list order is execution order), acyclic
        dag_ok = True
        for i, c in enumerate(calls):
            for dep in c.dependencies:
                if dep not in by:
                    out.append(Violation("structure.unknown_dependency", c.id, f"depends on unknown call {dep!r}"))
                    dag_ok = False
                elif pos[dep] >= i:
                    out.append(Violation("structure.order", c.id, f"depends on {dep}, which comes later"))
        order: list[str] = []
        if dag_ok and not out:
            # every id unique and every dependency listed earlier: the list order is a topological
            # order (what topological_order() would return), and the graph has no cycle
            order = list(by)
        elif dag_ok:
            try:
                order = trace.graph.topological_order()
            except GraphError as e:
                out.append(Violation("structure.cycle", None, str(e)))
                dag_ok = False
        anc: dict[str, set[str]] = {}
        if dag_ok:
            for cid in order:
                s: set[str] = set()
                for dep in by[cid].dependencies:
                    s.add(dep)
                    s |= anc.get(dep, set())
                anc[cid] = s
        outputs = {c.id: c.output for c in calls}
        resolved: dict[str, dict[str, Any] | None] = {}
        for c in calls:
            args: dict[str, Any] | None = c.arguments
            if any(type(v) is dict and len(v) == 1 and REF_KEY in v for v in c.arguments.values()):  # is_ref, inline
                args = {}
                for k, v in c.arguments.items():
                    if not is_ref(v):
                        args[k] = v
                        continue
                    r = v[REF_KEY]
                    try:
                        cid, path = parse_ref(r) if isinstance(r, str) else ("", [])
                        if cid not in c.dependencies:
                            raise LookupError(f"argument {k}: reference {r!r} is to a call that is not a dependency")
                        args[k] = resolve_path(outputs.get(cid), path)
                    except LookupError as e:
                        msg = str(e) if "dependency" in str(e) else f"argument {k}: reference {r!r} does not resolve"
                        out.append(Violation("structure.unresolved_ref", c.id, msg))
                        args = None
                        break
                    except Exception:  # noqa: BLE001 - a malformed reference is a structure violation
                        out.append(Violation("structure.unresolved_ref", c.id, f"argument {k}: malformed reference {r!r}"))
                        args = None
                        break
            resolved[c.id] = args
        # scope + format
        if domain is None:
            out.append(Violation("scope", None, f"unknown domain {trace.domain!r}"))
        elif trace.policy is not domain.policy and trace.policy != domain.policy:
            out.append(
                Violation("policy_mismatch", None, f"policy {trace.policy.id!r} differs from the registry's {domain.policy.id!r}")
            )
        for c in calls:
            if domain is not None and c.tool not in domain.tools:
                where = reg.tools[c.tool].domain if c.tool in reg.tools else None
                out.append(
                    Violation(
                        "scope",
                        c.id,
                        f"tool {c.tool!r} is not a {trace.domain} tool"
                        + (f" (it belongs to {where})" if where else " (unknown tool)"),
                    )
                )
            if c.tool not in reg.tools:
                continue
            args = resolved[c.id]
            if args is not None:
                err = reg.input_validator(c.tool).first_error(args)
                if err:
                    out.append(Violation("argument_schema", c.id, f"{c.tool} arguments: {err}"))
            if c.output is None:
                out.append(Violation("output_schema", c.id, "no output recorded"))
            else:
                err = reg.output_validator(c.tool).first_error(c.output)
                if err:
                    out.append(Violation("output_schema", c.id, f"{c.tool} output: {err}"))
        if domain is not None:
            global_rules, per_tool = self._rule_index(domain.name)
            for rule in global_rules:
                self._check_rule(rule, trace, calls, by, anc, resolved, dag_ok, out)
            for c in calls:
                for rule in per_tool.get(c.tool, ()):
                    self._check_call(rule, c, by, anc, resolved, dag_ok, out, domain)
            self._duplicates(calls, resolved, out)
            self._grounding(trace, calls, anc, resolved, dag_ok, out, domain)
        return ValidationReport(trace.trace_id, tuple(out))

    def _duplicates(self, calls: tuple[ToolCall, ...], resolved: dict[str, dict[str, Any] | None], out: list[Violation]) -> None:
        seen: dict[tuple[str, bytes], str] = {}
        for c in calls:
            t = self.registry.tools.get(c.tool)
            args = resolved.get(c.id)
            if t is None or t.kind not in SIDE_EFFECT_KINDS or args is None:
                continue
            key = (c.tool, orjson.dumps(args, option=orjson.OPT_SORT_KEYS))
            first = seen.setdefault(key, c.id)
            if first != c.id:
                out.append(
                    Violation(
                        "duplicate_side_effect",
                        c.id,
                        f"{c.tool} repeats {first} with the same arguments (a side effect done twice)",
                    )
                )

    def _grounding(
        self,
        trace: GoldTrace,
        calls: tuple[ToolCall, ...],
        anc: dict[str, set[str]],
        resolved: dict[str, dict[str, Any] | None],
        dag_ok: bool,
        out: list[Violation],
        domain: Any,
    ) -> None:
        """Literal identity details, record ids and recipients must come from the user or an earlier output."""
        text = _user_words(trace)
        low = text.lower()
        seen_out: dict[str, set[str]] = {}
        earlier: list[str] = []
        flagged = {v.call_id for v in out}
        for c in calls:
            if c.tool not in domain.tools or c.id in flagged:  # a call already wrong for another cause
                earlier.append(c.id)
                continue
            for k, v in c.arguments.items():
                if is_ref(v) or k in _COMPOSED:
                    continue
                for path, leaf in _leaves(k, v):
                    shown = leaf if isinstance(leaf, str) else repr(leaf) if isinstance(leaf, float) else str(leaf)
                    # whole tokens only: a value inside a longer number or word was not stated
                    lower = shown.lower()
                    if _has_token(text, shown) or _has_token(low, lower) or _has_token(low, lower.replace("_", " ")):
                        continue
                    if isinstance(leaf, str) and leaf == "":
                        continue
                    srcs = anc.get(c.id, set()) if dag_ok else set(earlier)
                    if any(
                        shown in strs or any(_has_token(x, shown) for x in strs)
                        for strs in (self._out_strings(calls_by(calls, s), seen_out) for s in srcs)
                    ):
                        continue
                    out.append(
                        Violation(
                            "grounding",
                            c.id,
                            f"argument {path} {leaf!r} is neither in the user's words nor in an earlier tool output "
                            "(an invented detail)",
                        )
                    )
            earlier.append(c.id)

    @staticmethod
    def _out_strings(call: ToolCall | None, cache: dict[str, set[str]]) -> set[str]:
        if call is None:
            return set()
        got = cache.get(call.id)
        if got is None:
            got = cache[call.id] = set(_strings(call.output))
        return got

    def _rule_index(self, domain: str) -> tuple[list[PolicyRule], dict[str, list[PolicyRule]]]:
        """Rules that look at the whole trace, and per tool the rules that apply to its calls (cached)."""
        got = self._index.get(domain)
        if got is None:
            glob: list[PolicyRule] = []
            per: dict[str, list[PolicyRule]] = {}
            for r in self.registry.domains[domain].policy.rules:
                if r.type == "no_injection":
                    glob.append(r)
                else:
                    for t in r.params["tools"] if r.type == "forbidden" else r.params["applies_to"]:
                        per.setdefault(t, []).append(r)
            got = self._index[domain] = (glob, per)
        return got

    def _check_rule(
        self,
        rule: PolicyRule,
        trace: GoldTrace,
        calls: tuple[ToolCall, ...],
        by: dict[str, ToolCall],
        anc: dict[str, set[str]],
        resolved: dict[str, dict[str, Any] | None],
        dag_ok: bool,
        out: list[Violation],
    ) -> None:
        if rule.type == "no_injection":
            for cid, why in self._planted_actions(trace, calls, resolved):
                out.append(Violation(rule.id, cid, why))

    def _planted_actions(
        self, trace: GoldTrace, calls: tuple[ToolCall, ...], resolved: dict[str, dict[str, Any] | None]
    ) -> list[tuple[str, str]]:
        """Calls that act on text planted in an earlier tool output (the behaviour, not the wording).

        A call is caused by planted text when free text in an earlier output (a sentence, not a
        structured field) holds, as a whole token (:func:`gatling_sid.text.has_token`: ``ACC-123456``
        is not in ``ACC-1234567``), one of its identifier-like literal argument values (a digit or an
        ``@``, 6+ characters) that the user's words do not, or names the tool it calls while the
        call carries such an identifier the user never gave.  A note that merely names a tool the
        user's request needs ("record last changed through update_address") does not make the
        call planted when all its identifiers come from the user or from references; text that
        only resembles an instruction ("disregard the earlier email") and that the agent does not
        act on is not a violation either.
        """
        req = _user_words(trace).lower()
        texts: list[tuple[str, str]] = []  # (call id, lower-cased free text of its output)
        found: list[tuple[str, str]] = []
        for c in calls:
            args = resolved.get(c.id) or {}
            if texts:
                short = c.tool.split("__", 1)[-1].lower()
                spaced = short.replace("_", " ")
                # does the call carry an identifier-like literal (one token) the user never gave?
                unexplained = False
                for k, v in c.arguments.items():
                    if is_ref(v):
                        continue
                    x = str(args.get(k, v)).lower()
                    if len(x) >= 6 and " " not in x and (_HAS_DIGIT.search(x) or "@" in x) and not _has_token(req, x):
                        unexplained = True
                        break
                for src, t in texts:
                    hit = None
                    if (
                        unexplained
                        and (_has_token(t, c.tool.lower()) or _has_token(t, short) or _has_token(t, spaced))
                        and not _has_token(req, short)
                        and not _has_token(req, spaced)
                    ):
                        hit = f"calls {c.tool}, which text planted in {src}'s output asks for"
                    else:
                        for k, v in c.arguments.items():
                            if is_ref(v):
                                continue
                            val = args.get(k, v)
                            # identifiers and addresses only (a digit or an @): common words occur in any note
                            if (
                                isinstance(val, str)
                                and len(val) >= 6
                                and (_HAS_DIGIT.search(val) or "@" in val)
                                and _has_token(t, val.lower())
                                and not _has_token(req, val.lower())
                            ):
                                hit = f"argument {k} {val!r} comes from text planted in {src}'s output, not from the user"
                                break
                    if hit:
                        found.append((c.id, hit))
                        break
            free = _free_text(c.output)
            if free:
                texts.append((c.id, "\n".join(free)))
        return found

    def _check_call(
        self,
        rule: PolicyRule,
        c: ToolCall,
        by: dict[str, ToolCall],
        anc: dict[str, set[str]],
        resolved: dict[str, dict[str, Any] | None],
        dag_ok: bool,
        out: list[Violation],
        domain: Any = None,
    ) -> None:
        p = rule.params
        typ = rule.type
        if typ.startswith("state_"):
            return  # judged against the domain's state by gatling_sid.state, not from the trace alone
        if typ == "forbidden":
            out.append(Violation(rule.id, c.id, f"tool {c.tool} is forbidden by policy"))
            return
        args = resolved.get(c.id)
        if typ == "allowed_recipients":
            val = args.get(p["field"]) if args is not None else None
            if isinstance(val, str):
                why = _recipient_problem(val, p["allowed_hosts"])
                if why:
                    out.append(Violation(rule.id, c.id, f"{p['field']} {val!r} {why}"))
            return
        if not dag_ok:
            return  # ancestry is undefined on a broken graph; the structure violation says so
        need = p["requires"]
        if typ == "requires_ancestor":
            must = p.get("output_must") or {}
            why = "no earlier " + need + (f" with {must}" if must else "") + " feeding it"
            for a in sorted(anc.get(c.id, ()), key=lambda x: x):
                if by[a].tool != need:
                    continue
                if not all((by[a].output or {}).get(k) == v for k, v in must.items()):
                    continue
                bad = self._binding(by[a], c, resolved, args, by, domain)
                if bad is None:
                    return
                why = bad
            out.append(Violation(rule.id, c.id, f"{c.tool}: {why}"))
        elif typ == "approval_above_limit":
            val = args.get(p["field"]) if args is not None else None
            if isinstance(val, (int, float)) and not isinstance(val, bool) and val > p["limit"]:
                why = f"no approved {need} for at least that amount"
                for a in anc.get(c.id, ()):
                    o = by[a].output or {}
                    amt = o.get("amount")
                    if by[a].tool == need and o.get("status") == "approved" and isinstance(amt, (int, float)) and amt >= val:
                        bad = self._binding(by[a], c, resolved, args, by, domain)
                        if bad is None:
                            return
                        why = bad
                out.append(Violation(rule.id, c.id, f"{p['field']} {val} above limit {p['limit']}: {why}"))

    def _binding(
        self,
        req: ToolCall,
        c: ToolCall,
        resolved: dict[str, dict[str, Any] | None],
        args: dict[str, Any] | None,
        by: dict[str, ToolCall],
        domain: Any,
    ) -> str | None:
        """Why the required call ``req`` does not bind to ``c`` (None: it does)."""
        if args is None:
            return None  # unresolved references are reported as structure violations
        rout = req.output or {}
        for arg, field in BINDINGS.items():
            if arg in args and field in rout and args[arg] != rout[field]:
                return f"{arg} {args[arg]!r} is not the {field} {rout[field]!r} that {req.id} returned"
        rargs = resolved.get(req.id) or {}
        for k, v in rargs.items():
            if (k.endswith("_id") or k == "currency") and k not in BINDINGS and k in args and args[k] != v:
                return f"{k} {args[k]!r} differs from {v!r} in {req.id} (another subject or record)"
        if domain is not None and self.registry.tools[req.tool].kind == "identity":
            skey, ekey = f"{domain.subject}_id", f"{domain.entity}_id"
            who = rout.get(skey, rargs.get(skey))
            rec = args.get(ekey)
            if who is not None and rec is not None:
                for o in by.values():
                    oo = o.output or {}
                    if oo.get(ekey) == rec and skey in oo and oo[skey] != who:
                        return f"{ekey} {rec!r} belongs to {oo[skey]!r} (per {o.id}), not the verified {who!r}"
        return None
