"""Command line of routergen: ``generate`` (alias ``run``), ``validate``, ``arms``, ``preview``, ``recipes``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
from click.core import ParameterSource
from datacore import CliGroup, GenerateOptions, generate_options

from . import __version__
from .pipeline import EXECUTIONS, run_recipe, usable_arms
from .pipeline import preview as preview_samples
from .spec import GenerationContext, builtin_recipes, load_recipe


@click.group(cls=CliGroup, help="Bandit-routed synthetic data from grammars and LLMs, with validators and feedback.")
@click.version_option(__version__, prog_name="routergen")
def main() -> None:
    """Entry point of the `routergen` command."""


def _parse_prices(values: tuple[str, ...]) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for v in values:
        model, _, rest = v.partition("=")
        try:
            a, b = (float(x) for x in rest.split(","))
            if not model or a < 0 or b < 0:
                raise ValueError
        except ValueError:
            raise click.BadParameter(
                f"{v!r}: expected MODEL=USD_IN,USD_OUT (per million tokens, numbers >= 0), e.g. my-model=0.5,1.5",
                param_hint="--price",
            ) from None
        out[model] = (a, b)
    return out


_price_option = click.option(
    "--price",
    "prices",
    multiple=True,
    metavar="MODEL=IN,OUT",
    help="Price a model (prefix) in USD per million input,output tokens; overrides the recipe's llm.prices.",
)


@main.command()
@click.argument("recipe")
@generate_options
@click.option("--offline", is_flag=True, help="Use no model: only procedural arms and offline validators.")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="LLM response cache [default: OUT/llm-cache].",
)
@click.option(
    "--warm-start",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Start the bandit from an earlier run's bandit_state.json (its --out directory or the file).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=None,
    help="Most iterations in flight at once [default: the recipe's router.round_size; 1 with --execution batch]; "
    "the output is the same for every value.",
)
@click.option(
    "--max-in-flight",
    type=click.IntRange(min=1),
    default=None,
    help="Most model requests in flight at once [default: 16 per iteration in flight; adaptive below that].",
)
@click.option(
    "--execution",
    type=click.Choice(EXECUTIONS),
    default="interactive",
    show_default=True,
    help="Send model requests one by one, or through Message Batches (half price, slower; resumable).",
)
@click.option(
    "--batch-poll",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds between polls of unfinished Message Batches (--execution batch).",
)
@_price_option
def generate(
    recipe: str,
    opts: GenerateOptions,
    offline: bool,
    cache_dir: Path | None,
    warm_start: Path | None,
    concurrency: int | None,
    max_in_flight: int | None,
    execution: str,
    batch_poll: float,
    prices: tuple[str, ...],
) -> None:
    """Generate a dataset from RECIPE (a file, or a built-in recipe name) into --out.

    The shared options are datacore's (the same as every generator's ``generate``).  The loop runs
    in one process (each round's rewards steer the next; --concurrency overlaps the iterations of
    a round, see the recipe's router.round_size), so --workers and --executor do not apply, and
    each iteration is one shard of the recipe's batch_size (--shard-size does not apply).  -n defaults to the recipe's ``samples``.  ``routergen run`` is an alias.
    """
    ctx = click.get_current_context()
    given = {
        name
        for name in ("n", "workers", "executor", "shard_size")
        if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)
    }
    if "workers" in given and opts.workers != 1 or "executor" in given and opts.executor not in ("process", "inline"):
        raise click.UsageError(
            "routergen's loop is sequential (each iteration's reward steers the next): it runs in one process; "
            "--workers and --executor do not apply"
        )
    if "shard_size" in given:
        raise click.UsageError("--shard-size does not apply to routergen: each iteration is one shard (the recipe's batch_size)")
    r = load_recipe(recipe, _parse_prices(prices))
    res = run_recipe(
        r,
        opts.out,
        opts.n if "n" in given else None,
        seed=opts.seed,
        offline=offline,
        cache_dir=cache_dir,
        resume=opts.resume,
        progress=not opts.quiet and not os.environ.get("DATACORE_NO_PROGRESS"),
        compress=opts.compress,
        split_ratios=opts.split_ratios,
        allow_shortfall=opts.allow_shortfall,
        warm_start=warm_start,
        concurrency=concurrency,
        max_in_flight=max_in_flight,
        execution=execution,
        batch_poll_s=batch_poll,
    )
    if not opts.quiet:
        s = res.manifest["splits"]
        calls = int(res.llm_counters.get("llm.calls", 0))
        hits = int(res.llm_counters.get("llm.cache_hits", 0))
        delivery = res.manifest.get("delivery") or {}
        if not delivery.get("ok", True):
            click.echo(
                f"warning: shortfall allowed and recorded: asked {delivery.get('requested')}, made {res.records}", err=True
            )
        click.echo(
            f"{res.records:,} samples (train {s['train']:,} / val {s['val']:,} / test {s['test']:,}) in "
            f"{res.iterations} iterations; stopped: {res.stop_reason}; model calls {calls}, cache hits {hits}\n"
            f"-> {opts.out} (report: {opts.out / 'report.html'}, history: {opts.out / 'history.jsonl'}, "
            f"exports: {opts.out / 'exports'})",
            err=True,
        )
    sys.stderr.flush()


for _p in generate.params:
    # The shared option's default (1000) is not routergen's: the recipe's `samples` is.
    if isinstance(_p, click.Option) and _p.name == "n":
        _p.help = "Samples to keep [default: the recipe's samples]."
        _p.show_default = False
main.add_command(generate, "run")  # the 0.1 verb, kept as an alias


@main.command()
@click.argument("recipe")
@click.option("--json", "as_json", is_flag=True, help="Print the validated recipe summary as JSON.")
@_price_option
def validate(recipe: str, as_json: bool, prices: tuple[str, ...]) -> None:
    """Check RECIPE (schema, grammar, validators, prices) without generating anything."""
    r = load_recipe(recipe, _parse_prices(prices))
    summary = {
        "recipe": r.name,
        "source": r.source,
        "hash": r.hash,
        "samples": r.samples,
        "batch_size": r.batch_size,
        "grammar": None
        if r.grammar is None
        else {
            "start": r.grammar.start,
            "rules": len(r.grammar.rules),
            "slots": len(r.grammar.slots),
            "branching_factor": round(r.grammar.branching_factor(), 4),
        },
        "schema": "derived from the grammar" if r.schema_derived and r.grammar else ("default" if r.schema_derived else "given"),
        "fields": list((r.schema or {}).get("properties", {})),
        "validators": [v.name for v in r.validators],
        "arms": [a.name for a in r.arms],
        "policy": r.router.policy,
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(f"ok: {r.source}: recipe '{r.name}' (hash {r.hash})")
        for k in ("grammar", "schema", "fields", "validators", "arms", "policy"):
            click.echo(f"  {k}: {summary[k]}")


@main.command()
@click.argument("recipe")
@click.option("--offline", is_flag=True, help="Explain the arms as a --offline run would see them.")
def arms(recipe: str, offline: bool) -> None:
    """Which arms RECIPE allows in this context, and why."""
    r = load_recipe(recipe)
    ctx = GenerationContext.from_recipe(r, offline=offline)
    click.echo(
        f"recipe '{r.name}': grammar {'yes' if ctx.has_grammar else 'no'}; model: "
        f"{'yes, ' if ctx.has_llm else 'no, '}{ctx.llm_reason}; policy {r.router.policy}"
    )
    for a, ok, why in usable_arms(r, ctx):
        click.echo(f"  {'+' if ok else '-'} {a.name:<18} {'allowed' if ok else 'not allowed'}: {why}")


@main.command()
@click.argument("recipe")
@click.option("-n", "n", type=click.IntRange(min=1, max=1000), default=5, show_default=True, help="Samples to show.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--offline", is_flag=True, help="Use no model: only procedural arms and offline validators.")
@click.option("--arm", default=None, help="Only this arm [default: the arms take turns].")
@_price_option
def preview(recipe: str, n: int, seed: int, offline: bool, arm: str | None, prices: tuple[str, ...]) -> None:
    """Print N validated samples of RECIPE as JSON lines, without writing a dataset."""
    r = load_recipe(recipe, _parse_prices(prices))
    rows = preview_samples(r, n, seed=seed, offline=offline, arm=arm)
    for row in rows:
        click.echo(json.dumps(row, ensure_ascii=False, sort_keys=True))
    if len(rows) < n:
        click.echo(f"only {len(rows)} of {n} samples passed the validators in {r.name}'s first batches", err=True)


@main.command()
def recipes() -> None:
    """List the example recipes shipped with routergen."""
    for name, p in builtin_recipes().items():
        click.echo(f"{name}\t{p}")
