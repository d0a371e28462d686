"""Run a recipe: checks, the run's identity, the model client, then datacore's sequential builder.

:func:`run_recipe` refuses what cannot work before anything is written, builds the
:class:`~routergen.recipe_loop.RecipeLoop` (the bandit loop, a datacore sequential generator)
and runs it with :func:`datacore.build_sequential`, which owns the dataset directory, resume,
the progress bar, requested vs delivered and the manifest.  :func:`preview` prints samples
without writing anything.
"""

from __future__ import annotations

import hashlib
import math
import os
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import orjson
from datacore import ShortfallError, build_sequential, shard_seed

from .errors import NoArmsError, RoutergenError
from .exports import write_exports
from .generators import GenerationPlan, make_generator
from .llm import BatchClient, LLMBackend, make_client
from .quality import QualityOrchestrator
from .recipe_loop import BANDIT_STATE, HISTORY, RecipeLoop, load_warm_start, read_history
from .spec import ArmSpec, GenerationContext, Recipe

__all__ = ["BANDIT_STATE", "EXECUTIONS", "HISTORY", "RunResult", "default_max_iterations", "preview", "run_recipe", "usable_arms"]


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


#: how model requests are sent: one by one (many in flight) or through Message Batches (half price)
EXECUTIONS = ("interactive", "batch")


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
    concurrency: int | None = None,
    max_in_flight: int | None = None,
    execution: str = "interactive",
    batch_poll_s: float = 30.0,
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

    ``concurrency``: the most iterations in flight at once (default: a whole round,
    ``router.round_size``; 1 with ``execution="batch"``).  Decisions are made in rounds of
    ``router.round_size`` iterations from the bandit state after the previous round; the round's
    iterations make their model requests concurrently and are validated, rewarded and stored in
    iteration order, so the output is the same bytes for every ``concurrency`` (``round_size``
    does change them: it is the recipe's).  ``max_in_flight``: the most model requests in flight
    at once (routergen's own client only; default 16 per iteration in flight); within an
    iteration every sample request (and every judge request) goes out together.
    ``execution="batch"`` sends each round of an iteration's requests through Message Batches
    (half price; polled every ``batch_poll_s`` seconds; resumable from ``OUT/llm-batches/``); it
    is part of the run's identity, since it changes every price.

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
    if execution not in EXECUTIONS:
        raise RoutergenError(f"execution must be one of {', '.join(EXECUTIONS)}; got {execution!r}")
    for name, v in (("concurrency", concurrency), ("max_in_flight", max_in_flight)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise RoutergenError(f"{name} must be an integer >= 1, got {v!r}")
    if max_in_flight is not None and client is not None:
        raise RoutergenError("max_in_flight applies to routergen's own client; a client passed in keeps its own")
    if execution == "batch" and concurrency is not None and concurrency > 1:
        raise RoutergenError(
            f"concurrency {concurrency}: execution batch sends one iteration's requests at a time (its batches are "
            "polled in order); use concurrency 1 or execution interactive"
        )
    iterations_in_flight = concurrency if concurrency is not None else (1 if execution == "batch" else recipe.router.round_size)
    requests_in_flight = max_in_flight if max_in_flight is not None else 16 * iterations_in_flight
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
    if execution == "batch" and not use_llm:
        raise RoutergenError(
            f"{recipe.source}: execution batch needs a model, and this run uses none (offline or no llm section)"
        )
    if execution == "batch" and recipe.llm is not None and recipe.llm.backend != "anthropic":
        raise RoutergenError(
            f"{recipe.source}: execution batch is Anthropic's Message Batches API; llm.backend is {recipe.llm.backend}"
        )
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
        "execution": execution,
        # Values read from seed files are not in the recipe text: their digest is part of the run's identity.
        "seed_files": {
            sl.name: [sl.seed_file, hashlib.sha256(orjson.dumps(list(sl.values))).hexdigest()[:16]]
            for sl in (recipe.grammar.slots.values() if recipe.grammar else [])
            if sl.seed_file
        },
    }
    # The dataset card's "how to regenerate" (OUT stands for the output directory, so the manifest
    # does not depend on where the dataset was written).
    src = Path(recipe.source)
    # A built-in recipe is named by its name, so the command does not hold this machine's paths.
    shown = src.stem if src.parent == Path(__file__).parent / "recipes" else recipe.source
    regenerate = " ".join(
        [f"routergen generate {shlex.quote(shown)} --out OUT -n {n} --seed {seed}"]
        + (["--offline"] if offline else [])
        + ([f"--compress {compress}"] if compress else [])
        + (["--execution batch"] if execution == "batch" else [])
        + ([f"--split-ratios {','.join(str(r) for r in split_ratios)}"] if tuple(split_ratios) != (0.8, 0.1, 0.1) else [])
    )
    own: list[Any] = []

    def make_backend() -> LLMBackend | None:
        # Called by the loop once datacore has opened the dataset directory (the default cache lives in it).
        if not use_llm:
            return None
        assert recipe.llm is not None
        c = client
        if c is None:
            c = make_client(
                cache_dir or out / "llm-cache", recipe.price_table(), concurrency=requests_in_flight, backend=recipe.llm.backend
            )
            own.append(c)
        if execution == "batch":
            (out / "llm-batches").mkdir(parents=True, exist_ok=True)
            c = BatchClient(c, out / "llm-batches" / "state.json", poll_interval_s=batch_poll_s)
        return LLMBackend(c, recipe.llm, recipe.price_table(), max_usd=recipe.budget.max_usd, max_calls=recipe.budget.max_calls)

    gen = RecipeLoop(
        recipe,
        config,
        out,
        n=n,
        seed=seed,
        arms=arms,
        make_backend=make_backend,
        max_iterations=max_it,
        warm=warm,
        allow_shortfall=allow_shortfall,
        on_iteration=on_iteration,
        concurrency=iterations_in_flight,
    )
    try:
        res = build_sequential(
            gen,
            out,
            n,
            seed,
            compress=compress,
            resume=resume,
            split_ratios=split_ratios,
            progress=progress,
            allow_shortfall=allow_shortfall,
            extra_manifest={"regenerate": regenerate},
        )
    finally:
        for c in own:
            c.close()
    write_exports(out, recipe, res.manifest)
    if res.shards_run == 0 and not gen.history and gen.stop_reason == "complete":
        # Already complete: the loop never ran; the history is the one the finished run wrote.
        # (A loop that ran and stored nothing, e.g. a budget stop with allow_shortfall, has set
        # its own stop reason.)
        history = read_history(out)
        return RunResult(out, res.records, len(history), "complete", res.manifest, history, {})
    return RunResult(out, res.records, len(gen.history), gen.stop_reason, res.manifest, gen.history, gen.llm_counters)


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
            client = own = make_client(None, recipe.price_table(), backend=recipe.llm.backend)
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
