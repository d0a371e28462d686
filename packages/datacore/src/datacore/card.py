"""Dataset card (``README.md``) and Croissant metadata (``croissant.json``) for a dataset directory.

:func:`write_card` is called by the run just before the manifest is written, and can be
called again on a finished directory (``write_card(DIR, load_manifest(DIR))``).  It needs
only the files of the directory: the manifest, and the shard files for the field list.

The card starts with Hugging Face YAML front matter (``configs:`` / ``data_files`` per split),
so ``datasets.load_dataset(DIR)`` with no other argument returns the splits.  Our ``val``
split is named ``validation`` there, as Hugging Face names it.

An empty split cannot be loaded by ``datasets`` (its reader refuses a split with no rows:
``Instruction "validation" corresponds to no data!``, huggingface/datasets PR #8401), so the
front matter lists only the splits that hold records and the card says which are empty;
:func:`load_hf` returns all three, the empty ones as zero-row datasets with the same features.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from .report import FieldStats, merged_fields, scan_dataset

CARD = "README.md"
CROISSANT = "croissant.json"
HF_SPLIT = {"train": "train", "val": "validation", "test": "test"}
"""Our split names -> the names Hugging Face ``datasets`` uses."""

_CROISSANT_CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}

_CROISSANT_TYPE = {
    "string": "sc:Text",
    "integer": "sc:Integer",
    "number": "sc:Float",
    "boolean": "sc:Boolean",
}
_HF_TYPE = {"string": "string", "integer": "int64", "number": "float64", "boolean": "bool", "null": "null"}
_ENCODING = {None: "application/jsonlines", "gz": "application/gzip", "zst": "application/zstd"}


def _q(s: Any) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return orjson.dumps(str(s)).decode()


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _glob_of(manifest: Mapping[str, Any], split: str) -> str:
    compress = manifest.get("spec", {}).get("compress")
    return f"{split}/*.jsonl" + ("" if not compress else f".{compress}")


def command_name(manifest: Mapping[str, Any]) -> str:
    """The console script of the generator's package (``routergen.generators:X`` -> ``routergen``)."""
    ref = manifest.get("generator_ref") or ""
    top = ref.split(":")[0].split(".")[0]
    if not top or top == "datacore":
        return str(manifest.get("generator"))
    return top.replace("_", "-")


def regenerate_command(manifest: Mapping[str, Any]) -> str | None:
    """The shell command that makes this dataset again (config saved as ``config.json`` first);
    None for a pipeline without a generator class that recorded no ``regenerate`` command."""
    if manifest.get("regenerate"):  # a pipeline that knows its own command records it (extra_manifest)
        return str(manifest["regenerate"])
    spec = manifest.get("spec", {})
    ratios = spec.get("split_ratios")
    if manifest.get("generator") == "datacore.split":  # made by `datacore split FILE --key K`
        cfg = spec.get("config", {})
        parts = ["datacore", "split", str(cfg.get("source")), "--key", str(cfg.get("key")), "--out", "OUT"]
        if ratios:
            parts += ["--split-ratios", ",".join(f"{r:g}" for r in ratios)]
        if spec.get("split_salt"):
            parts += ["--salt", repr(spec["split_salt"])]
        if spec.get("compress"):
            parts += ["--compress", str(spec["compress"])]
        return " ".join(parts)
    if not manifest.get("generator_ref"):
        return None
    parts = [command_name(manifest), "generate", "--config", "config.json", "--out", "OUT"]
    if spec.get("n") is not None:
        parts += ["-n", str(spec["n"])]
    parts += ["--seed", str(spec.get("seed", 0))]
    if spec.get("shard_size"):
        parts += ["--shard-size", str(spec["shard_size"])]
    if ratios:
        parts += ["--split-ratios", ",".join(f"{r:g}" for r in ratios)]
    if spec.get("compress"):
        parts += ["--compress", str(spec["compress"])]
    return " ".join(parts)


def _type_label(fs: FieldStats) -> str:
    t = fs.main_type()
    if t == "array":
        it = fs.item_type()
        return f"list[{_HF_TYPE.get(it, it)}]" if it else "list"
    if t == "object":
        return "struct"
    label = _HF_TYPE.get(t, t)
    others = sorted(x for x in fs.types if x not in (t,))
    return label + (f" (also {', '.join(others)})" if others else "")


def _citation(manifest: Mapping[str, Any]) -> str:
    if manifest.get("citation"):
        return str(manifest["citation"])
    gen = str(manifest.get("generator"))
    key = "".join(
        c if c.isalnum() else "_" for c in f"{gen}_{manifest.get('version')}_seed{manifest.get('spec', {}).get('seed')}"
    )
    return (
        f"@misc{{{key},\n"
        f"  title = {{{gen} {manifest.get('version')} synthetic dataset (seed {manifest.get('spec', {}).get('seed')}, "
        f"{manifest.get('records', 0)} records)}},\n"
        f"  note = {{Generated with {gen} {manifest.get('version')} and datacore {manifest.get('datacore_version')}"
        + (f"; regenerate with: {cmd}" if (cmd := regenerate_command(manifest)) else "")
        + "}\n}"
    )


def card_markdown(manifest: Mapping[str, Any], fields: Mapping[str, FieldStats], scanned: int | None = None) -> str:
    """The text of README.md: Hugging Face front matter, then the human summary."""
    spec = manifest.get("spec", {})
    splits: Mapping[str, int] = manifest.get("splits", {})
    total = int(manifest.get("records", 0) or 0)
    gen = str(manifest.get("generator"))
    license_id = str(manifest.get("license") or "unknown")
    nonempty = [s for s in splits if splits[s] > 0]
    empty = [s for s in splits if splits[s] == 0]
    y = [
        "---",
        f"license: {_q(license_id)}",
        f"pretty_name: {_q(gen + ' ' + str(manifest.get('version')) + ' synthetic dataset')}",
        "tags:",
        "- synthetic",
        "- datacore",
        f"- {_q(gen)}",
        "configs:",
        "- config_name: default",
        "  data_files:",
    ]
    for s in nonempty:
        y += [f"  - split: {HF_SPLIT.get(s, s)}", f"    path: {_q(_glob_of(manifest, s))}"]
    if not nonempty:
        # No records at all: a config with no data files would not load either; point at train anyway.
        y += ["  - split: train", f"    path: {_q(_glob_of(manifest, 'train'))}"]
    y.append("---")
    md = ["\n".join(y), "", f"# {gen} {manifest.get('version')}: synthetic dataset", ""]
    md += [
        f"{total:,} records made by `{gen}` {manifest.get('version')} (class `{manifest.get('generator_ref')}`) with "
        f"datacore {manifest.get('datacore_version')}, seed {spec.get('seed')}. Every record has an `id` and a `meta` object; "
        "the same command with the same seed makes byte-identical files.",
        "",
        "| | |",
        "|---|---|",
        f"| generator | `{gen}` {manifest.get('version')} |",
        f"| seed | {spec.get('seed')} |",
        f"| records | {total:,} |",
        f"| shards | {len(manifest.get('shards', []))} of up to {spec.get('shard_size')} records |",
        f"| compression | {spec.get('compress') or 'none'} |",
        f"| split ratios (train, val, test) | {', '.join(f'{r:g}' for r in spec.get('split_ratios', []))}"
        + (f" (salt {spec.get('split_salt')!r})" if spec.get("split_salt") else "")
        + " |",
        "",
        "## Splits",
        "",
        "| split | `datasets` name | records | share | files |",
        "|---|---|---:|---:|---|",
    ]
    for s, c in splits.items():
        md.append(f"| {s} | {HF_SPLIT.get(s, s)} | {c:,} | {100 * c / total if total else 0:.1f}% | `{_glob_of(manifest, s)}` |")
    if empty:
        md += [
            "",
            f"Empty split(s): {', '.join(empty)}. `datasets` cannot load a split with no rows, so the front matter "
            "lists only the others; `datacore.card.load_hf(DIR)` returns every split, empty ones with zero rows.",
        ]
    md += ["", "## Requested vs delivered", ""]
    delivery = manifest.get("delivery")
    if delivery:
        verdict = (
            "all delivered"
            if delivery.get("ok")
            else (
                "**shortfall** (kept because --allow-shortfall was given)"
                if delivery.get("shortfall_allowed")
                else "**shortfall**"
            )
        )
        md += [f"Records: asked {delivery.get('requested'):,}, delivered {delivery.get('delivered'):,}: {verdict}.", ""]
        rows = delivery.get("strata") or []
        if rows:
            md += ["| stratum | asked | tolerance | delivered | ok |", "|---|---:|---:|---:|---|"]
            for r in rows:
                md.append(
                    f"| `{r['stratum']}` | {r['share']:.1%} ({r['requested']:,}) | ±{r['tolerance']:.1%} | "
                    f"{r['delivered_share']:.1%} ({r['delivered']:,}) | {'yes' if r['ok'] else '**no**'} |"
                )
    else:
        asked = spec.get("n")
        md.append(f"Records: asked {asked:,}, delivered {total:,}." if asked is not None else f"Records delivered: {total:,}.")
        md.append("The run recorded no per-stratum targets.")
    md += ["", "## Fields", ""]
    if fields:
        seen = sum(fs.present for n, fs in fields.items() if n == "id") or scanned or 0
        md += [
            f"From {seen:,} records read" + (f" of {total:,}" if seen < total else " (all)") + ".",
            "",
            "| field | type | present |",
            "|---|---|---:|",
        ]
        for name in sorted(fields, key=lambda k: (k.startswith("meta."), k)):
            fs = fields[name]
            md.append(f"| `{name}` | {_type_label(fs)} | {100 * fs.present / seen if seen else 0:.1f}% |")
    else:
        md.append("No records, so no fields.")
    md += ["", "## Config", "", "```json", orjson.dumps(spec.get("config", {}), option=orjson.OPT_INDENT_2).decode(), "```"]
    md += [
        "",
        "## Loading",
        "",
        "```python",
        "from datasets import load_dataset",
        'ds = load_dataset("DIR")  # this directory: ' + ", ".join(HF_SPLIT.get(s, s) for s in nonempty),
        "",
        "from datacore.stream import StreamingDataset  # PyTorch (pip install 'datacore[torch]')",
        'train = StreamingDataset("DIR", split="train", shuffle=True, seed=0)',
        "```",
    ]
    md += ["", "## Regenerate", ""]
    if manifest.get("regenerate") or manifest.get("generator") == "datacore.split":
        md += ["```sh", str(regenerate_command(manifest)), "```"]
    elif manifest.get("generator_ref"):
        md += ["Save the config above as `config.json`, then:", "", "```sh", str(regenerate_command(manifest)), "```"]
    else:
        md += [
            f"Made by a sequential pipeline of `{gen}` that did not record its command; its guide says how to "
            "run it again with the config and seed above."
        ]
    if manifest.get("generator_ref"):
        mod, _, qual = str(manifest["generator_ref"]).partition(":")
        md += [
            "",
            "or in Python:",
            "",
            "```python",
            "import json",
            "from datacore import build_dataset",
            f"from {mod} import {qual.split('.')[0]}",
            f"gen = {qual}.from_config_dict(json.load(open('config.json')))",
            f"build_dataset(gen, 'OUT', {spec.get('n')}, {spec.get('seed')}, shard_size={spec.get('shard_size')}, "
            f"split_ratios={tuple(spec.get('split_ratios', ()))}, compress={spec.get('compress')!r})",
            "```",
        ]
    md += [
        "",
        "`datacore verify OUT` re-hashes every file against `dataset.json` (sha256 per file; also in `croissant.json`).",
        "",
        "## License",
        "",
        license_id
        if manifest.get("license")
        else "No license was declared by the generator (`unknown`); whoever publishes this dataset must set one.",
        "",
        "## Citation",
        "",
        "```bibtex",
        _citation(manifest),
        "```",
        "",
    ]
    return "\n".join(md)


def _describable(fs: FieldStats) -> bool:
    """A field Croissant readers can cast: one scalar type (nulls aside), or a list of scalars."""
    kinds = {t for t in fs.types if t != "null"}
    if kinds <= set(_CROISSANT_TYPE) and len(kinds) <= 1:
        return True
    return kinds == {"array"} and set(fs.item_types) <= set(_CROISSANT_TYPE) and len(fs.item_types) <= 1


def _croissant_field(
    split: str, fname: str, fields: Mapping[str, FieldStats], fs_id: str, skipped: list[str]
) -> dict[str, Any] | None:
    """The Croissant Field of ``fname`` (objects: one sub-field per describable key), or None (then named in ``skipped``)."""
    fs = fields[fname]
    t = fs.main_type()
    top, _, sub = fname.partition(".")
    source: dict[str, Any] = {"fileSet": {"@id": fs_id}, "extract": {"column": top}}
    if sub:
        source["transform"] = {"jsonPath": sub}
    field: dict[str, Any] = {"@type": "cr:Field", "@id": f"{split}/{fname}", "name": sub or fname}
    if t == "object" and not sub and set(fs.types) <= {"object", "null"}:
        subs = [_croissant_field(split, f, fields, fs_id, skipped) for f in sorted(fields) if f.startswith(fname + ".")]
        kept = [x for x in subs if x is not None]
        if kept:
            field["subField"] = kept
            return field
    if not _describable(fs):
        skipped.append(fname)
        return None
    item = fs.item_type() if t == "array" else t
    field["source"] = source
    field["dataType"] = _CROISSANT_TYPE.get(item or "string", "sc:Text")
    if t == "array":
        field["repeated"] = True
    return field


def croissant_metadata(manifest: Mapping[str, Any], fields: Mapping[str, FieldStats]) -> dict[str, Any]:
    """Croissant 1.0 JSON-LD: one FileObject per shard file (with its sha256), a FileSet and a RecordSet per split."""
    spec = manifest.get("spec", {})
    gen = str(manifest.get("generator"))
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in f"{gen}-{manifest.get('version')}")
    enc = _ENCODING.get(spec.get("compress"), "application/jsonlines")
    distribution: list[dict[str, Any]] = []
    for sh in manifest.get("shards", []):
        for _s, e in sh["files"].items():
            distribution.append(
                {
                    "@type": "cr:FileObject",
                    "@id": e["path"],
                    "name": e["path"],
                    "contentUrl": e["path"],
                    "contentSize": f"{e['bytes']} B",
                    "encodingFormat": enc,
                    "sha256": e["sha256"],
                }
            )
    record_sets = []
    splits = manifest.get("splits", {})
    for s in splits:
        fs_id = f"{s}-files"
        # The set holds JSON lines (each file compressed as its FileObject says): mlcroissant
        # reads gzip files of a jsonlines set transparently; zstd ones it cannot read (1.1.1).
        distribution.append(
            {
                "@type": "cr:FileSet",
                "@id": fs_id,
                "name": fs_id,
                "encodingFormat": "application/jsonlines",
                "includes": _glob_of(manifest, s),
            }
        )
        skipped: list[str] = []
        rs_fields = [
            f
            for f in (_croissant_field(s, name, fields, fs_id, skipped) for name in sorted(f for f in fields if "." not in f))
            if f
        ]
        note = (
            f"; not described here (nested JSON or mixed types, read them from the JSONL): {', '.join(skipped)}"
            if skipped
            else ""
        )
        record_sets.append(
            {
                "@type": "cr:RecordSet",
                "@id": HF_SPLIT.get(s, s),
                "name": HF_SPLIT.get(s, s),
                "description": f"the {s} split: {splits[s]} records{note}",
                "field": rs_fields,
            }
        )
    version = str(manifest.get("version"))
    if version.count(".") == 1:
        version += ".0"  # Croissant wants MAJOR.MINOR.PATCH
    return {
        "@context": _CROISSANT_CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": "http://mlcommons.org/croissant/1.0",
        "name": name,
        "description": f"{manifest.get('records', 0)} synthetic records made by {gen} {manifest.get('version')} "
        f"(datacore {manifest.get('datacore_version')}), seed {spec.get('seed')}. "
        + (f"Regenerate with: {cmd}" if (cmd := regenerate_command(manifest)) else ""),
        "license": str(manifest.get("license") or "unknown"),
        "url": str(manifest.get("url") or "https://example.invalid/unpublished"),
        "version": version,
        "citeAs": _citation(manifest),
        "keywords": ["synthetic", "datacore", gen],
        "distribution": distribution,
        "recordSet": record_sets,
    }


def write_card(out_dir: str | os.PathLike[str], manifest: Mapping[str, Any], telemetry: Any = None, scans: Any = None) -> None:
    """Write ``README.md`` (dataset card) and ``croissant.json`` into ``out_dir``, each atomically.

    ``telemetry`` is accepted for symmetry with the report and is not needed; ``scans``: the
    per-split scans the report already made (:func:`~datacore.report.scan_dataset`), if any.
    """
    root = Path(out_dir)
    scans = scans if scans is not None else scan_dataset(root, manifest)
    fields = merged_fields(scans)
    scanned = sum(s.scanned for s in scans.values())
    _atomic_write(root / CARD, card_markdown(manifest, fields, scanned).encode("utf-8"))
    _atomic_write(root / CROISSANT, orjson.dumps(croissant_metadata(manifest, fields), option=orjson.OPT_INDENT_2) + b"\n")


def load_hf(path: str | os.PathLike[str], **kwargs: Any) -> Any:
    """``datasets.load_dataset(path)`` with every split present: an empty split comes back with zero rows.

    ``kwargs`` go to ``load_dataset``.  Needs the ``datasets`` package.
    """
    import datasets

    from .manifest import load_manifest

    m = load_manifest(path)
    splits = m.get("splits", {})
    if not any(splits.values()):
        raise ValueError(f"{path}: the dataset has no records")
    dd = datasets.load_dataset(str(path), **kwargs)
    features = next(iter(dd.values())).features
    for s, c in splits.items():
        name = HF_SPLIT.get(s, s)
        if c == 0 and name not in dd:
            dd[name] = datasets.Dataset.from_dict({k: [] for k in features}, features=features)
    return datasets.DatasetDict({HF_SPLIT.get(s, s): dd[HF_SPLIT.get(s, s)] for s in splits})
