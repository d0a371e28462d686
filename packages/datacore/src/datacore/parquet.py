"""Export a dataset directory to Parquet: streamed in row groups, one schema, provenance kept.

Two passes over each split's JSONL files, so memory stays bounded by one row group whatever
the size of the split:

1. infer one Arrow schema for every split from all records: a field that is ``null`` in
   some records and ``T`` in others is a nullable ``T``; ints and floats together are float64;
   objects are structs with the union of their keys (a missing key is null; an object that is
   empty in every record is kept as the JSON text ``"{}"``, as Parquet has no empty struct);
   lists unify their elements.  Any other mix (an int here and a string there, a bool and an int, a list and an
   object) is refused with one line naming the field and one record of each kind.
2. write each split with :class:`pyarrow.parquet.ParquetWriter`, ``row_group_size`` records
   at a time.

The Parquet key-value metadata carries the provenance: the manifest's sha256, generator,
version, seed, datacore version and the split (keys ``datacore.*``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import DatacoreError
from .jsonl import read_jsonl
from .manifest import DIGEST_FIELD, dataset_file_paths, load_manifest, manifest_digest

SPLIT_NAMES = ("train", "val", "test")
ROW_GROUP_SIZE = 10_000

# An inferred type: ("null",) ("bool",) ("int",) ("float",) ("str",) ("list", elem) ("struct", {key: type})
_Type = tuple[Any, ...]
_NULL: _Type = ("null",)
_SCALARS = {bool: ("bool",), int: ("int",), float: ("float",), str: ("str",)}


class ParquetExportError(DatacoreError):
    """Records whose field types cannot be unified into one Parquet column."""


def _kind_name(t: _Type) -> str:
    return str({"list": "list", "struct": "object"}.get(t[0], t[0]))


class _Inferrer:
    """Unifies the types of all records, remembering where each field's kind was first seen."""

    def __init__(self) -> None:
        self.type: _Type = ("struct", {})
        self.first: dict[str, tuple[str, str]] = {}  # field path -> (kind, where)

    def add(self, record: dict[str, Any], where: str) -> None:
        self.type = self._unify(self.type, record, "", where)

    def _unify(self, t: _Type, v: Any, path: str, where: str) -> _Type:
        if v is None:
            return t
        tp = type(v)
        new: _Type
        if tp in _SCALARS:
            new = _SCALARS[tp]
        elif isinstance(v, dict):
            new = ("struct", {})
        elif isinstance(v, (list, tuple)):
            new = ("list", _NULL)
        else:
            raise ParquetExportError(f"field {path or '<record>'}: {tp.__name__} in {where} has no Parquet type")
        merged = self._merge_kind(t, new, path, where)
        if merged[0] == "struct":
            fields = dict(merged[1])
            for k, x in v.items():
                sub = f"{path}.{k}" if path else str(k)
                fields[k] = self._unify(fields.get(k, _NULL), x, sub, where)
            return ("struct", fields)
        if merged[0] == "list":
            elem = merged[1]
            for i, x in enumerate(v):
                elem = self._unify(elem, x, f"{path}[]", where if i == 0 else where)
            return ("list", elem)
        return merged

    def _merge_kind(self, t: _Type, new: _Type, path: str, where: str) -> _Type:
        if t[0] == "null":
            self.first.setdefault(path, (_kind_name(new), where))
            return new
        if t[0] == new[0]:
            return t
        if {t[0], new[0]} == {"int", "float"}:
            return ("float",)
        kind, first_where = self.first.get(path, (_kind_name(t), "an earlier record"))
        raise ParquetExportError(
            f"field {path or '<record>'}: {kind} in {first_where}, {_kind_name(new)} in {where}; "
            "one Parquet column needs one type (make the field one type in the generator)"
        )


def _arrow_type(t: _Type) -> Any:
    import pyarrow as pa

    kind = t[0]
    if kind == "null":
        return pa.null()
    if kind == "bool":
        return pa.bool_()
    if kind == "int":
        return pa.int64()
    if kind == "float":
        return pa.float64()
    if kind == "str":
        return pa.string()
    if kind == "list":
        return pa.list_(_arrow_type(t[1]))
    if not t[1]:  # an object that is always empty: Parquet has no empty struct; kept as JSON text "{}"
        return pa.string()
    return pa.struct([pa.field(k, _arrow_type(v)) for k, v in t[1].items()])


def _has_json(t: _Type) -> bool:
    if t[0] == "struct":
        return not t[1] or any(_has_json(v) for v in t[1].values())
    return t[0] == "list" and _has_json(t[1])


def _to_arrow_value(v: Any, t: _Type) -> Any:
    """Convert the parts of ``v`` whose type is an always-empty object into JSON text."""
    if v is None:
        return None
    if t[0] == "struct":
        if not t[1]:
            return "{}"
        return {k: (_to_arrow_value(x, t[1][k]) if k in t[1] and _has_json(t[1][k]) else x) for k, x in v.items()}
    if t[0] == "list" and _has_json(t[1]):
        return [_to_arrow_value(x, t[1]) for x in v]
    return v


def _records(files: list[tuple[dict[str, Any], Path]], out: Path) -> Iterator[tuple[dict[str, Any], str]]:
    for entry, p in files:
        for i, rec in enumerate(read_jsonl(p), start=1):
            rid = rec.get("id")
            yield rec, f"{entry['path']}:{i}" + (f" (id {rid!r})" if isinstance(rid, (str, int)) else "")


def provenance(manifest: dict[str, Any]) -> dict[str, str]:
    """The ``datacore.*`` key-value metadata written into each Parquet file."""
    spec: dict[str, Any] = manifest["spec"] if isinstance(manifest.get("spec"), dict) else {}
    return {
        "datacore.manifest_sha256": str(manifest.get(DIGEST_FIELD) or manifest_digest(manifest)),
        "datacore.generator": str(manifest.get("generator")),
        "datacore.version": str(manifest.get("version")),
        "datacore.seed": str(spec.get("seed")),
        "datacore.datacore_version": str(manifest.get("datacore_version")),
    }


def export_parquet(
    out: str | os.PathLike[str], dest: str | os.PathLike[str] | None = None, *, row_group_size: int = ROW_GROUP_SIZE
) -> dict[str, int]:
    """Write ``DEST/{train,val,test}.parquet`` from the dataset ``out``; return rows per split.

    Needs ``pyarrow`` (``datacore[parquet]``).  Each file is written under a temporary name
    and renamed when complete.  Raises :class:`ParquetExportError` for field types that do not
    unify, naming the field and a record of each type.
    """
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DatacoreError("export to Parquet needs pyarrow: pip install 'datacore[parquet]'") from None
    if row_group_size < 1:
        raise DatacoreError(f"row_group_size must be >= 1, got {row_group_size}")
    out = Path(out)
    m = load_manifest(out)
    files = dataset_file_paths(out, m)
    dest = Path(dest) if dest is not None else out / "parquet"
    # Pass 1: one schema for all splits (so the splits load as one dataset).
    inf = _Inferrer()
    for rec, where in _records(files, out):
        inf.add(rec, where)
    schema = pa.schema([pa.field(k, _arrow_type(v)) for k, v in inf.type[1].items()]).with_metadata(provenance(m))
    convert = _has_json(inf.type) and bool(inf.type[1])
    dest.mkdir(parents=True, exist_ok=True)
    rows: dict[str, int] = {}
    for split in SPLIT_NAMES:
        split_files = [(e, p) for e, p in files if e["split"] == split]
        final = dest / f"{split}.parquet"
        tmp = dest / f"{split}.parquet.tmp"
        meta = {**provenance(m), "datacore.split": split}
        n = 0
        try:
            with pq.ParquetWriter(tmp, schema.with_metadata(meta)) as w:
                batch: list[dict[str, Any]] = []
                first_where = ""
                for rec, where in _records(split_files, out):
                    if not batch:
                        first_where = where
                    batch.append(_to_arrow_value(rec, inf.type) if convert else rec)
                    if len(batch) >= row_group_size:
                        _write_group(w, batch, schema, first_where)
                        n += len(batch)
                        batch = []
                if batch or n == 0:
                    _write_group(w, batch, schema, first_where)
                    n += len(batch)
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        rows[split] = n
    return rows


def _write_group(w: Any, batch: list[dict[str, Any]], schema: Any, where: str) -> None:
    import pyarrow as pa

    try:
        table = pa.Table.from_pylist(batch, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as e:
        raise ParquetExportError(f"records from {where or 'the start'}: {e}") from None
    w.write_table(table, row_group_size=max(len(batch), 1))
