"""Pretokenized corpus: sharded token files (numpy memmaps) plus a graph index.

Layout of a corpus folder made by :func:`pretokenize`::

    index.json          {"format": "ds2ds-corpus/1", "tokenizer": "gpt2", "headings": "title",
                         "shards": [...],
                         "documents": {title: {"shard", "offset", "length", "file", "links"}}}
    tokens_00000.npy    uint16 token ids of many documents back to back (GPT-2 ids < 65536)

Each document's tokens are ``encode(markdown) + [<|endoftext|>]``, where ``encode`` tokenizes a
leading ``# Title`` line per ``headings`` (:func:`~ds2ds_gen.tokenizer.heading_encoder`;
``title`` by default, ``bpe`` = plain GPT-2; an index without the field is ``bpe``); its title is the text of a
leading ``# Title`` line, else the file name without its ``_<6 hex>`` hash. ``links`` lists the
targets of the ``[text](Target)`` links in the document, in order of first appearance.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CorpusError
from .title_utils import normalize_title, strip_hash
from .tokenizer import EOS_TOKEN_ID, HEADINGS, VOCAB_SIZE, get_encoding, heading_encoder

__all__ = [
    "INDEX_FORMAT",
    "DocumentCorpus",
    "GraphIndex",
    "PretokShardedBackend",
    "extract_links",
    "pretokenize",
    "read_markdown_dir",
]

INDEX_FORMAT = "ds2ds-corpus/1"
# [text](target), the target allowing one level of balanced parentheses: [Mercury](Mercury (planet)).
# Brackets are not allowed in the target (as in LinkDetector): `[a](x [b](c) y)` links only to c.
_LINK_RE = re.compile(r"\[([^\[\]\n]+)\]\(((?:[^()\[\]\n]|\([^()\[\]\n]*\))+)\)")


def extract_links(markdown: str) -> list[str]:
    """Targets of the ``[text](target)`` links in ``markdown``, unique, in order of appearance."""
    seen: dict[str, None] = {}
    for m in _LINK_RE.finditer(markdown):
        seen.setdefault(m.group(2).strip(), None)
    return [t for t in seen if t]


def _title_of(path: Path, text: str) -> str:
    first = text.split("\n", 1)[0]
    if first.startswith("# ") and first[2:].strip():
        return first[2:].strip()
    return strip_hash(path.stem)


def read_markdown_dir(md_dir: Path) -> list[tuple[str, Path, str]]:
    """``(title, path, text)`` for every ``*.md`` under ``md_dir``, sorted by path."""
    md_dir = Path(md_dir)
    if not md_dir.is_dir():
        raise CorpusError(f"{md_dir}: not a folder of markdown files")
    out: list[tuple[str, Path, str]] = []
    seen: dict[str, Path] = {}
    for p in sorted(md_dir.rglob("*.md")):
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise CorpusError(f"{p}: not UTF-8 text (byte {e.start})") from None
        title = _title_of(p, text)
        if title in seen:
            raise CorpusError(f"{p}: title {title!r} already used by {seen[title]}")
        seen[title] = p
        out.append((title, p, text))
    if not out:
        raise CorpusError(f"{md_dir}: no *.md files found")
    return out


def pretokenize(md_dir: Path, out: Path, *, shard_tokens: int = 1 << 20, headings: str = "title") -> dict[str, Any]:
    """Tokenize every markdown file of ``md_dir`` into ``out`` (shards + ``index.json``).

    ``headings``: how a leading ``# Title`` line is tokenized (see
    :func:`~ds2ds_gen.tokenizer.heading_encoder`); a model trained on the corpus inherits it.
    Returns the index. Documents never straddle shards; a shard holds ``shard_tokens`` tokens or
    one document, whichever is larger. Files are written to temporary names and renamed.
    """
    if shard_tokens < 1:
        raise CorpusError(f"shard_tokens = {shard_tokens}: must be >= 1")
    if headings not in HEADINGS:
        raise CorpusError(f"headings = {headings!r}: must be one of {list(HEADINGS)}")
    docs = read_markdown_dir(md_dir)
    enc = get_encoding()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if headings == "bpe":
        encoded = enc.encode_ordinary_batch([t for _, _, t in docs], num_threads=2)
    else:
        encode = heading_encoder(enc.encode_ordinary, headings)
        encoded = [encode(t) for _, _, t in docs]
    shards: list[list[np.ndarray]] = [[]]
    sizes = [0]
    documents: dict[str, Any] = {}
    for (title, path, text), ids in zip(docs, encoded):
        arr = np.asarray(ids + [EOS_TOKEN_ID], dtype=np.uint16)
        if sizes[-1] and sizes[-1] + len(arr) > shard_tokens:
            shards.append([])
            sizes.append(0)
        documents[title] = {
            "shard": len(shards) - 1,
            "offset": sizes[-1],
            "length": int(len(arr)),
            "file": str(path.relative_to(md_dir)),
            "links": extract_links(text),
        }
        shards[-1].append(arr)
        sizes[-1] += len(arr)
    shard_meta = []
    for i, parts in enumerate(shards):
        name = f"tokens_{i:05d}.npy"
        tmp = out / (name + ".tmp")
        with open(tmp, "wb") as f:
            np.save(f, np.concatenate(parts) if parts else np.zeros(0, np.uint16))
        tmp.replace(out / name)
        shard_meta.append({"file": name, "tokens": sizes[i]})
    index = {"format": INDEX_FORMAT, "tokenizer": "gpt2", "headings": headings, "shards": shard_meta, "documents": documents}
    tmp = out / "index.json.tmp"
    tmp.write_text(json.dumps(index, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(out / "index.json")
    return index


class GraphIndex:
    """The parsed and validated ``index.json`` of a corpus folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        path = self.root / "index.json"
        if not path.is_file():
            raise CorpusError(f"{path}: corpus index missing (run `ds2ds-gen pretokenize` first)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CorpusError(f"{path}: not valid JSON ({e})") from None
        if not isinstance(data, dict) or data.get("format") != INDEX_FORMAT:
            raise CorpusError(f"{path}: field 'format' must be {INDEX_FORMAT!r}")
        if data.get("tokenizer") != "gpt2":
            raise CorpusError(f"{path}: field 'tokenizer' must be 'gpt2', got {data.get('tokenizer')!r}")
        #: how the documents' ``# Title`` lines are tokenized (absent: ``bpe``, corpora made before 0.2)
        self.headings: str = data.get("headings", "bpe")
        if self.headings not in HEADINGS:
            raise CorpusError(f"{path}: field 'headings' must be one of {list(HEADINGS)}, got {self.headings!r}")
        shards, docs = data.get("shards"), data.get("documents")
        if not isinstance(shards, list) or not isinstance(docs, dict):
            raise CorpusError(f"{path}: fields 'shards' (list) and 'documents' (object) are required")
        self.shards: list[dict[str, Any]] = []
        for i, s in enumerate(shards):
            if not isinstance(s, dict) or not isinstance(s.get("file"), str) or not isinstance(s.get("tokens"), int):
                raise CorpusError(f"{path}: shards[{i}] needs 'file' (str) and 'tokens' (int)")
            if "/" in s["file"] or "\\" in s["file"] or s["file"].startswith("."):
                raise CorpusError(f"{path}: shards[{i}].file {s['file']!r} must be a plain file name")
            self.shards.append(s)
        self.documents: dict[str, dict[str, Any]] = {}
        for title, d in docs.items():
            ok = isinstance(d, dict) and all(isinstance(d.get(k), int) for k in ("shard", "offset", "length"))
            if not ok:
                raise CorpusError(f"{path}: documents[{title!r}] needs integer 'shard', 'offset', 'length'")
            if not 0 <= d["shard"] < len(self.shards) or d["offset"] < 0 or d["length"] < 1:
                raise CorpusError(f"{path}: documents[{title!r}] has shard/offset/length out of range")
            if d["offset"] + d["length"] > self.shards[d["shard"]]["tokens"]:
                raise CorpusError(f"{path}: documents[{title!r}] runs past the end of shard {d['shard']}")
            links = d.get("links", [])
            if not isinstance(links, list) or not all(isinstance(x, str) for x in links):
                raise CorpusError(f"{path}: documents[{title!r}].links must be a list of strings")
            self.documents[title] = d
        self._by_norm: dict[str, list[str]] = {}
        for t in self.documents:
            self._by_norm.setdefault(normalize_title(t), []).append(t)

    def __contains__(self, title: object) -> bool:
        return title in self.documents

    def __len__(self) -> int:
        return len(self.documents)

    def titles(self) -> list[str]:
        """All titles, in index order."""
        return list(self.documents)

    def links(self, title: str) -> list[str]:
        """Outgoing link targets of ``title`` (possibly naming titles not in the corpus)."""
        return list(self.documents[title].get("links", []))

    def same_normalized(self, title: str) -> list[str]:
        """Titles whose :func:`normalize_title` equals that of ``title``."""
        return list(self._by_norm.get(normalize_title(title), []))


class PretokShardedBackend:
    """Memory-mapped access to the token shards of a corpus."""

    def __init__(self, root: Path, index: GraphIndex) -> None:
        self._maps: list[np.ndarray | None] = [None] * len(index.shards)
        self._root = Path(root)
        self._index = index

    def _shard(self, i: int) -> np.ndarray:
        m = self._maps[i]
        if m is None:
            meta = self._index.shards[i]
            path = self._root / meta["file"]
            try:
                m = np.load(path, mmap_mode="r", allow_pickle=False)
            except FileNotFoundError:
                raise CorpusError(f"{path}: token shard missing") from None
            except (ValueError, OSError) as e:
                raise CorpusError(f"{path}: not a readable .npy token shard ({e})") from None
            if m.ndim != 1 or m.dtype != np.uint16 or len(m) != meta["tokens"]:
                raise CorpusError(f"{path}: expected {meta['tokens']} uint16 tokens, found {m.dtype} shape {m.shape}")
            if len(m):
                # uint16 holds ids up to 65535, beyond GPT-2's 50257: check once per shard (one
                # pass over the memory map) instead of failing later inside the embedding
                top = int(m.max())
                if top >= VOCAB_SIZE:
                    at = int(np.argmax(m >= VOCAB_SIZE))
                    raise CorpusError(
                        f"{path}: token id {top} (first bad id {int(m[at])} at position {at}) "
                        f">= the GPT-2 vocabulary size {VOCAB_SIZE}"
                    )
            self._maps[i] = m
        return m

    def read(self, shard: int, offset: int, length: int) -> np.ndarray:
        """A copy (int64) of ``length`` tokens at ``offset`` of shard ``shard``."""
        return np.array(self._shard(shard)[offset : offset + length], dtype=np.int64)

    def close(self) -> None:
        """Drop the memory maps."""
        self._maps = [None] * len(self._maps)


class DocumentCorpus:
    """A pretokenized corpus, for looking documents up by title during generation.

    Use as a context manager (``with DocumentCorpus(path) as c:``) or call :meth:`close`.
    """

    def __init__(self, dataset_path: Path) -> None:
        self.path = Path(dataset_path)
        if not self.path.is_dir():
            raise CorpusError(f"{self.path}: corpus folder not found")
        self.index = GraphIndex(self.path)
        self.backend = PretokShardedBackend(self.path, self.index)

    @property
    def headings(self) -> str:
        """How this corpus tokenizes ``# Title`` lines (``index.json`` ``headings``)."""
        return self.index.headings

    def has_document(self, title: str) -> bool:
        """Whether a document with exactly this title exists."""
        return title in self.index

    def get_document(self, title: str, vocab_size: int | None = None, headings: str | None = None) -> np.ndarray | None:
        """Token ids of the document ``title`` (ending with ``<|endoftext|>``), or None.

        With ``vocab_size`` (a model's vocabulary), an id outside it raises :class:`CorpusError`
        naming the corpus file and the document. With ``headings`` (a model's
        ``ModelConfig.headings``) other than the corpus's, the document is re-tokenized to it
        (same text; only the ``# Title`` line's tokens change)."""
        d = self.index.documents.get(title)
        if d is None:
            return None
        toks = self.backend.read(d["shard"], d["offset"], d["length"])
        if headings is not None and headings != self.headings:
            enc = get_encoding()
            body = toks[:-1] if len(toks) and toks[-1] == EOS_TOKEN_ID else toks
            ids = heading_encoder(enc.encode_ordinary, headings)(enc.decode([int(x) for x in body]))
            toks = np.asarray(ids + [EOS_TOKEN_ID] * (len(body) < len(toks)), dtype=np.int64)
        if vocab_size is not None and len(toks) and int(toks.max()) >= vocab_size:
            raise CorpusError(
                f"{self.path / 'index.json'}: document {title!r} ({d.get('file')}) has token id "
                f"{int(toks.max())}, outside the model's vocab_size = {vocab_size}"
            )
        return toks

    def get_title_variants(self, title: str) -> list[str]:
        """Corpus titles that ``title`` may refer to: the exact title first, else titles with the
        same normalized form (case and punctuation differences), else none."""
        if title in self.index:
            return [title]
        return self.index.same_normalized(title)

    def get_source_path(self, title: str) -> Path | None:
        """The markdown file the document came from (relative to the original folder)."""
        d = self.index.documents.get(title)
        return Path(d["file"]) if d and isinstance(d.get("file"), str) else None

    def titles(self) -> list[str]:
        """All titles."""
        return self.index.titles()

    def links(self, title: str) -> list[str]:
        """Outgoing links of ``title``."""
        return self.index.links(title)

    def __len__(self) -> int:
        return len(self.index)

    def __iter__(self) -> Iterator[str]:
        return iter(self.index.titles())

    def close(self) -> None:
        """Release the memory maps."""
        self.backend.close()

    def __enter__(self) -> DocumentCorpus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
