"""What every generator's CLI shares: error handling and the ``generate`` options.

* :class:`CliGroup`: a click group that turns :class:`~datacore.errors.DatacoreError` (and
  file-system errors) into one ``Error: ...`` line and a non-zero exit, never a traceback.
* :func:`generate_options`: the shared options of every ``generate`` command, handed to the
  command as one :class:`GenerateOptions` argument named ``opts``.
* :func:`run_generate`: runs :func:`~datacore.runner.build_dataset` with them.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import click

from .errors import DatacoreError
from .runner import BuildResult, build_dataset


class CliGroup(click.Group):
    """A click group whose commands report user errors as one line and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DatacoreError as e:
            raise click.ClickException(str(e)) from None
        except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as e:
            raise click.ClickException(f"{e.filename}: {e.strerror}") from None
        except KeyboardInterrupt:
            click.echo("interrupted; run the same command again to resume", err=True)
            ctx.exit(130)


def _ratios(_ctx: Any, _param: Any, value: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(x) for x in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected three numbers like 0.8,0.1,0.1, got {value!r}") from None
    if len(parts) != 3 or any(p < 0 for p in parts) or abs(sum(parts) - 1) > 1e-6:
        raise click.BadParameter(f"expected three numbers >= 0 summing to 1 (train,val,test), got {value!r}")
    return parts  # type: ignore[return-value]


@attrs.frozen
class GenerateOptions:
    """The shared options of a ``generate`` command."""

    #: the local dataset directory (for an fsspec URL: the local staging directory of the run)
    out: Path
    n: int
    seed: int
    workers: int | None
    executor: str
    shard_size: int
    compress: str | None
    resume: str
    split_ratios: tuple[float, float, float]
    quiet: bool
    allow_shortfall: bool
    #: the fsspec URL the dataset is published to, when ``--out`` is one (``s3://bucket/prefix``)
    url: str | None = None


class _OutParam(click.ParamType):
    """``--out``: a local directory (a Path) or an fsspec URL (kept as the string)."""

    name = "DIR|URL"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from .remote import is_remote

        if isinstance(value, Path) or not is_remote(str(value)):
            p = Path(value)
            if p.exists() and not p.is_dir():
                self.fail(f"{p} exists and is not a directory", param, ctx)
            return p
        return str(value).rstrip("/")


_SHARED = [
    click.option(
        "--out",
        "-o",
        type=_OutParam(),
        required=True,
        help="Output dataset directory, or an fsspec URL (s3://bucket/prefix; needs datacore[remote]).",
    ),
    click.option("-n", "n", type=click.IntRange(min=0), default=1000, show_default=True, help="Number of records."),
    click.option("--seed", type=int, default=0, show_default=True, help="Run seed (shard seeds derive from it)."),
    click.option("--workers", "-w", type=click.IntRange(min=1), default=None, help="Worker processes [default: all cores]."),
    click.option(
        "--executor",
        type=click.Choice(["process", "ray", "inline"]),
        default="process",
        show_default=True,
        help="Local process pool, Ray tasks (RAY_ADDRESS or a local Ray), or in-process.",
    ),
    click.option("--shard-size", type=click.IntRange(min=1), default=10_000, show_default=True, help="Records per shard."),
    click.option(
        "--compress", type=click.Choice(["none", "gz", "zst"]), default="none", show_default=True, help="Shard file compression."
    ),
    click.option(
        "--resume",
        "resume",
        type=click.Choice(["if_possible", "always", "never"]),
        default="if_possible",
        show_default=True,
        help="Finish an unfinished run of the same identity in --out (if_possible), insist on one "
        "(always), or discard ours and start over (never).",
    ),
    click.option("--no-resume", "no_resume", is_flag=True, help="Same as --resume never."),
    click.option("--split-ratios", default="0.8,0.1,0.1", show_default=True, callback=_ratios, help="train,val,test shares."),
    click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary."),
    click.option(
        "--allow-shortfall",
        is_flag=True,
        help="Keep a dataset that missed -n or a target stratum; the shortfall is recorded in the manifest and report.",
    ),
    click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=Path),
        is_eager=True,
        expose_value=False,
        callback=lambda ctx, p, v: load_options_file(ctx, v),
        help="YAML or JSON file of option values (keys are option names); flags given on the command line win.",
    ),
]
_NAMES = [f.name for f in attrs.fields(GenerateOptions) if f.name != "url"]


def load_options_file(ctx: click.Context, path: Path | None) -> None:
    """Load a YAML/JSON file of option values into the command's defaults (command-line flags win)."""
    if path is None:
        return
    from .config import read_config_file

    try:
        data = read_config_file(path)
    except DatacoreError as e:
        raise click.BadParameter(str(e), param_hint="--config") from None
    names = {p.name for p in ctx.command.params if p.name}
    values = {}
    for key, value in data.items():
        name = str(key).lstrip("-").replace("-", "_")
        if name not in names or name == "config_file":
            raise click.BadParameter(
                f"{path}: unknown option {key!r} (allowed: {', '.join(sorted(names - {'config_file'}))})", param_hint="--config"
            )
        values[name] = value
    ctx.default_map = {**(ctx.default_map or {}), **values}


def generate_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: add the shared generate options; the command receives ``opts: GenerateOptions``."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        shared = {k: kwargs.pop(k) for k in _NAMES}
        if kwargs.pop("no_resume"):
            shared["resume"] = "never"
        shared["compress"] = None if shared["compress"] == "none" else shared["compress"]
        if isinstance(shared["out"], str):  # an fsspec URL: the run is staged locally, then published
            from .remote import staging_dir

            shared["url"], shared["out"] = shared["out"], staging_dir(shared["out"])
        return f(*args, opts=GenerateOptions(**shared), **kwargs)

    for opt in reversed(_SHARED):
        wrapper = opt(wrapper)
    return wrapper


def run_generate(generator: Any, opts: GenerateOptions) -> BuildResult:
    """Build the dataset described by ``opts`` and print a one-paragraph summary on stderr."""
    show = not opts.quiet and not os.environ.get("DATACORE_NO_PROGRESS")
    from .sequential import build_sequential, is_sequential

    if is_sequential(generator):
        if opts.executor != "process" or opts.workers not in (None, 1):
            raise DatacoreError(
                f"{generator.name} is a sequential loop (each step feeds the next): it runs in one process; "
                "--workers and --executor do not apply"
            )
        if opts.url:
            raise DatacoreError(f"{generator.name} writes to a local directory only; --out {opts.url} is a URL")
        result = build_sequential(
            generator,
            opts.out,
            opts.n,
            opts.seed,
            compress=opts.compress,
            resume=opts.resume,
            split_ratios=opts.split_ratios,
            progress=show,
            allow_shortfall=opts.allow_shortfall,
        )
    else:
        result = build_dataset(
            generator,
            opts.url or opts.out,
            opts.n,
            opts.seed,
            workers=opts.workers,
            executor=opts.executor,
            shard_size=opts.shard_size,
            compress=opts.compress,
            resume=opts.resume,
            split_ratios=opts.split_ratios,
            progress=show,
            allow_shortfall=opts.allow_shortfall,
        )
    if not opts.quiet:
        s = result.manifest["splits"]
        note = "" if result.shards_run else " (already complete; nothing to do)"
        delivery = result.manifest.get("delivery") or {}
        if not delivery.get("ok", True):
            from .strata import Delivery

            rows = tuple(delivery.get("strata", []))
            worst = Delivery(delivery["requested"], delivery["delivered"], rows).worst()
            click.echo(f"warning: shortfall allowed and recorded: {worst}", err=True)
        rate = result.records / result.seconds if result.seconds > 0 and result.shards_run else 0
        click.echo(
            f"{result.records:,} records (train {s['train']:,} / val {s['val']:,} / test {s['test']:,}) in "
            f"{result.seconds:.1f}s{f' ({rate:,.0f}/s)' if rate else ''} -> {opts.url or opts.out}{note}\n"
            f"report: {opts.url or opts.out}/report.html",
            err=True,
        )
    sys.stderr.flush()
    return result
