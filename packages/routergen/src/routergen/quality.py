"""Quality: sample validators, batch validators and the orchestrator that runs them.

Sample validators (each gives a score in [0, 1] and pass/fail per sample):

* ``schema``: the output fields satisfy the recipe's JSON Schema;
* ``length``: ``min_chars <= len(text) <= max_chars``;
* ``similarity``: max word-set Jaccard to the recipe's examples within ``[min, max]``
  (too low: off-topic; too high: a copy);
* ``exact_dedup``: no earlier accepted sample has the same text (xxh3-128 hash);
* ``near_dup``: no earlier accepted sample has estimated Jaccard >= ``threshold`` (MinHash+LSH);
* ``arithmetic``: every ``expression = number`` step of the solution field computes to its number
  (evaluated here, not trusted) and the answer field equals the last step's result;
* ``faithfulness``: an LLM judge, shown every field by name, scores whether the sample fulfils
  the task with consistent labels and correct answers (>= ``min_score``).

Batch validators (a score in [0, 1] over a batch's accepted samples; the batch's quality
score is their mean, and a batch scoring under a validator's ``min`` is discarded):

* ``distinct_n``: distinct word n-grams / all word n-grams;
* ``dispersion``: mean pairwise MinHash Jaccard distance (n-gram dispersion);
* ``judge``: an LLM judge's overall score for the batch.

Order of work per batch, chosen so that the state carried between batches is exactly the
set of accepted samples (what resume rebuilds from the written shards): stateless offline
validators; then dedup in sample order against earlier batches and this batch's earlier
survivors; then LLM validators on the survivors; only samples passing everything are
committed to the dedup indexes.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import jsonschema
import numpy as np
import xxhash

from .llm import LLMBackend
from .minhash import LSHIndex, MinHasher
from .spec import Recipe, check_params

_WORD = re.compile(r"\w+", re.UNICODE)


@attrs.define
class Sample:
    """One generated sample, before validation.

    ``fields`` is ``None`` when generation failed (``error`` says why, e.g. ``invalid_json``).
    """

    fields: dict[str, Any] | None
    text: str
    generator: str
    model: str
    prompt_hash: str
    error: str | None = None
    scores: dict[str, float] = attrs.field(factory=dict)
    failed: list[str] = attrs.field(factory=list)


@attrs.frozen
class BatchMetrics:
    """What a batch scored: counts, per-validator passes, batch scores, the quality score."""

    generated: int
    accepted: int
    errors: Mapping[str, int]
    validator_passed: Mapping[str, int]
    validator_evaluated: Mapping[str, int]
    batch_scores: Mapping[str, float]
    quality: float
    discarded: bool

    @property
    def pass_rate(self) -> float:
        """Accepted / generated (0 for an empty batch)."""
        return self.accepted / self.generated if self.generated else 0.0


def word_jaccard(a: set[str], b: set[str]) -> float:
    """Jaccard similarity of two word sets."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def text_hash(text: str) -> str:
    """Exact-dedup key: xxh3-128 of the UTF-8 text."""
    return xxhash.xxh3_128_hexdigest(text.encode("utf-8"))


_RUN = "[0-9(][0-9\\s.+\\-*/%×÷x()]*"
_LHS = re.compile(r"-?\s*" + _RUN + r"$")
_RHS = re.compile(r"^\s*-?\s*" + _RUN)
_SEGMENTS = re.compile(r"[;\n]|\.(?=\s|$)")
_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}


def _eval_arith(expr: str) -> float | None:
    """Value of a + - * / // % expression of numbers (None if it is anything else)."""
    e = expr.replace("×", "*").replace("÷", "/")
    e = re.sub(r"(?<=[\d)])\s*x\s*(?=[\d(])", "*", e)
    try:
        tree = ast.parse(e.strip(), mode="eval")
    except SyntaxError:
        return None

    def ev(n: ast.AST) -> float:
        if isinstance(n, ast.Expression):
            return ev(n.body)
        if isinstance(n, ast.Constant) and isinstance(n.value, (int, float)) and not isinstance(n.value, bool):
            return n.value
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, (ast.USub, ast.UAdd)):
            v = ev(n.operand)
            return -v if isinstance(n.op, ast.USub) else v
        if isinstance(n, ast.BinOp) and type(n.op) in _OPS:
            return _OPS[type(n.op)](ev(n.left), ev(n.right))
        raise ValueError

    try:
        return float(ev(tree))
    except (ValueError, ZeroDivisionError, OverflowError):
        return None


def arithmetic_check(solution: Any, answer: Any) -> tuple[bool, str]:
    """Whether every ``expression = expression`` step of ``solution`` holds (each side
    evaluated here) and ``answer`` equals the last step's result; with the reason when not.

    The solution is cut into steps at ``;``, line breaks and sentence ends; in ``a = b = c``
    every ``=`` must hold.  ``$`` and thousands separators are ignored.
    """
    if isinstance(answer, bool) or not isinstance(answer, (int, float)):
        return False, "answer is not a number"
    if not isinstance(solution, str):
        return False, "no solution text"
    text = re.sub(r"(?<=\d),(?=\d{3})", "", solution.replace("$", ""))
    last = None
    for seg in _SEGMENTS.split(text):
        parts = seg.split("=")
        for left, right in zip(parts, parts[1:]):
            lm, rm = _LHS.search(left.rstrip()), _RHS.match(right)
            if lm is None or rm is None:
                continue
            lv, rv = _eval_arith(lm.group(0)), _eval_arith(rm.group(0))
            if lv is None or rv is None:
                continue
            if not math.isclose(lv, rv, rel_tol=1e-9, abs_tol=1e-6):
                return False, f"step {lm.group(0).strip()} = {rm.group(0).strip()} is wrong ({lv:g} != {rv:g})"
            last = rv
    if last is None:
        return False, "the solution has no computable step"
    if not math.isclose(float(answer), last, rel_tol=1e-9, abs_tol=1e-6):
        return False, f"answer {answer} differs from the solution's result {last:g}"
    return True, "ok"


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct word n-grams over all word n-grams of ``texts`` (0 when there are none)."""
    seen: set[tuple[str, ...]] = set()
    total = 0
    for t in texts:
        w = _words(t)
        grams = [tuple(w[i : i + n]) for i in range(len(w) - n + 1)]
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0


def dispersion(sigs: Sequence[np.ndarray]) -> float:
    """Mean pairwise (1 - estimated Jaccard) of MinHash signatures (0 for fewer than 2)."""
    if len(sigs) < 2:
        return 0.0
    s = np.stack(sigs)
    eq = (s[:, None, :] == s[None, :, :]).mean(axis=2)
    k = len(sigs)
    return float((1.0 - eq)[np.triu_indices(k, 1)].mean())


class QualityOrchestrator:
    """Runs the recipe's validators over batches and keeps the dedup state between batches."""

    def __init__(self, recipe: Recipe, llm: LLMBackend | None = None) -> None:
        self.recipe = recipe
        self.llm = llm
        self.params = {v.name: check_params(v.name, v.params) for v in recipe.validators}
        self.skipped: dict[str, str] = {}
        for v in recipe.validators:
            if v.needs_llm and llm is None:
                self.skipped[v.name] = "no model available (offline)"
        self.active = [v.name for v in recipe.validators if v.name not in self.skipped]
        self._schema = jsonschema.Draft202012Validator(recipe.schema) if "schema" in self.active else None
        nd = self.params.get("near_dup") or {"num_perm": 64, "shingle": 5, "threshold": 0.8}
        self.hasher = MinHasher(nd["num_perm"], nd["shingle"])
        self.lsh = LSHIndex(nd["num_perm"], nd["threshold"])
        self.hashes: set[str] = set()
        self._examples = [set(_words(self._example_text(e))) for e in recipe.examples]
        if "similarity" in self.active and not self._examples:
            self.skipped["similarity"] = "the recipe has no examples"
            self.active.remove("similarity")

    def _example_text(self, ex: Any) -> str:
        return ex if isinstance(ex, str) else str(ex.get(self.recipe.text_field, ""))

    # -- state ------------------------------------------------------------------------------
    def remember(self, texts: Sequence[str]) -> None:
        """Add already-accepted texts to the dedup state (used on resume)."""
        for t in texts:
            self.hashes.add(text_hash(t))
            if "near_dup" in self.active:
                self.lsh.add(self.hasher.signature(t))

    # -- a batch ----------------------------------------------------------------------------
    def evaluate(self, samples: list[Sample], task: str) -> tuple[list[Sample], BatchMetrics]:
        """Validate ``samples``; return the accepted ones (in order) and the batch metrics."""
        errors: dict[str, int] = {}
        passed = dict.fromkeys(self.active, 0)
        evaluated = dict.fromkeys(self.active, 0)

        def mark(s: Sample, name: str, score: float, ok: bool) -> None:
            s.scores[name] = round(float(score), 6)
            evaluated[name] += 1
            if ok:
                passed[name] += 1
            else:
                s.failed.append(name)

        alive: list[Sample] = []
        for s in samples:
            if s.fields is None:
                errors[s.error or "error"] = errors.get(s.error or "error", 0) + 1
                continue
            if self._schema is not None:
                ok = self._schema.is_valid(s.fields)
                mark(s, "schema", 1.0 if ok else 0.0, ok)
            if "length" in self.active:
                p = self.params["length"]
                n = len(s.text)
                ok = n >= p["min_chars"] and (p["max_chars"] is None or n <= p["max_chars"])
                mark(s, "length", 1.0 if ok else 0.0, ok)
            if "similarity" in self.active:
                p = self.params["similarity"]
                w = set(_words(s.text))
                sim = max(word_jaccard(w, e) for e in self._examples)
                mark(s, "similarity", sim, p["min"] <= sim <= p["max"])
            if "arithmetic" in self.active:
                p = self.params["arithmetic"]
                ok, _why = arithmetic_check(s.fields.get(p["solution_field"]), s.fields.get(p["answer_field"]))
                mark(s, "arithmetic", 1.0 if ok else 0.0, ok)
            if not s.failed:
                alive.append(s)

        # Dedup in order: against accepted samples of earlier batches and this batch's survivors.
        batch_hashes: set[str] = set()
        batch_lsh = LSHIndex(self.lsh.num_perm, self.lsh.threshold) if "near_dup" in self.active else None
        sigs: dict[int, np.ndarray] = {}
        survivors: list[Sample] = []
        for s in alive:
            ok = True
            h = text_hash(s.text)
            if "exact_dedup" in self.active:
                dup = h in self.hashes or h in batch_hashes
                mark(s, "exact_dedup", 0.0 if dup else 1.0, not dup)
                ok = not dup
            if batch_lsh is not None:
                sig = self.hasher.signature(s.text)
                sigs[id(s)] = sig
                sim = max(self.lsh.best_match(sig), batch_lsh.best_match(sig))
                near = sim >= self.lsh.threshold
                mark(s, "near_dup", 1.0 - sim, not near)
                ok = ok and not near
                if ok:
                    batch_lsh.add(sig)
            if ok:
                batch_hashes.add(h)
                survivors.append(s)

        if "faithfulness" in self.active and survivors:
            assert self.llm is not None
            thr = self.params["faithfulness"]["min_score"]
            scores = self.llm.judge_samples(task, [s.fields or {} for s in survivors])
            kept = []
            for s, sc in zip(survivors, scores):
                if sc is None:
                    errors["judge_invalid_json"] = errors.get("judge_invalid_json", 0) + 1
                    sc = 0.0
                mark(s, "faithfulness", sc, sc >= thr)
                if sc >= thr:
                    kept.append(s)
            survivors = kept

        # Batch scores over the accepted samples.
        batch_scores: dict[str, float] = {}
        discarded = False
        texts = [s.text for s in survivors]
        if "distinct_n" in self.active:
            batch_scores["distinct_n"] = distinct_n(texts, self.params["distinct_n"]["n"])
        if "dispersion" in self.active:
            k = self.params["dispersion"]["max_items"]
            chosen = survivors[:k]
            batch_scores["dispersion"] = dispersion(
                [sigs[id(s)] if id(s) in sigs else self.hasher.signature(s.text) for s in chosen]
            )
        if "judge" in self.active and survivors:
            assert self.llm is not None
            sc = self.llm.judge_batch(task, [s.fields or {} for s in survivors[: self.params["judge"]["max_items"]]])
            if sc is None:
                errors["judge_invalid_json"] = errors.get("judge_invalid_json", 0) + 1
                sc = 0.0
            batch_scores["judge"] = sc
        for name, sc in batch_scores.items():
            evaluated[name] += 1
            if sc >= self.params[name]["min"]:
                passed[name] += 1
            else:
                discarded = True
        if batch_scores:
            quality = float(np.mean(list(batch_scores.values())))
        else:
            quality = 1.0
        if not survivors:
            quality = 0.0
        if discarded:
            survivors = []
            quality = 0.0
        for s in survivors:
            self.hashes.add(text_hash(s.text))
            if batch_lsh is not None:
                self.lsh.add(sigs[id(s)])
        metrics = BatchMetrics(
            generated=len(samples),
            accepted=len(survivors),
            errors=errors,
            validator_passed=passed,
            validator_evaluated=evaluated,
            batch_scores={k: round(v, 6) for k, v in batch_scores.items()},
            quality=round(quality, 6) if not math.isnan(quality) else 0.0,
            discarded=discarded,
        )
        return survivors, metrics
