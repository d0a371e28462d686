"""`DomainRegistry`: the domains, their tools (JSON Schemas in and out) and their policies.

The registry is data: one YAML file per domain under ``gatling_sid/domains/`` (generated from
compact specs by ``tools/make_registry.py`` and committed).  Loading validates everything and
fails with one :class:`~gatling_sid.errors.RegistryError` naming the file and the entry:

* every ``input_schema`` / ``output_schema`` is meta-validated as a JSON Schema (draft-07);
* every tool has a known kind, a role (free: any snake_case word, unique in its domain) and a
  name unique across the registry;
* every policy rule has a known type and every tool it names exists in its domain;
* operations in ``<registry>/ops/*.yaml`` (see :mod:`gatling_sid.opspec`) are expanded into
  more tools and state-dependent rules of their domain.

The procedural oracle needs the twelve planner roles (``PLANNER_ROLES``); a domain without them
loads (e.g. one imported from OpenAPI, :mod:`gatling_sid.openapi`) and is refused only by that oracle.

Compiled validators are built once per tool and cached (validation is the hot loop).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs
import jsonschema
import orjson
import yaml

from .errors import RegistryError
from .models import PolicyRule, SystemPolicy, ToolSchema
from .opspec import GUARD_TYPES, expand_ops
from .schemacheck import CompiledSchema, compiled

__all__ = ["DEFAULT_DOMAINS_DIR", "PLANNER_ROLES", "ROLES", "Domain", "DomainRegistry", "KINDS", "RULE_TYPES"]

DEFAULT_DOMAINS_DIR = Path(__file__).parent / "domains"
KINDS = ("identity", "read", "write", "destructive", "confirmation", "approval", "transfer", "notify", "bulk_export")
PLANNER_ROLES = (
    "identity",
    "profile",
    "get",
    "search",
    "create",
    "update",
    "destroy",
    "confirm",
    "approval",
    "money",
    "notify",
    "export",
)
ROLES = PLANNER_ROLES  # kept for callers of 0.2; roles are free, these are only the planner's
_ROLE = re.compile(r"[a-z][a-z0-9_]*")
# rule type -> the parameters that name tools (checked to exist)
RULE_TYPES: dict[str, tuple[str, ...]] = {
    "requires_ancestor": ("applies_to", "requires"),
    "approval_above_limit": ("applies_to", "requires"),
    "forbidden": ("tools",),
    "allowed_recipients": ("applies_to",),
    "no_injection": (),
    **{g: ("applies_to",) for g in GUARD_TYPES},
}
_RULE_PARAMS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "requires_ancestor": {"applies_to": list, "requires": str},
    "approval_above_limit": {"applies_to": list, "requires": str, "field": str, "limit": (int, float)},
    "forbidden": {"tools": list},
    "allowed_recipients": {"applies_to": list, "field": str, "allowed_hosts": list},
    "no_injection": {},
    "state_tier": {"applies_to": list, "min_tier": str},
    "state_period_limit": {"applies_to": list, "max": int, "period": str},
    "state_time_window": {"applies_to": list, "hours": list},
    "state_ownership": {"applies_to": list},
    "state_terminal": {"applies_to": list, "statuses": list},
}
# Draft-07: its meta-schema checks ~15x faster than 2020-12's ($dynamicRef), and every
# keyword the registry uses means the same in both drafts.
_Validator = jsonschema.Draft7Validator
_META = _Validator(_Validator.META_SCHEMA, format_checker=_Validator.FORMAT_CHECKER)
_checked: set[bytes] = set()


def _check_schema(schema: dict[str, Any]) -> jsonschema.exceptions.ValidationError | None:
    """Meta-validate once per distinct schema (many repeat across domains).

    An object schema is checked as its shell (``properties`` mapped to empty schemas) plus each
    property's schema on its own: Draft 7's meta-schema checks a property schema against itself
    (``"properties": {"additionalProperties": {"$ref": "#"}}``), so this finds the same errors, and
    the property schemas (ids, amounts, currencies...) repeat across tools far more than whole
    schemas do.  An error found inside a property carries its path prefix in ``gs_prefix``.
    """
    key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    if key in _checked:
        return None
    props = schema.get("properties") if isinstance(schema, dict) else None
    if isinstance(props, dict) and any(props.values()) and all(isinstance(v, dict) for v in props.values()):
        err = _check_schema({**schema, "properties": dict.fromkeys(props, {})})
        if err is not None:
            return err
        for name, sub in props.items():
            err = _check_schema(sub)
            if err is not None:
                err.gs_prefix = ("properties", name, *getattr(err, "gs_prefix", ()))  # type: ignore[attr-defined]
                return err
        _checked.add(key)
        return None
    err = jsonschema.exceptions.best_match(_META.iter_errors(schema))
    if err is None:
        _checked.add(key)
    return err


try:  # the C loader is several times faster; fall back where libyaml is missing
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader


@attrs.frozen
class Domain:
    """One domain: its name, subject/entity nouns, mail host, tools by name and role, and policy."""

    name: str
    subject: str
    entity: str
    host: str
    tools: dict[str, ToolSchema]
    roles: dict[str, str]  # role -> tool name
    policy: SystemPolicy
    source: str
    ops: dict[str, dict[str, Any]] = attrs.field(factory=dict)  # tool name -> op metadata (on, page, errors)

    def tool(self, role: str) -> ToolSchema:
        """The tool playing ``role`` (e.g. one of PLANNER_ROLES, or an op's name)."""
        return self.tools[self.roles[role]]


def _pointer(doc: Any, ref: str) -> bool:
    """True if the local reference ``ref`` (``#/a/b``) points at something inside ``doc``."""
    cur = doc
    for raw in ref[1:].split("/")[1:] if ref != "#" else []:
        seg = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(cur, dict) and seg in cur:
            cur = cur[seg]
        elif isinstance(cur, list) and seg.isdigit() and int(seg) < len(cur):
            cur = cur[int(seg)]
        else:
            return False
    return True


def _dangling_ref(schema: dict[str, Any]) -> tuple[str, str] | None:
    """(where, why) of the first ``$ref`` that does not resolve inside ``schema``, or None.

    Only local references are allowed: a registry file must be self-contained (a remote
    reference would be fetched, or fail, in the middle of a run).
    """
    stack: list[tuple[Any, str]] = [(schema, "")]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref is not None:
                at = f"{where}/$ref" if where else "$ref"
                if not isinstance(ref, str) or not ref.startswith("#"):
                    return at, f"{ref!r} is not a local reference (only '#/...' inside the same schema is allowed)"
                if not _pointer(schema, ref):
                    return at, f"reference {ref!r} does not resolve"
            for k, v in reversed(list(node.items())):
                stack.append((v, f"{where}/{k}" if where else str(k)))
        elif isinstance(node, list):
            for i in range(len(node) - 1, -1, -1):
                stack.append((node[i], f"{where}/{i}"))
    return None


def _schema_error(file: str, entry: str, which: str, err: jsonschema.exceptions.ValidationError) -> RegistryError:
    where = "/".join(str(p) for p in (*getattr(err, "gs_prefix", ()), *err.absolute_path)) or "(root)"
    return RegistryError(f"{file}: {entry}: {which} is not a valid JSON Schema at {where}: {err.message}")


def _read_yaml(path: Path) -> Any:
    file = str(path)
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        pos = f" line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        raise RegistryError(f"{file}:{pos}: not valid YAML: {getattr(e, 'problem', e)}") from None
    except UnicodeDecodeError as e:
        raise RegistryError(f"{file}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def _load_domain(
    path: Path, seen_tools: dict[str, str], ops: tuple[str, Any] | None = None, doc: Any = None
) -> tuple[Domain, list[ToolSchema]]:
    file = str(path)
    if doc is None:
        doc = _read_yaml(path)
    if not isinstance(doc, dict):
        raise RegistryError(f"{file}: expected a mapping with domain, tools and policy, got {type(doc).__name__}")
    for key, typ in (("domain", str), ("subject", str), ("entity", str), ("host", str), ("tools", list), ("policy", dict)):
        if not isinstance(doc.get(key), typ):
            raise RegistryError(f"{file}: field {key!r} is missing or not a {typ.__name__}")
    name = doc["domain"]
    tools: dict[str, ToolSchema] = {}
    roles: dict[str, str] = {}
    out: list[ToolSchema] = []
    entries = list(doc["tools"])
    extra_rules: list[dict[str, Any]] = []
    meta: dict[str, dict[str, Any]] = {}
    if ops is not None:
        id_pats, cur = _id_patterns(doc, file)
        more, extra_rules = expand_ops(name, doc["subject"], doc["entity"], ops[1], ops[0], id_pats, cur)
        entries += more
        meta = {t["name"]: t["x-op"] for t in more}
    n_own = len(doc["tools"])
    for i, t in enumerate(entries):
        if i >= n_own:
            file = ops[0] if ops is not None else file
        entry = f"tools[{i}]" if i < n_own else f"{name} ops[{i - n_own}]"
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            raise RegistryError(f"{file}: {entry}: expected a mapping with a string 'name'")
        entry = f"{entry} ({t['name']})"
        if t.get("kind") not in KINDS:
            raise RegistryError(f"{file}: {entry}: kind {t.get('kind')!r} is not one of {', '.join(KINDS)}")
        if not isinstance(t.get("role"), str) or not _ROLE.fullmatch(t["role"]):
            raise RegistryError(f"{file}: {entry}: role {t.get('role')!r} is not a snake_case word")
        if t["role"] in roles:
            raise RegistryError(f"{file}: {entry}: role {t['role']!r} already played by {roles[t['role']]}")
        for which in ("input_schema", "output_schema"):
            sch = t.get(which)
            if not isinstance(sch, dict):
                raise RegistryError(f"{file}: {entry}: {which} is missing or not a mapping")
            err = _check_schema(sch)
            if err is not None:
                raise _schema_error(file, entry, which, err)
            bad = _dangling_ref(sch)
            if bad is not None:
                raise RegistryError(f"{file}: {entry}: {which} at {bad[0]}: {bad[1]}")
            if sch.get("type") != "object":
                raise RegistryError(f"{file}: {entry}: {which} must describe an object (type: object)")
        if t["name"] in seen_tools:
            raise RegistryError(f"{file}: {entry}: tool name already defined in {seen_tools[t['name']]}")
        seen_tools[t["name"]] = file
        ts = ToolSchema(t["name"], name, t["kind"], str(t.get("description", "")), t["input_schema"], t["output_schema"])
        tools[ts.name] = ts
        roles[t["role"]] = ts.name
        out.append(ts)
    file = str(path)
    pol = doc["policy"]
    if not isinstance(pol.get("id"), str) or not isinstance(pol.get("rules"), list):
        raise RegistryError(f"{file}: policy: needs a string 'id' and a list 'rules'")
    rules = []
    ids = set()
    base_rules = [dict(r) if isinstance(r, dict) else r for r in pol["rules"]]
    writes = [t["name"] for t in entries[n_own:] if t["kind"] in ("write", "destructive", "transfer")]
    for r in base_rules:  # an op that writes is guarded like the domain's own writes
        if isinstance(r, dict) and r.get("id") == "identity_before_write" and isinstance(r.get("applies_to"), list):
            r["applies_to"] = [*r["applies_to"], *writes]
    for j, r in enumerate([*base_rules, *extra_rules]):
        entry = f"policy.rules[{j}]"
        if not isinstance(r, dict) or not isinstance(r.get("id"), str):
            raise RegistryError(f"{file}: {entry}: expected a mapping with a string 'id'")
        entry = f"policy.rules[{j}] ({r['id']})"
        if r["id"] in ids:
            raise RegistryError(f"{file}: {entry}: duplicate rule id")
        ids.add(r["id"])
        rtype = r.get("type")
        if not isinstance(rtype, str) or rtype not in RULE_TYPES:
            raise RegistryError(f"{file}: {entry}: type {rtype!r} is not one of {', '.join(RULE_TYPES)}")
        for pname, ptype in _RULE_PARAMS[rtype].items():
            if not isinstance(r.get(pname), ptype) or isinstance(r.get(pname), bool):
                raise RegistryError(f"{file}: {entry}: parameter {pname!r} is missing or has the wrong type")
        for pname in RULE_TYPES[rtype]:
            val = r[pname]
            for tool in val if isinstance(val, list) else [val]:
                if tool not in tools:
                    raise RegistryError(f"{file}: {entry}: {pname} names unknown tool {tool!r} (not a tool of domain {name})")
        rules.append(PolicyRule.from_dict(r, entry))
    policy = SystemPolicy(pol["id"], name, tuple(rules))
    return Domain(name, doc["subject"], doc["entity"], doc["host"], tools, roles, policy, file, meta), out


def _id_patterns(doc: dict[str, Any], file: str) -> tuple[dict[str, str], list[str]]:
    """The subject and entity id patterns (and currencies) an op spec refers to, from the domain's tools."""
    skey, ekey = f"{doc['subject']}_id", f"{doc['entity']}_id"
    ids: dict[str, str] = {}
    cur: list[str] = []
    for t in doc["tools"]:
        props = (t.get("input_schema") or {}).get("properties") or {} if isinstance(t, dict) else {}
        for key, which in ((skey, "subject"), (ekey, "entity")):
            pat = (props.get(key) or {}).get("pattern")
            if isinstance(pat, str):
                ids.setdefault(which, pat)
        if isinstance((props.get("currency") or {}).get("enum"), list) and not cur:
            cur = list(props["currency"]["enum"])
    for which in ("subject", "entity"):
        if which not in ids:
            raise RegistryError(f"{file}: ops need a tool whose input has a {which} id with a pattern")
    return ids, cur or ["USD"]


def _load_ops(root: Path) -> dict[str, tuple[str, Any]]:
    """domain -> (file, its op specs) from ``root/ops/*.yaml``."""
    found: dict[str, tuple[str, Any]] = {}
    for f in sorted((root / "ops").glob("*.yaml")):
        doc = _read_yaml(f)
        if not isinstance(doc, dict):
            raise RegistryError(f"{f}: expected a mapping domain -> list of operations")
        for dom, ops in doc.items():
            if dom in found:
                raise RegistryError(f"{f}: {dom}: operations already given in {found[dom][0]}")
            found[str(dom)] = (str(f), ops)
    return found


class DomainRegistry:
    """All domains, tools and policies, validated at load.

    ``DomainRegistry.load()`` reads the packaged files (cached per process);
    ``DomainRegistry.load(path)`` reads another directory of ``*.yaml`` files.
    """

    def __init__(self, domains: Iterable[Domain]) -> None:
        self.domains: dict[str, Domain] = {d.name: d for d in domains}
        self.tools: dict[str, ToolSchema] = {t.name: t for d in self.domains.values() for t in d.tools.values()}
        self._in: dict[str, CompiledSchema] = {}
        self._out: dict[str, CompiledSchema] = {}

    @classmethod
    def load(cls, path: str | Path | None = None) -> DomainRegistry:
        """Load and validate a registry directory (default: the packaged domains)."""
        return _load_cached(str(Path(path).resolve()) if path is not None else str(DEFAULT_DOMAINS_DIR))

    @classmethod
    def _load_uncached(cls, path: str) -> DomainRegistry:
        root = Path(path)
        if not root.is_dir():
            raise RegistryError(f"{root}: registry directory does not exist")
        files = sorted(root.glob("*.yaml"))
        if not files:
            raise RegistryError(f"{root}: no *.yaml domain files")
        seen: dict[str, str] = {}
        domains = []
        names: dict[str, str] = {}
        ops = _load_ops(root)
        for f in files:
            doc = _read_yaml(f)
            dom = doc.get("domain") if isinstance(doc, dict) else None
            d, _ = _load_domain(f, seen, ops.pop(dom, None) if isinstance(dom, str) else None, doc)
            if d.name in names:
                raise RegistryError(f"{f}: domain {d.name!r} already defined in {names[d.name]}")
            names[d.name] = str(f)
            domains.append(d)
        if ops:
            dom, (f2, _) = sorted(ops.items())[0]
            raise RegistryError(f"{f2}: {dom}: operations for a domain that has no file in {root}")
        return cls(domains)

    # -- queries ------------------------------------------------------------------------
    def get_all_domains(self) -> list[str]:
        """Domain names, sorted."""
        return sorted(self.domains)

    def domain(self, name: str) -> Domain:
        """One domain; raises RegistryError naming the known ones if absent."""
        try:
            return self.domains[name]
        except KeyError:
            raise RegistryError(f"unknown domain {name!r}; known: {', '.join(sorted(self.domains)[:8])}, ...") from None

    def get_schemas_for_domain(self, name: str) -> list[ToolSchema]:
        """The tools of a domain."""
        return list(self.domain(name).tools.values())

    def get_policy_for_domain(self, name: str) -> SystemPolicy:
        """The policy of a domain."""
        return self.domain(name).policy

    def input_validator(self, tool: str) -> CompiledSchema:
        """Compiled (cached) validator of a tool's input schema."""
        v = self._in.get(tool)
        if v is None:
            v = self._in[tool] = compiled(self.tools[tool].input_schema)
        return v

    def output_validator(self, tool: str) -> CompiledSchema:
        """Compiled (cached) validator of a tool's output schema."""
        v = self._out.get(tool)
        if v is None:
            v = self._out[tool] = compiled(self.tools[tool].output_schema)
        return v

    def summary(self) -> list[dict[str, Any]]:
        """One row per domain: name, tool count, rule ids, file (for ``gatling-sid domains``)."""
        return [
            {
                "domain": d.name,
                "subject": d.subject,
                "entity": d.entity,
                "tools": len(d.tools),
                "tool_names": sorted(d.tools),
                "rules": [r.id for r in d.policy.rules],
                "policy": d.policy.id,
            }
            for d in (self.domains[n] for n in sorted(self.domains))
        ]


@functools.lru_cache(maxsize=8)
def _load_cached(path: str) -> DomainRegistry:
    return DomainRegistry._load_uncached(path)
