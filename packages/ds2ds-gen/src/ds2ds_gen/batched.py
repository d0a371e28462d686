"""Batched linked decoding: many samples, each with its own :class:`DocumentContext`, one
forward per step for all of them.

Every sample keeps its own :class:`~ds2ds_gen.context_runner.ContextRunner` (its feeding rule,
link table and cached mask rows are unchanged); only its KV cache is a *row* of one stacked cache
``[layers, batch, heads, slots, head_dim]``. A step collects the samples that need a next token:

* a sample with several tokens to feed (its prompt, a corpus document, a switch of document, a
  rebuild after an eviction) feeds them at once on its own row, exactly as single-stream decoding;
* all samples with one token to feed (the common case) go through one batched forward
  (:meth:`DS2DSModel.extend_batch`): each row writes its keys/values at its own next slot, with
  its own position and its own boolean key-visibility row. Rows with nothing to do this step
  (finished, or fed above) write into a spare slot past every sample's capacity and their output
  is dropped.

The rows of a batched step are sampled together (:func:`~ds2ds_gen.sampling.sample_rows`: one
exponential race for all), but every sample draws from its own ``torch.Generator`` seeded from
its config, so a sample's output does not depend on which others share its batch; the race
also ignores the last-bit differences between a batched row's logits and a single row's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .context_runner import ContextRunner
from .document_context import DocumentContext
from .generation_config import GenerationConfig
from .model import DS2DSModel, KVCache
from .single_doc_generator import torch_dtype

__all__ = ["BatchedContextRunner", "StackedKVCache"]


class StackedKVCache:
    """KV caches of ``batch`` samples in one tensor; :meth:`row` gives sample ``i``'s cache as a
    :class:`KVCache` whose tensors are views into the stack. Slot ``spare`` (the last one) lies
    beyond every row's capacity: idle rows of a batched step write there."""

    def __init__(self, model: DS2DSModel, batch: int, capacity: int, dtype: torch.dtype | None = None) -> None:
        proto = KVCache(model, capacity + 1, dtype)  # one slot more than any row may use
        cfg = model.cfg
        slots = proto.k.shape[3]
        shape = (cfg.n_layers, batch, cfg.n_heads, slots, proto.k.shape[4])
        dev = proto.k.device
        self.batch = batch
        self.k = torch.zeros(shape, dtype=proto.k.dtype, device=dev)
        self.v = torch.zeros(shape, dtype=proto.v.dtype, device=dev)
        self.doc = torch.full((batch, slots), -1, dtype=torch.long, device=dev)
        self.pos = torch.zeros((batch, slots), dtype=torch.long, device=dev)
        self.spare = slots - 1
        self._rows: dict[int, KVCache] = {}

    def row(self, i: int, capacity: int) -> KVCache:
        """Sample ``i``'s cache, reset to empty (its keys are overwritten as tokens are fed)."""
        c = self._rows.get(i)
        if c is None:
            c = KVCache.__new__(KVCache)
            c.k, c.v = self.k[:, i : i + 1], self.v[:, i : i + 1]
            c.doc, c.pos = self.doc[i], self.pos[i]
            self._rows[i] = c
        c.capacity = min(capacity, self.spare)
        c.n = 0
        c.rows = {}
        c.flex = None
        c.doc.fill_(-1)
        return c


class BatchedContextRunner:
    """Next-token logits for many contexts, batching their single-token steps (module docstring).

    Samples whose config asks for ``use_kv_cache=False`` or ``attention="flex"`` are stepped
    one by one with their own runner (same results as single-stream, not batched).
    """

    def __init__(self, model: DS2DSModel, contexts: Sequence[DocumentContext], configs: Sequence[GenerationConfig]) -> None:
        self.model = model
        cap = max(c.max_context_length for c in contexts)
        dtypes = {c.dtype for c in configs}
        self.stack = StackedKVCache(model, len(contexts), cap, torch_dtype(sorted(dtypes)[0]))
        self.runners: list[tuple[ContextRunner, bool]] = []
        for i, (ctx, cfg) in enumerate(zip(contexts, configs)):
            batched = cfg.use_kv_cache and cfg.attention == "sdpa"
            factory = (lambda i=i, n=ctx.max_context_length: self.stack.row(i, n)) if batched else None
            r = ContextRunner(
                model,
                ctx,
                use_kv_cache=cfg.use_kv_cache,
                mask_type=cfg.mask_type,
                attention=cfg.attention,
                dtype=torch_dtype(cfg.dtype),
                cache_factory=factory,
            )
            self.runners.append((r, batched))
        #: the last batched step: the samples it carried and its logits ``[batch, V or active]``
        #: (row ``i`` is sample ``i``), for sampling them all at once; None when there was none
        self.last_step: tuple[list[int], torch.Tensor] | None = None
        #: the visibility rows of the batched samples' current documents, ``[batch, slots]``:
        #: copied from the runner's cached row when it changes, then grown one slot per step
        self._vis = torch.zeros(len(contexts), self.stack.spare + 1, dtype=torch.bool, device=self.stack.doc.device)
        self._vis_rows: list[torch.Tensor | None] = [None] * len(contexts)
        #: statistics: batched forwards and the rows they carried
        self.batched_forwards = 0
        self.batched_rows = 0

    def finish(self, i: int) -> None:
        """Sample ``i`` is done; its row idles from now on."""

    def next_logits(self, rows: Sequence[int]) -> dict[int, torch.Tensor]:
        """Logits for the current document of each sample in ``rows``: ``[V]``, or ``[len(active_ids)]``
        (the active ids only) for rows of a batched step when the model has an active vocabulary."""
        out: dict[int, torch.Tensor] = {}
        self.last_step = None
        group: list[tuple[int, KVCache, int, int, int]] = []
        for i in rows:
            r, batched = self.runners[i]
            if not batched:
                out[i] = r.next_logits()
                continue
            toks, docs, poss = r.prepare_lists()
            assert r.cache is not None and r._table is not None
            if len(toks) > 1:
                dev = r.cache.doc.device
                t, dt, pt = (torch.tensor(x, dtype=torch.long, device=dev) for x in (toks, docs, poss))
                out[i] = self.model.extend(r.cache, t, dt, pt, r._table, last_only=True)[-1].float()
            else:
                group.append((i, r.cache, toks[0], docs[0], poss[0]))
        if group:
            st = self.stack
            n_b = st.batch
            # attend over a key length rounded up to 64 (as single-stream decoding does)
            na = min(st.spare, -(-max(c.n + 1 for _, c, _, _, _ in group) // 64) * 64)
            tokens, pos, slots = [0] * n_b, [0] * n_b, [st.spare] * n_b
            docs = [-1] * n_b
            vis, copied = self._vis, self._vis_rows
            for i, c, tok, d, p in group:
                row = c.rows[d]
                if copied[i] is not row:  # a new visibility row (document switch, refresh): copy it once
                    vis[i, : row.shape[0]] = row
                    vis[i, row.shape[0] :] = False
                    copied[i] = row
                tokens[i], pos[i], slots[i], docs[i] = tok, p, c.n, d
            dev = st.doc.device
            slots_t = torch.tensor(slots, device=dev)
            pos_t = torch.tensor(pos, device=dev)
            idx = torch.arange(n_b, device=dev)
            # each row's new key is visible to itself and to its document's later tokens (one
            # op for all rows; idle rows set their spare slot, outside every mask)
            vis[idx, slots_t] = True
            mask = vis[:, :na].clone()
            if len(group) < n_b:  # idle rows: any one key (their output is dropped)
                busy = {g[0] for g in group}
                mask[[j for j in range(n_b) if j not in busy], 0] = True
            st.doc[idx, slots_t] = torch.tensor(docs, device=dev)
            st.pos[idx, slots_t] = pos_t
            # compact logits (active ids only, when the model has an active vocabulary): the
            # generator samples over those ids anyway, and the full [B, 50257] rows cost more
            # to build than the whole forward at batch 64
            logits = self.model.extend_batch(st.k, st.v, torch.tensor(tokens, device=dev), pos_t, slots_t, mask, compact=True)
            logits = logits.float()
            for i, c, _, _, _ in group:
                c.n += 1
                out[i] = logits[i]
            self.last_step = ([i for i, _, _, _, _ in group], logits)
            self.batched_forwards += 1
            self.batched_rows += len(group)
        return out
