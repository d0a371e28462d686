"""Token ids of canonical terms (``--tokens``) and the ``vocab.json`` written with a dataset.

Ids: ``<pad>`` 0, ``<bos>`` 1, ``<eos>`` 2, ``\\`` 3, ``(`` 4, ``)`` 5, space 6, and de Bruijn
index ``i`` is ``7 + i`` (one token however many digits).  Records carry ``input_ids`` and
``target_ids`` without ``<bos>``/``<eos>``; the model's side adds what it needs.
"""

from __future__ import annotations

from typing import Any

import orjson

SPECIALS = ("<pad>", "<bos>", "<eos>")
SYMBOLS = ("\\", "(", ")", " ")
FIRST_INDEX = len(SPECIALS) + len(SYMBOLS)


def vocab(max_size: int) -> dict[str, int]:
    """Token -> id for terms of at most ``max_size`` nodes (indices 0 .. max_size - 2)."""
    out = {t: i for i, t in enumerate(SPECIALS + SYMBOLS)}
    out.update({str(i): FIRST_INDEX + i for i in range(max(1, max_size - 1))})
    return out


def tokenize(text: str) -> list[int]:
    """Token ids of a canonical term text (the same ids the Rust core writes)."""
    out: list[int] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c.isdigit():
            j = i
            while j < len(text) and text[j].isdigit():
                j += 1
            out.append(FIRST_INDEX + int(text[i:j]))
            i = j
            continue
        out.append(len(SPECIALS) + SYMBOLS.index(c))
        i += 1
    return out


def vocab_document(max_size: int, histograms: dict[str, dict[str, int]]) -> dict[str, Any]:
    """The ``vocab.json`` document: the vocabulary and the longest input / target in tokens."""
    lengths = {
        f"max_{k}_tokens": max((int(b) for b in histograms.get(f"{k}_tokens", {})), default=0) for k in ("input", "target")
    }
    return {"vocab": vocab(max_size), "specials": list(SPECIALS), "first_index_id": FIRST_INDEX, **lengths}


def vocab_bytes(max_size: int, histograms: dict[str, dict[str, int]]) -> bytes:
    """``vocab.json`` as written with the dataset (a dataset file: listed and hashed in the manifest)."""
    return orjson.dumps(vocab_document(max_size, histograms), option=orjson.OPT_INDENT_2)
