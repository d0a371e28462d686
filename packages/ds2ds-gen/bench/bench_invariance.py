"""Batch invariance on random weights (issue 18): how many batched samples differ from their
single stream, and how many of their tokens.

Model: the bench shape (``bench_batched.py``: 2 layers, d=128, GPT-2 vocabulary with a 1,650-id
active head), random weights, so every next-token distribution is near flat (the hard case:
the sampled token's neighbours in the CDF and the top-p cut are a float rounding apart).
``--samples`` samples with mixed prompt lengths (1-9 extra words), temperature 1, top-p 0.9
on every second sample, top-k 40 on every third, EOS disabled; each sample is generated once
alone (``generate``) and then in batches of each ``--batches`` size (``generate_batch``).
A sample *differs* when its root tokens differ from its single stream; a *token differs* at a
position where the two disagree (after the first difference the rest of the sample is another
text, so those count too). ``--corpus synth``: the default corpus path (link targets
constrained to the corpus titles and the sample's own documents, prompts ending inside a link).

    python packages/ds2ds-gen/bench/bench_invariance.py [--samples 48] [--tokens 64] [--batches 3,4,16] [--corpus synth] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
from ds2ds_gen.generation_config import GenerationConfig
from ds2ds_gen.linked_doc_generator import LinkedDocumentGenerator
from ds2ds_gen.model import DS2DSModel, ModelConfig
from ds2ds_gen.tokenizer import get_encoding


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=48)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--batches", default="3,4,16")
    ap.add_argument("--corpus", default=None, help="'synth': the default corpus path (known targets)")
    ap.add_argument("--full-vocab", action="store_true", help="no active vocabulary: all 50,257 ids live (as GPT-2)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    torch.set_num_threads(1)
    enc = get_encoding()
    torch.manual_seed(0)
    model = DS2DSModel(ModelConfig(d_model=128, n_layers=2, n_heads=4, max_doc_len=256, max_seq_len=2048)).eval()
    with torch.no_grad():
        bias = torch.full((model.cfg.vocab_size,), -1e4)
        bias[torch.randperm(50256)[:1650]] = 0.0
        if not a.full_vocab:
            model.logit_bias.copy_(bias)
    corpus = None
    n = a.samples
    words = " and a river".split()
    if a.corpus == "synth":
        import tempfile
        from pathlib import Path

        from ds2ds_gen.corpus import DocumentCorpus, pretokenize
        from ds2ds_gen.synth import SynthConfig, write_synthetic_corpus

        tmp = Path(tempfile.mkdtemp(prefix="ds2ds-inv-"))
        write_synthetic_corpus(tmp / "md", SynthConfig(regions=4, rivers=4, cities=30, people=30, organizations=10))
        pretokenize(tmp / "md", tmp / "corpus")
        corpus = DocumentCorpus(tmp / "corpus")
        titles = corpus.titles()
        with torch.no_grad():  # "](" likely, so rows are often inside a (constrained) link target
            model.logit_bias[16151] = 3.0
        prompts = [
            f"# Entity {i}\n\nEntity {i} is a city" + " ".join(words[: i % 4]) + f" near [{titles[i % len(titles)]}]("
            for i in range(n)
        ]
    elif a.corpus is not None:
        raise SystemExit("Error: --corpus: only 'synth' is supported here")
    else:
        prompts = [f"# Entity {i}\n\nEntity {i} is a city" + " x" * (i % 9) for i in range(n)]
    model.use_active_vocab(not a.full_vocab)
    gen = LinkedDocumentGenerator(model, enc.encode_ordinary, enc.decode)
    cfgs = [
        GenerationConfig(
            max_new_tokens=a.tokens,
            temperature=1.0,
            top_p=0.9 if i % 2 else None,
            top_k=40 if i % 3 == 2 else None,
            seed=i,
            eos_token_id=50256 + 1,
            max_tokens_per_document=256,
            max_context_length=512,
            max_auxiliary_documents=0,
        )
        for i in range(n)
    ]
    t0 = time.perf_counter()
    single = [gen.generate(prompt=p, config=c, corpus=corpus).root_document.tokens.tolist() for p, c in zip(prompts, cfgs)]
    rows = []
    for b in [int(x) for x in a.batches.split(",")]:
        got: list[list[int]] = []
        for s in range(0, n, b):
            got.extend(r.root_document.tokens.tolist() for r in gen.generate_batch(prompts[s : s + b], cfgs[s : s + b], corpus))
        diff_samples = sum(g != w for g, w in zip(got, single))
        diff_tokens = sum(sum(x != y for x, y in zip(g, w)) + abs(len(g) - len(w)) for g, w in zip(got, single))
        total = n * a.tokens  # generated tokens (EOS disabled, no auxiliary documents in the root)
        rows.append(
            {"batch": b, "samples": n, "samples_differing": diff_samples, "tokens": total, "tokens_differing": diff_tokens}
        )
        which = [i for i, (g, w) in enumerate(zip(got, single)) if g != w]
        rows[-1]["which"] = which
        print(
            f"batch {b:3d}: {diff_samples}/{n} samples differ from single stream, {diff_tokens}/{total} tokens {which}",
            flush=True,
        )
    print(f"({time.perf_counter() - t0:.1f} s, load {os.getloadavg()[0]:.1f})")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"tokens": a.tokens, "corpus": a.corpus, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
