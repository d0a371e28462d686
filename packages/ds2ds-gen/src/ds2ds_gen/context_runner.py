"""Next-token logits for the current document of a :class:`DocumentContext`.

Two paths that give the same logits (tested): full recomputation with
:meth:`DS2DSModel.forward_inference`, and incremental decoding with a :class:`KVCache`.

KV-cache feeding rule: a token is fed (its keys computed) only when its document is finished or
is the current one. A document's tokens after a link's ``)`` may attend to the linked document,
which must therefore be complete first; holding back unfinished, non-current documents (the
parent whose ``)`` opened the recursion) guarantees that. All pending tokens are fed in one
chunk, so tokens within it see each other exactly as in full recomputation. An eviction
invalidates the cache (the next call re-feeds the remaining documents in one chunk).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .document_context import DocumentContext
from .masks import MaskType, link_table
from .model import DS2DSModel, KVCache

__all__ = ["ContextRunner"]


class ContextRunner:
    """Produces next-token logits for ``context.current`` with or without a KV cache."""

    def __init__(
        self,
        model: DS2DSModel,
        context: DocumentContext,
        *,
        use_kv_cache: bool = True,
        mask_type: MaskType = "cross_doc_link",
        attention: str = "sdpa",
        dtype: torch.dtype | None = None,
        cache_factory: Callable[[], KVCache] | None = None,
    ) -> None:
        self.model = model
        #: makes an empty KV cache (a fresh one, or a row of a batched stack reset to empty)
        self.cache_factory = cache_factory or (lambda: KVCache(model, context.max_context_length, dtype))
        self.ctx = context
        self.use_kv_cache = use_kv_cache
        self.mask_type = mask_type
        self.attention = attention
        self.dtype = dtype
        self.cache: KVCache | None = None
        self.fed: dict[int, int] = {}
        self._evictions = -1
        self._links = -1
        self._table: torch.Tensor | None = None
        self.tokens_fed = 0  # for statistics: tokens pushed through the model

    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    def next_logits(self) -> torch.Tensor:
        """Logits ``[V]`` predicting the next token of the current document."""
        if not self.use_kv_cache:
            toks = self.ctx.get_tokens_for_model().to(self._device())
            self.tokens_fed += toks.shape[1]
            logits = self.model.forward_inference(
                toks, self.ctx.get_doc_spans(), mask_type=self.mask_type, attention=self.attention
            )
            return logits[0, self.ctx.current_token_index()].float()
        return self._cached()

    def _cached(self) -> torch.Tensor:
        t, dt, pt = self.prepare()
        assert self.cache is not None and self._table is not None
        logits = self.model.extend(self.cache, t, dt, pt, self._table, attention=self.attention, last_only=True)
        return logits[-1].float()

    def prepare(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Bring the cache up to date with the context (rebuilt after an eviction or a link made
        visible too early) and return the tokens still to feed, with their document ids and
        positions; the last one is the current document's last token. For a single token, the
        cached mask row of the current document is ready (``cache.rows``)."""
        toks, docs, poss = self.prepare_lists()
        assert self.cache is not None
        dev = self.cache.doc.device
        return (
            torch.tensor(toks, dtype=torch.long, device=dev),
            torch.tensor(docs, dtype=torch.long, device=dev),
            torch.tensor(poss, dtype=torch.long, device=dev),
        )

    def prepare_lists(self) -> tuple[list[int], list[int], list[int]]:
        """:meth:`prepare` with plain lists (batched decoding reads single tokens as ints)."""
        ctx, model = self.ctx, self.model
        if self.cache is None or ctx.evictions != self._evictions:
            self.cache = self.cache_factory()
            self.fed = {}
            self._evictions = ctx.evictions
            self._links = -1
        cache = self.cache
        if ctx.link_version != self._links:
            spans = ctx.get_doc_spans()
            self._table = link_table(spans, self.mask_type, n_docs=max(d.doc_id for d in ctx.docs.values()) + 1)
            self._table = self._table.to(cache.doc.device)
            cache.rows.clear()
            self._links = ctx.link_version
            # A link may only become visible at a position not yet fed; otherwise rebuild.
            for d in ctx.active_documents:
                if any(v < self.fed.get(d.doc_id, 0) for v in d.links.values()):
                    self.cache = None
                    self._evictions = -1
                    return self.prepare_lists()
        assert self._table is not None
        cur = ctx.current_document
        toks: list[int] = []
        docs: list[int] = []
        poss: list[int] = []
        for d in [*[d for d in ctx.active_documents if d.complete and d.title != cur.title], cur]:
            start = self.fed.get(d.doc_id, 0)
            if start < len(d.tokens):
                toks.extend(d.tokens[start:])
                docs.extend([d.doc_id] * (len(d.tokens) - start))
                poss.extend(range(start, len(d.tokens)))
                self.fed[d.doc_id] = len(d.tokens)
        if not toks or docs[-1] != cur.doc_id:
            raise RuntimeError("the current document has no new token to feed")
        if len(toks) == 1:
            if cur.doc_id not in cache.rows:
                model.refresh_row(cache, cur.doc_id, poss[0], self._table)
        else:
            cache.rows.clear()
        self.tokens_fed += len(toks)
        return toks, docs, poss
