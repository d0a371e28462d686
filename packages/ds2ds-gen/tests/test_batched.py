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
def test_batched_equals_single_stream_per_sample(small_corpus, tiny_model, active_vocab, active) -> None:
    m = tiny_model(vocab=50257, max_seq_len=512)
    if active:  # as a trained checkpoint: 2,000 live ids, batched steps send compact logits
        active_vocab(m, 2000, seed=0)
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
def test_batched_row_sampling_equals_single_stream(tiny_model, active_vocab, gen_config, active, monkeypatch) -> None:
    """Free link targets (no corpus): the batched step samples its rows together. Mixed
    temperatures, top-k, greedy, a top-p row (sampled on its own), logprobs, rows that stop at
    different steps (different max_new_tokens, EOS) and generated auxiliary documents: every
    sample equals its single-stream run, in any batch composition."""
    import ds2ds_gen.linked_doc_generator as ldg

    m = tiny_model(vocab=50257, max_seq_len=512)
    if active:
        active_vocab(m, 1500, seed=1, eos_bias=2.0)  # EOS likely enough to end some rows early
    gen = LinkedDocumentGenerator(m, enc.encode_ordinary, enc.decode)
    prompts = [
        "# A0\n\nAbout [New One](New One) and",
        "# A1\n\nPlain words",
        "# A2\n\nSee [X](X), [Y](Y) then",
        "# A3\n\nMore",
        "# A4\n\nText [Z](Z) is",
        "# A5\n\nLast one",
    ]
    base = gen_config(
        max_new_tokens=14,
        temperature=1.0,
        max_tokens_per_document=64,
        max_context_length=200,
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


def test_sample_rows_top_p_equals_sample_token_per_row() -> None:
    """Top-p rows sampled together give each row sample_token's token and draws: top-p alone and
    after top-k, cuts inside the first 256 ids and far past them (flat rows over 50,257 ids, so
    the prefix grows x8 several times), tied logits at the cut, greedy rows with top-p, and rows
    without top-p in the same call."""
    from ds2ds_gen.sampling import sample_rows, sample_token

    g = torch.Generator().manual_seed(11)
    temps = [1.0, 0.8, 1.0, 0.0, 1.3, 1.0, 0.9, 1.0, 0.7, 1.0]
    ks: list[int | None] = [None, 40, None, None, 300, None, 5, None, None, 2000]
    ps: list[float | None] = [0.9, 0.95, 0.5, 0.3, 0.99, None, 0.8, 0.97, 1.0, 0.6]
    for rnd in range(4):
        x = torch.randn(len(temps), 50257, generator=g) * (4.0 if rnd % 2 else 0.3)  # peaked / flat
        x[2, :] = x[2, 0]  # a whole row of ties
        x[3, 10], x[3, 20] = 50.0, 50.0  # greedy: tied maxima
        x[7, :5000] = float("-inf")
        seeds = [777 * rnd + r for r in range(len(temps))]
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        got = sample_rows(x, temps, ks, gens, ps)
        ref = [torch.Generator().manual_seed(s) for s in seeds]
        want = [sample_token(x[r], temps[r], ks[r], ps[r], ref[r]) for r in range(len(temps))]
        assert got == want
        assert [float(torch.rand((), generator=a, dtype=torch.float64)) for a in gens] == [
            float(torch.rand((), generator=b, dtype=torch.float64)) for b in ref
        ]
    # all rows top-p, a single row, and a compact (active-vocabulary) width
    x = torch.randn(3, 1500, generator=g)
    gens = [torch.Generator().manual_seed(s) for s in (1, 2, 3)]
    want = [sample_token(x[r], 1.0, None, 0.9, torch.Generator().manual_seed(r + 1)) for r in range(3)]
    assert sample_rows(x, [1.0] * 3, [None] * 3, gens, [0.9] * 3) == want


@pytest.mark.parametrize("active", [False, True])
def test_batched_constrained_targets_and_top_p_equal_single_stream(
    small_corpus, tiny_model, active_vocab, gen_config, active, monkeypatch
) -> None:
    """The default with a corpus (link targets ``auto`` = ``known``), ``corpus`` targets and
    top-p rows all go through the batched sampler, and every sample still equals its single
    stream: rows inside a link target are constrained per row in the same batched step. The
    model is biased to write ``](`` often, so many steps have rows inside a target."""
    import ds2ds_gen.linked_doc_generator as ldg
    from ds2ds_gen.link_detector import LinkDetector

    mid = LinkDetector().mid_id
    m = tiny_model(vocab=50257, max_seq_len=512)
    with DocumentCorpus(small_corpus[1]) as c:
        title_ids = sorted({t for title in c.titles() for t in enc.encode_ordinary(title)})
        closers = sorted(LinkDetector().close_candidates)
        if active:
            active_vocab(m, 1200, seed=2, eos_bias=1.5, extra=[*title_ids, *closers, mid])
        with torch.no_grad():
            # a peaked distribution, as a trained model's: top-p then cuts within a few hundred
            # ids, where a last-bit difference between a batched and a single forward's logits
            # (matmuls of 1 vs B rows round differently) does not move the cut; on a near-flat
            # distribution over 50,257 ids it can (see docs/benchmarks/ds2ds-gen.md)
            m.logit_bias += torch.randn(50257, generator=torch.Generator().manual_seed(3)) * 3.0
            m.logit_bias[mid] += 12.0 if not active else 4.0  # "](" likely: link targets are written often
        gen = LinkedDocumentGenerator(m, enc.encode_ordinary, enc.decode)
        a = c.titles()[1]
        prompts = [
            f"# B0\n\nSee [{a}](",  # ends inside a target
            "# B1\n\nPlain words",
            f"# B2\n\n[{a}]({a}) then",
            "# B3\n\nMore [New](New) text",
            "# B4\n\nAbout",
            "# B5\n\nLast one",
        ]
        base = gen_config(
            max_new_tokens=16, temperature=1.0, max_tokens_per_document=64, max_context_length=300, max_auxiliary_documents=3
        )
        cfgs = [attrs.evolve(base, seed=31 + i) for i in range(len(prompts))]
        cfgs[0] = attrs.evolve(cfgs[0], top_p=0.9, logprobs=True)
        cfgs[1] = attrs.evolve(cfgs[1], temperature=0.8, top_k=40, top_p=0.95, max_new_tokens=6)
        cfgs[2] = attrs.evolve(cfgs[2], link_targets="corpus", top_p=0.8)
        cfgs[3] = attrs.evolve(cfgs[3], temperature=0.0, max_new_tokens=11)
        cfgs[4] = attrs.evolve(cfgs[4], temperature=0.7, top_k=7, logprobs=True, max_new_tokens=20)
        cfgs[5] = attrs.evolve(cfgs[5], top_p=0.5, eos_token_id=50256)

        def sig(res):  # type: ignore[no-untyped-def]
            return (_sig(res), [x for d in res.get_all_documents() for x in d.logprobs or []])

        def same(got, want) -> bool:  # type: ignore[no-untyped-def]
            return len(got) == len(want) and all(
                g[0] == w[0] and g[1] == pytest.approx(w[1], abs=1e-4) for g, w in zip(got, want)
            )

        single = [sig(gen.generate(prompt=p, corpus=c, config=g)) for p, g in zip(prompts, cfgs)]
        sampled: list[int] = []
        inside: list[int] = []
        real_rows, real_allowed = ldg.sample_rows, ldg.LinkedDocumentGenerator._allowed_targets

        def spy_rows(x, *a):  # type: ignore[no-untyped-def]
            sampled.append(sum(p is not None for p in a[3]))  # top-p rows among the rows sampled together
            return real_rows(x, *a)

        def spy_allowed(self, run, tokens):  # type: ignore[no-untyped-def]
            out = real_allowed(self, run, tokens)
            inside.append(out is not None)
            return out

        monkeypatch.setattr(ldg, "sample_rows", spy_rows)
        monkeypatch.setattr(ldg.LinkedDocumentGenerator, "_allowed_targets", spy_allowed)
        batched = [sig(r) for r in gen.generate_batch(prompts, cfgs, corpus=c)]
        assert same(batched, single)
        assert sampled and max(sampled) >= 2  # top-p rows sampled together with the others
        assert sum(inside) >= 4  # batched rows inside a link target, constrained in the batched step
        order = [5, 2, 0]
        again = [sig(r) for r in gen.generate_batch([prompts[i] for i in order], [cfgs[i] for i in order], corpus=c)]
        assert same(again, [single[i] for i in order])
    assert len({len(s[0][0][0][1]) for s in single}) > 2  # rows stopped at different steps
    assert any(o == "corpus" for s in single for _, _, o in s[0][1])
    assert any(s[1] for s in single)
