"""Command line of ds2ds-gen: corpus synth, pretokenize, train, convert-gpt2, generate, batch.

Every user error (bad checkpoint, broken corpus, prompt too long, bad option) prints one
``Error: ...`` line and exits 1 (datacore's CliGroup); no tracebacks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click
from datacore import CliGroup, GenerateOptions, generate_options, run_generate

from . import __version__
from .errors import ConfigError

__all__ = ["main"]


@click.group(cls=CliGroup, help="Linked-document generation with a small document-aware transformer.")
@click.version_option(__version__, prog_name="ds2ds-gen")
def main() -> None:
    """Entry point of the `ds2ds-gen` command."""


@main.group(cls=CliGroup)
def corpus() -> None:
    """Make corpora."""


@corpus.command("synth")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--regions", type=click.IntRange(min=1), default=24, show_default=True)
@click.option("--rivers", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--cities", type=click.IntRange(min=1), default=700, show_default=True)
@click.option("--people", type=click.IntRange(min=1), default=900, show_default=True)
@click.option("--organizations", type=click.IntRange(min=1), default=400, show_default=True)
def corpus_synth(out: Path, **kw: Any) -> None:
    """Write a synthetic linked markdown corpus (one .md per entity) into OUT."""
    from .synth import SynthConfig, write_synthetic_corpus

    n = write_synthetic_corpus(out, SynthConfig(**kw))
    click.echo(f"{n} articles -> {out}", err=True)


@corpus.command("prompts")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--per-kind", type=click.IntRange(1, 1000), default=4, show_default=True)
@click.option("--seed", type=int, default=999, show_default=True)
def corpus_prompts(out: Path, per_kind: int, seed: int) -> None:
    """Write a batch prompts file OUT: novel roots of every article type of the default
    synthetic corpus, every second one linking to a novel entity (an auxiliary document)."""
    from .synth import root_prompts

    rows = root_prompts(per_kind, seed=seed)
    out.write_text("".join(p.replace("\n", "\\n") + "\n" for _, _, p in rows), encoding="utf-8")
    click.echo(f"{len(rows)} prompts ({per_kind} per article type) -> {out}", err=True)


@main.command()
@click.argument("md_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--shard-tokens", type=click.IntRange(min=1), default=1 << 20, show_default=True)
@click.option(
    "--headings",
    type=click.Choice(["title", "bpe"]),
    default="title",
    show_default=True,
    help="Tokenize a '# Title' line as '# ' + the title's own tokens (title) or as plain GPT-2 BPE (bpe, for GPT-2 weights).",
)
def pretokenize(md_dir: Path, out: Path, shard_tokens: int, headings: str) -> None:
    """Tokenize the markdown files of MD_DIR into a corpus folder OUT (shards + index.json)."""
    from .corpus import pretokenize as run

    idx = run(md_dir, out, shard_tokens=shard_tokens, headings=headings)
    toks = sum(s["tokens"] for s in idx["shards"])
    click.echo(f"{len(idx['documents'])} documents, {toks} tokens, {len(idx['shards'])} shard(s) -> {out}", err=True)


@main.command("convert-gpt2")
@click.argument("hf_dir", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), required=True, help="Checkpoint folder.")
def convert_gpt2(hf_dir: Path, out: Path) -> None:
    """Turn a Hugging Face GPT-2 folder (config.json + model.safetensors) into a ds2ds-gen
    checkpoint folder OUT (architecture gpt2) for generate/batch --model."""
    from .hf_gpt2 import convert_hf_gpt2

    cfg = convert_hf_gpt2(hf_dir, out)
    click.echo(f"GPT-2 {cfg.n_layers} layers, d={cfg.d_model}, {cfg.n_parameters():,} parameters -> {out}", err=True)


@main.command()
@click.argument("corpus_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), required=True, help="Checkpoint folder.")
@click.option("--steps", type=click.IntRange(min=1), default=400, show_default=True)
@click.option(
    "--max-seconds",
    type=click.FloatRange(min=1),
    default=None,
    help="Opt-in wall-clock cap (the run is then not reproducible); default: --steps only.",
)
@click.option("--d-model", type=click.IntRange(min=8), default=128, show_default=True)
@click.option("--layers", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--heads", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--seq-len", type=click.IntRange(min=16), default=192, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=12, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=3e-3, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quiet", "-q", is_flag=True)
def train(
    corpus_dir: Path,
    out: Path,
    steps: int,
    max_seconds: float | None,
    d_model: int,
    layers: int,
    heads: int,
    seq_len: int,
    batch_size: int,
    lr: float,
    threads: int,
    seed: int,
    quiet: bool,
) -> None:
    """Train the small model on a pretokenized CORPUS_DIR; write a checkpoint folder."""
    from .model import ModelConfig
    from .train import TrainConfig
    from .train import train as run

    mc = ModelConfig(d_model=d_model, n_layers=layers, n_heads=heads, max_doc_len=max(256, seq_len), max_seq_len=2048)
    cfg = TrainConfig(
        model=mc,
        seq_len=seq_len,
        batch_size=batch_size,
        steps=steps,
        max_seconds=max_seconds,
        lr=lr,
        warmup=min(30, steps),
        threads=threads,
        seed=seed,
    )
    s = run(corpus_dir, out, cfg, log=None if quiet else (lambda m: click.echo(m, err=True)))
    if s["stopped_by"] == "max_seconds":
        click.echo(f"warning: stopped by --max-seconds after {s['steps']} of {steps} steps", err=True)
    click.echo(f"{s['steps']} steps in {s['seconds']}s, loss {s['first_loss']:.2f} -> {s['final_loss']:.2f} -> {out}", err=True)


def _gen_options(f: Any) -> Any:
    opts = [
        click.option(
            "--corpus",
            "corpus_dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            help="Pretokenized corpus folder (linked documents found there are not generated).",
        ),
        click.option("--max-new-tokens", type=click.IntRange(min=1), default=128, show_default=True),
        click.option("--temperature", type=float, default=0.8, show_default=True, help="0 = greedy."),
        click.option("--top-k", type=click.IntRange(min=1), default=None),
        click.option("--top-p", type=float, default=None),
        click.option("--max-tokens-per-document", type=click.IntRange(min=2), default=256, show_default=True),
        click.option("--max-context-length", type=click.IntRange(min=2), default=2048, show_default=True),
        click.option("--max-auxiliary-documents", type=click.IntRange(min=0), default=5, show_default=True),
        click.option("--max-link-depth", type=click.IntRange(min=0), default=1, show_default=True),
        click.option("--no-fallback", is_flag=True, help="Do not generate documents missing from the corpus."),
        click.option(
            "--eviction-policy", type=click.Choice(["drop_oldest", "stop_new"]), default="drop_oldest", show_default=True
        ),
        click.option(
            "--mask-type", type=click.Choice(["cross_doc_link", "doc_causal"]), default="cross_doc_link", show_default=True
        ),
        click.option("--no-kv-cache", is_flag=True, help="Recompute the whole context every token (slow; for checking)."),
        click.option("--attention", type=click.Choice(["sdpa", "flex"]), default="sdpa", show_default=True),
        click.option("--dtype", type=click.Choice(["float32", "bfloat16"]), default="float32", show_default=True),
        click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or mps."),
        click.option("--stop", "stop", multiple=True, help="Stop a document when its text contains this (repeatable)."),
        click.option("--logprobs", is_flag=True, help="Record each generated token's log-probability."),
        click.option(
            "--link-targets",
            type=click.Choice(["auto", "free", "corpus", "known"]),
            default="auto",
            show_default=True,
            help="Link targets while written: free (any), corpus (corpus titles; needs --corpus), known (corpus titles "
            "and the sample's own documents), auto (known with --corpus, else free).",
        ),
        click.option(
            "--lead",
            type=click.Choice(["title", "none"]),
            default="title",
            show_default=True,
            help="title: a document starting from a bare '# Title' heading starts its body with the title, as corpus "
            "articles do; none: the model writes the whole body.",
        ),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _check_device(device: str) -> None:
    import torch

    kind = device.split(":", 1)[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available on this machine")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"--device {device}: MPS is not available on this machine")


def _gen_config(kw: dict[str, Any], seed: int) -> Any:
    from .generation_config import GenerationConfig

    return GenerationConfig(
        max_new_tokens=kw["max_new_tokens"],
        temperature=kw["temperature"],
        top_k=kw["top_k"],
        top_p=kw["top_p"],
        max_tokens_per_document=kw["max_tokens_per_document"],
        max_context_length=kw["max_context_length"],
        max_auxiliary_documents=kw["max_auxiliary_documents"],
        max_link_depth=kw["max_link_depth"],
        allow_corpus_fallback=not kw["no_fallback"],
        eviction_policy=kw["eviction_policy"],
        mask_type=kw["mask_type"],
        use_kv_cache=not kw["no_kv_cache"],
        attention=kw["attention"],
        dtype=kw["dtype"],
        seed=seed,
        device=kw["device"],
        stop=tuple(kw["stop"]),
        logprobs=kw["logprobs"],
        link_targets=kw["link_targets"],
        lead=kw["lead"],
    )


RESULT_FORMAT = "ds2ds-gen-result/1"
_OWN_FILE = re.compile(r"[a-z0-9_]+\.md|graph\.dot|graph\.html")


def _clear_previous_output(out: Path) -> None:
    """Make ``out`` ready for a new ``generate``: a missing or empty folder is fine; a folder
    holding an earlier run's ``result.json`` loses exactly the files that result lists (files
    someone else put there stay); any other non-empty folder is refused."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    entries = list(out.iterdir())
    if not entries:
        return
    manifest = out / "result.json"
    prev: Any = None
    if manifest.is_file():
        try:
            prev = json.loads(manifest.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            prev = None
    files = prev.get("files") if isinstance(prev, dict) else None
    ours = isinstance(prev, dict) and isinstance(files, dict) and (prev.get("format") == RESULT_FORMAT or "root" in prev)
    if not ours:
        raise ConfigError(
            f"--out {out}: folder is not empty and holds no result.json of an earlier "
            f"`ds2ds-gen generate`; choose an empty or new folder"
        )
    for name in [*files.values(), prev.get("graph_file"), prev.get("graph_picture")]:  # type: ignore[union-attr]
        # only plain names of the form this command writes, directly inside out
        if isinstance(name, str) and _OWN_FILE.fullmatch(name) and (out / name).is_file():
            (out / name).unlink()
    manifest.unlink()


@main.command()
@click.option("--model", "model_dir", type=click.Path(path_type=Path), required=True, help="Checkpoint folder.")
@click.option("--prompt", required=True, help="Root prompt; a first line '# Title' names the root document.")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="torch CPU threads (1 is robust on a machine shared with other jobs).",
)
@_gen_options
def generate(model_dir: Path, prompt: str, out: Path, seed: int, threads: int, corpus_dir: Path | None, **kw: Any) -> None:
    """Generate a root document and its linked documents: OUT/<title>_<hash>.md each, and result.json."""
    import torch

    from .corpus import DocumentCorpus
    from .linked_doc_generator import LinkedDocumentGenerator
    from .model import load_checkpoint
    from .tokenizer import get_encoding

    if seed < 0:
        raise ConfigError(f"--seed = {seed}: must be >= 0")
    cfg = _gen_config(kw, seed)
    _check_device(cfg.device)
    torch.set_num_threads(threads)
    model, _ = load_checkpoint(model_dir, device=cfg.device)
    if cfg.dtype == "bfloat16":
        model = model.to(torch.bfloat16)
    enc = get_encoding()
    corpus = DocumentCorpus(corpus_dir) if corpus_dir is not None else None
    try:
        res = LinkedDocumentGenerator(model, enc.encode_ordinary, enc.decode).generate(prompt=prompt, corpus=corpus, config=cfg)
    finally:
        if corpus is not None:
            corpus.close()
    _clear_previous_output(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for d in res.get_all_documents():
        name = f"{d.title_normalized}.md"  # only [a-z0-9_] and a hash: cannot leave OUT
        (out / name).write_text(d.text or "", encoding="utf-8")
        files[d.title] = name
    (out / "graph.dot").write_text(res.to_dot(), encoding="utf-8")
    (out / "graph.html").write_text(
        f"<!doctype html><meta charset=utf-8><title>link graph</title>{res.to_svg()}\n", encoding="utf-8"
    )
    data = {"format": RESULT_FORMAT, **res.to_dict()}
    data["files"] = files
    data["graph_file"] = "graph.dot"
    data["graph_picture"] = "graph.html"
    data["prompt"] = prompt
    (out / "result.json").write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    n_aux = len(res.auxiliary_documents)
    rate = res.new_tokens / res.seconds if res.seconds else 0.0
    click.echo(
        f"root + {n_aux} linked document(s), {res.new_tokens} new tokens in {res.seconds:.2f}s "
        f"({rate:.0f} tokens/s), stop: {res.stop_reason} -> {out}",
        err=True,
    )


@main.command()
@click.option("--model", "model_dir", type=click.Path(path_type=Path), required=True, help="Checkpoint folder.")
@click.option(
    "--prompts",
    "prompts_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="One prompt per line (\\n escapes), or JSONL with a 'prompt' field.",
)
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="torch threads per worker.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1, max=1024),
    default=8,
    show_default=True,
    help="Samples decoded together (one forward per step for all of them).",
)
@click.option(
    "--samples-per-prompt",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Consecutive records (each with its own seed) per prompt.",
)
@_gen_options
@generate_options
def batch(
    model_dir: Path,
    prompts_file: Path,
    threads: int,
    batch_size: int,
    samples_per_prompt: int,
    corpus_dir: Path | None,
    opts: GenerateOptions,
    **kw: Any,
) -> None:
    """Generate many linked-document samples from a prompts file into a datacore dataset (--out)."""
    from .batch import BatchConfig, LinkedDocDatasetGenerator, read_prompts_with_origin

    cfg = _gen_config(kw, 0)
    _check_device(cfg.device)
    prompts = read_prompts_with_origin(prompts_file)
    bc = BatchConfig(
        model=str(model_dir),
        prompts=tuple(p for _, p in prompts),
        generation=cfg,
        corpus=str(corpus_dir) if corpus_dir else None,
        threads=threads,
        prompt_origins=tuple(o for o, _ in prompts),
        batch_size=batch_size,
        samples_per_prompt=samples_per_prompt,
    )
    run_generate(LinkedDocDatasetGenerator(bc), opts)
