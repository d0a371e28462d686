"""Batched linked decoding (issue 18, new item 1): per sample, the same output as single-stream."""

from __future__ import annotations

import attrs
import pytest
import torch
from ds2ds_gen.corpus import DocumentCorpus
from ds2ds_gen.generation_config import GenerationConfig
from ds2ds_gen.linked_doc_generator import LinkedDocumentGenerator
from ds2ds_gen.tokenizer import get_encoding

torch.set_num_threads(1)
enc = get_encoding()


def _sig(res):
    return (
        [(d.title, d.tokens.tolist(), d.evicted, d.source_kind) for d in res.get_all_documents()],
        [(e.source_title, e.target, e.outcome) for e in res.links],
        res.stop_reason,
        res.new_tokens,
    )


@pytest.mark.parametrize("active", [False, True])
def test_batched_equals_single_stream_per_sample(small_corpus, tiny_model, active) -> None:
    m = tiny_model(vocab=50257, max_seq_len=512)
    if active:  # as a trained checkpoint: 2,000 live ids, batched steps send compact logits
        with torch.no_grad():
            keep = torch.randperm(50257, generator=torch.Generator().manual_seed(0))[:2000]
            m.logit_bias.fill_(-1e4)
            m.logit_bias[keep] = 0.0
            m.logit_bias[50256] = 0.0
        assert m.use_active_vocab(True) < 50257
    gen = LinkedDocumentGenerator(m, enc.encode_ordinary, enc.decode)
    with DocumentCorpus(small_corpus[1]) as c:
        a, b = c.titles()[0], c.titles()[2]
        prompts = [
            f"# R0\n\nSee [{a}]({a}) and [New One](New One).",
            "# R1\n\nPlain words",
            f"[{b}]({b}) is",
            "# R3\n\nAbout [X](X), [Y](Y) and [Z](Z)",
            f"# R4\n\n[{a}]({a}) [{b}]({b}) then",
        ]
        base = GenerationConfig(
            max_new_tokens=12, temperature=1.0, top_k=40, max_tokens_per_document=64, max_context_length=150, max_link_depth=2
        )
        cfgs = [attrs.evolve(base, seed=100 + i) for i in range(len(prompts))]
        cfgs[1] = attrs.evolve(cfgs[1], temperature=0.0)
        cfgs[4] = attrs.evolve(cfgs[4], max_context_length=120, max_tokens_per_document=60)  # evictions
        single = [_sig(gen.generate(prompt=p, corpus=c, config=g)) for p, g in zip(prompts, cfgs)]
        batched = [_sig(r) for r in gen.generate_batch(prompts, cfgs, corpus=c)]
        assert batched == single
        # another batch composition: the same samples, reordered and mixed with others
        order = [3, 0, 4]
        again = [_sig(r) for r in gen.generate_batch([prompts[i] for i in order], [cfgs[i] for i in order], corpus=c)]
        assert again == [single[i] for i in order]
    assert any(o == "corpus" for s in single for _, _, o in s[1])
    assert any(o == "generated" for s in single for _, _, o in s[1])


def test_batched_uses_one_forward_per_step(tiny_model) -> None:
    from ds2ds_gen.batched import BatchedContextRunner

    m = tiny_model(vocab=50257, max_seq_len=512)
    gen = LinkedDocumentGenerator(m, enc.encode_ordinary, enc.decode)
    made = {}
    real = BatchedContextRunner.__init__

    def spy(self, *a, **k):
        real(self, *a, **k)
        made["r"] = self

    BatchedContextRunner.__init__ = spy  # type: ignore[method-assign]
    try:
        cfgs = [
            GenerationConfig(
                max_new_tokens=10, temperature=1.0, seed=i, max_tokens_per_document=64, max_context_length=128, eos_token_id=50256
            )
            for i in range(6)
        ]
        res = gen.generate_batch([f"# T{i}\n\nText" for i in range(6)], cfgs)
    finally:
        BatchedContextRunner.__init__ = real  # type: ignore[method-assign]
    r = made["r"]
    steps = max(x.new_tokens for x in res)
    assert r.batched_forwards <= steps and r.batched_rows >= 5 * (r.batched_forwards - 1)
