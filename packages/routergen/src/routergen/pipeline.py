"""The (dumb) orchestrator: route, generate, validate, reward, store; repeat.

Each iteration is one shard of a datacore dataset directory, written through
:class:`datacore.runner.DatasetBuilder`.  The shard marker's ``extra`` holds the bandit
state after the iteration and the iteration's summary, so a run killed at any moment and
started again resumes from the last complete iteration with the same bandit state and the
same dedup state (rebuilt from the samples already written): the finished dataset is
byte-identical to one never interrupted, with nothing lost and nothing duplicated.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from datacore import Telemetry, read_jsonl, shard_seed
from datacore.runner import DatasetBuilder
from tqdm import tqdm

from . import __version__
from .errors import NoArmsError, RoutergenError
from .exports import write_exports
from .feedback import LocalFeedbackState, compute_reward
from .generators import GenerationPlan, make_generator
from .llm import LLMBackend, make_client
from .quality import QualityOrchestrator, Sample
from .report import report_sections
from .router import BanditState, Router
from .spec import ArmSpec, GenerationContext, Recipe

STALL_ITERATIONS = 20


@attrs.frozen
class RunResult:
    """What :func:`run_recipe` returns."""

    out: Path
    records: int
    iterations: int
    stop_reason: str
    manifest: dict[str, Any]
    history: list[dict[str, Any]]
    llm_counters: dict[str, float]


def usable_arms(recipe: Recipe, context: GenerationContext) -> list[tuple[ArmSpec, bool, str]]:
    """Every arm of the recipe with whether it can run in ``context`` and why."""
    return [(a, *context.arm_allowed(a)) for a in recipe.arms]


def default_max_iterations(n: int, batch_size: int) -> int:
    """Iteration cap when the recipe sets none: 20x what a perfect run needs, at least 50."""
    return max(50, 20 * math.ceil(n / batch_size))


def run_recipe(
    recipe: Recipe,
    out: str | os.PathLike[str],
    n: int | None = None,
    *,
    seed: int = 0,
    offline: bool = False,
    client: Any = None,
    cache_dir: str | os.PathLike[str] | None = None,
    resume: bool = True,
    progress: bool = True,
    compress: str | None = None,
    split_ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
    on_iteration: Callable[[int], None] | None = None,
) -> RunResult:
    """Generate ``n`` (default: the recipe's ``samples``) accepted samples into ``out``.

    ``client`` is an LLM client (default: an AnthropicClient when the recipe has an ``llm``
    section, the key is set and ``offline`` is false; responses cached in ``cache_dir``,
    default ``OUT/llm-cache``).  ``on_iteration(i)`` is called after iteration ``i`` is
    safely written (tests use it to simulate crashes).
    """
    n = recipe.samples if n is None else int(n)
    if n < 1:
        raise RoutergenError(f"n must be >= 1, got {n}")
    out = Path(out)
    context = GenerationContext.from_recipe(recipe, offline=offline, client=client)
    arms_info = usable_arms(recipe, context)
    arms = [a for a, ok, _ in arms_info if ok]
    if not arms:
        why = "; ".join(f"{a.name}: {reason}" for a, _, reason in arms_info)
        raise NoArmsError(f"{recipe.source}: no arm can run here ({why})")
    needs_llm = any(a.needs_llm for a in arms) or any(v.needs_llm for v in recipe.validators)
    backend = None
    own_client = None
    if needs_llm and context.has_llm and recipe.llm is not None:
        if client is None:
            client = own_client = make_client(cache_dir or out / "llm-cache", recipe.budget.max_usd)
        backend = LLMBackend(client, recipe.llm)
    try:
        return _run(recipe, out, n, seed, offline, arms, backend, resume, progress, compress, split_ratios, on_iteration)
    finally:
        if own_client is not None:
            own_client.close()


def _run(
    recipe: Recipe,
    out: Path,
    n: int,
    seed: int,
    offline: bool,
    arms: list[ArmSpec],
    backend: LLMBackend | None,
    resume: bool,
    progress: bool,
    compress: str | None,
    split_ratios: tuple[float, float, float],
    on_iteration: Callable[[int], None] | None,
) -> RunResult:
    quality = QualityOrchestrator(recipe, backend)
    config = {
        "recipe": recipe.data,
        "recipe_hash": recipe.hash,
        "n": n,
        "offline": bool(offline),
        "arms": [a.name for a in arms],
        "validators": quality.active,
    }
    builder = DatasetBuilder(
        out, "routergen", __version__, config, seed, split_ratios=split_ratios, compress=compress, resume=resume, n=n
    )
    if builder.complete:
        history = _history(builder.manifest.get("shards", []), builder)
        write_exports(out, recipe, builder.manifest)
        return RunResult(out, builder.manifest["records"], len(history), "complete", builder.manifest, history, {})

    done = sorted(builder.done)
    if done != list(range(len(done))):
        raise RoutergenError(f"{out}: progress markers are not contiguous ({done[:10]}); use --no-resume")
    history = [builder.done[i]["extra"]["summary"] for i in done]
    state = BanditState.from_dict(builder.done[done[-1]]["extra"]["bandit"]) if done else None
    router = Router([a.name for a in arms], recipe.router, seed, state)
    feedback = LocalFeedbackState()
    for h in history:
        feedback.add(h["arm"], h["iteration"], h["reward"])
    accepted_total = sum(h["stored"] for h in history)
    for i in done:
        quality.remember([r[recipe.text_field] for r in _shard_records(builder, i)])

    generators = {a.name: make_generator(recipe, a, backend) for a in arms}
    max_it = recipe.budget.max_iterations or default_max_iterations(n, recipe.batch_size)
    bar = tqdm(total=n, initial=accepted_total, unit="sample", file=sys.stderr, disable=not progress,
               desc=recipe.name, dynamic_ncols=True)
    it = len(done)
    stop = "target"
    base = backend.counters() if backend else {}
    try:
        while accepted_total < n:
            if it >= max_it:
                stop = f"max_iterations ({max_it})"
                break
            if len(history) >= STALL_ITERATIONS and all(h["accepted"] == 0 for h in history[-STALL_ITERATIONS:]):
                stop = f"stalled ({STALL_ITERATIONS} iterations without an accepted sample)"
                break
            spent = sum(h["cost_usd"] for h in history)
            calls = sum(h["calls"] for h in history)
            if recipe.budget.max_usd is not None and spent >= recipe.budget.max_usd:
                stop = f"budget max_usd ({recipe.budget.max_usd})"
                break
            if recipe.budget.max_calls is not None and calls >= recipe.budget.max_calls:
                stop = f"budget max_calls ({recipe.budget.max_calls})"
                break
            decision = router.choose()
            arm = arms[decision.arm]
            plan = GenerationPlan(it, arm, decision.exploration_rate, recipe.batch_size, shard_seed(seed, it))
            before = backend.counters() if backend else {}
            samples = generators[arm.name].generate(plan)
            accepted, metrics = quality.evaluate(samples, recipe.task)
            after = backend.counters() if backend else {}
            if backend is not None and backend.budget_hit:
                # The budget refused requests mid-batch: drop the partial batch, keep what is stored.
                stop = "budget (LLM client refused further requests)"
                break
            cost = after.get("llm.cost_usd", 0.0) - before.get("llm.cost_usd", 0.0)
            ncalls = int(after.get("llm.calls", 0) - before.get("llm.calls", 0))
            reward = compute_reward(metrics, cost, recipe.router)
            router.update(decision.arm, reward)
            feedback.add(arm.name, it, reward)
            keep = accepted[: n - accepted_total]
            records = [_record(recipe, s, plan, accepted_total + j) for j, s in enumerate(keep)]
            summary = {
                "iteration": it,
                "arm": arm.name,
                "exploration_rate": decision.exploration_rate,
                "explored": decision.explored,
                "generated": metrics.generated,
                "accepted": metrics.accepted,
                "stored": len(records),
                "pass_rate": round(metrics.pass_rate, 6),
                "quality": metrics.quality,
                "reward": reward,
                "batch_scores": dict(metrics.batch_scores),
                "errors": dict(metrics.errors),
                "validator_passed": dict(metrics.validator_passed),
                "validator_evaluated": dict(metrics.validator_evaluated),
                "calls": ncalls,
                "cost_usd": round(cost, 8),
            }
            tel = _telemetry(summary)
            builder.write_shard(
                it, records, lambda r: r[recipe.text_field], tel,
                extra={"bandit": router.state.to_dict(), "summary": summary},
                seed=plan.seed,
            )
            history.append(summary)
            accepted_total += len(records)
            bar.update(len(records))
            it += 1
            if on_iteration is not None:
                on_iteration(it - 1)
    finally:
        bar.close()
    write_exports(out, recipe, None, builder=builder)
    manifest = builder.finalize(report_sections(history, [a.name for a in arms], quality.skipped, stop))
    end = backend.counters() if backend else {}
    counters = {k: end.get(k, 0) - base.get(k, 0) for k in set(end) | set(base) if k.startswith("llm.")}
    return RunResult(out, manifest["records"], len(history), stop, manifest, history, counters)


def _record(recipe: Recipe, s: Sample, plan: GenerationPlan, index: int) -> dict[str, Any]:
    assert s.fields is not None
    rec = dict(s.fields)
    rec["meta"] = {
        "index": index,
        "recipe": recipe.name,
        "recipe_hash": recipe.hash,
        "iteration": plan.iteration,
        "arm": plan.arm.name,
        "exploration_rate": plan.exploration_rate,
        "generator": s.generator,
        "model": s.model,
        "prompt_hash": s.prompt_hash,
        "scores": dict(s.scores),
    }
    return rec


def _telemetry(summary: dict[str, Any]) -> Telemetry:
    t = Telemetry()
    t.count("samples.generated", summary["generated"])
    t.count("samples.accepted", summary["accepted"])
    t.count("samples.stored", summary["stored"])
    t.count("llm.calls", summary["calls"])
    t.observe("arm_choices", summary["arm"])
    for err, k in summary["errors"].items():
        t.observe("sample_errors", err, k)
    for v, k in summary["validator_evaluated"].items():
        t.count(f"validator.{v}.evaluated", k)
        t.count(f"validator.{v}.passed", summary["validator_passed"][v])
    return t


def _shard_records(builder: DatasetBuilder, index: int) -> list[dict[str, Any]]:
    recs: list[dict[str, Any]] = []
    for p in builder.shard_paths(index).values():
        if p.exists():
            recs.extend(read_jsonl(p))
    recs.sort(key=lambda r: r["meta"]["index"])
    return recs


def _history(shards: list[dict[str, Any]], builder: DatasetBuilder) -> list[dict[str, Any]]:
    return [{"iteration": s["index"], "stored": s["count"]} for s in shards]
