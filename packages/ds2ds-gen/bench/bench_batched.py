"""Batched linked decoding throughput (issue 18): tokens/s at batch 1, 4, 16 (and 64) on CPU.

Model: the shape ``ds2ds-gen train`` makes by default (2 layers, d=128, 4 heads, GPT-2
vocabulary with a 1,650-id active head as a trained checkpoint has), random weights. Each sample
is a root prompt (``# Title`` + a short sentence) sampled at temperature 1 for ``--tokens`` new
tokens (EOS disabled so every sample runs the full length). Batch 1 runs ``generate`` once per
sample (single stream); batch B runs ``generate_batch`` on B samples. The same samples (same
seeds) are used at every batch size and their outputs are compared with the single-stream ones.

    python packages/ds2ds-gen/bench/bench_batched.py [--batches 1,4,16,64] [--tokens 64] [--json out.json]

``--corpus DIR`` (a pretokenized corpus; ``--corpus synth`` makes a small one in a temporary
folder) runs the default corpus path instead: link targets ``auto`` = ``known`` (targets
constrained to the corpus titles and the sample's own documents), top-p 0.9 on every second
sample. ``--quick``: batches 1,16 and 32 tokens.
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
    ap.add_argument("--batches", default="1,4,16,64")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    ap.add_argument("--corpus", default=None, help="corpus folder, or 'synth': the default corpus path (known targets)")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.batches, a.tokens = "1,16", 32
    torch.set_num_threads(a.threads)
    enc = get_encoding()
    torch.manual_seed(0)
    model = DS2DSModel(ModelConfig(d_model=128, n_layers=2, n_heads=4, max_doc_len=256, max_seq_len=2048)).eval()
    with torch.no_grad():
        bias = torch.full((model.cfg.vocab_size,), -1e4)
        bias[torch.randperm(50256)[:1650]] = 0.0
        model.logit_bias.copy_(bias)
    model.use_active_vocab(True)
    gen = LinkedDocumentGenerator(model, enc.encode_ordinary, enc.decode)
    batches = [int(x) for x in a.batches.split(",")]
    n = max(batches)
    corpus = None
    if a.corpus is not None:
        import tempfile
        from pathlib import Path

        from ds2ds_gen.corpus import DocumentCorpus, pretokenize
        from ds2ds_gen.synth import SynthConfig, write_synthetic_corpus

        folder = Path(a.corpus)
        if a.corpus == "synth":
            tmp = Path(tempfile.mkdtemp(prefix="ds2ds-bench-"))
            write_synthetic_corpus(tmp / "md", SynthConfig(regions=4, rivers=4, cities=30, people=30, organizations=10))
            pretokenize(tmp / "md", tmp / "corpus")
            folder = tmp / "corpus"
        corpus = DocumentCorpus(folder)
        titles = corpus.titles()
        with torch.no_grad():  # "](" likely, so rows are often inside a (constrained) link target
            model.logit_bias[16151] = 3.0
        model.use_active_vocab(True)
        prompts = [f"# Entity {i}\n\nEntity {i} is a city near [{titles[i % len(titles)]}](" for i in range(n)]
    else:
        prompts = [f"# Entity {i}\n\nEntity {i} is a city" for i in range(n)]
    cfgs = [
        GenerationConfig(
            max_new_tokens=a.tokens,
            temperature=1.0,
            top_p=0.9 if corpus is not None and i % 2 else None,
            seed=i,
            eos_token_id=50256 + 1,
            max_tokens_per_document=256,
            max_context_length=512,
            max_auxiliary_documents=0 if corpus is not None else 5,
        )
        for i in range(n)
    ]
    rows = []
    single: dict[int, list[int]] = {}
    for b in batches:
        m = b if b > 1 else min(n, 16)  # batch 1: 16 single-stream samples are enough for a rate
        t0, c0 = time.perf_counter(), time.process_time()
        if b == 1:
            res = [gen.generate(prompt=p, config=c, corpus=corpus) for p, c in zip(prompts[:m], cfgs[:m])]
        else:
            res = []
            for s in range(0, m, b):
                res.extend(gen.generate_batch(prompts[s : s + b], cfgs[s : s + b], corpus=corpus))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        toks = sum(r.new_tokens for r in res)
        same = None
        for i, r in enumerate(res):
            if b == 1:
                single[i] = r.root_document.tokens.tolist()
            elif i in single:
                same = (same is not False) and single[i] == r.root_document.tokens.tolist()
        rows.append(
            {
                "batch": b,
                "samples": m,
                "new_tokens": toks,
                "wall_s": round(wall, 3),
                "tokens_per_s": round(toks / wall, 1),
                "cpu_tokens_per_s": round(toks / cpu, 1),
                "equal_to_single_stream": same,
                "load_avg_1m": os.getloadavg()[0],
            }
        )
        print(
            f"batch {b:3d}: {toks} tokens in {wall:.2f}s = {toks / wall:8.1f} tokens/s "
            f"({toks / cpu:8.1f} per CPU s), equal to single stream: {same}, load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    base = rows[0]["tokens_per_s"]
    for r in rows:
        r["speedup_vs_batch1"] = round(r["tokens_per_s"] / base, 2)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(
                {"threads": a.threads, "tokens": a.tokens, "corpus": a.corpus, "rows": rows, "torch": torch.__version__},
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
