"""The (dumb) orchestrator: route, generate, validate, reward, store; repeat.

Each iteration is one shard of a datacore dataset directory, written through
:class:`datacore.runner.DatasetBuilder`.  The shard marker's ``extra`` holds the bandit
state after the iteration and the iteration's summary, so a run killed at any moment and
started again resumes from the last complete iteration with the same bandit state and the
same dedup state (rebuilt from the samples already written): the finished dataset is
byte-identical to one never interrupted, with nothing lost and nothing duplicated.
"""

from __future__ import annotations

import hashlib
import math
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import orjson
from datacore import STRATA, DatasetBuilder, ShortfallError, Telemetry, read_jsonl, shard_seed
from tqdm import tqdm

from . import __version__
from .errors import NoArmsError, RoutergenError
from .exports import write_exports
from .feedback import compute_reward
from .generators import GenerationPlan, NaiveGenerator, make_generator
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
    resume: bool | str = True,
    progress: bool = True,
    compress: str | None = None,
    split_ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
    on_iteration: Callable[[int], None] | None = None,
    allow_shortfall: bool = False,
    warm_start: str | os.PathLike[str] | None = None,
) -> RunResult:
    """Generate ``n`` (default: the recipe's ``samples``) accepted samples into ``out``.

    ``client`` is an LLM client (default: an AnthropicClient when the recipe has an ``llm``
    section, the key is set and ``offline`` is false; responses cached in ``cache_dir``,
    default ``OUT/llm-cache``).  ``on_iteration(i)`` is called after iteration ``i`` is
    safely written (tests use it to simulate crashes).

    Exactly ``n`` samples are delivered, or the run fails with :class:`datacore.ShortfallError`
    naming what was made and why it stopped (the iterations written are kept, so the same
    command with ``allow_shortfall`` finalizes them), unless ``allow_shortfall``: then the
    dataset is finalized with what was stored and the shortfall is recorded.  A request that
    cannot be met at all (``n`` above ``max_iterations x batch_size``) is refused up front.

    ``warm_start`` names an earlier run's directory: its ``bandit_state.json`` seeds the
    bandit (arms matched by name).  Besides the dataset, ``OUT/history.jsonl`` (one line per
    iteration) and ``OUT/bandit_state.json`` are written.
    """
    n = recipe.samples if n is None else int(n)
    if n < 1:
        raise RoutergenError(f"n must be >= 1, got {n}")
    max_it = recipe.budget.max_iterations or default_max_iterations(n, recipe.batch_size)
    if n > max_it * recipe.batch_size and not allow_shortfall:
        raise ShortfallError(
            f"{recipe.source}: asked for {n:,} samples, but budget.max_iterations={max_it} x batch_size="
            f"{recipe.batch_size} can make at most {max_it * recipe.batch_size:,}; raise max_iterations or lower -n"
        )
    out = Path(out)
    context = GenerationContext.from_recipe(recipe, offline=offline, client=client)
    arms_info = usable_arms(recipe, context)
    arms = [a for a, ok, _ in arms_info if ok]
    if not arms:
        why = "; ".join(f"{a.name}: {reason}" for a, _, reason in arms_info)
        raise NoArmsError(f"{recipe.source}: no arm can run here ({why})")
    warm = load_warm_start(warm_start) if warm_start is not None else None
    needs_llm = any(a.needs_llm for a in arms) or any(v.needs_llm for v in recipe.validators)
    use_llm = needs_llm and context.has_llm and recipe.llm is not None
    quality_probe = QualityOrchestrator(recipe, None if not use_llm else _NO_CALLS)
    config = {
        "recipe": recipe.data,
        "recipe_hash": recipe.hash,
        "n": n,
        "offline": bool(offline),
        "arms": [a.name for a in arms],
        "validators": quality_probe.active,
        "prices": {k: list(v) for k, v in sorted(recipe.prices.items())},
        "warm_start": warm.to_dict() if warm is not None else None,
        # Values read from seed files are not in the recipe text: their digest is part of the run's identity.
        "seed_files": {
            sl.name: [sl.seed_file, hashlib.sha256(orjson.dumps(list(sl.values))).hexdigest()[:16]]
            for sl in (recipe.grammar.slots.values() if recipe.grammar else [])
            if sl.seed_file
        },
    }
    # The dataset directory is opened before the client, whose default cache lives inside it.
    builder = DatasetBuilder(
        out, "routergen", __version__, config, seed, split_ratios=split_ratios, compress=compress, resume=resume, n=n
    )
    backend = None
    own_client = None
    if use_llm:
        assert recipe.llm is not None
        if client is None:
            client = own_client = make_client(cache_dir or out / "llm-cache", recipe.price_table())
        backend = LLMBackend(
            client, recipe.llm, recipe.price_table(), max_usd=recipe.budget.max_usd, max_calls=recipe.budget.max_calls
        )
    try:
        # The dataset card's "how to regenerate" (OUT stands for the output directory, so the manifest
        # does not depend on where the dataset was written).
        src = Path(recipe.source)
        # A built-in recipe is named by its name, so the command does not hold this machine's paths.
        shown = src.stem if src.parent == Path(__file__).parent / "recipes" else recipe.source
        regenerate = " ".join(
            [f"routergen run {shlex.quote(shown)} --out OUT -n {n} --seed {seed}"]
            + (["--offline"] if offline else [])
            + ([f"--compress {compress}"] if compress else [])
            + ([f"--split-ratios {','.join(str(r) for r in split_ratios)}"] if tuple(split_ratios) != (0.8, 0.1, 0.1) else [])
        )
        return _run(
            recipe, builder, out, n, seed, arms, backend, progress, on_iteration, max_it, warm, allow_shortfall, regenerate
        )
    finally:
        if own_client is not None:
            own_client.close()


def preview(
    recipe: Recipe,
    n: int = 5,
    *,
    seed: int = 0,
    offline: bool = False,
    client: Any = None,
    arm: str | None = None,
) -> list[dict[str, Any]]:
    """Up to ``n`` validated samples from ``recipe``, without writing anything.

    Arms take turns (or only ``arm``), one batch of ``n`` each, until ``n`` samples pass the
    recipe's validators (LLM ones only with a usable model) or every arm had 3 batches.  Each
    sample comes with its ``arm`` and ``scores``.  A model, when used, is called without a cache.
    """
    if n < 1:
        raise RoutergenError(f"n must be >= 1, got {n}")
    context = GenerationContext.from_recipe(recipe, offline=offline, client=client)
    info = usable_arms(recipe, context)
    arms = [a for a, ok, _ in info if ok and (arm is None or a.name == arm)]
    if not arms:
        if arm is not None and arm not in [a.name for a, _, _ in info]:
            raise RoutergenError(f"{recipe.source}: no arm named {arm!r} (arms: {', '.join(a.name for a, _, _ in info)})")
        why = "; ".join(f"{a.name}: {reason}" for a, _, reason in info if arm is None or a.name == arm)
        raise NoArmsError(f"{recipe.source}: no arm can run here ({why})")
    needs_llm = any(a.needs_llm for a in arms) or any(v.needs_llm for v in recipe.validators)
    own = None
    backend = None
    if needs_llm and context.has_llm and recipe.llm is not None:
        if client is None:
            client = own = make_client(None, recipe.price_table())
        backend = LLMBackend(client, recipe.llm, recipe.price_table())
    try:
        quality = QualityOrchestrator(recipe, backend)
        gens = {a.name: make_generator(recipe, a, backend) for a in arms}
        out: list[dict[str, Any]] = []
        for it in range(3 * len(arms)):
            a = arms[it % len(arms)]
            plan = GenerationPlan(it, a, None, n, shard_seed(seed, it))
            accepted, _ = quality.evaluate(gens[a.name].generate(plan), recipe.task)
            for s_ in accepted:
                if len(out) < n:
                    out.append({**(s_.fields or {}), "meta": {"arm": a.name, "scores": dict(s_.scores)}})
            if len(out) >= n:
                break
        return out
    finally:
        if own is not None:
            own.close()


class _NoCalls:
    """Stands in for the model when only the list of active validators is wanted."""


_NO_CALLS: Any = _NoCalls()


def load_warm_start(path: str | os.PathLike[str]) -> BanditState:
    """The bandit state an earlier run left in ``path`` (its directory or the file itself)."""
    p = Path(path)
    if p.is_dir():
        p = p / BANDIT_STATE
    try:
        d = orjson.loads(p.read_bytes())
        return BanditState.from_dict(d)
    except FileNotFoundError:
        raise RoutergenError(f"--warm-start {path}: no {BANDIT_STATE} there (it is written at the end of a run)") from None
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise RoutergenError(f"{p}: not a routergen bandit state ({type(e).__name__}: {e})") from None


def _run(
    recipe: Recipe,
    builder: DatasetBuilder,
    out: Path,
    n: int,
    seed: int,
    arms: list[ArmSpec],
    backend: LLMBackend | None,
    progress: bool,
    on_iteration: Callable[[int], None] | None,
    max_it: int,
    warm: BanditState | None,
    allow_shortfall: bool,
    regenerate: str | None = None,
) -> RunResult:
    quality = QualityOrchestrator(recipe, backend)
    arm_names = [a.name for a in arms]
    if builder.complete:
        history = _read_history(out)
        write_exports(out, recipe, builder.manifest)
        return RunResult(out, builder.manifest["records"], len(history), "complete", builder.manifest, history, {})

    done = sorted(builder.done)
    if done != list(range(len(done))):
        raise RoutergenError(f"{out}: progress markers are not contiguous ({done[:10]}); use --resume never")
    history = [builder.done[i]["extra"]["summary"] for i in done]
    fresh = BanditState.fresh(arm_names)
    if warm is not None:
        fresh = fresh.warm_started(warm)
    state = BanditState.from_dict(builder.done[done[-1]]["extra"]["bandit"]) if done else fresh
    router = Router(arm_names, recipe.router, seed, state)
    accepted_total = sum(h["stored"] for h in history)
    for i in done:
        quality.remember([r[recipe.text_field] for r in _shard_records(builder, i)])

    generators = {a.name: make_generator(recipe, a, backend) for a in arms}
    # Set-up requests (the NAIVE planner's prompt) are made before the first iteration, in every
    # run and every resume alike, so their priced cost never lands on whichever iteration is first.
    setup_usd, setup_requests = 0.0, 0
    if backend is not None:
        for g in generators.values():
            if isinstance(g, NaiveGenerator):
                g.plan_prompt()
        setup_usd, setup_requests = backend.spent_usd, backend.requests
    bar = tqdm(
        total=n,
        initial=accepted_total,
        unit="sample",
        file=sys.stderr,
        disable=not progress,
        desc=recipe.name,
        dynamic_ncols=True,
    )
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
            # Priced spend and request count, from the stored history: the same numbers in a first
            # run, a cached re-run and a resumed one.
            spent = round(setup_usd + sum(h["cost_usd"] for h in history), 8)
            requests = setup_requests + sum(h["requests"] for h in history)
            if recipe.budget.max_usd is not None and spent >= recipe.budget.max_usd:
                stop = f"budget max_usd ({recipe.budget.max_usd})"
                break
            if recipe.budget.max_calls is not None and requests >= recipe.budget.max_calls:
                stop = f"budget max_calls ({recipe.budget.max_calls})"
                break
            if backend is not None:
                backend.spent_usd, backend.requests = spent, requests
            progress = accepted_total / n
            ctx = [1.0, progress, progress * progress]  # LinUCB's context: rewards drift as the pool fills
            decision = router.choose(ctx)
            arm = arms[decision.arm]
            plan = GenerationPlan(it, arm, decision.exploration_rate, recipe.batch_size, shard_seed(seed, it))
            before = backend.counters() if backend else {}
            samples = generators[arm.name].generate(plan)
            accepted, metrics = quality.evaluate(samples, recipe.task)
            after = backend.counters() if backend else {}
            if backend is not None and backend.budget_hit:
                # The budget refused requests mid-batch: drop the partial batch, keep what is stored.
                stop = "budget (max_usd / max_calls reached inside an iteration; its partial batch was dropped)"
                break
            cost = (backend.spent_usd - spent) if backend else 0.0
            nreq = (backend.requests - requests) if backend else 0
            network = int(after.get("llm.calls", 0) - before.get("llm.calls", 0))
            reward = compute_reward(metrics, cost, recipe.router)
            router.update(decision.arm, reward, ctx)
            keep = accepted[: n - accepted_total]
            records = [_record(recipe, s, plan, accepted_total + j) for j, s in enumerate(keep)]
            summary = {
                "iteration": it,
                "arm": arm.name,
                "propensity": round(decision.propensity, 6),
                "exploration_rate": decision.exploration_rate,
                "explored": decision.explored,
                "generated": metrics.generated,
                "accepted": metrics.accepted,
                "stored": len(records),
                "pass_rate": round(metrics.pass_rate, 6),
                "judge": metrics.batch_scores.get("judge"),
                "quality": metrics.quality,
                "reward_formula": recipe.router.reward,
                "reward": reward,
                "batch_scores": dict(metrics.batch_scores),
                "errors": dict(metrics.errors),
                "validator_passed": dict(metrics.validator_passed),
                "validator_evaluated": dict(metrics.validator_evaluated),
                "requests": nreq,
                "cost_usd": round(cost, 8),
            }
            tel = _telemetry(summary, network, records, recipe)
            builder.write_shard(
                it,
                records,
                lambda r: r[recipe.text_field],
                tel,
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
    setup = {"usd": round(setup_usd, 8), "requests": setup_requests}
    _write_history(out, history)
    _write_bandit_state(out, recipe, seed, router, setup, stop)
    write_exports(out, recipe, None, builder=builder)
    if accepted_total < n and not allow_shortfall:
        # Keep the iterations (no finalize): the same command with --allow-shortfall finalizes them.
        raise ShortfallError(
            f"{out}: asked for {n:,} samples, made {accepted_total:,} in {len(history)} iterations (stopped: {stop}); "
            "the iterations are kept: re-run the same command with --allow-shortfall to finalize them"
        )
    sections = report_sections(history, arm_names, quality.skipped, stop, setup)
    manifest = builder.finalize(
        sections, allow_shortfall=allow_shortfall, extra_manifest={"regenerate": regenerate} if regenerate else None
    )
    end = backend.counters() if backend else {}
    counters = {k: end.get(k, 0) - base.get(k, 0) for k in set(end) | set(base) if k.startswith("llm.")}
    return RunResult(out, manifest["records"], len(history), stop, manifest, history, counters)


HISTORY = "history.jsonl"
BANDIT_STATE = "bandit_state.json"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _write_history(out: Path, history: list[dict[str, Any]]) -> None:
    """One JSON line per iteration: arm, propensity, scores, reward, priced cost, requests."""
    _atomic_write(out / HISTORY, b"".join(orjson.dumps(h, option=orjson.OPT_SORT_KEYS) + b"\n" for h in history))


def _read_history(out: Path) -> list[dict[str, Any]]:
    p = out / HISTORY
    return [orjson.loads(line) for line in p.read_bytes().splitlines() if line] if p.exists() else []


def _write_bandit_state(out: Path, recipe: Recipe, seed: int, router: Router, setup: dict[str, Any], stop: str) -> None:
    st = router.state
    d = {
        **st.to_dict(),
        "means": [round(m, 6) for m in st.means()],
        "policy": recipe.router.policy,
        "router": attrs.asdict(recipe.router),
        "recipe": recipe.name,
        "recipe_hash": recipe.hash,
        "seed": seed,
        "setup": setup,
        "stop_reason": stop,
    }
    _atomic_write(out / BANDIT_STATE, orjson.dumps(d, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n")


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


def _telemetry(summary: dict[str, Any], network_calls: int, records: list[dict[str, Any]], recipe: Recipe) -> Telemetry:
    t = Telemetry()
    t.count("samples.generated", summary["generated"])
    t.count("samples.accepted", summary["accepted"])
    t.count("samples.stored", summary["stored"])
    t.count("llm.requests", summary["requests"])
    t.count("llm.network_calls", network_calls)  # differs between a first and a cached run, by design
    t.observe("arm_choices", summary["arm"])
    # Delivered strata (datacore.STRATA): per arm, and per value of each grammar `set` label.
    labels = sorted({k for prods in recipe.grammar.rules.values() for p in prods for k in p.sets}) if recipe.grammar else []
    for r in records:
        t.observe(STRATA, f"arm={r['meta']['arm']}")
        for k in labels:
            if k in r:
                t.observe(STRATA, f"{k}={r[k]}")
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
