"""Training the small model on a pretokenized corpus, on a CPU, in minutes.

Training packs: each row of ``seq_len`` tokens holds groups ``[linked docs..., doc]``; the doc
links to the documents placed before it with the cross-doc-link mask (visible from each link's
closing ``)``), exactly as generation builds its context. The loss is next-token cross-entropy
inside each document, computed over the *active vocabulary* (the token ids that occur in the
corpus, plus EOS): the softmax over the 50,257 GPT-2 ids costs most of a CPU step and ids that
never occur only learn to be unlikely. Since those ids then get no gradient at all, training runs
on a compact copy of the model whose embedding has one row per active id (same maths as the
full model with sparse updates, minus weight decay on rows that are never used) and the rows are
scattered back into the full GPT-2-vocabulary model at the end. Unused ids keep their initial
embedding and get a ``-1e4`` logit bias, so the full model gives them (numerically) zero
probability, as the restricted softmax did.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
import torch.nn.functional as F

from .corpus import DocumentCorpus
from .errors import ConfigError, CorpusError
from .link_detector import LinkDetector
from .masks import NEVER
from .model import DS2DSModel, ModelConfig, save_checkpoint
from .tokenizer import EOS_TOKEN_ID

__all__ = ["TrainConfig", "build_packs", "train"]


def _pos(_i: object, a: attrs.Attribute, v: object) -> None:
    if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
        raise ConfigError(f"TrainConfig.{a.name} = {v!r}: must be a number > 0")


def _opt_pos(_i: object, a: attrs.Attribute, v: object) -> None:
    if v is not None:
        _pos(_i, a, v)


@attrs.frozen
class TrainConfig:
    """Training settings (model shape in ``model``).

    ``steps`` is the bound, so the same config gives the same checkpoint on any machine load;
    ``max_seconds`` (default None) is an opt-in wall-clock cap, and a run it cut short says so
    (``stopped_by`` in the summary and the checkpoint's ``extra.training``)."""

    model: ModelConfig = ModelConfig(d_model=128, n_layers=2, n_heads=4, max_doc_len=256, max_seq_len=2048)
    seq_len: int = attrs.field(default=192, validator=_pos)
    batch_size: int = attrs.field(default=12, validator=_pos)
    steps: int = attrs.field(default=400, validator=_pos)
    max_seconds: float | None = attrs.field(default=None, validator=_opt_pos)
    lr: float = attrs.field(default=3e-3, validator=_pos)
    warmup: int = attrs.field(default=30, validator=_pos)
    max_links_per_group: int = 2
    threads: int = attrs.field(default=2, validator=_pos)
    seed: int = 0


def build_packs(
    corpus: DocumentCorpus, seq_len: int, max_doc_len: int, max_links: int, rng: random.Random
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """Pack every corpus document (with up to ``max_links`` of its linked documents before it)
    into rows. Returns ``tokens, doc, pos`` (``[N, seq_len]``; doc -1 = padding) and one
    ``visible_from`` table per row."""
    det = LinkDetector()
    docs = {t: corpus.get_document(t)[:max_doc_len] for t in corpus.titles()}  # type: ignore[index]
    titles = list(docs)
    rng.shuffle(titles)
    rows_t, rows_d, rows_p, tables = [], [], [], []
    cur_t: list[int] = []
    cur_d: list[int] = []
    cur_p: list[int] = []
    cur_links: list[tuple[int, int, int]] = []

    def flush() -> None:
        nonlocal cur_t, cur_d, cur_p, cur_links
        if not cur_t:
            return
        pad = seq_len - len(cur_t)
        rows_t.append(cur_t + [EOS_TOKEN_ID] * pad)
        rows_d.append(cur_d + [-1] * pad)
        rows_p.append(cur_p + [0] * pad)
        n = max(cur_d) + 1
        tab = np.full((n, n), NEVER, dtype=np.int64)
        for a, b, v in cur_links:
            tab[a, b] = min(tab[a, b], v)
        tables.append(tab)
        cur_t, cur_d, cur_p, cur_links = [], [], [], []

    for title in titles:
        main = docs[title]
        closes: dict[str, int] = {}
        for link in det.find_all(main):
            closes.setdefault(link.target.strip(), link.paren_close_pos)
        group = [t for t in closes if t in docs and t != title][:max_links]
        parts = [docs[t] for t in group] + [main]
        size = sum(len(p) for p in parts)
        if size > seq_len:
            group, parts, size = [], [main[:seq_len]], min(len(main), seq_len)
        if len(cur_t) + size > seq_len:
            flush()
        base = (max(cur_d) + 1) if cur_d else 0
        for i, p in enumerate(parts):
            cur_t.extend(int(x) for x in p)
            cur_d.extend([base + i] * len(p))
            cur_p.extend(range(len(p)))
        main_id = base + len(parts) - 1
        for i, t in enumerate(group):
            cur_links.append((main_id, base + i, closes[t]))
    flush()
    return np.array(rows_t, np.int64), np.array(rows_d, np.int64), np.array(rows_p, np.int64), tables


def _batch_masks(doc: torch.Tensor, pos: torch.Tensor, tables: list[np.ndarray]) -> torch.Tensor:
    """``[B, 1, T, T]`` cross-doc-link masks of a batch of packed rows (padding: doc -1, which
    attends only to itself). Same rule as :func:`~ds2ds_gen.masks.allowed`, batched."""
    b, t = doc.shape
    d = max(tab.shape[0] for tab in tables) + 1
    tab = torch.full((b, d, d), NEVER, dtype=torch.long)
    for i, x in enumerate(tables):
        tab[i, : x.shape[0], : x.shape[1]] = torch.from_numpy(x)
    dd = torch.where(doc < 0, torch.full_like(doc, d - 1), doc)
    same = (doc[:, :, None] == doc[:, None, :]) & (doc[:, :, None] >= 0) & (pos[:, None, :] <= pos[:, :, None])
    vis = tab[torch.arange(b)[:, None, None], dd[:, :, None], dd[:, None, :]]
    mask = same | (pos[:, :, None] >= vis) | torch.eye(t, dtype=torch.bool)[None]
    return mask[:, None]


def train(
    corpus_path: Path, out: Path, cfg: TrainConfig = TrainConfig(), log: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Train on the corpus at ``corpus_path`` and save a checkpoint folder at ``out``.
    Returns a summary (steps, losses, seconds, active vocabulary size)."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    with DocumentCorpus(corpus_path) as corpus:
        if len(corpus) == 0:
            raise CorpusError(f"{corpus_path}: the corpus has no documents")
        tokens, doc, pos, tables = build_packs(corpus, cfg.seq_len, cfg.model.max_doc_len, cfg.max_links_per_group, rng)
        # the model tokenizes headings as the corpus it learnt from does
        cfg = attrs.evolve(cfg, model=attrs.evolve(cfg.model, headings=corpus.headings))
    vocab = np.unique(np.concatenate([tokens.reshape(-1), [EOS_TOKEN_ID]]))
    remap = np.full(cfg.model.vocab_size, -1, dtype=np.int64)
    remap[vocab] = np.arange(len(vocab))
    # Targets: the next token inside the same document; -100 elsewhere (doc ends, padding).
    tgt = np.full_like(tokens, -100)
    same = (doc[:, 1:] == doc[:, :-1]) & (doc[:, 1:] >= 0)
    tgt[:, :-1] = np.where(same, remap[tokens[:, 1:]], -100)
    vocab_t = torch.from_numpy(vocab)
    model = DS2DSModel(attrs.evolve(cfg.model, vocab_size=len(vocab)))
    model.train()
    tokens_c = remap[tokens]
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01, betas=(0.9, 0.95))
    t0 = time.perf_counter()
    losses: list[float] = []
    n = len(tokens)
    order: list[int] = []
    step = 0
    stopped_by = "steps"
    for step in range(1, cfg.steps + 1):
        lr = cfg.lr * min(1.0, step / cfg.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / cfg.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        if len(order) < cfg.batch_size:
            order = list(range(n))
            rng.shuffle(order)
        idx = [order.pop() for _ in range(min(cfg.batch_size, n))]
        tk = torch.from_numpy(tokens_c[idx])
        dc, ps = torch.from_numpy(doc[idx]), torch.from_numpy(pos[idx])
        mask = _batch_masks(dc, ps, [tables[i] for i in idx])
        logits = model(tk, ps, mask)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.from_numpy(tgt[idx]).reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(float(loss.detach()))
        if log and (step % 25 == 0 or step == 1):
            log(f"step {step} loss {losses[-1]:.3f} lr {lr:.2e} {time.perf_counter() - t0:.0f}s")
        if cfg.max_seconds is not None and step < cfg.steps and time.perf_counter() - t0 > cfg.max_seconds:
            stopped_by = "max_seconds"
            break
    full = DS2DSModel(cfg.model)
    with torch.no_grad():
        sd = {k: v for k, v in model.state_dict().items() if k not in ("embedding.weight", "logit_bias")}
        full.load_state_dict(sd, strict=False)
        full.embedding.weight[vocab_t] = model.embedding.weight
        bias = torch.full((cfg.model.vocab_size,), -1e4)
        bias[vocab_t] = 0.0
        full.logit_bias.copy_(bias)
    model = full
    summary = {
        "corpus": str(corpus_path),
        "steps": step,
        "stopped_by": stopped_by,
        "seconds": round(time.perf_counter() - t0, 1),
        "first_loss": losses[0],
        "final_loss": float(np.mean(losses[-10:])),
        "active_vocab": int(len(vocab)),
        "rows": int(n),
        "train_config": {k: v for k, v in attrs.asdict(cfg).items() if k != "model"},
    }
    save_checkpoint(model.eval(), out, extra={"training": summary})
    return summary
