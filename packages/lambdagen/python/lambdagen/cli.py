"""Command line: ``lambdagen generate | reduce | stats``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from datacore import CliGroup, GenerateOptions, generate_options, run_generate

from ._version import __version__
from .config import LambdaConfig, parse_split
from .errors import ScheduleError
from .generator import LambdaGenerator
from .stats import dataset_stats
from .terms import DEFAULT_MAX_SIZE, parse, trace


@click.group(cls=CliGroup, help="Lambda-calculus beta-reduction traces from a Rust core.")
@click.version_option(__version__, prog_name="lambdagen")
def main() -> None:
    """Entry point of the `lambdagen` command."""


@main.command()
@generate_options
@click.option("--max-steps", type=click.IntRange(min=1), default=100, show_default=True, help="Step cap per trace.")
@click.option("--max-size", type=click.IntRange(min=1), default=400, show_default=True, help="Size cap (nodes) per term.")
@click.option(
    "--max-examples-per-trace",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Keep at most this many steps per trace, evenly spread (0: all).",
)
@click.option(
    "--schedule",
    default="seed",
    show_default=True,
    help="Start-term cells: 'seed' (the seed's ten cycles) or SIZExDEPTH[:WEIGHT],... e.g. 100x7,120x8:2.",
)
@click.option("--quotas", default="", help="Trace-length quotas LO-HI:SHARE,... e.g. 1-2:0.25,3-6:0.25,7-20:0.25,21-:0.25.")
@click.option(
    "--size-quotas",
    default="",
    help="Input-size quotas LO-HI:SHARE,... over example input sizes, e.g. 2-40:0.5,41-:0.5 (instead of --quotas).",
)
@click.option(
    "--depth-quotas",
    default="",
    help="Input-depth quotas LO-HI:SHARE,... over example input depths, e.g. 1-8:0.5,9-:0.5 (instead of --quotas).",
)
@click.option("--include-normal", is_flag=True, help="Keep start terms already in normal form (one input==target record).")
@click.option("--whole-trace", is_flag=True, help="One record per trace (all terms) instead of one per step.")
@click.option(
    "--zstd-level",
    type=click.IntRange(1, 19),
    default=1,
    show_default=True,
    help="zstd level for --compress zst (1 is the fastest).",
)
@click.option("--named", is_flag=True, help="Also write input_named / target_named (named binders).")
@click.option(
    "--strategy",
    type=click.Choice(["normal", "call_by_name", "call_by_value", "applicative", "head", "normal_eta"]),
    default="normal",
    show_default=True,
    help="Which redex each step contracts (normal_eta: normal order with eta steps).",
)
@click.option(
    "--split",
    "split",
    default="",
    help="Out-of-distribution split KIND:VAL_FROM,TEST_FROM (KIND steps, size or depth), e.g. steps:10,20: "
    "traces of < 10 steps train, 10..19 val, >= 20 test (instead of --split-ratios).",
)
@click.option(
    "--curriculum", is_flag=True, help="Order records by difficulty (cell size, then trace length) across and within shards."
)
@click.option("--tokens", is_flag=True, help="Also write input_ids / target_ids, and vocab.json with the dataset.")
@click.option(
    "--threads",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Rust threads per shard (0: all cores); never changes the output.",
)
def generate(
    opts: GenerateOptions,
    max_steps: int,
    max_size: int,
    max_examples_per_trace: int,
    schedule: str,
    quotas: str,
    size_quotas: str,
    depth_quotas: str,
    include_normal: bool,
    whole_trace: bool,
    zstd_level: int,
    named: bool,
    strategy: str,
    tokens: bool,
    split: str,
    curriculum: bool,
    threads: int,
) -> None:
    """Generate N reduction examples into --out (datacore dataset layout)."""
    split_by, split_at = parse_split(split)
    if split_by and tuple(opts.split_ratios) != (0.8, 0.1, 0.1):
        raise ScheduleError("--split decides the splits itself; it cannot be combined with --split-ratios")
    config = LambdaConfig(
        schedule=schedule,
        max_steps=max_steps,
        max_size=max_size,
        max_examples_per_trace=max_examples_per_trace,
        redex_only=not include_normal,
        whole_trace=whole_trace,
        quotas=quotas,
        size_quotas=size_quotas,
        depth_quotas=depth_quotas,
        zstd_level=zstd_level,
        threads=threads,
        named=named,
        tokens=tokens,
        strategy=strategy,
        split_by=split_by,
        split_at=split_at,
        curriculum=curriculum,
    )
    res = run_generate(LambdaGenerator(config, run_seed=opts.seed), opts)
    if tokens:  # vocab.json itself is one of the generator's dataset files
        from .tokens import vocab_document

        doc = vocab_document(max_size, res.telemetry.histograms)
        if not opts.quiet:
            click.echo(
                f"vocab.json: {len(doc['vocab'])} tokens; longest input {doc['max_input_tokens']}, "
                f"target {doc['max_target_tokens']} tokens",
                err=True,
            )


@main.command()
@click.argument("term")
@click.option("--max-steps", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--max-size", type=click.IntRange(min=1), default=DEFAULT_MAX_SIZE, show_default=True)
@click.option("--named", is_flag=True, help="Also print each term with named binders.")
@click.option(
    "--strategy",
    type=click.Choice(["normal", "call_by_name", "call_by_value", "applicative", "head", "normal_eta"]),
    default="normal",
    show_default=True,
)
def reduce(term: str, max_steps: int, max_size: int, named: bool, strategy: str) -> None:
    """Print the reduction trace of TERM (canonical de Bruijn text)."""
    t = parse(term)
    tr = trace(t, max_steps, max_size, strategy=strategy)
    for i, x in enumerate(tr.terms):
        redex = f"  [redex at {tr.redexes[i]}]" if i < tr.steps else ""
        click.echo(f"{i:>4}  {x.text}{redex}")
        if named:
            click.echo(f"      {x.named}")
    click.echo(f"{tr.status} after {tr.steps} step(s)")


@main.command()
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
def stats(out: Path, as_json: bool) -> None:
    """Depth, size and trace-length histograms and duplicate counts of a dataset directory."""
    s = dataset_stats(out)
    if as_json:
        json.dump(s, sys.stdout, indent=1, default=str)
        sys.stdout.write("\n")
        return
    click.echo(
        f"records {s['records']:,}  traces {s['traces']:,}  duplicate start terms {s['duplicate_start_terms']}  "
        f"duplicate (input, target) pairs {s['duplicate_pairs']}  traces in two splits {s['traces_in_two_splits']}  "
        f"traces labelled {100 * s['traces_labelled'] / max(1, s['traces']):.2f}%"
    )
    for name, h in s["histograms"].items():
        total = sum(h.values()) or 1
        click.echo(f"\n{name}:")
        for k, v in h.items():
            bar = "#" * max(1, round(40 * v / total)) if v else ""
            click.echo(f"  {str(k):>12} {v:>10,} {100 * v / total:6.2f}%  {bar}")


@main.command()
@click.argument("predictions", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--against",
    "against",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The dataset directory the predicted record ids come from.",
)
@click.option(
    "--task",
    type=click.Choice(["step", "nf"]),
    default="step",
    show_default=True,
    help="step: predictions are next terms; nf: predictions are normal forms.",
)
@click.option("--split", type=click.Choice(["train", "val", "test"]), default=None, help="Only look ids up in this split.")
@click.option("--json", "as_json", is_flag=True, help="Print the score as JSON instead of a table.")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write score.json and report.html (charts) into this directory.",
)
def score(predictions: Path, against: Path, task: str, split: str | None, as_json: bool, out: Path | None) -> None:
    """Score PREDICTIONS (JSONL of {"id", "prediction"}) against a dataset: exact normal-order
    step / alpha-equal normal form, some valid beta step, by size, depth, redex depth, growth,
    steps remaining and lambda prefix."""
    from .score import format_table, score_predictions, write_report

    s = score_predictions(predictions, against, task=task, split=split)
    if as_json:
        json.dump(s, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        click.echo(format_table(s))
    if out is not None:
        click.echo(f"report: {write_report(s, out)}", err=True)
