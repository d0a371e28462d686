"""KV-cache decode with --attention flex vs sdpa (issue 18): tokens/s, CPU or CUDA, fp32/bf16.

Model: 4 layers, d=256, 4 heads, GPT-2 vocabulary, random weights. Context: a 64-token root
linked to two 64-token documents (cross-doc-link mask), then ``--tokens`` greedy decode steps
through ``ContextRunner`` (the generator's path). The flex path builds one BlockMask per context
structure (counted) and slices it at the query block every step. ``--eager`` uses the eager
flex kernel (a slow reference) instead of ``torch.compile(flex_attention)``.

    python packages/ds2ds-gen/bench/bench_flex.py [--device cuda] [--dtype bfloat16] [--eager] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time

import torch
from ds2ds_gen.context_runner import ContextRunner
from ds2ds_gen.document_context import DocumentContext
from ds2ds_gen.model import DS2DSModel, ModelConfig
from ds2ds_gen.tokenizer import get_encoding


def run(attention: str, device: str, dtype: torch.dtype, tokens: int, eager: bool) -> dict[str, float]:
    enc = get_encoding()
    torch.manual_seed(0)
    model = DS2DSModel(ModelConfig(d_model=256, n_layers=4, n_heads=4, max_doc_len=1024, max_seq_len=2048))
    model = model.to(device=device, dtype=dtype).eval()
    model.compile_flex = not eager
    rng = random.Random(0)
    ctx = DocumentContext(1024, 512, "drop_oldest", enc.encode_ordinary, enc.decode, device)
    ctx.initialize_root([rng.randrange(50000) for _ in range(64)], "Root")
    for t in ("A", "B"):
        ctx.add_corpus_document(t, torch.randint(0, 50000, (64,)).numpy(), "Root")
        ctx.add_link("Root", t, 10)
    ctx.switch_to_document("Root")
    r = ContextRunner(model, ctx, use_kv_cache=True, attention=attention, dtype=dtype)
    t_first = time.perf_counter()
    ctx.append_token_to_current(int(torch.argmax(r.next_logits())))  # prefill (+ compile)
    first = time.perf_counter() - t_first
    for _ in range(3):  # warm-up steps
        ctx.append_token_to_current(int(torch.argmax(r.next_logits())))
    if device == "cuda":
        torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(tokens):
        ctx.append_token_to_current(int(torch.argmax(r.next_logits())))
    if device == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "attention": attention,
        "tokens_per_s": round(tokens / wall, 1),
        "cpu_ms_per_token": round(cpu / tokens * 1e3, 2),
        "first_call_s": round(first, 2),
        "block_masks_built": model.flex_block_masks_built,
        "flex_calls": model.flex_calls,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eager", action="store_true")
    ap.add_argument("--only", default="sdpa,flex")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dt = {"float32": torch.float32, "bfloat16": torch.bfloat16}[a.dtype]
    rows = []
    for att in a.only.split(","):
        row = run(att, a.device, dt, a.tokens, a.eager)
        row.update(device=a.device, dtype=a.dtype, eager_flex=a.eager, load_avg_1m=os.getloadavg()[0])
        rows.append(row)
        print(json.dumps(row), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rows": rows, "torch": torch.__version__}, f, indent=1)


if __name__ == "__main__":
    main()
