"""The DS2DS model: a small decoder-only transformer over packs of linked documents.

* Token embedding tied with the output projection, pre-norm blocks (RMSNorm, attention, GELU MLP),
  rotary position embeddings over *within-document* positions, and a ``logit_bias`` buffer
  (tokens never seen in training get a large negative bias, see :mod:`ds2ds_gen.train`).
* Attention: ``F.scaled_dot_product_attention`` with a boolean mask (default, all devices) or
  FlexAttention with a :class:`BlockMask` (optional; ``attention="flex"``).
* :meth:`DS2DSModel.forward_inference` (tokens + doc spans -> logits, full recomputation) and
  :meth:`DS2DSModel.extend` (feed new tokens against a :class:`KVCache`, the decode step).
* Checkpoints: a folder with ``model.pt`` (a state_dict, loaded with ``weights_only=True``) and
  ``config.json``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, cast

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import CheckpointError, ConfigError
from .masks import DocSpan, MaskType, allowed, link_table, token_layout
from .tokenizer import HEADINGS, VOCAB_SIZE

__all__ = ["ARCHS", "CHECKPOINT_FORMAT", "DS2DSModel", "KVCache", "ModelConfig", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_FORMAT = "ds2ds-gen-checkpoint/1"


def _bounded_int(hi: int):  # type: ignore[no-untyped-def]
    def check(_i: object, a: attrs.Attribute, v: object) -> None:
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= hi:
            raise ConfigError(f"ModelConfig.{a.name} = {v!r}: must be an integer in [1, {hi}]")

    return check


def _rope_base(_i: object, a: attrs.Attribute, v: object) -> None:
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or not 1 < v <= 1e12:
        raise ConfigError(f"ModelConfig.{a.name} = {v!r}: must be a finite number in (1, 1e12]")


def _arch(_i: object, a: attrs.Attribute, v: object) -> None:
    if v not in ARCHS:
        raise ConfigError(f"ModelConfig.{a.name} = {v!r}: must be one of {list(ARCHS)}")


def _headings(_i: object, a: attrs.Attribute, v: object) -> None:
    if v not in HEADINGS:
        raise ConfigError(f"ModelConfig.{a.name} = {v!r}: must be one of {list(HEADINGS)}")


#: Architectures: ``ds2ds`` (RMSNorm, rotary positions, no biases) and ``gpt2`` (GPT-2's own:
#: LayerNorm and linear biases, learned position embeddings, tanh GELU), so that Hugging Face
#: GPT-2 weights load unchanged (:mod:`ds2ds_gen.hf_gpt2`).
ARCHS = ("ds2ds", "gpt2")

#: Upper bound on the parameter count of a ModelConfig (8 GiB of float32): a config.json with
#: absurd sizes is refused before anything is allocated.
MAX_PARAMETERS = 2 * 1024**3


@attrs.frozen
class ModelConfig:
    """Shape of the model. ``d_model`` must be divisible by ``n_heads`` into an even head size.

    Every field is type-checked and bounded (a checkpoint's ``config.json`` is user input):
    ``vocab_size`` <= 2**20, ``d_model`` <= 8192, ``n_layers``/``n_heads`` <= 256,
    ``mlp_ratio`` <= 16, ``max_doc_len`` <= 2**16, ``max_seq_len`` <= 2**20, ``rope_base`` a
    finite number in (1, 1e12], ``arch`` one of :data:`ARCHS` (``gpt2``: positions are learned
    embeddings of the within-document position, ``max_doc_len`` of them; ``rope_base`` unused),
    ``headings`` one of :data:`~ds2ds_gen.tokenizer.HEADINGS` (how the documents it was trained on
    tokenize their ``# Title`` line, see :func:`~ds2ds_gen.tokenizer.heading_encoder`; ``bpe``,
    plain GPT-2, for checkpoints that do not say), and at most :data:`MAX_PARAMETERS` parameters in all.
    """

    vocab_size: int = attrs.field(default=VOCAB_SIZE, validator=_bounded_int(1 << 20))
    d_model: int = attrs.field(default=256, validator=_bounded_int(8192))
    n_layers: int = attrs.field(default=4, validator=_bounded_int(256))
    n_heads: int = attrs.field(default=4, validator=_bounded_int(256))
    mlp_ratio: int = attrs.field(default=4, validator=_bounded_int(16))
    max_doc_len: int = attrs.field(default=512, validator=_bounded_int(1 << 16))
    max_seq_len: int = attrs.field(default=2048, validator=_bounded_int(1 << 20))
    rope_base: float = attrs.field(default=10000.0, validator=_rope_base)
    arch: str = attrs.field(default="ds2ds", validator=_arch)
    headings: str = attrs.field(default="bpe", validator=_headings)

    def __attrs_post_init__(self) -> None:
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % 2:
            raise ConfigError(
                f"ModelConfig.n_heads = {self.n_heads}: must divide d_model = {self.d_model} into an even head size"
            )
        if self.n_parameters() > MAX_PARAMETERS:
            raise ConfigError(
                f"ModelConfig: {self.n_parameters():,} parameters (vocab_size={self.vocab_size}, "
                f"d_model={self.d_model}, n_layers={self.n_layers}, mlp_ratio={self.mlp_ratio}) "
                f"exceed the limit of {MAX_PARAMETERS:,}"
            )

    def n_parameters(self) -> int:
        """Parameter count of a model of this shape (tied embedding/head)."""
        d = self.d_model
        per_layer = 4 * d * d + 2 * self.mlp_ratio * d * d + 2 * d
        if self.arch == "gpt2":  # biases of the four linears, norm biases; learned positions, ln_f bias
            per_layer += 3 * d + d + self.mlp_ratio * d + d + 2 * d
            return self.vocab_size * d + self.max_doc_len * d + self.n_layers * per_layer + 2 * d
        return self.vocab_size * d + self.n_layers * per_layer + d

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown or mistyped fields raise :class:`ConfigError`."""
        names = {f.name for f in attrs.fields(cls)}
        extra = set(d) - names
        if extra:
            raise ConfigError(f"ModelConfig: unknown field(s) {sorted(extra)}; allowed: {sorted(names)}")
        return cls(**d)


class RMSNorm(nn.Module):
    """Root-mean-square layer norm with a learned scale."""

    def __init__(self, d: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


def _rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    # x: [B, H, T, dh]; cos/sin: [B, 1, T, dh/2] (rotate interleaved halves)
    x1, x2 = x[..., ::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


def _matmul_t(x: Tensor, w: Tensor, store: dict[str, tuple[Any, Tensor]], slot: str) -> Tensor:
    """``x @ w.T`` (``F.linear`` without bias) for inference; ``store[slot]`` caches ``w.T``.

    Why: for decode rows, MKL's fp32 ``F.linear`` on the ``[out, in]`` layout (SGEMM T,N) streams
    the weights at ~9 GB/s on this AMD CPU: 6 ms for the 51 MB GPT-2 head, ~1.4 ms for the 12.6 MB
    of block weights per token. ``x @ Wt`` with ``Wt = w.T`` stored contiguously (SGEMM N,N) runs
    at ~28 GB/s (head 1.8 ms). bf16 goes the other way (head F.linear 1.2 ms, transposed 3.3 ms)
    and CUDA does not need it, so only CPU float32 inference uses the transposed copy; training
    (grad enabled) keeps ``F.linear`` so that gradients reach the parameter. The copy is rebuilt
    whenever the weight changes: new storage (``.to()``), in-place update (version counter).
    """
    if w.device.type != "cpu" or w.dtype != torch.float32 or (torch.is_grad_enabled() and w.requires_grad):
        return F.linear(x, w)
    key = (w.data_ptr(), w._version, tuple(w.shape))
    cached = store.get(slot)
    if cached is None or cached[0] != key:
        cached = (key, w.detach().t().contiguous())
        store[slot] = cached
    return x @ cached[1]


class Linear(nn.Linear):
    """``nn.Linear`` (bias optional, off by default) whose CPU fp32 inference uses
    :func:`_matmul_t` (same parameters and state_dict keys as ``nn.Linear``)."""

    def __init__(self, d_in: int, d_out: int, bias: bool = False) -> None:
        super().__init__(d_in, d_out, bias=bias)
        self.transposed: dict[str, tuple[Any, Tensor]] = {}

    def forward(self, x: Tensor) -> Tensor:
        y = _matmul_t(x, self.weight, self.transposed, "weight")
        return y if self.bias is None else y + self.bias


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.n_heads = cfg.n_heads
        gpt2 = cfg.arch == "gpt2"
        # GPT-2: LayerNorm (eps 1e-5) and biases everywhere, tanh GELU ("gelu_new")
        norm = (lambda: nn.LayerNorm(d, eps=1e-5)) if gpt2 else (lambda: RMSNorm(d))
        self.gelu = "tanh" if gpt2 else "none"
        self.norm1 = norm()
        self.qkv = Linear(d, 3 * d, bias=gpt2)
        self.proj = Linear(d, d, bias=gpt2)
        self.norm2 = norm()
        self.fc = Linear(d, cfg.mlp_ratio * d, bias=gpt2)
        self.out = Linear(cfg.mlp_ratio * d, d, bias=gpt2)

    def qkv_heads(self, x: Tensor, cos: Tensor | None, sin: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        b, t, d = x.shape
        qkv = self.qkv(self.norm1(x)).view(b, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        if cos is None or sin is None:  # learned positions (gpt2): already in x
            return qkv[0], qkv[1], qkv[2]
        # one RoPE call for q and k together: half the small ops of a decode step's rotation
        q, k = _rope(qkv[:2], cos, sin).unbind(0)
        return q, k, qkv[2]

    def finish(self, x: Tensor, att: Tensor) -> Tensor:
        b, h, t, dh = att.shape
        x = x + self.proj(att.transpose(1, 2).reshape(b, t, h * dh))
        return x + self.out(F.gelu(self.fc(self.norm2(x)), approximate=self.gelu))


class KVCache:
    """Keys and values of the tokens fed so far, with each token's document id and position.

    ``rows[doc]`` is the cached boolean key-visibility row of the *next* query of ``doc`` (its
    frontier): it changes only when tokens are appended or a link to another document is made
    visible, so a decode step needs no mask computation at all.
    """

    def __init__(self, model: DS2DSModel, capacity: int, dtype: torch.dtype | None = None) -> None:
        cfg = model.cfg
        p = next(model.parameters())
        dh = cfg.d_model // cfg.n_heads
        self.capacity = capacity
        # storage rounded up to 128 slots: FlexAttention runs over the whole cache in 128-blocks
        shape = (cfg.n_layers, 1, cfg.n_heads, -(-capacity // 128) * 128, dh)
        dtype = dtype or p.dtype
        if p.device.type == "cpu" and dtype == torch.bfloat16:
            # CPU decode attention runs in fp32 (see DS2DSModel.extend); storing the bf16 keys and
            # values as fp32 (exact) avoids re-converting the strided cache slices every step
            # (~180 us per layer), at twice the cache memory.
            dtype = torch.float32
        self.k = torch.zeros(shape, dtype=dtype, device=p.device)
        self.v = torch.zeros(shape, dtype=dtype, device=p.device)
        self.doc = torch.full((shape[3],), -1, dtype=torch.long, device=p.device)
        self.pos = torch.zeros(shape[3], dtype=torch.long, device=p.device)
        self.n = 0
        self.rows: dict[int, Tensor] = {}
        #: FlexAttention decode state (see DS2DSModel._flex_extend_mask): the BlockMask of the
        #: current context structure over the whole cache, and what it assumed
        self.flex: dict[str, Any] | None = None


class DS2DSModel(nn.Module):
    """Decoder-only transformer with per-document spans and doc-causal / cross-doc-link masks."""

    logit_bias: Tensor
    rope_cos: Tensor
    rope_sin: Tensor

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.d_model)
        #: learned embeddings of the within-document position (gpt2 architecture only)
        self.pos_embedding = nn.Embedding(cfg.max_doc_len, cfg.d_model) if cfg.arch == "gpt2" else None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm: nn.Module = nn.LayerNorm(cfg.d_model, eps=1e-5) if cfg.arch == "gpt2" else RMSNorm(cfg.d_model)
        self.register_buffer("logit_bias", torch.zeros(cfg.vocab_size))
        dh = cfg.d_model // cfg.n_heads
        inv = 1.0 / (cfg.rope_base ** (torch.arange(0, dh, 2, dtype=torch.float64) / dh))
        ang = torch.arange(cfg.max_doc_len, dtype=torch.float64)[:, None] * inv[None, :]
        self.register_buffer("rope_cos", ang.cos().float(), persistent=False)
        self.register_buffer("rope_sin", ang.sin().float(), persistent=False)
        self._flex: Any = None
        self._active: tuple[Tensor, Tensor] | None = None
        self._head_t: dict[str, tuple[Any, Tensor]] = {}  # transposed head copies, see _matmul_t
        #: compile FlexAttention (dynamic=False); eager flex is a slow reference, for tests
        self.compile_flex = True
        self._block_masks: dict[Any, Any] = {}
        #: BlockMasks built for the KV-cache flex path (one per context structure; for tests and
        #: benchmarks) and flex kernel calls made by it
        self.flex_block_masks_built = 0
        self.flex_calls = 0
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GPT-2 style init: N(0, 0.02), residual projections scaled by 1/sqrt(2 * layers)."""
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * self.cfg.n_layers) if name.endswith(("proj.weight", "out.weight")) else 0.02
                nn.init.normal_(p, std=std)
            elif name.endswith(".bias"):
                nn.init.zeros_(p)

    @property
    def embedding_weight(self) -> Tensor:
        """Token embedding matrix, also the output projection (tied)."""
        return self.embedding.weight

    @property
    def lm_head_weight(self) -> Tensor:
        """Output projection (tied with the embedding)."""
        return self.embedding.weight

    # ---- shared pieces -------------------------------------------------------------------------
    def _cos_sin(self, pos: Tensor, dtype: torch.dtype) -> tuple[Tensor | None, Tensor | None]:
        if int(pos.max()) >= self.cfg.max_doc_len:
            raise ValueError(f"document position {int(pos.max())} >= max_doc_len {self.cfg.max_doc_len}")
        if self.pos_embedding is not None:
            return None, None
        return self.rope_cos[pos].unsqueeze(1).to(dtype), self.rope_sin[pos].unsqueeze(1).to(dtype)

    def _embed(self, tokens: Tensor, pos: Tensor) -> Tensor:
        """Token embeddings, plus the learned position embeddings of the gpt2 architecture."""
        x = self.embedding(tokens)
        if self.pos_embedding is not None:
            x = x + self.pos_embedding(pos)
        return x

    def use_active_vocab(self, enable: bool = True) -> int:
        """Inference shortcut: compute logits only for ids whose ``logit_bias`` is above -1e3 and
        give the others exactly their bias (-1e4, i.e. probability 0 in float32). Exact for a
        model trained by :mod:`ds2ds_gen.train`; a no-op for an untrained model. Returns the
        number of active ids."""
        active = torch.nonzero(self.logit_bias > -1e3).flatten()
        self._head_t.pop("active", None)
        if not enable or len(active) == self.cfg.vocab_size:
            self._active = None
            return self.cfg.vocab_size
        self._active = (active, self.lm_head_weight.detach()[active].clone())
        return len(active)

    @property
    def active_ids(self) -> Tensor | None:
        """Sorted ids of the active vocabulary (see :meth:`use_active_vocab`), or None when all
        ids are live. Every other id has probability 0, so samplers may ignore them."""
        return self._active[0] if self._active is not None else None

    def _apply(self, fn: Any, *args: Any, **kw: Any) -> Any:
        # .to()/.half() etc.: rebuild the active-vocabulary head on the new device/dtype, and drop
        # the transposed copies of the old weights (rebuilt lazily, see _matmul_t)
        out = super()._apply(fn, *args, **kw)
        for mod in self.modules():
            if isinstance(mod, Linear):
                mod.transposed.clear()
        if hasattr(self, "_head_t"):
            self._head_t.clear()
        if getattr(self, "_active", None) is not None:
            self.use_active_vocab(True)
        return out

    def logits(self, h: Tensor, vocab: Tensor | None = None, compact: bool = False) -> Tensor:
        """Final norm and tied projection; ``vocab`` restricts the output to those token ids.
        ``compact`` (inference with an active vocabulary): only the active ids' logits, in the
        order of :attr:`active_ids` (the same values the full output holds there)."""
        h = self.norm(h)
        if compact and self._active is not None and not self.training:
            idx, w = self._active
            return _matmul_t(h, w.to(h.dtype), self._head_t, "active") + self.logit_bias.to(h.dtype)[idx]
        if vocab is None and self._active is not None and not self.training:
            idx, w = self._active
            bias = self.logit_bias.to(h.dtype)
            out = bias.expand(*h.shape[:-1], bias.shape[0]).clone()
            out[..., idx] = _matmul_t(h, w.to(h.dtype), self._head_t, "active") + bias[idx]
            return out
        if vocab is None:
            return _matmul_t(h, self.lm_head_weight, self._head_t, "full") + self.logit_bias.to(h.dtype)
        return F.linear(h, self.lm_head_weight[vocab]) + self.logit_bias[vocab].to(h.dtype)

    def hidden(self, tokens: Tensor, positions: Tensor, mask: Tensor | Any, *, attention: str = "sdpa") -> Tensor:
        """Hidden states ``[B, T, d]`` for a full pack: ``mask`` is a boolean ``[B|1, 1, T, T]``
        tensor (SDPA) or a FlexAttention ``BlockMask`` (``attention="flex"``)."""
        cos, sin = self._cos_sin(positions, self.embedding.weight.dtype)
        x = self._embed(tokens, positions)
        for blk in cast("Iterable[Block]", self.blocks):  # ModuleList iterates as Module
            q, k, v = blk.qkv_heads(x, cos, sin)
            if attention == "flex":
                att = self._flex_fn()(q, k, v, block_mask=mask)
            else:
                att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            x = blk.finish(x, att)
        return x

    def forward(self, tokens: Tensor, positions: Tensor, mask: Tensor, vocab: Tensor | None = None) -> Tensor:
        """Training forward: logits ``[B, T, V]`` (or ``[B, T, len(vocab)]``)."""
        return self.logits(self.hidden(tokens, positions, mask), vocab)

    # ---- masks -----------------------------------------------------------------------------------
    def block_mask_creator(
        self,
        tokens: Tensor,
        doc_spans: Sequence[DocSpan] | None = None,
        mask_type: MaskType = "cross_doc_link",
        attention: str = "sdpa",
        **_: Any,
    ) -> Any:
        """The attention mask of a pack: boolean ``[1, 1, T, T]`` (SDPA) or a cached ``BlockMask``."""
        t = tokens.shape[-1]
        spans = list(doc_spans) if doc_spans else [DocSpan(0, 0, t)]
        doc, pos = token_layout(spans, t)
        table = link_table(spans, mask_type)
        if attention == "flex":
            return self._flex_block_mask(doc, pos, table, tokens.device)
        return allowed(doc, pos, doc, pos, table).to(tokens.device)[None, None]

    def _flex_fn(self) -> Any:
        if self._flex is None:
            from torch.nn.attention.flex_attention import flex_attention

            # dynamic=False: one compiled kernel per padded length (lengths are padded to 128s).
            self._flex = torch.compile(flex_attention, dynamic=False) if self.compile_flex else flex_attention
        return self._flex

    def _flex_block_mask(self, doc: Tensor, pos: Tensor, table: Tensor, device: torch.device) -> Any:
        from torch.nn.attention.flex_attention import create_block_mask

        key = (doc.numpy().tobytes(), pos.numpy().tobytes(), table.numpy().tobytes(), str(device))
        bm = self._block_masks.get(key)
        if bm is None:
            doc_d, pos_d, table_d = doc.to(device), pos.to(device), table.to(device)
            d = table.shape[0]

            def mask_mod(b: Tensor, h: Tensor, q: Tensor, kv: Tensor) -> Tensor:
                qd, kd = doc_d[q], doc_d[kv]
                same = (qd == kd) & (pos_d[kv] <= pos_d[q])
                inside = (qd < d) & (kd < d)
                vis = table_d[qd.clamp(max=d - 1), kd.clamp(max=d - 1)]
                return same | (inside & (pos_d[q] >= vis))

            t = doc.shape[0]
            bm = create_block_mask(mask_mod, None, None, t, t, device=str(device))
            if len(self._block_masks) > 8:
                self._block_masks.clear()
            self._block_masks[key] = bm
        return bm

    # ---- inference -------------------------------------------------------------------------------
    @torch.no_grad()
    def forward_inference(
        self,
        tokens: Tensor,
        doc_spans: Sequence[DocSpan] | None = None,
        mask_type: MaskType = "cross_doc_link",
        attention: str = "sdpa",
        **kwargs: Any,
    ) -> Tensor:
        """Tokens in (``[B, T]`` or ``[T]``), logits ``[B, T, V]`` out, recomputing everything.

        ``doc_spans`` describe the documents of the pack (default: one document); with
        ``attention="flex"`` the pack is padded to a multiple of 128 (padding attends only to
        itself) so that the compiled kernel and the BlockMask are reused across calls.
        """
        if tokens.dim() == 1:
            tokens = tokens[None]
        t = tokens.shape[-1]
        spans = list(doc_spans) if doc_spans else [DocSpan(0, 0, t)]
        if attention == "flex":
            tp = -(-t // 128) * 128
            padded = F.pad(tokens, (0, tp - t))
            mask = self.block_mask_creator(padded, spans, mask_type, attention="flex", **kwargs)
            _, pos = token_layout(spans, tp)
            h = self.hidden(padded, pos.to(tokens.device)[None].expand(tokens.shape[0], -1), mask, attention="flex")
            return self.logits(h[:, :t])
        mask = self.block_mask_creator(tokens, spans, mask_type, attention="sdpa", **kwargs)
        _, pos = token_layout(spans, t)
        h = self.hidden(tokens, pos.to(tokens.device)[None].expand(tokens.shape[0], -1), mask)
        return self.logits(h)

    def _flex_extend_mask(self, cache: KVCache, doc: Tensor, pos: Tensor, table: Tensor) -> Any:
        """The BlockMask for feeding ``doc``/``pos`` at cache slots ``cache.n ...`` (flex path).

        A *context structure* is the pack as it is when a chunk is fed (documents, positions,
        link table). From then on, until the structure changes, every cache slot ``i`` still free
        will hold the current document's next token: document ``doc[-1]``, position ``pos[-1] +
        (i - n1 + 1)``. So one BlockMask over the whole cache (``capacity x capacity``, built from
        that predicted layout) serves every decode step of the structure: a step slices it at
        its query block (as gpt-fast does) and offsets ``mask_mod`` by the query's slot. A chunk
        (several tokens: a new structure) builds the structure mask and a mask of its own rows.
        The structure is rebuilt when the link table, the current document or the layout
        changes.
        """
        from torch.nn.attention.flex_attention import BlockMask, create_block_mask

        m, n0 = doc.shape[0], cache.n
        n1 = n0 + m
        cap = cache.k.shape[3]
        st = cache.flex
        d_last, p_last = int(doc[-1]), int(pos[-1])
        fits = st is not None and m == 1 and st["table"] is table and st["doc"] == d_last and st["p0"] + (n0 - st["s0"]) == p_last
        dev = cache.doc.device
        if not fits:
            pdoc = cache.doc.clone()
            ppos = cache.pos.clone()
            pdoc[n0:n1], ppos[n0:n1] = doc, pos
            if n1 < cap:
                pdoc[n1:] = d_last
                ppos[n1:] = p_last + 1 + torch.arange(cap - n1, device=dev)
            d = table.shape[0]
            tab = table.to(dev)

            def structure(b: Tensor, h: Tensor, q: Tensor, kv: Tensor) -> Tensor:
                qd, kd, qp, kp = pdoc[q], pdoc[kv], ppos[q], ppos[kv]
                same = (qd == kd) & (kp <= qp)
                inside = (qd >= 0) & (qd < d) & (kd >= 0) & (kd < d)
                vis = tab[qd.clamp(0, d - 1), kd.clamp(0, d - 1)]
                return same | (inside & (qp >= vis))

            bm = create_block_mask(structure, None, None, cap, cap, device=str(dev))
            self.flex_block_masks_built += 1
            st = cache.flex = {
                "table": table,
                "doc": d_last,
                "s0": n1 - 1,
                "p0": p_last,
                "bm": bm,
                "mod": structure,
                "offset": torch.zeros((), dtype=torch.long, device=dev),
            }
        assert st is not None  # `fits` implies a cached state; otherwise it was just built above
        structure_mod, offset = st["mod"], st["offset"]
        offset.fill_(n0)

        def at_query(b: Tensor, h: Tensor, q: Tensor, kv: Tensor) -> Tensor:
            return structure_mod(b, h, q + offset, kv)

        if m == 1:
            bm = st["bm"]
            sl = bm[:, :, n0 // bm.BLOCK_SIZE[0]]
            return BlockMask.from_kv_blocks(
                sl.kv_num_blocks,
                sl.kv_indices,
                sl.full_kv_num_blocks,
                sl.full_kv_indices,
                BLOCK_SIZE=bm.BLOCK_SIZE,
                mask_mod=at_query,
                seq_lengths=(1, cap),
            )
        # a chunk's rows start at an arbitrary slot, not at a block boundary: a mask of its own
        return create_block_mask(at_query, None, None, m, cap, device=str(dev))

    @torch.no_grad()
    def extend(
        self,
        cache: KVCache,
        tokens: Tensor,
        doc: Tensor,
        pos: Tensor,
        table: Tensor,
        attention: str = "sdpa",
        last_only: bool = False,
    ) -> Tensor:
        """Feed ``tokens`` (``[m]``, of documents ``doc`` at positions ``pos``) through the model
        against ``cache``; store their keys/values and return the logits ``[m, V]`` (``last_only``:
        ``[1, V]``, the last token's only: decoding reads no other, and a prompt's full
        ``[m, 50257]`` block costs more than its forward).

        ``table`` is the ``[D, D]`` link table (:func:`~ds2ds_gen.masks.link_table`). A single new
        token of a document whose cached row is current (the decode step) uses that row directly.
        ``attention="flex"`` runs FlexAttention over the whole cache with one BlockMask per
        context structure, sliced at the query block (see :meth:`_flex_extend_mask`).
        """
        if attention not in ("sdpa", "flex"):
            raise ValueError(f"attention = {attention!r}: must be 'sdpa' or 'flex'")
        m = tokens.shape[0]
        n0 = cache.n
        if n0 + m > cache.capacity:
            raise ValueError(f"KV cache full: {n0} + {m} tokens > capacity {cache.capacity}")
        flex_mask = self._flex_extend_mask(cache, doc, pos, table) if attention == "flex" else None
        cache.doc[n0 : n0 + m] = doc
        cache.pos[n0 : n0 + m] = pos
        n1 = n0 + m
        # Attend over a key length rounded up to 64 (masked beyond n1): attention backends that
        # plan per shape (cuDNN) then see a new shape every 64 tokens, not every token.
        na = min(cache.capacity, -(-n1 // 64) * 64)
        d0 = int(doc[0])
        row = cache.rows.get(d0)
        if flex_mask is not None:
            mask = None
        elif m == 1 and row is not None:
            row[n0] = True
            mask = row[:na].view(1, 1, 1, na)
        else:
            mask = torch.zeros(m, na, dtype=torch.bool, device=cache.doc.device)
            mask[:, :n1] = allowed(doc, pos, cache.doc[:n1], cache.pos[:n1], table)
            mask = mask[None, None]
        cos, sin = self._cos_sin(pos[None], self.embedding.weight.dtype)
        x = self._embed(tokens, pos)[None]
        # CPU SDPA in bf16 costs ~4x fp32 at decode sizes (1 query, 256 keys: 112 vs 26 us), so on
        # CPU bf16 attention runs in fp32 on the (exactly representable) bf16 keys and values.
        adt = torch.float32 if x.device.type == "cpu" and x.dtype == torch.bfloat16 else x.dtype
        for li, blk in enumerate(cast("Iterable[Block]", self.blocks)):  # ModuleList iterates as Module
            q, k, v = blk.qkv_heads(x, cos, sin)
            cache.k[li, :, :, n0:n1] = k.to(cache.k.dtype)
            cache.v[li, :, :, n0:n1] = v.to(cache.v.dtype)
            if flex_mask is not None:
                att = self._flex_fn()(q.to(adt), cache.k[li].to(adt), cache.v[li].to(adt), block_mask=flex_mask)
                self.flex_calls += 1
            else:
                att = F.scaled_dot_product_attention(
                    q.to(adt), cache.k[li, :, :, :na].to(adt), cache.v[li, :, :, :na].to(adt), attn_mask=mask
                )
            x = blk.finish(x, att.to(x.dtype))
        cache.n = n1
        return self.logits(x[0, -1:] if last_only else x[0])

    @torch.no_grad()
    def extend_batch(
        self, k_all: Tensor, v_all: Tensor, tokens: Tensor, pos: Tensor, slots: Tensor, mask: Tensor, compact: bool = False
    ) -> Tensor:
        """One decode step for a batch of samples with stacked caches (see :mod:`ds2ds_gen.batched`).

        ``k_all``/``v_all``: ``[layers, B, heads, slots, head_dim]``; row ``b`` feeds ``tokens[b]``
        at document position ``pos[b]``, stores its keys/values at slot ``slots[b]`` and attends
        to the keys where ``mask[b]`` (``[B, na]``) is True. Returns logits ``[B, V]`` (``compact``:
        ``[B, len(active_ids)]``, see :meth:`logits`).
        """
        b = tokens.shape[0]
        na = mask.shape[-1]
        cos, sin = self._cos_sin(pos[:, None], self.embedding.weight.dtype)
        x = self._embed(tokens, pos)[:, None]
        adt = torch.float32 if x.device.type == "cpu" and x.dtype == torch.bfloat16 else x.dtype
        rows = torch.arange(b, device=tokens.device)
        m4 = mask[:, None, None, :]
        for li, blk in enumerate(cast("Iterable[Block]", self.blocks)):  # ModuleList iterates as Module
            q, k, v = blk.qkv_heads(x, cos, sin)
            k_all[li, rows, :, slots] = k[:, :, 0].to(k_all.dtype)
            v_all[li, rows, :, slots] = v[:, :, 0].to(v_all.dtype)
            att = F.scaled_dot_product_attention(
                q.to(adt), k_all[li, :, :, :na].to(adt), v_all[li, :, :, :na].to(adt), attn_mask=m4
            )
            x = blk.finish(x, att.to(x.dtype))
        return self.logits(x[:, 0], compact=compact)

    def refresh_row(self, cache: KVCache, doc_id: int, frontier_pos: int, table: Tensor) -> None:
        """(Re)compute the cached key-visibility row of ``doc_id``'s next query at ``frontier_pos``."""
        row = torch.zeros(cache.capacity, dtype=torch.bool, device=cache.doc.device)
        n = cache.n
        q_doc = torch.tensor([doc_id], device=cache.doc.device)
        q_pos = torch.tensor([frontier_pos], device=cache.doc.device)
        row[:n] = allowed(q_doc, q_pos, cache.doc[:n], cache.pos[:n], table)[0]
        cache.rows[doc_id] = row


def save_checkpoint(model: DS2DSModel, path: Path, extra: dict[str, Any] | None = None) -> None:
    """Write ``path/model.pt`` (state_dict) and ``path/config.json`` (model config + ``extra``)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save(sd, path / "model.pt.tmp")
    (path / "model.pt.tmp").replace(path / "model.pt")
    meta = {"format": CHECKPOINT_FORMAT, "model": model.cfg.to_dict(), "extra": extra or {}}
    (path / "config.json.tmp").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    (path / "config.json.tmp").replace(path / "config.json")


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> tuple[DS2DSModel, dict[str, Any]]:
    """Load a checkpoint folder; returns ``(model in eval mode, extra)``. Raises :class:`CheckpointError`."""
    path = Path(path)
    cfg_path, w_path = path / "config.json", path / "model.pt"
    if not path.is_dir():
        raise CheckpointError(f"{path}: checkpoint folder not found")
    if not cfg_path.is_file():
        raise CheckpointError(f"{cfg_path}: missing (not a ds2ds-gen checkpoint)")
    if not w_path.is_file():
        raise CheckpointError(f"{w_path}: missing (not a ds2ds-gen checkpoint)")
    try:
        meta = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{cfg_path}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT or not isinstance(meta.get("model"), dict):
        raise CheckpointError(f"{cfg_path}: field 'format' must be {CHECKPOINT_FORMAT!r} with a 'model' object")
    try:
        cfg = ModelConfig.from_dict(meta["model"])
    except (ConfigError, TypeError) as e:
        raise CheckpointError(f"{cfg_path}: bad model config: {e}") from None
    extra = meta.get("extra", {})
    if extra is None:
        extra = {}
    if not isinstance(extra, dict):
        raise CheckpointError(f"{cfg_path}: field 'extra' must be an object, got {type(extra).__name__}")
    try:
        sd = torch.load(w_path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types (UnpicklingError, RuntimeError, EOFError) for corrupt files
        raise CheckpointError(f"{w_path}: corrupt or not a weights-only state_dict ({type(e).__name__})") from None
    if not isinstance(sd, dict):
        raise CheckpointError(f"{w_path}: expected a state_dict, got {type(sd).__name__}")
    _check_state_dict(sd, cfg, w_path)
    model = DS2DSModel(cfg)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0] if str(e) else "mismatch"
        raise CheckpointError(f"{w_path}: weights do not match config.json ({first})") from None
    model.use_active_vocab(True)
    return model.to(device).eval(), dict(extra)


def _check_state_dict(sd: dict[Any, Any], cfg: ModelConfig, w_path: Path) -> None:
    """Names, shapes, dtypes and finiteness of a loaded state_dict against ``cfg``, before any
    real model is allocated (the expected shapes come from a model on the meta device)."""
    with torch.device("meta"):
        expected = DS2DSModel(cfg).state_dict()
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(str(k) for k in set(sd) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{w_path}: weights do not match config.json (missing {missing[:3]}, unexpected {unexpected[:3]})")
    for k, ref in expected.items():
        v = sd[k]
        if not isinstance(v, Tensor) or tuple(v.shape) != tuple(ref.shape):
            got = tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__
            raise CheckpointError(
                f"{w_path}: weights do not match config.json ({k}: expected shape {tuple(ref.shape)}, got {got})"
            )
        if not v.is_floating_point():
            raise CheckpointError(f"{w_path}: {k} has dtype {v.dtype}; expected a floating-point tensor")
        if not bool(torch.isfinite(v).all()):
            bad = int((~torch.isfinite(v)).sum())
            raise CheckpointError(f"{w_path}: {k} has {bad} non-finite value(s) (NaN or inf)")
