"""Batch generation into a datacore dataset: one record per linked-document sample.

:class:`LinkedDocDatasetGenerator` follows the datacore generator protocol. Record ``i`` of
the run uses prompt ``prompts[(i // samples_per_prompt) % len(prompts)]`` and a sampling seed derived from its shard's
seed, and torch runs with a fixed thread count, so a dataset is byte-identical whatever the
number of workers. Telemetry: documents per sample, link depth, corpus hit rate, tokens/s.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs
import torch
from datacore import STRATA, ReportSection, ShardTask, Target, Telemetry

from . import __version__
from .corpus import DocumentCorpus
from .errors import CheckpointError, ConfigError, Ds2dsError, PromptTooLongError
from .generation_config import GenerationConfig
from .generation_result import GenerationResult
from .linked_doc_generator import LinkedDocumentGenerator
from .model import DS2DSModel, load_checkpoint
from .tokenizer import encode_prefix, get_encoding, heading_encoder

__all__ = ["BatchConfig", "LinkedDocDatasetGenerator", "read_prompts", "read_prompts_with_origin", "result_record"]


def read_prompts(path: Path) -> tuple[str, ...]:
    """Prompts from a file: JSONL lines ``{"prompt": ...}`` or JSON strings, else one prompt per
    non-empty line (``\\n`` escapes allowed). Errors name the file and line."""
    return tuple(p for _, p in read_prompts_with_origin(path))


def read_prompts_with_origin(path: Path) -> list[tuple[str, str]]:
    """Like :func:`read_prompts`, each prompt with its origin ``"FILE:LINE"``."""
    path = Path(path)
    out: list[tuple[str, str]] = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        s = line.strip()
        if not s:
            continue
        if s[0] in '{"':
            try:
                obj = json.loads(s)
            except json.JSONDecodeError as e:
                raise ConfigError(f"{path}:{i}: invalid JSON ({e.msg} at column {e.colno})") from None
            p = obj.get("prompt") if isinstance(obj, dict) else obj
            if not isinstance(p, str) or not p:
                raise ConfigError(f"{path}:{i}: expected a non-empty string or an object with 'prompt'")
            out.append((f"{path}:{i}", p))
        else:
            out.append((f"{path}:{i}", s.replace("\\n", "\n")))
    if not out:
        raise ConfigError(f"{path}: no prompts found")
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@attrs.frozen
class BatchConfig:
    """What a batch run uses: checkpoint folder, optional corpus folder, prompts, generation
    settings (``generation``, a :class:`GenerationConfig`) and torch threads per worker."""

    model: str
    prompts: tuple[str, ...]
    generation: GenerationConfig = GenerationConfig()
    corpus: str | None = None
    threads: int = 1
    model_sha256: str = ""
    #: samples decoded together (batched linked decoding); 1 = one sample at a time
    batch_size: int = 8
    #: consecutive records per prompt: record ``i`` uses prompt ``(i // samples_per_prompt) % len(prompts)``
    samples_per_prompt: int = 1
    #: where each prompt came from ("FILE:LINE"), for error messages only (not in the manifest)
    prompt_origins: tuple[str, ...] = ()

    def __attrs_post_init__(self) -> None:
        if not self.prompts:
            raise ConfigError("BatchConfig.prompts: at least one prompt is needed")
        if not isinstance(self.threads, int) or self.threads < 1:
            raise ConfigError(f"BatchConfig.threads = {self.threads!r}: must be an integer >= 1")
        if (
            not isinstance(self.samples_per_prompt, int)
            or isinstance(self.samples_per_prompt, bool)
            or not 1 <= self.samples_per_prompt <= 1_000_000
        ):
            raise ConfigError(f"BatchConfig.samples_per_prompt = {self.samples_per_prompt!r}: must be an integer >= 1")
        if not isinstance(self.batch_size, int) or isinstance(self.batch_size, bool) or not 1 <= self.batch_size <= 1024:
            raise ConfigError(f"BatchConfig.batch_size = {self.batch_size!r}: must be an integer in [1, 1024]")


def result_record(prompt: str, res: GenerationResult) -> dict[str, Any]:
    """The dataset record of one generation result (JSON-able, no timings)."""
    docs = res.get_all_documents()
    depth = max(d.depth for d in docs)
    return {
        "prompt": prompt,
        "documents": [{**d.to_dict(), "text": d.text} for d in [res.root_document, *res.auxiliary_documents]],
        "link_graph": res.link_graph(),
        "graph": res.graph(),
        "graph_dot": res.to_dot(),
        "links": [vars(e) for e in res.links],
        "stop_reason": res.stop_reason,
        "meta": {
            "n_documents": len(docs),
            "link_depth": depth,
            "corpus_documents": sum(1 for d in docs if d.source_kind == "corpus"),
            "generated_documents": sum(1 for d in docs if d.source_kind == "generated" and not d.is_root),
            "new_tokens": res.new_tokens,
        },
    }


class LinkedDocDatasetGenerator:
    """datacore generator: linked-document samples from prompts (see the module docstring)."""

    name = "ds2ds-gen"
    version = __version__

    #: The constructor runs torch in this process (checkpoint and prompt checks), and a forked
    #: child of a process whose OpenMP pool is started deadlocks in its first torch call: pool
    #: workers are spawned (datacore honours this unless DATACORE_MP_START says otherwise).
    mp_start = "spawn"

    def __init__(self, config: BatchConfig) -> None:
        mp = Path(config.model) / "model.pt"
        if not mp.is_file():
            raise CheckpointError(f"{mp}: missing (not a ds2ds-gen checkpoint)")
        if not config.model_sha256:
            config = attrs.evolve(config, model_sha256=_sha256(mp))
        self.config = config
        self._loaded: DS2DSModel | None = None
        model, _ = load_checkpoint(Path(config.model))  # fail early, with a clear error, on a bad checkpoint
        if config.corpus is not None:
            DocumentCorpus(Path(config.corpus)).close()
        self._check_prompts(model)

    def _where(self, k: int) -> str:
        o = self.config.prompt_origins
        head = self.config.prompts[k][:40]
        return f"prompt {k + 1} ({o[k] if k < len(o) else repr(head)})"

    def _check_prompts(self, model: DS2DSModel) -> None:
        """Refuse, before anything is generated, a prompt that cannot be used (too long, empty,
        token ids outside the model's vocabulary), naming the prompt and where it came from."""
        encode = heading_encoder(get_encoding().encode_ordinary, model.cfg.headings)
        g = self.config.generation
        limit = min(g.max_tokens_per_document, g.max_context_length) - 1
        for k, p in enumerate(self.config.prompts):
            ids = encode_prefix(p, encode) if p[-1:].isspace() else encode(p)
            if len(ids) > limit:
                raise PromptTooLongError(
                    f"{self._where(k)}: the prompt has {len(ids)} tokens; at most {limit} fit "
                    f"(max_tokens_per_document/max_context_length minus one)"
                )
            if ids and max(ids) >= model.cfg.vocab_size:
                raise ConfigError(
                    f"{self._where(k)}: token id {max(ids)} outside the model's vocab_size = {model.cfg.vocab_size}"
                )

    def config_dict(self) -> dict[str, Any]:
        """Full JSON-able config (the model is named by path and sha256)."""
        c = self.config
        return {
            "model": c.model,
            "model_sha256": c.model_sha256,
            "corpus": c.corpus,
            "prompts": list(c.prompts),
            "generation": c.generation.to_dict(),
            "threads": c.threads,
            "batch_size": c.batch_size,
            "samples_per_prompt": c.samples_per_prompt,
        }

    def prompt_index(self, g: int) -> int:
        """The prompt of record ``g`` of the run."""
        return (g // self.config.samples_per_prompt) % len(self.config.prompts)

    def targets(self, n: int) -> list[Target]:
        """What this generator promises: record ``i`` uses prompt ``i mod len(prompts)``, so
        each prompt's share of the ``n`` records is known exactly (stratum ``prompt=K``).
        Documents per sample and link depth depend on what the model writes: they are observed
        (telemetry histograms) but not promised."""
        p, r = len(self.config.prompts), self.config.samples_per_prompt
        if not n:
            return []
        full, rest = divmod(n, p * r)
        counts = [full * r + min(r, max(0, rest - k * r)) for k in range(p)]
        return [Target(f"prompt={k}", c / n) for k, c in enumerate(counts) if c]

    def setup(self) -> None:
        """Per-worker set-up (datacore contract): load the checkpoint on the configured device
        and dtype once; kept out of the config and out of pickles (see ``__getstate__``)."""
        g = self.config.generation
        m = load_checkpoint(Path(self.config.model), device=g.device)[0]
        self._loaded = m.to(torch.bfloat16) if g.dtype == "bfloat16" else m

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_loaded"] = None  # workers load their own copy in setup()
        return state

    def _model(self) -> DS2DSModel:
        if getattr(self, "_loaded", None) is None:
            self.setup()  # setup() was not called (e.g. used outside datacore)
        assert self._loaded is not None
        return self._loaded

    def generate_shard(self, task: ShardTask, telemetry: Telemetry) -> Iterable[dict[str, Any]]:
        """Yield ``task.count`` samples."""
        torch.set_num_threads(self.config.threads)
        enc = get_encoding()
        model = self._model()
        gen = LinkedDocumentGenerator(model, enc.encode_ordinary, enc.decode)
        corpus = DocumentCorpus(Path(self.config.corpus)) if self.config.corpus else None
        try:
            bs = self.config.batch_size
            for b0 in range(0, task.count, bs):
                idx = list(range(b0, min(task.count, b0 + bs)))
                ks = [self.prompt_index(task.start + i) for i in idx]
                prompts = [self.config.prompts[k] for k in ks]
                cfgs = [attrs.evolve(self.config.generation, seed=(task.seed + i) % (1 << 63)) for i in idx]
                try:
                    if bs == 1:
                        results = [gen.generate(prompt=prompts[0], corpus=corpus, config=cfgs[0])]
                    else:
                        results = gen.generate_batch(prompts, cfgs, corpus=corpus)
                except Ds2dsError as exc:
                    # name the samples and their prompts, not only the shard datacore reports
                    which = ", ".join(f"sample {task.start + i} ({self._where(k)})" for i, k in zip(idx, ks))
                    raise type(exc)(f"{which}: {exc}") from None
                # No timings in telemetry: it is part of the dataset and must not depend on the machine's
                # load (the report shows per-shard seconds from datacore instead).
                for k, prompt, res in zip(ks, prompts, results):
                    rec = result_record(prompt, res)
                    m = rec["meta"]
                    telemetry.count("samples")
                    telemetry.count("documents", m["n_documents"])
                    telemetry.count("corpus_documents", m["corpus_documents"])
                    telemetry.count("generated_documents", m["generated_documents"])
                    telemetry.count("new_tokens", res.new_tokens)
                    telemetry.observe("documents_per_sample", str(m["n_documents"]))
                    telemetry.observe("link_depth", str(m["link_depth"]))
                    telemetry.observe("stop_reason", res.stop_reason)
                    telemetry.observe(STRATA, f"prompt={k}")
                    gs = res.graph_stats()
                    telemetry.count("edges", gs["edges"])
                    telemetry.count("attention_edges", gs["attention_edges"])
                    telemetry.count("skipped_edges", gs["skipped_edges"])
                    for f in gs["fan_out"].values():
                        telemetry.observe("fan_out", str(f))
                    for e in rec["graph"]["edges"]:
                        telemetry.observe("edge", f"{e['kind']}:{e['outcome']}")
                    for e in res.links:
                        telemetry.observe("link_outcome", e.outcome)
                    yield rec
        finally:
            if corpus is not None:
                corpus.close()

    def split_key(self, record: dict[str, Any]) -> str:
        """Split by the root document's text."""
        return str(record["documents"][0]["text"])

    def report_sections(self, telemetry: Telemetry) -> list[ReportSection]:
        """Summary table and histograms for report.html."""
        from datacore import bar_chart_svg, table_html

        c = telemetry.counters
        aux = c.get("corpus_documents", 0) + c.get("generated_documents", 0)
        rows: list[list[Any]] = [
            ["samples", c.get("samples", 0)],
            ["documents per sample", f"{c.get('documents', 0) / max(1, c.get('samples', 0)):.2f}"],
            ["corpus hit rate (aux docs from the corpus)", f"{c.get('corpus_documents', 0) / max(1, aux):.1%}"],
            ["graph: links per document (fan-out, every edge)", f"{c.get('edges', 0) / max(1, c.get('documents', 0)):.2f}"],
            ["graph: attention edges / skipped links", f"{c.get('attention_edges', 0)} / {c.get('skipped_edges', 0)}"],
            [
                "graph: corpus vs generated auxiliary documents",
                f"{c.get('corpus_documents', 0)} / {c.get('generated_documents', 0)}",
            ],
            ["new tokens", c.get("new_tokens", 0)],
        ]
        out = [ReportSection("ds2ds-gen summary", table_html(["figure", "value"], rows))]
        for h in ("documents_per_sample", "link_depth", "fan_out", "edge", "link_outcome", "stop_reason"):
            if telemetry.histograms.get(h):
                out.append(ReportSection(h.replace("_", " "), bar_chart_svg(telemetry.histograms[h], h)))
        return out
