"""The ``datacore`` command: split, stats, verify, report and export dataset directories."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import click
import orjson

from . import __version__
from .cli_support import CliGroup, _ratios
from .errors import DatacoreError, JsonlError, ManifestError
from .jsonl import ReadStats, read_jsonl
from .manifest import MANIFEST, REPORT, TELEMETRY, dataset_file_paths, dataset_files, load_manifest, sha256_file, verify_dataset
from .runner import DatasetBuilder
from .split import SPLITS
from .telemetry import Telemetry


@click.group(cls=CliGroup)
@click.version_option(__version__, prog_name="datacore")
def main() -> None:
    """Shared tools for datacore dataset directories and JSONL files."""


def _field(rec: dict[str, Any], dotted: str) -> Any:
    cur: Any = rec
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise KeyError(dotted)
        cur = cur[part]
    return cur


def _key_of(value: Any) -> Any:
    """Split key of a field value: str and int lists as they are, anything else as canonical JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32 for v in value):
        return value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


@main.command()
@click.argument("src", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--key", "key", required=True, help="Field whose value picks the split (dotted paths like meta.source work).")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output dataset directory.")
@click.option("--split-ratios", default="0.8,0.1,0.1", show_default=True, callback=_ratios, help="train,val,test shares.")
@click.option("--salt", default="", help="Salt prepended to every key before hashing.")
@click.option("--compress", type=click.Choice(["none", "gz", "zst"]), default="none", show_default=True)
@click.option(
    "--on-error",
    type=click.Choice(["raise", "skip"]),
    default="raise",
    show_default=True,
    help="Malformed lines: stop, or skip and count.",
)
def split(
    src: Path, key: str, out: Path, split_ratios: tuple[float, float, float], salt: str, compress: str, on_error: str
) -> None:
    """Split any JSONL file SRC into train/val/test by the hash of field KEY.

    OUT must be new, empty, or this same split's own unfinished (or finished) run, which is
    then resumed; anything else is refused before anything is touched.
    """
    if not src.is_file():
        raise JsonlError(src, None, "no such file")
    _refuse_foreign_out(src, out)
    stats = ReadStats()
    config = {"source": src.name, "source_sha256": sha256_file(src), "key": key, "on_error": on_error}
    builder = DatasetBuilder(
        out,
        SPLIT_GENERATOR,
        __version__,
        config,
        0,
        split_ratios=split_ratios,
        split_salt=salt,
        compress=None if compress == "none" else compress,
        resume=True,
    )
    if builder.complete:
        m = builder.manifest
        s = m["splits"]
        click.echo(
            f"{out}: already complete ({m['records']:,} records -> train {s['train']:,} / val {s['val']:,} / test {s['test']:,})"
        )
        return

    def records() -> Any:
        for i, rec in enumerate(read_jsonl(src, on_error=on_error, stats=stats), start=1):  # type: ignore[arg-type]
            try:
                _field(rec, key)
            except KeyError:
                raise JsonlError(src, i + stats.skipped, f"record has no field '{key}'") from None
            yield rec

    tel = Telemetry()
    try:
        builder.write_shard(0, records(), lambda r: _key_of(_field(r, key)), tel)
        tel.count("skipped_lines", stats.skipped)
        builder.done[0]["telemetry"] = tel.to_dict()
        m = builder.finalize()
    except BaseException:
        builder.abandon()  # leaves nothing of this run when no shard was finished
        raise
    s = m["splits"]
    click.echo(
        f"{m['records']:,} records -> train {s['train']:,} / val {s['val']:,} / test {s['test']:,} in {out}"
        + (f" ({stats.skipped} malformed lines skipped)" if stats.skipped else "")
    )


SPLIT_GENERATOR = "datacore.split"
# What a dataset directory of ours may hold at its top level (parquet: the default export folder).
_DATASET_ENTRIES = {MANIFEST, TELEMETRY, REPORT, "README.md", "croissant.json", ".datacore", "parquet", *SPLITS}


def _refuse_foreign_out(src: Path, out: Path) -> None:
    """Refuse an --out that is not new, empty, or a run of this same command (nothing is touched)."""
    if out.exists() and not out.is_dir():
        raise DatacoreError(f"{out}: exists and is not a directory")
    if src.resolve().is_relative_to(out.resolve()):
        raise DatacoreError(f"{src}: lies inside --out {out}; write the split to another directory (nothing was changed)")
    if not out.is_dir() or not any(out.iterdir()):
        return
    for marker in (out / MANIFEST, out / ".datacore" / "run.json"):
        if marker.is_file():
            try:
                spec = orjson.loads(marker.read_bytes())
            except orjson.JSONDecodeError:
                spec = None
            gen = spec.get("generator") if isinstance(spec, dict) else None
            if gen != SPLIT_GENERATOR:
                what = f"a dataset of generator {gen!r}" if gen else f"an unreadable {marker.name}"
                raise DatacoreError(
                    f"{out}: holds {what}; split never replaces another dataset: choose a new --out (nothing was changed)"
                )
            foreign = sorted(p.name for p in out.iterdir() if p.name not in _DATASET_ENTRIES)
            if foreign:
                raise DatacoreError(
                    f"{out}: holds files that are not ours ({', '.join(foreign[:3])}); choose a new --out (nothing was changed)"
                )
            return  # our own run: the builder resumes it, or refuses it if the arguments differ
    shown = ", ".join(sorted(p.name for p in out.iterdir())[:3])
    raise DatacoreError(f"{out}: not empty and not a split run ({shown}); choose an empty or new --out (nothing was changed)")


def _jsonl_files(path: Path) -> list[tuple[str, Path]]:
    if path.is_file():
        return [("-", path)]
    if (path / MANIFEST).exists():
        return [(e["split"], p) for e, p in dataset_file_paths(path)]
    root = path.resolve()
    # A folder without a manifest: its own JSONL files only (a symlink out of it is not followed).
    files = sorted(p for p in path.rglob("*.jsonl*") if not p.name.endswith(".tmp") and p.resolve().is_relative_to(root))
    if not files:
        raise DatacoreError(f"{path}: no dataset.json and no .jsonl files")
    return [(p.parent.name if p.parent.name in SPLITS else "-", p) for p in files]


@main.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
def stats(path: Path) -> None:
    """Records, fields, splits and sizes of a JSONL file or dataset directory PATH."""
    from rich.console import Console
    from rich.table import Table

    per_split: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    fields: Counter[str] = Counter()
    files = _jsonl_files(path)
    for split_name, f in files:
        sizes[split_name] += f.stat().st_size
        for rec in read_jsonl(f):
            per_split[split_name] += 1
            fields.update(rec.keys())
    total = sum(per_split.values())
    console = Console()
    t = Table(title=f"{path}: {total:,} records in {len(files)} files")
    for col in ("split", "records", "share", "bytes on disk"):
        t.add_column(col, justify="left" if col == "split" else "right")
    for s in sorted(per_split, key=lambda x: (SPLITS + ("-",)).index(x) if x in SPLITS + ("-",) else 9):
        t.add_row(s, f"{per_split[s]:,}", f"{100 * per_split[s] / max(total, 1):.1f}%", f"{sizes[s]:,}")
    console.print(t)
    ft = Table(title="fields")
    ft.add_column("field")
    ft.add_column("present in", justify="right")
    for k, c in fields.most_common():
        ft.add_row(k, f"{c:,} ({100 * c / max(total, 1):.1f}%)")
    console.print(ft)


@main.command()
@click.argument("out", type=click.Path(path_type=Path))
def verify(out: Path) -> None:
    """Re-hash every file of dataset directory OUT against its manifest."""
    problems = verify_dataset(out)
    if problems:
        for p in problems:
            click.echo(f"{out}/{p}", err=True)
        raise click.ClickException(f"{len(problems)} file(s) differ from {out / MANIFEST}")
    n = len(dataset_files(load_manifest(out)))
    click.echo(f"ok: {n} files match {out / MANIFEST}")


@main.command()
@click.argument("out", type=click.Path(path_type=Path))
def report(out: Path) -> None:
    """Re-render OUT/report.html from the manifest and telemetry."""
    from .report import render_report

    m = load_manifest(out)
    dataset_file_paths(out, m)  # refuses a manifest that names files outside the dataset
    try:
        tel = Telemetry.from_json((out / TELEMETRY).read_bytes())
    except FileNotFoundError:
        raise ManifestError(f"{out / TELEMETRY}: missing") from None
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError) as e:
        raise ManifestError(f"{out / TELEMETRY}: corrupt ({e})") from None
    (out / REPORT).write_text(render_report(m, tel, _generator_sections(m, tel), root=out), encoding="utf-8")
    click.echo(f"wrote {out / REPORT}")


ENTRY_POINT_GROUP = "datacore.generators"


def _generator_sections(m: dict[str, Any], tel: Telemetry) -> list[Any]:
    """Extra sections from an installed generator, looked up by name, never from the dataset's own code.

    The manifest's ``generator_ref`` (a module path) is never imported: a dataset is data, and a
    module planted beside it would run.  An installed package may offer its generator class
    under the entry point group ``datacore.generators`` with the generator's name; without one
    the report is rendered from the files alone (it is complete without the extras).
    """
    from importlib.metadata import entry_points

    name = m.get("generator")
    if not isinstance(name, str):
        return []
    eps = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not eps:
        return []
    try:
        cls = eps[0].load()
        gen = cls.from_config_dict(m["spec"]["config"])
        return list(gen.report_sections(tel))
    except Exception:  # the generic report is still complete without the extras
        return []


@main.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--to", "fmt", type=click.Choice(["parquet"]), required=True)
@click.option(
    "--dest", type=click.Path(file_okay=False, path_type=Path), default=None, help="Where to write [default: OUT/parquet]."
)
@click.option(
    "--row-group-size",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Records per Parquet row group (bounds memory).",
)
def export(out: Path, fmt: str, dest: Path | None, row_group_size: int) -> None:
    """Export each split of dataset OUT to one Parquet file (needs datacore[parquet]).

    Streamed in row groups; one schema for all splits (a field of two types is refused, naming
    the field and a record of each); provenance in the Parquet metadata (datacore.*).
    """
    from .parquet import export_parquet

    dest = dest or out / "parquet"
    rows = export_parquet(out, dest, row_group_size=row_group_size)
    for split_name, n in rows.items():
        click.echo(f"{split_name}: {n:,} rows -> {dest / (split_name + '.parquet')}")


@main.command()
@click.argument("a", type=click.Path(path_type=Path))
@click.argument("b", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
def diff(a: Path, b: Path, as_json: bool) -> None:
    """Compare dataset directories A and B: config, strata, fields, records by id, splits. Exit 0 when identical."""
    from .diff import diff_datasets

    d = diff_datasets(a, b)
    click.echo(orjson.dumps(d.to_dict(), option=orjson.OPT_INDENT_2).decode() if as_json else d.to_text())
    click.get_current_context().exit(0 if d.identical else 1)


if __name__ == "__main__":
    main()
