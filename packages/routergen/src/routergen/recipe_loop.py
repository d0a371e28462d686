"""The bandit loop as a datacore sequential generator: route, generate, validate, reward, store.

:class:`RecipeLoop` implements datacore's sequential contract (``name``, ``version``,
``config_dict()``, ``split_key(record)``, ``run(loop)``, ``report_sections(telemetry)``) and
is run by :func:`datacore.build_sequential`, which owns the dataset directory, its identity,
resume, the progress bar, requested vs delivered and the manifest.  Each iteration is one
unit written through :class:`datacore.Loop`; the unit's ``extra`` holds the bandit state
after the iteration, the iteration's summary and the texts it stored, so a run killed at any
moment and started again continues from the last complete iteration with the same bandit and
the same dedup state: the finished dataset is byte-identical to one never interrupted.

Decisions are made in rounds of ``router.round_size`` iterations, all from the bandit state
after the previous round; the round's iterations make their model requests concurrently (up to
``concurrency`` at once, each through its own accounting view of the backend) and are validated,
rewarded and written in iteration order, so the bytes never depend on ``concurrency``.  A run
killed inside a round decides the rest of it from the state stored with the iteration before
the round.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import attrs
import orjson
from datacore import STRATA, Loop, ShortfallError, Telemetry, shard_seed

from . import __version__
from .errors import RoutergenError
from .feedback import compute_reward
from .generators import GenerationPlan, NaiveGenerator, make_generator
from .llm import LLMBackend
from .quality import BatchMetrics, QualityOrchestrator, Sample
from .report import report_sections
from .router import BanditState, Router
from .spec import ArmSpec, Recipe

STALL_ITERATIONS = 20
HISTORY = "history.jsonl"
BANDIT_STATE = "bandit_state.json"


class RecipeLoop:
    """One run of a recipe, for :func:`datacore.build_sequential` (see the module docstring).

    ``make_backend()`` builds the model backend (or returns None offline); it is called inside
    :meth:`run`, after datacore has opened the dataset directory (the default response cache
    lives inside it).  ``out`` is the dataset directory the loop is run into (None: the one
    datacore opened, ``Loop.out``; history and bandit state are written there).
    """

    name = "routergen"
    version = __version__

    def __init__(
        self,
        recipe: Recipe,
        config: dict[str, Any],
        out: str | os.PathLike[str] | None,
        *,
        n: int,
        seed: int,
        arms: list[ArmSpec],
        make_backend: Callable[[], LLMBackend | None],
        max_iterations: int,
        warm: BanditState | None = None,
        allow_shortfall: bool = False,
        on_iteration: Callable[[int], None] | None = None,
        concurrency: int | None = None,
    ) -> None:
        self.recipe = recipe
        self._config = config
        # None: the directory datacore opened for the run (Loop.out), known only in run()
        self.out = Path(out).absolute() if out is not None else None
        self.n = n
        self.seed = seed
        self.arms = arms
        self._make_backend = make_backend
        self.max_iterations = max_iterations
        self.warm = warm
        self.allow_shortfall = allow_shortfall
        self.on_iteration = on_iteration
        #: iterations in flight at once (default: a whole round); never changes the bytes
        self.concurrency = recipe.router.round_size if concurrency is None else int(concurrency)
        if self.concurrency < 1:
            raise RoutergenError(f"concurrency must be an integer >= 1, got {concurrency!r}")
        self.backend: LLMBackend | None = None
        self.history: list[dict[str, Any]] = []
        self.stop_reason = "complete"
        self.setup: dict[str, Any] = {"usd": 0.0, "requests": 0}
        self.skipped: dict[str, str] = {}
        self.llm_counters: dict[str, float] = {}

    # -- the sequential contract ---------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        """The run's identity: recipe, n, arms, validators, prices, warm start, seed-file digests."""
        return self._config

    def split_key(self, record: dict[str, Any]) -> Any:
        """Records are split by their text field (one text never in two splits)."""
        return record[self.recipe.text_field]

    def report_sections(self, telemetry: Telemetry) -> list[Any]:
        """routergen's charts and tables for report.html (rewards, arms, validators, stop)."""
        return report_sections(self.history, [a.name for a in self.arms], self.skipped, self.stop_reason, self.setup)

    def run(self, loop: Loop) -> None:
        """The loop: one iteration per unit, until ``n`` samples are stored or a stop.

        A stop before ``n`` raises :class:`datacore.ShortfallError` (the iterations written are
        kept for a resume with ``allow_shortfall``) unless ``allow_shortfall``.
        """
        out = self.out if self.out is not None else Path(loop.out)
        self.backend = backend = self._make_backend()
        try:
            self._run(loop, out, backend)
        finally:
            if backend is not None:
                self.llm_counters = {k: v for k, v in backend.counters().items() if k.startswith("llm.")}

    def _run(self, loop: Loop, out: Path, backend: LLMBackend | None) -> None:
        recipe, n, arms = self.recipe, self.n, self.arms
        quality = QualityOrchestrator(recipe, backend)
        self.skipped = dict(quality.skipped)
        arm_names = [a.name for a in arms]
        history = [e["summary"] for e in loop.resumed]
        if [h["iteration"] for h in history] != list(range(len(history))):
            raise RoutergenError(f"{out}: stored iterations are not contiguous; use --resume never")
        fresh = BanditState.fresh(arm_names)
        if self.warm is not None:
            fresh = fresh.warm_started(self.warm)
        state = BanditState.from_dict(loop.resumed[-1]["bandit"]) if loop.resumed else fresh
        router = Router(arm_names, recipe.router, self.seed, state)
        for e in loop.resumed:
            quality.remember(e["texts"])
        accepted_total = loop.written

        generators = {a.name: make_generator(recipe, a, backend) for a in arms}
        # Set-up requests (the NAIVE planner's prompt) are made before the first iteration, in every
        # run and every resume alike, so their priced cost never lands on whichever iteration is first.
        setup_usd, setup_requests = 0.0, 0
        if backend is not None:
            for g in generators.values():
                if isinstance(g, NaiveGenerator):
                    g.plan_prompt()
            setup_usd, setup_requests = backend.spent_usd, backend.requests
        self.setup = {"usd": round(setup_usd, 8), "requests": setup_requests}
        it = len(history)
        stop = "target"
        self.history = history
        budget = recipe.budget
        size = recipe.router.round_size
        # Only model calls are worth overlapping; offline iterations are CPU work under one GIL.
        pool = ThreadPoolExecutor(self.concurrency, "routergen-it") if self.concurrency > 1 and backend is not None else None
        try:
            while accepted_total < n and stop == "target":
                if it >= self.max_iterations:
                    stop = f"max_iterations ({self.max_iterations})"
                    break
                # A round: iterations [first, end) decided from the bandit state after the previous
                # round (after a resume inside a round: the state its first iteration left from).
                first = (it // size) * size
                end = min(first + size, self.max_iterations)
                if first == it:
                    decide_from = _copy_state(router.state)
                elif first == 0:
                    decide_from = _copy_state(fresh)
                else:
                    decide_from = BanditState.from_dict(loop.resumed[first - 1]["bandit"])
                done = history[:first]
                base_usd = round(setup_usd + sum(h["cost_usd"] for h in done), 8)
                base_requests = setup_requests + sum(h["requests"] for h in done)
                progress = sum(h["stored"] for h in done) / n
                ctx = [1.0, progress, progress * progress]  # LinUCB's context: rewards drift as the pool fills
                decider = Router(arm_names, recipe.router, self.seed, decide_from)
                jobs = []
                for i in range(it, end):
                    decision = decider.choose(ctx, step=decide_from.step + (i - first))
                    arm = arms[decision.arm]
                    plan = GenerationPlan(i, arm, decision.exploration_rate, recipe.batch_size, shard_seed(self.seed, i))
                    # Each iteration of the round gets its share of the budget left when the round
                    # began: the round cannot overspend whichever of its iterations run.
                    view = (
                        backend.view(base_usd, base_requests, part=i - first, parts=end - first) if backend is not None else None
                    )
                    jobs.append((decision, plan, view, generators[arm.name].bound(view)))
                futures = [pool.submit(g.generate, p) for _, p, _, g in jobs] if pool is not None and len(jobs) > 1 else None
                try:
                    for j, (decision, plan, view, gen) in enumerate(jobs):
                        # Stops are checked in iteration order on the stored history: the same in a
                        # first run, a cached re-run and a resumed one, whatever runs concurrently.
                        if len(history) >= STALL_ITERATIONS and all(h["accepted"] == 0 for h in history[-STALL_ITERATIONS:]):
                            stop = f"stalled ({STALL_ITERATIONS} iterations without an accepted sample)"
                            break
                        spent = round(setup_usd + sum(h["cost_usd"] for h in history), 8)
                        requests = setup_requests + sum(h["requests"] for h in history)
                        if budget.max_usd is not None and spent >= budget.max_usd:
                            stop = f"budget max_usd ({budget.max_usd})"
                            break
                        if budget.max_calls is not None and requests >= budget.max_calls:
                            stop = f"budget max_calls ({budget.max_calls})"
                            break
                        samples = futures[j].result() if futures is not None else gen.generate(plan)
                        quality.llm = view  # the judges' requests are this iteration's too
                        accepted, metrics = quality.evaluate(samples, recipe.task)
                        if view is not None and view.budget_hit:
                            # The budget refused requests mid-batch: drop the partial batch, keep what is stored.
                            stop = "budget (max_usd / max_calls reached inside an iteration; its partial batch was dropped)"
                            break
                        cost = (view.spent_usd - base_usd) if view is not None else 0.0
                        nreq = (view.requests - base_requests) if view is not None else 0
                        reward = compute_reward(metrics, cost, recipe.router)
                        router.update(decision.arm, reward, ctx)
                        keep = accepted[: n - accepted_total]
                        records = [_record(recipe, s_, plan, accepted_total + k) for k, s_ in enumerate(keep)]
                        summary = _summary(recipe, plan.iteration, plan.arm, decision, metrics, records, reward, nreq, cost)
                        if view is not None:
                            summary["structured"] = dict(view.structured)
                        tel = _telemetry(summary, view.network_calls if view is not None else 0, records, recipe)
                        extra = {
                            "bandit": router.state.to_dict(),
                            "summary": summary,
                            "texts": [r[recipe.text_field] for r in records],
                        }
                        loop.write(records, self.split_key, tel, extra=extra)
                        history.append(summary)
                        accepted_total += len(records)
                        it += 1
                        if self.on_iteration is not None:
                            self.on_iteration(it - 1)
                        if accepted_total >= n:
                            break
                finally:
                    if futures is not None:
                        # Iterations of the round not needed (target reached, a stop): not started ones
                        # are cancelled, running ones finish (their replies are cached) before we go on.
                        for f in futures:
                            f.cancel()
                        wait(futures)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self.stop_reason = stop
        if accepted_total < n and not self.allow_shortfall and not history:
            # No iteration finished: datacore removes the run, so nothing of ours is left beside it.
            raise ShortfallError(
                f"{out}: asked for {n:,} samples, made none (stopped: {stop}); no iteration finished, so no dataset is kept"
            )
        write_history(out, history)
        _write_bandit_state(out, recipe, self.seed, router, self.setup, stop)
        if accepted_total < n and not self.allow_shortfall:
            # Raised inside the loop, so datacore keeps the iterations (no finalize): the same
            # command with --allow-shortfall finalizes them without redoing anything.
            raise ShortfallError(
                f"{out}: asked for {n:,} samples, made {accepted_total:,} in {len(history)} iterations (stopped: {stop}); "
                "the iterations are kept: re-run the same command with --allow-shortfall to finalize them"
            )


def _summary(
    recipe: Recipe,
    it: int,
    arm: ArmSpec,
    decision: Any,
    metrics: BatchMetrics,
    records: list[dict[str, Any]],
    reward: float,
    nreq: int,
    cost: float,
) -> dict[str, Any]:
    return {
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


def _copy_state(state: BanditState) -> BanditState:
    """A deep copy, through the JSON form a resumed run reads it back from."""
    return BanditState.from_dict(orjson.loads(orjson.dumps(state.to_dict())))


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


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_history(out: Path, history: Sequence[dict[str, Any]]) -> None:
    """``OUT/history.jsonl``: one JSON line per iteration (arm, propensity, scores, reward, priced cost, requests)."""
    _atomic_write(out / HISTORY, b"".join(orjson.dumps(h, option=orjson.OPT_SORT_KEYS) + b"\n" for h in history))


def read_history(out: Path) -> list[dict[str, Any]]:
    """The iterations recorded in ``OUT/history.jsonl`` (empty when there is none)."""
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
    for k, v in (summary.get("structured") or {}).items():
        t.count(f"structured.{k}", v)
    for err, k in summary["errors"].items():
        t.observe("sample_errors", err, k)
    for v, k in summary["validator_evaluated"].items():
        t.count(f"validator.{v}.evaluated", k)
        t.count(f"validator.{v}.passed", summary["validator_passed"][v])
    return t
