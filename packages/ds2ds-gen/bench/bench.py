"""ds2ds-gen benchmark: decode speed, end-to-end linked generation, link quality.

Prints a table; ``--json PATH`` writes the figures; ``--quick`` finishes in well under a minute.

1. Decode tokens/s of the tiny configuration (4 layers, d=256, GPT-2 vocabulary, random weights)
   with a root document linked to two documents (cross-doc-link mask): KV cache vs full
   recomputation, measured in the same run; fp32 and bf16; on CUDA also FlexAttention.
2. End to end: a 256-token root with 4 auxiliary documents (2 from the corpus, 2 generated,
   64 tokens each). The model's logits are computed at every step (real cost) but the next token
   is forced from a script so that the links happen; time of the whole ``generate`` call.
3. Quality of a trained tiny checkpoint (``--checkpoint``, with ``--corpus``): share of generated
   documents with at least one well-formed link to a title that exists in the corpus.

    python packages/ds2ds-gen/bench/bench.py [--quick] [--json out.json] [--checkpoint CKPT --corpus DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import tempfile
import time
from pathlib import Path

import torch
from ds2ds_gen.context_runner import ContextRunner
from ds2ds_gen.corpus import DocumentCorpus, pretokenize
from ds2ds_gen.document_context import DocumentContext
from ds2ds_gen.generation_config import GenerationConfig
from ds2ds_gen.link_detector import LinkDetector
from ds2ds_gen.linked_doc_generator import LinkedDocumentGenerator, generate_linked
from ds2ds_gen.model import DS2DSModel, ModelConfig, load_checkpoint
from ds2ds_gen.sampling import sample_token
from ds2ds_gen.single_doc_generator import make_runner
from ds2ds_gen.synth import SynthConfig, make_entities, write_synthetic_corpus
from ds2ds_gen.tokenizer import get_encoding

enc = get_encoding()


def bench_model(device: str, seed: int = 0) -> DS2DSModel:
    torch.manual_seed(seed)
    return DS2DSModel(ModelConfig(d_model=256, n_layers=4, n_heads=4, max_doc_len=1024, max_seq_len=2048)).to(device).eval()


def linked_context(device: str) -> DocumentContext:
    """Root (64 prompt tokens) linked to two finished 64-token documents."""
    rng = random.Random(0)
    ctx = DocumentContext(2048, 1024, "drop_oldest", enc.encode_ordinary, enc.decode, device)
    ctx.initialize_root([rng.randrange(50000) for _ in range(64)], "Root")
    for t in ("A", "B"):
        ctx.add_corpus_document(t, torch.randint(0, 50000, (64,)).numpy(), "Root")
        ctx.add_link("Root", t, 10)
    ctx.switch_to_document("Root")
    return ctx


def decode_rate(
    model: DS2DSModel,
    n: int,
    *,
    kv: bool,
    attention: str = "sdpa",
    dtype: torch.dtype = torch.float32,
    sampled: bool = False,
    cpu_times: dict | None = None,
    name: str = "",
) -> float:
    """Tokens/s of ``n`` decode steps (wall clock). ``sampled``: pick tokens with
    :func:`sample_token` (temperature 0.8, top-k 40, top-p 0.95, seeded) instead of argmax.
    ``cpu_times[name]`` receives the process CPU milliseconds per token of the timed loop (all
    threads together: with ``--threads 1`` it is the wall time a quiet core would give)."""
    device = str(next(model.parameters()).device)
    m = model.to(dtype)
    ctx = linked_context(device)
    runner = ContextRunner(m, ctx, use_kv_cache=kv, attention=attention, dtype=dtype)
    gen = torch.Generator().manual_seed(0)

    def pick(logits: torch.Tensor) -> int:
        if sampled:
            return sample_token(logits, 0.8, top_k=40, top_p=0.95, generator=gen)
        return int(torch.argmax(logits))

    ctx.append_token_to_current(pick(runner.next_logits()))  # prefill / warm-up, not timed
    for _ in range(3):
        ctx.append_token_to_current(pick(runner.next_logits()))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        ctx.append_token_to_current(pick(runner.next_logits()))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if cpu_times is not None:
        cpu_times[name] = cpu / n * 1e3
    model.float()
    return n / wall


class ForcedRunner:
    """Real logits every step (the cost is real), next token forced from per-document scripts."""

    def __init__(self, inner: ContextRunner, scripts: dict[str, list[int]]) -> None:
        self.inner, self.scripts, self.ctx = inner, scripts, inner.ctx

    def next_logits(self) -> torch.Tensor:
        real = self.inner.next_logits()
        doc = self.ctx.current_document
        s = self.scripts[doc.title]
        i = len(doc.tokens) - doc.prompt_len
        out = torch.full_like(real, -1e9)
        out[s[i] if i < len(s) else 50256] = 0.0
        return out


def end_to_end(model: DS2DSModel, corpus: DocumentCorpus, repeats: int) -> dict:
    titles = corpus.titles()
    a, b = titles[0], titles[1]
    filler = enc.encode_ordinary(" the city of old ships and quiet rivers" * 40)
    root = list(filler[:40]) + enc.encode_ordinary(f" [{a}]({a}) and [New One](New One) then") + list(filler[40:90])
    root += enc.encode_ordinary(f" [{b}]({b}), [New Two](New Two).") + list(filler[90:])
    prompt = enc.encode_ordinary("# Root\n\n")
    root = root[: 256 - len(prompt) - 1]
    scripts = {"Root": root, "New One": list(filler[: 64 - 6]), "New Two": list(filler[5 : 64 - 1])}
    cfg = GenerationConfig(
        max_new_tokens=256, temperature=0.0, max_tokens_per_document=512, max_context_length=2048, max_auxiliary_documents=4
    )
    gen = LinkedDocumentGenerator(
        model, enc.encode_ordinary, enc.decode, runner_factory=lambda m, c, g: ForcedRunner(make_runner(m, c, g), scripts)
    )
    times, res = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = gen.generate(prompt_tokens=prompt, corpus=corpus, config=cfg)
        times.append(time.perf_counter() - t0)
    assert res is not None
    kinds = [d.source_kind for d in res.auxiliary_documents]
    return {
        "seconds": min(times),
        "root_tokens": len(res.root_document.tokens),
        "aux_corpus": kinds.count("corpus"),
        "aux_generated": kinds.count("generated"),
        "new_tokens": res.new_tokens,
    }


def quality(ckpt: Path, corpus_dir: Path, n: int, seed: int = 0) -> dict:
    model, extra = load_checkpoint(ckpt)
    det = LinkDetector()
    rng = random.Random(seed)
    with DocumentCorpus(corpus_dir) as corpus:
        existing = set(corpus.titles())
        # Novel entities (not in the corpus) plus known ones, as article openings.
        names = list(make_entities(SynthConfig(regions=3, rivers=3, cities=n, people=n, organizations=n, seed=999)))
        novel = [t for t in names if t not in existing]
        rng.shuffle(novel)
        known = rng.sample(sorted(existing), n)
        stats = {}
        for label, titles in (("novel", novel[:n]), ("known", known)):
            good = total = 0
            for i, t in enumerate(titles):
                res = generate_linked(
                    model,
                    prompt=f"# {t}\n\n",
                    corpus=corpus,
                    max_new_tokens=80,
                    temperature=0.8,
                    top_k=40,
                    max_tokens_per_document=128,
                    max_context_length=1024,
                    max_auxiliary_documents=4,
                    seed=seed + i,
                )
                for d in res.get_all_documents():
                    if d.source_kind != "generated":
                        continue
                    total += 1
                    links = det.find_all(d.tokens)
                    good += any(x.target.strip() in existing for x in links)
            stats[label] = {"docs": total, "with_existing_link": good, "share": good / max(1, total)}
    return {**stats, "training": extra.get("training", {})}


def set_active_vocab(model: DS2DSModel, on: bool) -> int:
    """Make ``model`` look like one trained by ``ds2ds-gen train`` on the synthetic corpus: ids
    absent from it carry a -1e4 logit bias, and the exact active-vocabulary head skips them."""
    with torch.no_grad():
        if not on:
            model.logit_bias.zero_()
            return model.use_active_vocab(False)
        vocab = sorted({t for text in make_entities(SynthConfig()).values() for t in enc.encode_ordinary(text)} | {50256})
        model.logit_bias.fill_(-1e4)
        model.logit_bias[torch.tensor(vocab, device=model.logit_bias.device)] = 0.0
    return model.use_active_vocab(True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--checkpoint", type=Path, help="trained checkpoint for the quality figure")
    ap.add_argument("--corpus", type=Path, help="pretokenized corpus of that checkpoint")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-e2e", action="store_true")
    ap.add_argument("--flex", action="store_true", help="also time FlexAttention (always on CUDA)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = args.device
    n_kv, n_full = (32, 8) if args.quick else (256, 48)
    results: dict = {
        "device": dev,
        "threads": args.threads,
        "torch": torch.__version__,
        "machine": platform.machine(),
        "quick": args.quick,
    }
    if dev.startswith("cuda"):
        results["gpu"] = torch.cuda.get_device_name()
    results["load_average_start"] = os.getloadavg()
    model = bench_model(dev)
    cpu: dict = {}
    rates = {
        "kv_fp32": decode_rate(model, n_kv, kv=True, cpu_times=cpu, name="kv_fp32"),
        "full_recompute_fp32": decode_rate(model, n_full, kv=False, cpu_times=cpu, name="full_recompute_fp32"),
        "kv_bf16": decode_rate(model, n_kv, kv=True, dtype=torch.bfloat16, cpu_times=cpu, name="kv_bf16"),
        "kv_fp32_sampled": decode_rate(model, n_kv, kv=True, sampled=True, cpu_times=cpu, name="kv_fp32_sampled"),
    }
    if dev.startswith("cuda") or args.flex:
        try:
            rates["full_recompute_flex_fp32"] = decode_rate(model, n_full, kv=False, attention="flex")
        except Exception as e:  # report, do not fail the whole benchmark
            results["flex_error"] = f"{type(e).__name__}: {str(e)[:200]}"
    results["active_vocab"] = set_active_vocab(model, True)
    rates["kv_fp32_active_vocab"] = decode_rate(model, n_kv, kv=True)
    rates["full_recompute_fp32_active_vocab"] = decode_rate(model, n_full, kv=False)
    set_active_vocab(model, False)
    results["decode_tokens_per_s"] = rates
    results["decode_cpu_ms_per_token"] = cpu
    if not args.skip_e2e:
        with tempfile.TemporaryDirectory() as tmp:
            write_synthetic_corpus(Path(tmp) / "md", SynthConfig(regions=3, rivers=3, cities=10, people=10, organizations=5))
            pretokenize(Path(tmp) / "md", Path(tmp) / "c")
            with DocumentCorpus(Path(tmp) / "c") as corpus:
                model = model.float()
                end_to_end(model, corpus, 1)  # warm-up
                results["end_to_end"] = end_to_end(model, corpus, 1 if args.quick else 3)
                set_active_vocab(model, True)
                results["end_to_end_active_vocab"] = end_to_end(model, corpus, 1 if args.quick else 3)
                set_active_vocab(model, False)
    if args.checkpoint and args.corpus:
        results["quality"] = quality(args.checkpoint, args.corpus, 5 if args.quick else 30)

    results["load_average_end"] = os.getloadavg()
    print(
        f"ds2ds-gen benchmark  device={dev} threads={args.threads} torch={torch.__version__}  "
        f"load average {results['load_average_start'][0]:.2f} -> {results['load_average_end'][0]:.2f}"
    )
    print(f"{'figure':44s} {'value':>12s}")
    for k, v in rates.items():
        extra = f"   (CPU {cpu[k]:.2f} ms/token)" if k in cpu else ""
        print(f"{'decode tokens/s ' + k:44s} {v:12.1f}{extra}")
    print(f"{'KV cache speed-up over full recomputation':44s} {rates['kv_fp32'] / rates['full_recompute_fp32']:11.1f}x")
    if "end_to_end" in results:
        e = results["end_to_end"]
        label = f"end-to-end s (root {e['root_tokens']} tok, {e['aux_corpus']} corpus + {e['aux_generated']} generated aux)"
        print(f"{label:44s} {e['seconds']:12.2f}")
        print(f"{'end-to-end s, active-vocabulary head':44s} {results['end_to_end_active_vocab']['seconds']:12.2f}")
    if "quality" in results:
        for label in ("novel", "known"):
            q = results["quality"][label]
            print(
                f"{'docs with link to existing title (' + label + ')':44s} {q['share']:11.1%} ({q['with_existing_link']}/{q['docs']})"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
