"""Generators behind one small interface: a plan in, a batch of :class:`Sample` out.

* :class:`TemplaterGenerator` expands the recipe's PCFG into templates and fills the slots
  from the grammar's value lists (offline, ``model = "procedural"``) or by asking the model;
* :class:`NaiveGenerator` asks the model to write a generation prompt from the recipe (one
  call, cached), then samples one JSON object per request with it.

A model reply that is not a valid JSON object (or lacks a slot / the text field) becomes a
failed :class:`Sample` with ``error`` set; the batch goes on.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Sequence
from typing import Any, Protocol

import attrs

from .grammar import DerivationTooLong
from .llm import TOOL_NAME, LLMBackend, parse_json_object, prompt_hash
from .quality import Sample
from .spec import ArmSpec, Recipe


@attrs.frozen
class GenerationPlan:
    """What the router decided for one iteration."""

    iteration: int
    arm: ArmSpec
    exploration_rate: float | None
    batch_size: int
    seed: int


class BaseGenerator(Protocol):
    """The interface every generator implements."""

    name: str

    def generate(self, plan: GenerationPlan) -> list[Sample]:
        """Make ``plan.batch_size`` samples (failed ones included, with ``error`` set)."""
        ...

    def bound(self, llm: LLMBackend | None) -> BaseGenerator:
        """This generator making its requests through ``llm`` (an iteration's own accounting view)."""
        ...


def _fail(gen: str, model: str, phash: str, error: str) -> Sample:
    return Sample(None, "", gen, model, phash, error)


class TemplaterGenerator:
    """PCFG templates; slots from value lists (offline) or from the model."""

    name = "templater"

    def __init__(self, recipe: Recipe, llm: LLMBackend | None = None) -> None:
        if recipe.grammar is None:
            raise ValueError("TemplaterGenerator needs a recipe with a grammar")
        self.recipe = recipe
        self.grammar = recipe.grammar
        self.llm = llm

    def bound(self, llm: LLMBackend | None) -> TemplaterGenerator:
        """A copy that makes its requests (slot fills) through ``llm``."""
        g = copy.copy(self)
        g.llm = llm
        return g

    def generate(self, plan: GenerationPlan) -> list[Sample]:
        """Derive ``batch_size`` templates with the arm's weighting and fill them."""
        rng = random.Random(plan.seed)
        derivs: list[Any] = []
        for _ in range(plan.batch_size):
            try:
                derivs.append(self.grammar.derive(rng, plan.arm.weighting))
            except DerivationTooLong:
                derivs.append(None)
        if plan.arm.fill == "llm":
            return self._fill_llm(plan, derivs)
        out = []
        for d in derivs:
            if d is None:
                out.append(_fail(self.name, "procedural", "", "derivation_too_long"))
                continue
            values = self.grammar.fill(d, rng)
            text = d.render(values)
            fields = {"text": text, **values, **d.sets}
            out.append(Sample(fields, text, self.name, "procedural", prompt_hash(None, d.template())))
        return out

    def _fill_llm(self, plan: GenerationPlan, derivs: list[Any]) -> list[Sample]:
        assert self.llm is not None
        system = "You fill the slots of text templates to make realistic, varied synthetic training data."
        structured = self.llm.config.structured == "tool"
        reqs, metas, schemas = [], [], []
        for i, d in enumerate(derivs):
            if d is None:
                continue
            slot_lines = "\n".join(
                f"- {s}: e.g. {', '.join(json.dumps(v) for v in self.grammar.slots[s].values[:6])}" for s in d.slots
            )
            tpl = self.recipe.prompts
            if tpl is not None and tpl.has("fill"):
                user = tpl.render(
                    "fill",
                    task=self.recipe.task,
                    template=d.template(),
                    iteration=plan.iteration,
                    index=i,
                    slots=[{"name": s, "examples": list(self.grammar.slots[s].values[:6])} for s in d.slots],
                )
            else:
                reply = (
                    f"Call the {TOOL_NAME} tool with an object mapping each slot name to its value."
                    if structured
                    else "Reply with only a JSON object mapping each slot name to its value."
                )
                user = (
                    f"Task: {self.recipe.task}\n\nTemplate:\n{d.template()}\n\nSlots to fill:\n{slot_lines or '(none)'}\n\n"
                    f"Choose values that make the filled text realistic and different from the examples "
                    f"(variant {plan.iteration}-{i}). {reply}"
                )
            reqs.append(self.llm.request(system, user, temperature=plan.arm.temperature))
            metas.append((i, d, prompt_hash(system, user)))
            schemas.append(self._slots_schema(d.slots))
        replies = self._replies(reqs, schemas, structured)
        by_index: dict[int, Sample] = {}
        model = self.llm.config.model
        for (i, d, ph), (obj, problem) in zip(metas, replies):
            if obj is None:
                by_index[i] = _fail(self.name, model, ph, problem or "invalid_json")
                continue
            missing = [s for s in d.slots if s not in obj or not isinstance(obj[s], (str, int, float, bool))]
            if missing:
                by_index[i] = _fail(self.name, model, ph, "missing_slot")
                continue
            values = {s: obj[s] for s in d.slots}
            text = d.render(values)
            by_index[i] = Sample({"text": text, **values, **d.sets}, text, self.name, model, ph)
        return [by_index.get(i, _fail(self.name, model, "", "derivation_too_long")) for i in range(len(derivs))]

    def _slots_schema(self, slots: Sequence[str]) -> dict[str, Any]:
        """The tool input schema of a slot fill: each slot, typed as the output schema types it."""
        props = (self.recipe.schema or {}).get("properties", {}) or {}
        scalar = {"type": ["string", "number", "integer", "boolean"]}
        return {
            "type": "object",
            "properties": {s: props[s] if isinstance(props.get(s), dict) else scalar for s in slots},
            "required": list(slots),
            "additionalProperties": False,
        }

    def _replies(
        self, reqs: list[Any], schemas: list[dict[str, Any]], structured: bool
    ) -> list[tuple[dict[str, Any] | None, str | None]]:
        assert self.llm is not None
        return _replies(self.llm, reqs, schemas, structured)


class NaiveGenerator:
    """The model plans a generation prompt from the recipe, then writes samples with it."""

    name = "naive"

    def __init__(self, recipe: Recipe, llm: LLMBackend) -> None:
        self.recipe = recipe
        self.llm = llm
        self._planned: str | None = None
        self._plan_tried = False

    def bound(self, llm: LLMBackend | None) -> NaiveGenerator:
        """A copy that samples through ``llm``, keeping the prompt already planned."""
        if llm is None:
            raise ValueError("a NAIVE generator needs a model")
        g = copy.copy(self)
        g.llm = llm
        return g

    def plan_prompt(self) -> str | None:
        """The generation prompt the model wrote for this recipe (one cached call; a failed
        attempt is not repeated within the run, so its cost is paid once)."""
        if not self._plan_tried:
            self._plan_tried = True
            r = self.recipe
            examples = (
                "\n".join(f"- {e if isinstance(e, str) else json.dumps(e, ensure_ascii=False)}" for e in r.examples[:8])
                or "(none)"
            )
            user = (
                f"Task: {r.task}\n\nEach sample is one JSON object matching this JSON Schema:\n"
                f"{json.dumps(r.schema, sort_keys=True)}\n\nExamples:\n{examples}\n\n"
                "Write the instructions (a system prompt) that a model should follow to generate one new, "
                "realistic and diverse sample for this task. Reply with the prompt only."
            )
            resp = self.llm.complete_many(
                [self.llm.request("You design prompts for generating synthetic training data.", user, temperature=0.0)]
            )[0]
            if getattr(resp, "error", None) or not resp.text.strip():
                return None
            self._planned = resp.text.strip()
        return self._planned

    def generate(self, plan: GenerationPlan) -> list[Sample]:
        """Sample ``batch_size`` JSON objects with the planned prompt."""
        model = self.llm.config.model
        system = self.plan_prompt()
        if system is None:
            return [_fail(self.name, model, "", "planner_error") for _ in range(plan.batch_size)]
        schema = json.dumps(self.recipe.schema, sort_keys=True)
        structured = self.llm.config.structured == "tool"
        reqs, hashes = [], []
        tpl = self.recipe.prompts
        for i in range(plan.batch_size):
            if tpl is not None and tpl.has("naive"):
                user = tpl.render(
                    "naive",
                    task=self.recipe.task,
                    schema=schema,
                    iteration=plan.iteration,
                    index=i,
                    arm=plan.arm.name,
                    temperature=plan.arm.temperature if plan.arm.temperature is not None else self.llm.config.temperature,
                    examples=[e if isinstance(e, str) else json.dumps(e, ensure_ascii=False) for e in self.recipe.examples],
                )
            elif structured:
                user = (
                    f"Write sample {plan.iteration}-{i}; make it different from the usual. Call the {TOOL_NAME} tool "
                    "with it (its input schema is the sample's JSON Schema)."
                )
            else:
                user = (
                    f"Write sample {plan.iteration}-{i}; make it different from the usual. Reply with only one JSON "
                    f"object that matches this JSON Schema:\n{schema}"
                )
            reqs.append(self.llm.request(system, user, temperature=plan.arm.temperature))
            hashes.append(prompt_hash(system, user))
        out = []
        tf = self.recipe.text_field
        replies = _replies(self.llm, reqs, [dict(self.recipe.schema or {})] * len(reqs), structured)
        for ph, (obj, problem) in zip(hashes, replies):
            if obj is None:
                out.append(_fail(self.name, model, ph, problem or "invalid_json"))
                continue
            text = obj.get(tf)
            if "id" in obj or "meta" in obj:
                # Reserved for datacore's content id and our lineage.
                out.append(_fail(self.name, model, ph, "reserved_field"))
                continue
            if not isinstance(text, str):
                out.append(_fail(self.name, model, ph, "missing_text_field"))
                continue
            out.append(Sample(obj, text, self.name, model, ph))
        return out


def _replies(
    llm: LLMBackend, reqs: list[Any], schemas: list[dict[str, Any]], structured: bool
) -> list[tuple[dict[str, Any] | None, str | None]]:
    """(object, problem) per request: by forced tool use (validated, repaired once), or parsed from the reply text."""
    if structured:
        return [(obj, problem) for obj, _, problem in llm.complete_structured(reqs, schemas)]
    out: list[tuple[dict[str, Any] | None, str | None]] = []
    for resp in llm.complete_many(reqs):
        if getattr(resp, "error", None):
            out.append((None, f"llm_error:{getattr(resp, 'error_kind', None) or 'error'}"))
            continue
        obj = parse_json_object(resp.text)
        out.append((obj, None if obj is not None else "invalid_json"))
    return out


def make_generator(recipe: Recipe, arm: ArmSpec, llm: LLMBackend | None) -> BaseGenerator:
    """The generator an arm runs."""
    if arm.generator == "templater":
        return TemplaterGenerator(recipe, llm)
    if llm is None:
        raise ValueError(f"arm {arm.name} needs a model")
    return NaiveGenerator(recipe, llm)
