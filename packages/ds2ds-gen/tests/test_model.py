from __future__ import annotations

import json
import random

import pytest
import torch
from ds2ds_gen.errors import CheckpointError
from ds2ds_gen.masks import DocSpan, dense_mask, link_table
from ds2ds_gen.model import KVCache, load_checkpoint, save_checkpoint


def random_spans(rng: random.Random, n_docs: int, max_len: int = 12) -> tuple[list[DocSpan], int]:
    spans, start = [], 0
    lens = [rng.randint(1, max_len) for _ in range(n_docs)]
    for i, ln in enumerate(lens):
        links = tuple((j, rng.randint(0, ln)) for j in range(n_docs) if j != i and rng.random() < 0.4)
        spans.append(DocSpan(i, start, ln, links))
        start += ln
    return spans, start


def brute_mask(spans, total, mask_type):
    m = torch.zeros(total, total, dtype=torch.bool)
    where = {}
    for s in spans:
        for p in range(s.length):
            where[s.start + p] = (s, p)
    for q in range(total):
        for k in range(total):
            if q not in where or k not in where:
                m[q, k] = q == k
                continue
            (sq, pq), (sk, pk) = where[q], where[k]
            if sq.doc_id == sk.doc_id:
                m[q, k] = pk <= pq
            elif mask_type == "cross_doc_link":
                m[q, k] = any(t == sk.doc_id and pq >= v for t, v in sq.links)
    return m


@pytest.mark.parametrize("mask_type", ["doc_causal", "cross_doc_link"])
def test_dense_mask_matches_definition(mask_type) -> None:
    rng = random.Random(1)
    for _ in range(30):
        spans, total = random_spans(rng, rng.randint(1, 4))
        pad = rng.randint(0, 3)
        assert torch.equal(dense_mask(spans, total + pad, mask_type), brute_mask(spans, total + pad, mask_type))


def test_doc_isolation_and_link_visibility(tiny_model) -> None:
    m = tiny_model(vocab=300)
    rng = torch.Generator().manual_seed(0)
    a, b = torch.randint(0, 300, (10,), generator=rng), torch.randint(0, 300, (8,), generator=rng)
    b2 = torch.randint(0, 300, (8,), generator=rng)
    spans = [DocSpan(0, 0, 8), DocSpan(1, 8, 10, ((0, 6),))]  # doc 1 sees doc 0 from its position 6
    l1 = m.forward_inference(torch.cat([b, a]), spans)[0]
    l2 = m.forward_inference(torch.cat([b2, a]), spans)[0]
    assert torch.allclose(l1[8:14], l2[8:14], atol=1e-6)  # before the link: doc 0 invisible
    assert not torch.allclose(l1[14:], l2[14:], atol=1e-3)  # from the link on: it matters
    alone = m.forward_inference(a)[0]
    assert torch.allclose(alone[:6], l1[8:14], atol=1e-5)  # position-independent packing
    dc = m.forward_inference(torch.cat([b2, a]), spans, mask_type="doc_causal")[0]
    assert torch.allclose(dc[8:], alone, atol=1e-5)


def test_kv_cache_matches_full_recompute(tiny_model) -> None:
    m = tiny_model(vocab=500)
    rng = random.Random(3)
    for _ in range(5):
        spans, total = random_spans(rng, 3, 10)
        # the fed prefix may not link to the unfinished last document (the feeding rule)
        spans = [
            s if s is spans[-1] else DocSpan(s.doc_id, s.start, s.length, tuple(x for x in s.links if x[0] != 2)) for s in spans
        ]
        toks = torch.tensor([rng.randrange(500) for _ in range(total)])
        full = m.forward_inference(toks, spans)[0]
        # Feed documents in dependency-respecting chunks, then token by token for the last one.
        cache = KVCache(m, 64)
        table = link_table(spans, "cross_doc_link")
        doc = torch.cat([torch.full((s.length,), s.doc_id) for s in spans])
        pos = torch.cat([torch.arange(s.length) for s in spans])
        got = []
        # one chunk with everything but the last doc's tail, then single-token steps
        last = spans[-1]
        cut = last.start + 1
        got.append(m.extend(cache, toks[:cut], doc[:cut], pos[:cut], table))
        for i in range(cut, total):
            if rng.random() < 0.5 or any(v == int(pos[i]) for _, v in last.links):
                m.refresh_row(cache, last.doc_id, int(pos[i]), table)  # needed where a link becomes visible
            got.append(m.extend(cache, toks[i : i + 1], doc[i : i + 1], pos[i : i + 1], table))
        assert torch.allclose(torch.cat(got), full, atol=1e-5)


def test_flex_agrees_with_sdpa(tiny_model) -> None:
    pytest.importorskip("torch.nn.attention.flex_attention")
    m = tiny_model(vocab=400)
    m.compile_flex = False  # eager reference kernel: same maths, no compiler needed in CI
    rng = random.Random(5)
    spans, total = random_spans(rng, 4, 20)
    toks = torch.tensor([rng.randrange(400) for _ in range(total)])
    try:
        flex = m.forward_inference(toks, spans, attention="flex")
    except Exception as e:  # pragma: no cover - platform without flex support
        pytest.skip(f"FlexAttention unavailable here: {e}")
    sdpa = m.forward_inference(toks, spans)
    assert (flex - sdpa).abs().max() < 1e-5


def test_checkpoint_roundtrip_and_errors(tiny_model, tmp_path) -> None:
    m = tiny_model(vocab=300)
    save_checkpoint(m, tmp_path / "ck", extra={"note": "x"})
    m2, extra = load_checkpoint(tmp_path / "ck")
    assert extra == {"note": "x"}
    t = torch.arange(10)
    assert torch.equal(m.forward_inference(t), m2.forward_inference(t))
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope")
    (tmp_path / "ck" / "model.pt").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path / "ck")
    save_checkpoint(m, tmp_path / "ck")
    meta = json.loads((tmp_path / "ck" / "config.json").read_text())
    meta["model"]["d_model"] = 64
    (tmp_path / "ck" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(tmp_path / "ck")
    (tmp_path / "ck" / "config.json").write_text("{")
    with pytest.raises(CheckpointError, match="JSON"):
        load_checkpoint(tmp_path / "ck")
    # a pickled object that is not a plain state_dict is refused by weights_only loading
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    save_checkpoint(m, tmp_path / "ev")
    (tmp_path / "ev" / "model.pt").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "ev")


def test_active_vocab_head_is_exact(tiny_model) -> None:
    m = tiny_model(vocab=400)
    with torch.no_grad():
        m.logit_bias[::3] = -1e4
    t = torch.arange(20)
    full = m.forward_inference(t)
    assert m.use_active_vocab(True) == 400 - len(range(0, 400, 3))
    fast = m.forward_inference(t)
    keep = torch.ones(400, dtype=torch.bool)
    keep[::3] = False
    assert torch.allclose(fast[..., keep], full[..., keep], atol=1e-5)
    assert torch.allclose(torch.softmax(fast, -1), torch.softmax(full, -1), atol=1e-6)
    assert torch.equal(torch.softmax(fast, -1)[..., ::3], torch.zeros_like(fast[..., ::3]))
    m.use_active_vocab(False)
    assert torch.equal(m.forward_inference(t), full)


def test_transposed_head_matches_linear_and_follows_weight_updates(tiny_model) -> None:
    import torch.nn.functional as F

    m = tiny_model(vocab=50257, d_model=64)
    h = torch.randn(3, 64)
    with torch.no_grad():
        ref = F.linear(m.norm(h), m.embedding.weight) + m.logit_bias
        assert torch.allclose(m.logits(h), ref, atol=1e-5)
        m.embedding.weight.mul_(2.0)  # in place: the cached transposed copy must be rebuilt
        assert torch.allclose(m.logits(h), 2 * ref, atol=1e-5)
        blk = m.blocks[0]
        x = torch.randn(2, 5, 64)
        assert torch.allclose(blk.fc(x), F.linear(x, blk.fc.weight), atol=1e-6)  # block linears: same trick
        assert sorted(m.state_dict()) == sorted(type(m)(m.cfg).state_dict())  # no extra state saved
    m.train()
    m.logits(h).sum().backward()  # training path: gradients still reach the tied weight
    assert m.embedding.weight.grad is not None and m.embedding.weight.grad.abs().sum() > 0
    m.to(torch.bfloat16)  # dtype change: transposed copies dropped, bf16 uses F.linear
    assert not m._head_t and not m.blocks[0].fc.transposed


def test_bf16_kv_decode_close_to_fp32(tiny_model) -> None:
    """bf16 decode on CPU (fp32 attention over an fp32 KV cache) stays within bf16 rounding of
    the fp32 model, as close as bf16 full recomputation is."""
    spans = [DocSpan(0, 0, 20), DocSpan(1, 20, 20, ((0, 5),))]
    toks = torch.randint(0, 500, (40,), generator=torch.Generator().manual_seed(0))
    ref = tiny_model(vocab=500).forward_inference(toks, spans)[0]
    mb = tiny_model(vocab=500).to(torch.bfloat16)
    full_bf16 = mb.forward_inference(toks, spans)[0].float()
    cache = KVCache(mb, 64, torch.bfloat16)
    assert cache.k.dtype == torch.float32
    table = link_table(spans, "cross_doc_link")
    doc = torch.tensor([0] * 20 + [1] * 20)
    pos = torch.cat([torch.arange(20)] * 2)
    got = [mb.extend(cache, toks[:21], doc[:21], pos[:21], table)]
    for i in range(21, 40):
        mb.refresh_row(cache, 1, int(pos[i]), table)
        got.append(mb.extend(cache, toks[i : i + 1], doc[i : i + 1], pos[i : i + 1], table))
    kv = torch.cat(got).float()
    tol = 1e-2 * float(ref.abs().max())
    assert (kv - ref).abs().max() < tol
    assert (full_bf16 - ref).abs().max() < tol
