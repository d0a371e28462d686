"""Document spans and the two block-mask types of the DS2DS model.

A packed sequence holds several documents. Every token carries its document's id and its
position inside that document (positions restart at 0 for each document, so a document's
tokens do not depend on where it sits in the pack). Attention rules, for a query of document
``a`` at position ``p`` and a key of document ``c`` at position ``r``:

* ``doc_causal``: allowed iff ``c == a`` and ``r <= p``.
* ``cross_doc_link``: the same, or ``a`` links to ``c`` and ``p >= visible_from``, where
  ``visible_from`` is the position of the token that closes the link (the ``)``). The whole of the
  linked document becomes visible from the link's end onward.

``visible_from`` is kept in a dense ``[D, D]`` table (``NEVER`` where there is no link), so one
gather yields a whole mask: the SDPA path, the KV-cache rows and the FlexAttention ``mask_mod``
all call :func:`allowed` and therefore agree by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import attrs
import torch

__all__ = ["MASK_TYPES", "NEVER", "DocSpan", "MaskType", "allowed", "dense_mask", "link_table", "token_layout"]

MaskType = Literal["doc_causal", "cross_doc_link"]
MASK_TYPES: tuple[str, ...] = ("doc_causal", "cross_doc_link")
#: ``visible_from`` for "no link": larger than any position.
NEVER = 1 << 30


@attrs.frozen
class DocSpan:
    """One document of a packed sequence.

    ``doc_id``: a small non-negative integer naming the document; ``start``/``length``: where its
    tokens are in the pack; ``links``: ``(target_doc_id, visible_from)`` pairs, each letting this
    document's tokens at positions ``>= visible_from`` attend to the whole target document.
    """

    doc_id: int
    start: int
    length: int
    links: tuple[tuple[int, int], ...] = ()


def link_table(spans: Sequence[DocSpan], mask_type: MaskType, n_docs: int | None = None) -> torch.Tensor:
    """The ``[D, D]`` ``visible_from`` table of ``spans`` (``NEVER`` off the link edges)."""
    d = n_docs or 0
    for s in spans:
        d = max(d, s.doc_id + 1, *[t + 1 for t, _ in s.links])
    table = torch.full((max(d, 1), max(d, 1)), NEVER, dtype=torch.long)
    if mask_type == "cross_doc_link":
        for s in spans:
            for target, vis in s.links:
                if target != s.doc_id:
                    table[s.doc_id, target] = min(int(table[s.doc_id, target]), vis)
    elif mask_type != "doc_causal":
        raise ValueError(f"mask_type = {mask_type!r}: must be one of {MASK_TYPES}")
    return table


def token_layout(spans: Sequence[DocSpan], total: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token ``(doc_id, position)`` of a pack of ``total`` tokens.

    Tokens outside every span (padding) get a fresh doc id each, so they attend only to themselves.
    """
    doc = torch.full((total,), -1, dtype=torch.long)
    pos = torch.zeros(total, dtype=torch.long)
    for s in spans:
        if s.start < 0 or s.start + s.length > total:
            raise ValueError(f"span of doc {s.doc_id} [{s.start}, {s.start + s.length}) outside 0..{total}")
        doc[s.start : s.start + s.length] = s.doc_id
        pos[s.start : s.start + s.length] = torch.arange(s.length)
    free = doc < 0
    if free.any():
        base = max((s.doc_id for s in spans), default=-1) + 1
        doc[free] = base + torch.arange(int(free.sum()))
    return doc, pos


def allowed(
    q_doc: torch.Tensor, q_pos: torch.Tensor, k_doc: torch.Tensor, k_pos: torch.Tensor, table: torch.Tensor
) -> torch.Tensor:
    """Boolean ``[Q, K]``: may each query attend to each key (see the module docstring)."""
    same = (q_doc[:, None] == k_doc[None, :]) & (k_pos[None, :] <= q_pos[:, None])
    d = table.shape[0]
    qd, kd = q_doc.clamp(max=d - 1), k_doc.clamp(max=d - 1)
    inside = (q_doc < d)[:, None] & (k_doc < d)[None, :]
    vis = table[qd][:, kd]
    return same | (inside & (q_pos[:, None] >= vis))


def dense_mask(spans: Sequence[DocSpan], total: int, mask_type: MaskType) -> torch.Tensor:
    """The boolean ``[total, total]`` attention mask of a pack (True = may attend)."""
    doc, pos = token_layout(spans, total)
    return allowed(doc, pos, doc, pos, link_table(spans, mask_type))
