"""Batch invariance on random weights (issue 18): a sample's tokens do not depend on which other
samples share its batch, also where every next-token distribution is near flat; and the
sampler that makes this robust (a two-level exponential race) samples the target distribution."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ds2ds_gen.corpus import DocumentCorpus
from ds2ds_gen.generation_config import GenerationConfig
from ds2ds_gen.linked_doc_generator import LinkedDocumentGenerator
from ds2ds_gen.model import DS2DSModel, ModelConfig
from ds2ds_gen.sampling import race_shape, sample_rows, sample_token
from ds2ds_gen.tokenizer import get_encoding
from scipy.stats import chisquare

torch.set_num_threads(1)
enc = get_encoding()


def _random_model(active: bool) -> DS2DSModel:
    """bench/bench_batched.py's model: the train command's shape, random weights (flat
    distributions); ``active``: a random 1,650-id active vocabulary, else all 50,257 ids live."""
    torch.manual_seed(0)
    m = DS2DSModel(ModelConfig(d_model=128, n_layers=2, n_heads=4, max_doc_len=256, max_seq_len=2048)).eval()
    with torch.no_grad():
        bias = torch.full((m.cfg.vocab_size,), -1e4)
        bias[torch.randperm(50256)[:1650]] = 0.0
        if active:
            m.logit_bias.copy_(bias)
            m.logit_bias[16151] = 3.0  # "](": rows are often inside a link target
    m.use_active_vocab(active)
    return m


def _configs(n: int, tokens: int) -> list[GenerationConfig]:
    return [
        GenerationConfig(
            max_new_tokens=tokens,
            temperature=1.0,
            top_p=0.9 if i % 2 else None,
            top_k=40 if i % 3 == 2 else None,
            seed=i,
            eos_token_id=50257,  # never sampled: every sample runs the full length
            max_tokens_per_document=256,
            max_context_length=512,
            max_auxiliary_documents=0,
        )
        for i in range(n)
    ]


def _check(gen: LinkedDocumentGenerator, prompts: list[str], cfgs: list[GenerationConfig], corpus=None) -> None:  # type: ignore[no-untyped-def]
    single = [gen.generate(prompt=p, config=c, corpus=corpus).root_document.tokens.tolist() for p, c in zip(prompts, cfgs)]
    for b in (1, 3, 4, 16):
        got = []
        for s in range(0, len(prompts), b):
            got.extend(r.root_document.tokens.tolist() for r in gen.generate_batch(prompts[s : s + b], cfgs[s : s + b], corpus))
        differ = [i for i, (g, w) in enumerate(zip(got, single)) if g != w]
        assert not differ, f"batch {b}: samples {differ} differ from their single stream"


def test_random_weights_full_vocabulary_batched_equals_single_stream() -> None:
    """Flat distributions over all 50,257 ids (top-p cuts near 45,000 ids), mixed prompt lengths,
    batches of 1, 3, 4 and 16. A batched forward's logits differ from a single row's in the last
    bits (MKL rounds 1-3 rows and 4+ rows differently: up to 8e-7 here); with inverse-CDF
    sampling sample 1 (top-p 0.9) took another token at its second step in batches of 4 and 16."""
    gen = LinkedDocumentGenerator(_random_model(active=False), enc.encode_ordinary, enc.decode)
    prompts = [f"# Entity {i}\n\nEntity {i} is a city" + " x" * (i % 9) for i in range(16)]
    _check(gen, prompts, _configs(16, 8))


def test_random_weights_corpus_path_batched_equals_single_stream(small_corpus) -> None:  # type: ignore[no-untyped-def]
    """The default corpus path (targets ``known``) with an active vocabulary that lacks some
    title tokens: a constrained row whose allowed ids are all inactive was left unconstrained by
    a batched step but, in the single stream, fell back to the first active id (every sample
    differed, even in a batch of 1)."""
    gen = LinkedDocumentGenerator(_random_model(active=True), enc.encode_ordinary, enc.decode)
    with DocumentCorpus(small_corpus[1]) as corpus:
        titles = corpus.titles()
        prompts = [
            f"# Entity {i}\n\nEntity {i} is a city" + " x" * (i % 5) + f" near [{titles[i % len(titles)]}](" for i in range(16)
        ]
        _check(gen, prompts, _configs(16, 16), corpus)


def _target(logits: np.ndarray, temperature: float, top_k: int | None, top_p: float | None) -> np.ndarray:
    """The distribution sample_token should sample, computed independently in float64: softmax
    of logits / T over the top-k ids, then the smallest prefix (by decreasing probability) whose
    mass reaches top_p."""
    x = logits.astype(np.float64) / temperature
    keep = np.isfinite(x)
    if top_k is not None:
        kth = np.sort(x[keep])[::-1][min(top_k, keep.sum()) - 1]
        keep &= x >= kth
    p = np.where(keep, np.exp(x - x[keep].max()), 0.0)
    p /= p.sum()
    if top_p is not None:
        order = np.argsort(-p, kind="stable")
        before = np.cumsum(p[order]) - p[order]
        mask = np.zeros_like(keep)
        mask[order[before < top_p]] = True
        p = np.where(mask, p, 0.0)
        p /= p.sum()
    return p


@pytest.mark.parametrize(
    ("n", "temperature", "top_k", "top_p"),
    [(7, 1.0, None, None), (7, 0.7, 4, None), (7, 1.3, None, 0.8), (12, 1.0, 6, 0.9), (2, 1.0, None, None)],
)
def test_race_samples_the_target_distribution(n: int, temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Chi-square goodness of fit of 30,000 draws (one generator, rows sampled together and one
    by one) against the target distribution; a -inf logit is never drawn."""
    g = torch.Generator().manual_seed(n * 31 + (top_k or 0))
    logits = torch.randn(n, generator=g) * 0.8
    if n > 2:
        logits[1] = float("-inf")
    want = _target(logits.numpy(), temperature, top_k, top_p)
    draws = 30_000
    gen = torch.Generator().manual_seed(5)
    rows = sample_rows(
        logits.expand(draws - 2000, n),
        [temperature] * (draws - 2000),
        [top_k] * (draws - 2000),
        [gen] * (draws - 2000),
        [top_p] * (draws - 2000),
    )
    rows += [sample_token(logits, temperature, top_k, top_p, gen) for _ in range(2000)]
    counts = np.bincount(rows, minlength=n)
    assert counts[want == 0].sum() == 0
    live = want > 0
    assert live.sum() >= 2
    stat, pval = chisquare(counts[live], want[live] * draws)
    assert pval > 1e-4, (counts.tolist(), (want * draws).round(1).tolist(), stat)


def test_race_draws_a_fixed_number_of_uniforms() -> None:
    """Every race takes 2 ceil(sqrt(n)) uniforms (rounded up to 16) whatever the logits, one race
    a token unless a top-p row's winner falls outside its set (then it races again); greedy
    takes none."""
    assert race_shape(1650) == (41, 41, 96) and race_shape(50257) == (224, 225, 464) and race_shape(1) == (1, 1, 16)
    # (a top-p row races again when its winner is outside the kept set: a multiple of that)
    for logits, kw in [(torch.randn(1650), {}), (torch.randn(1650), {"top_k": 3}), (torch.zeros(1650), {"top_p": 0.9999})]:
        g, ref = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
        sample_token(logits, 1.0, generator=g, **kw)
        torch.rand(96, generator=ref, dtype=torch.float64)
        assert torch.equal(g.get_state(), ref.get_state())
    g = torch.Generator().manual_seed(1)
    state = g.get_state()
    sample_token(torch.randn(50), 0.0, generator=g)
    assert torch.equal(g.get_state(), state)
