"""Recipes: YAML files describing what to generate, validated into frozen attrs classes.

A recipe (see docs/routergen.md for the full schema)::

    name: support-tickets
    task: Customer-support tickets for a consumer electronics shop.
    samples: 500            # target number of accepted samples
    batch_size: 50          # samples generated per iteration (one bandit pull)
    grammar: {...}          # optional PCFG (routergen.grammar)
    output: {schema: {...}, text_field: text}   # schema optional when a grammar exists
    llm: {model: claude-3-5-haiku-latest}       # optional; enables LLM arms
    arms: [templater, templater-uniform, naive] # optional; default: every arm the context allows
    router: {policy: epsilon_greedy, epsilon: 1.0, decay: 0.9, min_epsilon: 0.05}
    budget: {max_iterations: 100, max_usd: 2.0, max_calls: 5000}
    validators: {exact_dedup: {}, near_dup: {threshold: 0.85}, schema: {}, distinct_n: {n: 2}}
    examples: ["My laptop will not boot."]

:func:`load_recipe` reports every problem as a :class:`~routergen.errors.RecipeError`
naming the file, the line and the key.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import jsonschema
import orjson

from .errors import RecipeError
from .grammar import Grammar, grammar_from_dict
from .yamlmarks import Marked, load_marked

POLICIES = ("epsilon_greedy", "ucb1", "thompson", "thompson_discounted", "thompson_window", "linucb")
#: Reward formulas (routergen.feedback); the first, the seed's, is the default.
REWARDS = ("pass_rate_x_judge", "pass_rate_x_mean", "pass_rate")
GENERATORS = ("templater", "naive")
FILLS = ("values", "llm")
STRUCTURED = ("tool", "text")
BACKENDS = ("anthropic", "openai")
WEIGHTINGS = ("grammar", "uniform")
SAMPLE_VALIDATORS = ("exact_dedup", "near_dup", "schema", "similarity", "length", "arithmetic", "faithfulness")
BATCH_VALIDATORS = ("distinct_n", "dispersion", "judge")
LLM_VALIDATORS = ("faithfulness", "judge")
DEFAULT_VALIDATORS: dict[str, dict[str, Any]] = {
    "exact_dedup": {},
    "near_dup": {},
    "schema": {},
    "distinct_n": {},
    "dispersion": {},
}


class FieldError(ValueError):
    """Raised by config validators; carries the field name so the loader can find its line."""

    def __init__(self, field: str | tuple[Any, ...], msg: str) -> None:
        self.field = field
        super().__init__(msg)

    @property
    def path(self) -> tuple[Any, ...]:
        """The field as a key path below the section being built."""
        return self.field if isinstance(self.field, tuple) else (self.field,)


# name -> {param: (default, kind, lo, hi)}; kind: "num" or "int" or "numnull"
_PARAMS: dict[str, dict[str, tuple[Any, str, float, float | None]]] = {
    "exact_dedup": {},
    "near_dup": {"threshold": (0.8, "num", 0.0, 1.0), "num_perm": (64, "int", 8, 1024), "shingle": (5, "int", 1, 8)},
    "schema": {},
    "similarity": {"min": (0.0, "num", 0.0, 1.0), "max": (0.95, "num", 0.0, 1.0)},
    "length": {"min_chars": (1, "int", 0, None), "max_chars": (None, "intnull", 1, None)},
    "faithfulness": {"min_score": (0.5, "num", 0.0, 1.0)},
    "arithmetic": {"answer_field": ("answer", "str", 0, None), "solution_field": ("solution", "str", 0, None)},
    "distinct_n": {"n": (2, "int", 1, 8), "min": (0.0, "num", 0.0, 1.0)},
    "dispersion": {"min": (0.0, "num", 0.0, 1.0), "max_items": (64, "int", 2, 1000)},
    "judge": {"min": (0.0, "num", 0.0, 1.0), "max_items": (20, "int", 1, 200)},
}


def check_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a validator's parameters; return them with defaults filled in."""
    spec = _PARAMS[name]
    out: dict[str, Any] = {}
    for k in params:
        if k not in spec:
            raise FieldError(str(k), f"unknown parameter of {name} (allowed: {', '.join(spec) or 'none'})")
    for k, (default, kind, lo, hi) in spec.items():
        v = params.get(k, default)
        if kind == "str":
            if not isinstance(v, str) or not v:
                raise FieldError(k, f"{k}={v!r}: must be a field name")
            out[k] = v
            continue
        if v is None and kind == "intnull":
            out[k] = None
            continue
        num_ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        if kind in ("int", "intnull"):
            num_ok = num_ok and isinstance(v, int)
        if not num_ok or v < lo or (hi is not None and v > hi):
            what = "an integer" if kind != "num" else "a number"
            raise FieldError(k, f"{k}={v!r}: must be {what} >= {lo}" + (f" and <= {hi}" if hi is not None else ""))
        out[k] = v
    if name == "similarity" and out["min"] > out["max"]:
        raise FieldError("min", f"min={out['min']} must be <= max={out['max']}")
    return out


def _check(cond: bool, field: str, value: Any, allowed: str) -> None:
    if not cond:
        raise FieldError(field, f"{field}={value!r}: {allowed}")


def _int_range(lo: int, hi: int | None = None, optional: bool = False):
    def v(_i: Any, a: attrs.Attribute, x: Any) -> None:
        if optional and x is None:
            return
        ok = isinstance(x, int) and not isinstance(x, bool) and x >= lo and (hi is None or x <= hi)
        _check(
            ok,
            a.name,
            x,
            f"must be an integer >= {lo}" + (f" and <= {hi}" if hi is not None else "") + (" (or null)" if optional else ""),
        )

    return v


def _num_range(lo: float, hi: float | None = None, optional: bool = False, lo_open: bool = False):
    def v(_i: Any, a: attrs.Attribute, x: Any) -> None:
        if optional and x is None:
            return
        ok = (
            isinstance(x, (int, float))
            and not isinstance(x, bool)
            and (x > lo if lo_open else x >= lo)
            and (hi is None or x <= hi)
        )
        _check(
            ok,
            a.name,
            x,
            f"must be a number {'>' if lo_open else '>='} {lo}"
            + (f" and <= {hi}" if hi is not None else "")
            + (" (or null)" if optional else ""),
        )

    return v


def _one_of(options: tuple[str, ...]):
    def v(_i: Any, a: attrs.Attribute, x: Any) -> None:
        _check(x in options, a.name, x, f"must be one of {', '.join(options)}")

    return v


def _bool(_i: Any, a: attrs.Attribute, x: Any) -> None:
    _check(isinstance(x, bool), a.name, x, "must be true or false")


def _text(_i: Any, a: attrs.Attribute, x: Any) -> None:
    _check(isinstance(x, str) and x.strip() != "", a.name, x, "must be a non-empty string")


@attrs.frozen
class RouterConfig:
    """Bandit policy and its parameters.

    ``epsilon`` is the initial exploration rate of epsilon-greedy; it decays each iteration
    as ``max(min_epsilon, epsilon * decay**t)`` (the seed's ``AdaptationPolicy``);
    ``decay: 1`` keeps it fixed.  ``ucb_c`` scales UCB1's bonus ``sqrt(ucb_c * ln t / n)``.
    With ``cost_aware`` the reward is multiplied by ``exp(-cost_per_sample / cost_scale_usd)``.
    For drifting rewards: ``thompson_discounted`` forgets with factor ``discount`` per step,
    ``thompson_window`` keeps the last ``window`` rewards, ``linucb`` (bonus ``linucb_alpha``)
    regresses each arm's reward on the iteration's context (progress towards ``n``).
    ``round_size`` R: decisions are made in rounds of R iterations, all chosen from the bandit
    state after the previous round, so the R iterations can run concurrently; their rewards are
    applied in iteration order.  R = 1 (the default) is one decision per reward.  R changes the
    data (delayed feedback), so it is part of the run's identity; ``--concurrency`` never does.
    """

    policy: str = attrs.field(default="epsilon_greedy", validator=_one_of(POLICIES))
    epsilon: float = attrs.field(default=1.0, validator=_num_range(0.0, 1.0))
    min_epsilon: float = attrs.field(default=0.05, validator=_num_range(0.0, 1.0))
    decay: float = attrs.field(default=0.9, validator=_num_range(0.0, 1.0, lo_open=True))
    ucb_c: float = attrs.field(default=2.0, validator=_num_range(0.0))
    cost_aware: bool = attrs.field(default=False, validator=_bool)
    cost_scale_usd: float = attrs.field(default=0.001, validator=_num_range(0.0, lo_open=True))
    reward: str = attrs.field(default="pass_rate_x_judge", validator=_one_of(REWARDS))
    discount: float = attrs.field(default=0.95, validator=_num_range(0.0, 1.0, lo_open=True))
    window: int = attrs.field(default=50, validator=_int_range(1, 100_000))
    linucb_alpha: float = attrs.field(default=1.0, validator=_num_range(0.0))
    round_size: int = attrs.field(default=1, validator=_int_range(1, 10_000))


@attrs.frozen
class Budget:
    """When to stop besides reaching the target: iterations, dollars, model calls."""

    max_iterations: int | None = attrs.field(default=None, validator=_int_range(1, optional=True))
    max_usd: float | None = attrs.field(default=None, validator=_num_range(0.0, optional=True, lo_open=True))
    max_calls: int | None = attrs.field(default=None, validator=_int_range(1, optional=True))


def _prices(value: Any) -> dict[str, tuple[float, float]]:
    """``{model_prefix: [usd_in_per_mtok, usd_out_per_mtok]}`` (or a mapping with those keys)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise FieldError("prices", "prices: must be a mapping of model-name prefix -> [USD in, USD out] per million tokens")
    out: dict[str, tuple[float, float]] = {}
    for k, v in value.items():
        if isinstance(v, Mapping) and set(v) == {"input_per_mtok", "output_per_mtok"}:
            v = [v["input_per_mtok"], v["output_per_mtok"]]
        ok = (
            isinstance(k, str)
            and k.strip() != ""
            and isinstance(v, (list, tuple))
            and len(v) == 2
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) and x >= 0 for x in v)
        )
        if not ok:
            raise FieldError(
                ("prices", str(k)),
                f"{k}={v!r}: must be two numbers >= 0, [USD per million input tokens, USD per million output tokens]",
            )
        out[k] = (float(v[0]), float(v[1]))
    return out


@attrs.frozen
class LLMConfig:
    """The model used by LLM arms and LLM validators.

    ``backend``: ``anthropic`` (default; the Messages API, key from ``ANTHROPIC_API_KEY``) or
    ``openai`` (any OpenAI-compatible chat-completions endpoint through datacore's
    ``OpenAIClient``: ``OPENAI_BASE_URL``, e.g. a local vLLM or llama.cpp server, and
    ``OPENAI_API_KEY`` if it needs one).

    ``structured``: how NAIVE samples and slot fills are asked for: ``tool`` (default; a forced
    call to a tool whose input schema is the recipe's JSON schema, or the slots' schema, checked
    with jsonschema and repaired once) or ``text`` (a JSON object in the reply text, no repair).

    ``prices`` adds or overrides price rows (model-name prefix -> USD per million input and
    output tokens) on top of datacore's list prices; every response is priced from its token
    usage with them, whether it came from the network or the cache.
    """

    model: str = attrs.field(default="claude-3-5-haiku-latest", validator=_text)
    temperature: float = attrs.field(default=0.8, validator=_num_range(0.0, 1.0))
    max_tokens: int = attrs.field(default=512, validator=_int_range(1, 64_000))
    judge_model: str | None = attrs.field(default=None, validator=lambda i, a, x: None if x is None else _text(i, a, x))
    prices: Mapping[str, tuple[float, float]] = attrs.field(factory=dict, converter=_prices)
    structured: str = attrs.field(default="tool", validator=_one_of(STRUCTURED))
    backend: str = attrs.field(default="anthropic", validator=_one_of(BACKENDS))


@attrs.frozen
class ArmSpec:
    """One arm: a generator and its parameters.

    ``templater``: ``fill`` = ``values`` (offline, from the grammar's value lists) or ``llm``;
    ``weighting`` = ``grammar`` (production weights) or ``uniform`` (more exploratory).
    ``naive``: the model writes a generation prompt from the recipe, then samples;
    ``temperature`` overrides the recipe's.
    """

    name: str = attrs.field(validator=_text)
    generator: str = attrs.field(validator=_one_of(GENERATORS))
    fill: str = attrs.field(default="values", validator=_one_of(FILLS))
    weighting: str = attrs.field(default="grammar", validator=_one_of(WEIGHTINGS))
    temperature: float | None = attrs.field(default=None, validator=_num_range(0.0, 1.0, optional=True))

    @property
    def needs_llm(self) -> bool:
        """Whether the arm calls a model."""
        return self.generator == "naive" or self.fill == "llm"

    @property
    def needs_grammar(self) -> bool:
        """Whether the arm expands the grammar."""
        return self.generator == "templater"


BUILTIN_ARMS: dict[str, ArmSpec] = {
    "templater": ArmSpec("templater", "templater", "values", "grammar"),
    "templater-uniform": ArmSpec("templater-uniform", "templater", "values", "uniform"),
    "templater-llm": ArmSpec("templater-llm", "templater", "llm", "grammar"),
    "naive": ArmSpec("naive", "naive"),
    "naive-hot": ArmSpec("naive-hot", "naive", temperature=1.0),
}


@attrs.frozen
class ValidatorSpec:
    """A validator the recipe turns on, with its parameters (thresholds)."""

    name: str = attrs.field(validator=_one_of(SAMPLE_VALIDATORS + BATCH_VALIDATORS))
    params: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def kind(self) -> str:
        """``sample`` or ``batch``."""
        return "sample" if self.name in SAMPLE_VALIDATORS else "batch"

    @property
    def needs_llm(self) -> bool:
        """Whether it asks a model (skipped, and said so, when none is available)."""
        return self.name in LLM_VALIDATORS


@attrs.frozen
class Recipe:
    """A validated recipe.  Build with :func:`load_recipe` or :func:`recipe_from_dict`."""

    name: str = attrs.field(validator=_text)
    task: str = attrs.field(validator=_text)
    samples: int = attrs.field(default=100, validator=_int_range(1))
    batch_size: int = attrs.field(default=50, validator=_int_range(1, 100_000))
    grammar: Grammar | None = None
    schema: Mapping[str, Any] | None = None
    schema_derived: bool = False
    text_field: str = "text"
    llm: LLMConfig | None = None
    arms: tuple[ArmSpec, ...] = ()
    arms_explicit: bool = False
    router: RouterConfig = attrs.field(factory=RouterConfig)
    budget: Budget = attrs.field(factory=Budget)
    validators: tuple[ValidatorSpec, ...] = ()
    examples: tuple[Any, ...] = ()
    prompts: Any = None  # routergen.prompts.PromptTemplates, or None
    source: str = "<recipe>"
    data: Mapping[str, Any] = attrs.field(factory=dict, repr=False)
    #: Price rows given outside the recipe (``--price``); they override ``llm.prices``.
    extra_prices: Mapping[str, tuple[float, float]] = attrs.field(factory=dict)

    @property
    def prices(self) -> dict[str, tuple[float, float]]:
        """Price overrides in force: ``llm.prices`` then ``extra_prices`` (model prefix -> USD/Mtok)."""
        out = dict(self.llm.prices) if self.llm is not None else {}
        out.update(self.extra_prices)
        return out

    def price_table(self) -> Any:
        """A :class:`datacore.llm.PriceTable`: datacore's list prices plus :attr:`prices`."""
        from datacore.llm import PriceTable

        return PriceTable(self.prices)

    @property
    def hash(self) -> str:
        """sha256 (first 16 hex) of the recipe's canonical JSON: its identity in lineage."""
        return hashlib.sha256(orjson.dumps(self.data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]

    def validator(self, name: str) -> ValidatorSpec | None:
        """The validator named ``name`` if the recipe enables it."""
        return next((v for v in self.validators if v.name == name), None)


_TOP_KEYS = (
    "name",
    "task",
    "samples",
    "batch_size",
    "grammar",
    "output",
    "llm",
    "arms",
    "router",
    "budget",
    "validators",
    "examples",
    "prompts",
)


def _build(cls: type, data: Any, path: tuple[Any, ...], m: Marked, rename: Mapping[str, str] | None = None) -> Any:
    """Construct attrs class ``cls`` from mapping ``data`` found at ``path``, mapping errors to lines."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise m.error(path, f"must be a mapping, got {type(data).__name__}")
    names = [f.name for f in attrs.fields(cls) if f.init]
    rename = rename or {}
    kwargs = {}
    for k, v in data.items():
        field = rename.get(k, k)
        if field not in names:
            raise m.error(path + (k,), f"unknown key (allowed: {', '.join(rename.get(n, n) for n in names)})")
        kwargs[field] = v
    for f in attrs.fields(cls):
        if f.init and f.default is attrs.NOTHING and f.name not in kwargs:
            raise m.error(path, f"missing required key '{rename.get(f.name, f.name)}'")
    try:
        return cls(**kwargs)
    except FieldError as e:
        raise m.error(path + e.path, str(e)) from None
    except TypeError as e:
        raise m.error(path, str(e)) from None


def recipe_from_marked(m: Marked, prices: Mapping[str, tuple[float, float]] | None = None) -> Recipe:
    """Validate a loaded YAML document into a :class:`Recipe` (errors name file and line).

    ``prices`` (e.g. from ``--price``) override the recipe's ``llm.prices``.
    """
    d = m.data
    if not isinstance(d, Mapping):
        raise m.error((), f"a recipe is a mapping of keys ({', '.join(_TOP_KEYS)}); got {type(d).__name__}")
    for k in d:
        if k not in _TOP_KEYS:
            raise m.error((k,), f"unknown key (allowed: {', '.join(_TOP_KEYS)})")
    for k in ("name", "task"):
        if k not in d:
            raise m.error((), f"missing required key '{k}'")

    grammar = None
    if d.get("grammar") is not None:
        grammar = grammar_from_dict(d["grammar"], m.source, m.line, ("grammar",))

    out = d.get("output") or {}
    if not isinstance(out, Mapping):
        raise m.error(("output",), "must be a mapping with schema and/or text_field")
    for k in out:
        if k not in ("schema", "text_field"):
            raise m.error(("output", k), "unknown key (allowed: schema, text_field)")
    schema = out.get("schema")
    text_field = out.get("text_field", "text")
    if not isinstance(text_field, str) or not text_field:
        raise m.error(("output", "text_field"), f"text_field={text_field!r}: must be a field name")
    derived = False
    if schema is not None:
        if not isinstance(schema, Mapping):
            raise m.error(("output", "schema"), "must be a JSON Schema (a mapping)")
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as e:
            sub = ("output", "schema") + tuple(e.path)
            raise m.error(sub, f"not a valid JSON Schema: {e.message}") from None
        if grammar is not None:
            where = f"{m.source}:{m.line(('output', 'schema'))}: output.schema"
            grammar.check_schema(schema, where=where)
            grammar.check_satisfiable(schema, where=where)
    elif grammar is not None:
        schema = grammar.derived_schema()
        derived = True
    else:
        schema = {"type": "object", "properties": {"text": {"type": "string", "minLength": 1}}, "required": ["text"]}
        derived = True
    props = schema.get("properties", {}) or {}
    if text_field not in props and not (grammar is not None and text_field == "text"):
        raise m.error(("output", "text_field"), f"text_field '{text_field}' is not a property of the output schema")

    llm = _build(LLMConfig, d["llm"], ("llm",), m) if d.get("llm") is not None else None
    if llm is not None and llm.structured == "tool" and schema.get("type") != "object":
        at: tuple[str, ...] = ("llm", "structured") if "structured" in (d["llm"] or {}) else ("output", "schema")
        raise m.error(at, 'structured: tool needs an output schema with "type": "object" (a tool input is an object)')
    router = _build(RouterConfig, d.get("router"), ("router",), m)
    budget = _build(Budget, d.get("budget"), ("budget",), m)

    arms_in = d.get("arms")
    arms: list[ArmSpec] = []
    if arms_in is None:
        arms = list(BUILTIN_ARMS.values())
    else:
        if not isinstance(arms_in, list) or not arms_in:
            raise m.error(("arms",), f"must be a non-empty list of arm names ({', '.join(BUILTIN_ARMS)}) or mappings")
        for i, a in enumerate(arms_in):
            if isinstance(a, str):
                if a not in BUILTIN_ARMS:
                    raise m.error(
                        ("arms", i),
                        f"unknown arm {a!r} (built-in: {', '.join(BUILTIN_ARMS)}; or a mapping with name, generator, ...)",
                    )
                arms.append(BUILTIN_ARMS[a])
            else:
                arms.append(_build(ArmSpec, a, ("arms", i), m))
        names = [a.name for a in arms]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup:
            raise m.error(("arms",), f"arm name {dup!r} appears twice")
        if grammar is None:
            # Unlike a model, a grammar is not a property of the run's context: such an arm could never run.
            for i, a in enumerate(arms):
                if a.needs_grammar:
                    raise m.error(
                        ("arms", i), f"arm {a.name!r} uses the templater generator, which needs a grammar; the recipe has none"
                    )

    vals_in = d.get("validators")
    validators: list[ValidatorSpec] = []
    if vals_in is None:
        vals_in = DEFAULT_VALIDATORS
    if not isinstance(vals_in, Mapping):
        raise m.error(("validators",), "must be a mapping of validator name -> parameters ({} for defaults, false to disable)")
    for k, v in vals_in.items():
        if k not in SAMPLE_VALIDATORS + BATCH_VALIDATORS:
            raise m.error(("validators", k), f"unknown validator (allowed: {', '.join(SAMPLE_VALIDATORS + BATCH_VALIDATORS)})")
        if v is False:
            continue
        if v is None or v is True:
            v = {}
        if not isinstance(v, Mapping):
            raise m.error(("validators", k), "parameters must be a mapping (or true/false)")
        try:
            check_params(k, v)
        except FieldError as e:
            raise m.error(("validators", k, e.field), str(e)) from None
        validators.append(ValidatorSpec(k, dict(v)))
        if k == "arithmetic":
            props = (schema or {}).get("properties") or {}
            for key in ("answer_field", "solution_field"):
                f = check_params(k, v)[key]
                if props and f not in props:
                    raise m.error(
                        ("validators", k), f"{key} '{f}' is not a property of the output schema (properties: {', '.join(props)})"
                    )

    prompts = None
    if d.get("prompts") is not None:
        from .prompts import PromptTemplateError, PromptTemplates

        if not isinstance(d["prompts"], Mapping):
            raise m.error(("prompts",), "must be a mapping of prompt name (naive, fill) -> Jinja2 template")
        try:
            prompts = PromptTemplates(d["prompts"])
        except PromptTemplateError as e:
            raise m.error(("prompts", e.kind), str(e)) from None

    examples = d.get("examples") or []
    if not isinstance(examples, list):
        raise m.error(("examples",), "must be a list of strings or mappings")
    for i, ex in enumerate(examples):
        if isinstance(ex, Mapping):
            if text_field not in ex:
                raise m.error(("examples", i), f"example lacks the text field '{text_field}'")
        elif not isinstance(ex, str):
            raise m.error(("examples", i), "an example is a string or a mapping of output fields")

    base = {k: d[k] for k in ("name", "task", "samples", "batch_size") if k in d}
    try:
        r = Recipe(
            **base,
            grammar=grammar,
            schema=schema,
            schema_derived=derived,
            text_field=text_field,
            llm=llm,
            arms=tuple(arms),
            arms_explicit=arms_in is not None,
            router=router,
            budget=budget,
            validators=tuple(validators),
            examples=tuple(examples),
            prompts=prompts,
            source=m.source,
            data=orjson.loads(orjson.dumps(d, default=str)),
            extra_prices=dict(prices or {}),
        )
    except FieldError as e:
        raise m.error(e.path, str(e)) from None
    if r.router.min_epsilon > r.router.epsilon:
        raise m.error(("router", "min_epsilon"), f"min_epsilon={r.router.min_epsilon} must be <= epsilon={r.router.epsilon}")
    _check_priced(r, m)
    return r


def _check_priced(r: Recipe, m: Marked) -> None:
    """A budget or cost-aware routing needs a price for every model the recipe calls."""
    if r.llm is None:
        return
    needs = []
    if r.budget.max_usd is not None:
        needs.append(("budget", "max_usd"))
    if r.router.cost_aware:
        needs.append(("router", "cost_aware"))
    if not needs:
        return
    table = r.price_table()
    for key in ("model", "judge_model"):
        model = getattr(r.llm, key)
        if model is None or table.price_for(model) is not None:
            continue
        why = " and ".join(f"{'.'.join(p)} (line {m.line(p)})" for p in needs)
        raise m.error(
            ("llm", key),
            f"model {model!r} has no price, and {why} needs one: add llm.prices: {{{model}: [USD_in, USD_out]}} "
            f"(per million tokens) or pass --price {model}=IN,OUT",
        )


def load_recipe(path: str | os.PathLike[str], prices: Mapping[str, tuple[float, float]] | None = None) -> Recipe:
    """Load and validate a recipe file; a built-in recipe may be named without its path.

    ``prices`` (model prefix -> USD per million input/output tokens) override ``llm.prices``.
    """
    p = resolve_recipe(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise RecipeError(p, None, "", f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    return recipe_from_marked(load_marked(text, str(p)), prices)


def recipe_from_text(text: str, source: str = "<recipe>", prices: Mapping[str, tuple[float, float]] | None = None) -> Recipe:
    """Validate recipe YAML given as a string."""
    return recipe_from_marked(load_marked(text, source), prices)


def builtin_recipes() -> dict[str, Path]:
    """The example recipes shipped in the package: name -> path."""
    d = Path(__file__).parent / "recipes"
    return {p.stem: p for p in sorted(d.glob("*.yaml"))}


def resolve_recipe(path: str | os.PathLike[str]) -> Path:
    """``path`` if it exists, else a built-in recipe of that name; else a clear error."""
    p = Path(path)
    if p.exists():
        return p
    builtin = builtin_recipes()
    if str(path) in builtin:
        return builtin[str(path)]
    raise RecipeError(p, None, "", f"no such file (built-in recipes: {', '.join(builtin)})")


@attrs.frozen
class GenerationContext:
    """Routing features extracted from a recipe and the run's environment.

    The router builds its arms from this: TEMPLATER arms need a grammar, NAIVE arms and
    LLM slot filling need a usable model (configured, not ``--offline``, a key or client).
    """

    recipe_name: str
    has_grammar: bool
    has_llm: bool
    llm_reason: str
    schema_derived: bool
    n_fields: int
    n_rules: int
    n_slots: int
    n_examples: int
    uniform_branching: float
    target: int
    batch_size: int

    @classmethod
    def from_recipe(cls, recipe: Recipe, offline: bool = False, client: Any = None) -> GenerationContext:
        """Extract features; ``client`` (an LLM client) counts as a configured model."""
        if recipe.llm is None:
            has_llm, why = False, "the recipe has no llm section"
        elif offline:
            has_llm, why = False, "--offline"
        elif client is None and recipe.llm.backend == "anthropic" and not os.environ.get("ANTHROPIC_API_KEY"):
            has_llm, why = False, "ANTHROPIC_API_KEY is not set"
        elif (
            client is None
            and recipe.llm.backend == "openai"
            and not (os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"))
        ):
            has_llm, why = False, "backend openai: neither OPENAI_API_KEY nor OPENAI_BASE_URL is set"
        else:
            has_llm, why = True, f"model {recipe.llm.model}"
        g = recipe.grammar
        return cls(
            recipe_name=recipe.name,
            has_grammar=g is not None,
            has_llm=has_llm,
            llm_reason=why,
            schema_derived=recipe.schema_derived,
            n_fields=len((recipe.schema or {}).get("properties", {}) or {}),
            n_rules=len(g.rules) if g else 0,
            n_slots=len(g.slots) if g else 0,
            n_examples=len(recipe.examples),
            uniform_branching=g.branching_factor("uniform") if g else 0.0,
            target=recipe.samples,
            batch_size=recipe.batch_size,
        )

    def arm_allowed(self, arm: ArmSpec) -> tuple[bool, str]:
        """Whether ``arm`` can run here, and why (or why not)."""
        if arm.needs_grammar and not self.has_grammar:
            return False, "TEMPLATER needs a grammar; the recipe has none"
        if arm.needs_llm and not self.has_llm:
            return False, f"needs a model, none usable ({self.llm_reason})"
        if arm.needs_grammar and arm.weighting == "uniform" and self.uniform_branching >= 1.0:
            return False, (
                f"uniform weighting makes the grammar non-terminating (branching factor {self.uniform_branching:.2f} >= 1)"
            )
        if arm.generator == "naive":
            return True, f"NAIVE: {self.llm_reason} writes a generation prompt from the task, then samples"
        if arm.fill == "llm":
            return True, f"TEMPLATER: grammar templates ({self.n_rules} rules), slots filled by {self.llm_reason}"
        return True, (
            f"TEMPLATER: grammar templates ({self.n_rules} rules, {self.weighting_text(arm)}), "
            f"{self.n_slots} slots filled offline from value lists"
        )

    @staticmethod
    def weighting_text(arm: ArmSpec) -> str:
        """Human wording of an arm's production weighting."""
        return "grammar weights" if arm.weighting == "grammar" else "uniform production choice"
