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


def test_sample_rows_equals_sample_token_per_row() -> None:
    """The batched sampler gives every row the token sample_token gives it, with the same draws
    from the row's own generator (greedy and degenerate rows draw nothing)."""
    from ds2ds_gen.sampling import sample_rows, sample_token

    g = torch.Generator().manual_seed(5)
    temps = [1.0, 0.7, 0.0, 1.3, 1.0, 0.8, 0.0, 1.0, 0.8, 1.0]
    ks: list[int | None] = [None, 5, None, 40, 1000, 40, 3, None, None, 1]
    for rnd in range(6):
        x = torch.randn(len(temps), 300, generator=g) * 3
        x[:, :40] = float("-inf") if rnd % 2 else -1e4  # ids of probability 0
        x[7] = float("-inf")  # degenerate: sample_token's greedy fallback, no draw
        if rnd == 3:
            x[4, 100] = float("nan")
        seeds = [1000 * rnd + r for r in range(len(temps))]
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        got = sample_rows(x, temps, ks, gens)
        ref_gens = [torch.Generator().manual_seed(s) for s in seeds]
        want = [sample_token(x[r], temps[r], ks[r], None, ref_gens[r]) for r in range(len(temps))]
        assert got == want
        # each generator advanced exactly as sample_token advanced its twin
        assert [float(torch.rand((), generator=a, dtype=torch.float64)) for a in gens] == [
            float(torch.rand((), generator=b, dtype=torch.float64)) for b in ref_gens
        ]
    # all rows greedy, and a single row
    x = torch.randn(3, 50, generator=g)
    assert sample_rows(x, [0.0] * 3, [None] * 3, [None] * 3) == [int(torch.argmax(r)) for r in x]
    assert sample_rows(x[:1], [1.0], [None], [torch.Generator().manual_seed(9)]) == [
        sample_token(x[0], 1.0, None, None, torch.Generator().manual_seed(9))
    ]


@pytest.mark.parametrize("active", [False, True])
def test_batched_row_sampling_equals_single_stream(tiny_model, active, monkeypatch) -> None:
    """Free link targets (no corpus): the batched step samples its rows together. Mixed
    temperatures, top-k, greedy, a top-p row (sampled on its own), logprobs, rows that stop at
    different steps (different max_new_tokens, EOS) and generated auxiliary documents: every
    sample equals its single-stream run, in any batch composition."""
    import ds2ds_gen.linked_doc_generator as ldg

    m = tiny_model(vocab=50257, max_seq_len=512)
    if active:
        with torch.no_grad():
            keep = torch.randperm(50257, generator=torch.Generator().manual_seed(1))[:1500]
            m.logit_bias.fill_(-1e4)
            m.logit_bias[keep] = 0.0
            m.logit_bias[50256] = 2.0  # EOS likely enough to end some rows early
        assert m.use_active_vocab(True) < 50257
    gen = LinkedDocumentGenerator(m, enc.encode_ordinary, enc.decode)
    prompts = [
        "# A0\n\nAbout [New One](New One) and",
        "# A1\n\nPlain words",
        "# A2\n\nSee [X](X), [Y](Y) then",
        "# A3\n\nMore",
        "# A4\n\nText [Z](Z) is",
        "# A5\n\nLast one",
    ]
    base = GenerationConfig(
        max_new_tokens=14,
        temperature=1.0,
        max_tokens_per_document=64,
        max_context_length=200,
        max_link_depth=2,
        link_targets="free",
        eos_token_id=50256 if active else 50257,
    )
    cfgs = [attrs.evolve(base, seed=7 + i) for i in range(len(prompts))]
    cfgs[1] = attrs.evolve(cfgs[1], temperature=0.8, top_k=40, max_new_tokens=5)
    cfgs[2] = attrs.evolve(cfgs[2], temperature=0.0)
    cfgs[3] = attrs.evolve(cfgs[3], temperature=0.9, top_p=0.9)
    cfgs[4] = attrs.evolve(cfgs[4], temperature=1.2, top_k=7, logprobs=True, max_new_tokens=20)
    cfgs[5] = attrs.evolve(cfgs[5], temperature=0.8, top_k=40, max_new_tokens=9)

    def sig(res):  # type: ignore[no-untyped-def]
        # logprobs to 1e-4: a batched forward's logits may differ from a single row's in the
        # last bit (the tokens, compared exactly, do not)
        return (_sig(res), [x for d in res.get_all_documents() for x in d.logprobs or []])

    def same(got, want) -> bool:  # type: ignore[no-untyped-def]
        return len(got) == len(want) and all(g[0] == w[0] and g[1] == pytest.approx(w[1], abs=1e-4) for g, w in zip(got, want))

    single = [sig(gen.generate(prompt=p, config=g)) for p, g in zip(prompts, cfgs)]
    calls: list[int] = []
    real = ldg.sample_rows

    def spy(x, *a):  # type: ignore[no-untyped-def]
        calls.append(x.shape[0])
        return real(x, *a)

    monkeypatch.setattr(ldg, "sample_rows", spy)
    batched = [sig(r) for r in gen.generate_batch(prompts, cfgs)]
    assert same(batched, single)
    assert any(s[1] for s in single)
    assert calls and max(calls) >= 4  # the rows were sampled together
    order = [4, 1, 3]
    again = [sig(r) for r in gen.generate_batch([prompts[i] for i in order], [cfgs[i] for i in order])]
    assert same(again, [single[i] for i in order])
    stops = {len(s[0][0][0][1]) for s in single}
    assert len(stops) > 2  # root documents of different lengths: rows finished at different steps
    assert any(o == "generated" for s in single for _, _, o in s[0][1])
