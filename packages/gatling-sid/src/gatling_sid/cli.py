"""Command line of gatling-sid: ``generate``, ``validate``, ``domains``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from datacore import CliGroup, GenerateOptions, generate_options, run_generate

from . import __version__
from .export_cli import EXPORT_FORMATS


@click.group(cls=CliGroup, help="Policy-compliant gold tool-call traces and labelled hard negatives.")
@click.version_option(__version__, prog_name="gatling-sid")
def main() -> None:
    """Entry point of the `gatling-sid` command."""


_registry_opt = click.option(
    "--registry",
    "registry_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A registry directory of domain YAML files [default: the packaged one].",
)


def _ratio(_ctx: object, _p: object, v: float) -> float:
    if not 0.0 <= v <= 1.0:
        raise click.BadParameter(f"expected a share in [0, 1] of gold traces that get a negative twin, got {v}")
    return v


@main.command()
@generate_options
@click.option(
    "--oracle",
    type=click.Choice(["procedural", "anthropic"]),
    default="procedural",
    show_default=True,
    help="Who writes requests and graphs: the offline planner or a Claude model (ANTHROPIC_API_KEY).",
)
@click.option(
    "--negatives",
    type=float,
    default=0.0,
    show_default=True,
    callback=_ratio,
    help="Share of gold traces followed by a labelled hard negative (0..1).",
)
@click.option(
    "--dialogues",
    type=float,
    default=0.0,
    show_default=True,
    callback=_ratio,
    help="Share of gold traces made as multi-turn dialogues (ask for missing details, confirm/decline, refuse, "
    "clarify, no call, parallel calls).",
)
@click.option("--domains", default="", help="Comma-separated domains to draw from [default: all].")
@click.option("--with-messages", is_flag=True, help="Add the Anthropic-style training conversation to each gold record.")
@_registry_opt
@click.option("--model", default="claude-3-5-haiku-latest", show_default=True, help="Model of the anthropic oracle.")
@click.option("--base-url", default=None, help="API root for the anthropic oracle (e.g. a proxy or a fake server).")
@click.option("--cache-dir", default=None, help="Response cache of the anthropic oracle (re-runs make no calls).")
@click.option("--budget-usd", type=float, default=None, help="Stop calling the model after this spend.")
@click.option(
    "--fallback",
    type=click.Choice(["procedural"]),
    default=None,
    help="Replace unusable model replies (and an unreachable oracle) by procedural traces, recorded in the "
    "manifest and each record's meta [default: fail on an unreachable oracle, drop rejected replies].",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=None,
    help="Anthropic oracle: requests in flight; a shard's requests go out together, so none waits for the "
    "slowest of a group [default: --batch-size groups].",
)
@click.option(
    "--llm-mode",
    type=click.Choice(["online", "batch"]),
    default="online",
    show_default=True,
    help="Anthropic oracle: online Messages calls, or Message Batches (half price; needs --cache-dir, "
    "which holds the resumable batch state).",
)
@click.option(
    "--prompt-cache/--no-prompt-cache",
    default=True,
    show_default=True,
    help="Anthropic oracle: mark the static system + tool block of each domain for Anthropic's prompt cache.",
)
@click.option(
    "--user-simulator",
    type=click.Choice(["procedural", "anthropic", "openai"]),
    default="procedural",
    show_default=True,
    help="Who writes the user turns of --dialogues: the procedural simulator, or a model playing the user "
    "(anthropic: ANTHROPIC_API_KEY; openai: an OpenAI-compatible --base-url), with --model, --cache-dir, "
    "--budget-usd and --fallback as for the oracle.",
)
def generate(
    opts: GenerateOptions,
    oracle: str,
    negatives: float,
    dialogues: float,
    domains: str,
    with_messages: bool,
    registry_dir: Path | None,
    model: str,
    base_url: str | None,
    cache_dir: str | None,
    budget_usd: float | None,
    fallback: str | None,
    concurrency: int | None,
    llm_mode: str,
    prompt_cache: bool,
    user_simulator: str,
) -> None:
    """Generate gold traces (and hard negatives) into a datacore dataset directory."""
    from .generator import GatlingConfig, GatlingGenerator

    try:
        cfg = GatlingConfig(
            oracle=oracle,
            negatives=negatives,
            dialogues=dialogues,
            domains=tuple([d for d in domains.split(",") if d]),
            with_messages=with_messages,
            registry_dir=str(registry_dir.resolve()) if registry_dir else None,
            model=model,
            base_url=base_url,
            cache_dir=cache_dir,
            budget_usd=budget_usd,
            fallback=fallback,
            concurrency=concurrency,
            llm_mode=llm_mode,
            prompt_cache=prompt_cache,
            user_simulator=user_simulator,
        )
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    run_generate(GatlingGenerator(cfg), opts)


@main.command()
@click.argument("dataset", type=click.Path(exists=True, path_type=Path))
@_registry_opt
@click.option(
    "--max-near-dup-rate", type=float, default=0.01, show_default=True, help="Allowed share of near-duplicate requests."
)
@click.option("--threshold", type=float, default=0.8, show_default=True, help="Jaccard similarity that makes a near-duplicate.")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
def validate(dataset: Path, registry_dir: Path | None, max_near_dup_rate: float, threshold: float, as_json: bool) -> None:
    """Validate every trace of DATASET (a dataset directory or a JSONL file); exit 1 on any violation."""
    from .dataset_check import validate_dataset
    from .registry import DomainRegistry

    res = validate_dataset(
        dataset, DomainRegistry.load(registry_dir), max_near_dup_rate=max_near_dup_rate, near_dup_threshold=threshold
    )
    if as_json:
        click.echo(json.dumps(res.to_dict(), indent=2))
    else:
        d = res.diversity
        click.echo(
            f"gold: {res.gold_passed:,}/{res.gold:,} pass; negatives flagged with their rule: "
            f"{res.negatives_exact + res.negatives_with_others:,}/{res.negatives:,} "
            f"({res.negatives_exact:,} with that rule alone, {res.negatives_with_others:,} also with another)"
        )
        click.echo(
            f"diversity: {d.domains} domains, {len(d.intents)} intents, {d.tools_used}/{d.tools_available} tools, "
            f"near-duplicate requests {d.near_duplicate_rate:.3%} (Jaccard >= {d.threshold})"
        )
        for rule, n in res.violations.items():
            click.echo(f"  violation {rule}: {n:,}")
        for e in res.examples:
            click.echo(f"  e.g. {e}")
        for p in res.dataset_problems:
            click.echo(f"  dataset: {p}")
        click.echo("OK" if res.ok else "FAILED")
    sys.exit(0 if res.ok else 1)


@main.command()
@click.argument("dataset", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(EXPORT_FORMATS)),
    required=True,
    help="openai: Chat Completions tool_calls; hf: apply_chat_template(messages, tools=...); "
    "dpo: chosen (gold twin) / rejected (negative) pairs; xlam: APIGen/xLAM query/tools/answers (first step "
    "only); bfcl: BFCL entries + possible_answer/<name of --out>; toolace: ToolACE system/conversations.",
)
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Output JSONL file.")
@click.option(
    "--tools",
    "tool_list",
    type=click.Choice(["domain", "used"]),
    default="domain",
    show_default=True,
    help="Tool list of each record: the domain's full list (distractors included) or only the tools used.",
)
@click.option(
    "--parallel/--no-parallel",
    default=True,
    show_default=True,
    help="openai/hf: one assistant turn per wave of independent calls, or one call per turn (e.g. for "
    "Llama 3.1, whose template takes one tool call per message).",
)
@_registry_opt
def export(dataset: Path, fmt: str, out: Path, tool_list: str, parallel: bool, registry_dir: Path | None) -> None:
    """Write DATASET's gold traces (openai, hf) or negative/twin pairs (dpo) as JSONL in another format."""
    from .export_cli import export_dataset
    from .registry import DomainRegistry

    stats: dict[str, int] = {}
    n = export_dataset(dataset, out, fmt, DomainRegistry.load(registry_dir), tool_list=tool_list, parallel=parallel, stats=stats)
    skipped = stats.get("skipped_dialogues", 0)
    note = f"; {skipped:,} multi-turn dialogues skipped ({fmt} entries are single-turn)" if skipped else ""
    click.echo(f"{n:,} {fmt} records -> {out}{note}")


@main.command()
@_registry_opt
@click.option("--json", "as_json", is_flag=True, help="Print domains, tools and rules as JSON.")
def domains(registry_dir: Path | None, as_json: bool) -> None:
    """List the registry's domains, tools and policy rules (validating the registry)."""
    from .registry import DomainRegistry

    reg = DomainRegistry.load(registry_dir)
    rows = reg.summary()
    if as_json:
        click.echo(json.dumps({"domains": rows, "tools": len(reg.tools)}, indent=2))
        return
    for r in rows:
        click.echo(
            f"{r['domain']:<22} {r['tools']:>3} tools  subject={r['subject']:<18} entity={r['entity']:<22} "
            f"rules={','.join(r['rules'])}"
        )
    click.echo(f"{len(rows)} domains, {len(reg.tools)} tools")


@main.command("import-openapi")
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Registry directory to add the domain to.",
)
def import_openapi(spec: Path, out: Path) -> None:
    """Turn an OpenAPI 3 document (YAML or JSON) into a domain file in a registry directory."""
    import yaml

    from .errors import RegistryError
    from .openapi import domain_from_openapi
    from .registry import DomainRegistry

    try:
        doc = yaml.safe_load(spec.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise RegistryError(f"{spec}: not YAML/JSON: {str(e).splitlines()[0]}") from None
    dom = domain_from_openapi(doc, str(spec))
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{dom['domain']}.yaml"
    if target.exists():
        raise RegistryError(f"{target}: already exists (remove it or choose another --out)")
    target.write_text(yaml.safe_dump(dom, sort_keys=False, allow_unicode=True), encoding="utf-8")
    try:
        reg = DomainRegistry._load_uncached(str(out.resolve()))
    except RegistryError:
        target.unlink()  # nothing half-written
        raise
    click.echo(f"{spec} -> {target}: domain {dom['domain']}, {len(reg.domains[dom['domain']].tools)} tools")
