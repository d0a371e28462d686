"""LinkedDocumentGenerator: generate a root document, following the links it writes.

Every generated token that contains ``)`` is checked for a complete link. A link target is
looked up in the context (already there: just linked), then in the corpus (added as a finished
document), and otherwise, with ``allow_corpus_fallback``, generated recursively before the
parent continues, so the parent's tokens after the link can attend to it. Recursion is bounded by
``max_link_depth`` and ``max_auxiliary_documents``; documents stop at EOS, at
``max_tokens_per_document``, at ``max_new_tokens`` (per document) or when the context is full.
"""

from __future__ import annotations

import re
import time
import weakref
from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import torch
from torch import Tensor

from .context_runner import ContextRunner
from .corpus import DocumentCorpus
from .document_context import ContextDocument, DocumentContext
from .errors import ConfigError, PromptTooLongError
from .generation_config import GenerationConfig
from .generation_result import GeneratedDocument, GenerationResult, LinkEvent
from .link_detector import DetectedLink, LinkDetector
from .prompt_processor import PromptLinkProcessor, clean_target
from .sampling import sample_rows, sample_token
from .single_doc_generator import make_runner
from .title_constraint import TitleTrie
from .tokenizer import encode_prefix, heading_encoder

if TYPE_CHECKING:
    from .model import DS2DSModel

__all__ = ["LinkedDocumentGenerator", "topological_order"]


def topological_order(docs: list[GeneratedDocument]) -> list[GeneratedDocument]:
    """Auxiliary documents with link targets before the documents linking to them (DFS post-order
    from the root over link edges; ties and unreachable documents in creation order)."""
    by_title = {d.title: d for d in docs}
    seen: set[str] = set()
    out: list[GeneratedDocument] = []

    def visit(t: str) -> None:
        if t in seen:
            return
        seen.add(t)
        for nxt in by_title[t].links:
            if nxt in by_title:
                visit(nxt)
        out.append(by_title[t])

    roots = [d.title for d in docs if d.is_root] + [d.title for d in docs if not d.is_root]
    for t in roots:
        visit(t)
    return [d for d in out if not d.is_root]


def _check_model_placement(model: object, config: GenerationConfig) -> None:
    """``config.device``/``config.dtype`` must be where the model is: refuse a mismatch (moving
    the caller's model behind its back, or decoding in another precision, would be silent)."""
    params = getattr(model, "parameters", None)
    p = next(iter(params()), None) if callable(params) else None
    if p is None:
        return
    want = torch.device(config.device)
    if p.device.type != want.type or (want.index is not None and p.device.index not in (want.index, None)):
        raise ConfigError(
            f"GenerationConfig.device = {config.device!r}, but the model is on {p.device}: load it "
            f"with load_checkpoint(path, device=...) or move it with model.to(...)"
        )
    name = {torch.float32: "float32", torch.bfloat16: "bfloat16"}.get(p.dtype, str(p.dtype))
    if name != config.dtype:
        raise ConfigError(
            f"GenerationConfig.dtype = {config.dtype!r}, but the model's weights are {name}: "
            f"convert it with model.to(torch.{config.dtype})"
        )


_BARE_HEADING = re.compile(r"# ([^\n]*\S)[ \t]*\n\n\Z")


def _with_lead(prompt: str) -> str:
    """``prompt`` with its title appended when it is exactly a heading (``# Title\\n\\n``),
    as generated documents start (``GenerationConfig.lead="title"``); other prompts unchanged."""
    m = _BARE_HEADING.match(prompt)
    return prompt + m.group(1).strip() if m and clean_target(m.group(1)) else prompt


def _root_title(prompt_text: str) -> str:
    first = prompt_text.split("\n", 1)[0]
    if first.startswith("# ") and clean_target(first[2:]):
        return first[2:].strip()
    return "Root Document"


class _Run:
    """The state of one sample's generation: its context, config, sampling generator (seeded
    from ``config.seed``: one per sample, so batched samples do not share randomness), link log."""

    def __init__(
        self,
        ctx: DocumentContext,
        config: GenerationConfig,
        corpus: DocumentCorpus | None,
        vocab: int | None,
        prompt_tokens: np.ndarray,
    ) -> None:
        self.ctx = ctx
        self.config = config
        self.corpus = corpus
        self.vocab = vocab
        self.prompt_tokens = prompt_tokens
        self.rng = torch.Generator().manual_seed(config.seed)
        self.events: list[LinkEvent] = []
        self.new_tokens = 0
        #: batched decoding: the index (into the logits sent next) already sampled for this
        #: sample by :func:`sample_rows`, with the same draw :func:`sample_token` would make
        self.presampled: int | None = None
        #: the document whose next token the sample waits for (set before each ``yield``)
        self.doc: ContextDocument | None = None
        #: corpus titles for ``link_targets="corpus"``/``"known"`` (None: no corpus constraint)
        self.trie: TitleTrie | None = None
        #: the link-target mode in force (``auto`` resolved: ``known`` with a corpus, else ``free``)
        self.link_targets = config.link_targets
        #: ``known``: a trie of the titles of this sample's documents in context, rebuilt when they change
        self.known: tuple[tuple[str, ...], TitleTrie] | None = None


class LinkedDocumentGenerator:
    """Main generation entry point (see the module docstring)."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer_encode: Callable[[str], list[int]],
        tokenizer_decode: Callable[[list[int]], str],
        detector: LinkDetector | None = None,
        runner_factory: Callable[..., ContextRunner] | None = None,
    ) -> None:
        self.model = model
        self.runner_factory = runner_factory or make_runner
        #: the model's way of tokenizing ``# Title`` lines (ModelConfig.headings): prompts and
        #: the headers of generated documents are encoded as its training corpus was
        self.headings: str = getattr(getattr(model, "cfg", None), "headings", "bpe")
        self.encode = heading_encoder(tokenizer_encode, self.headings)
        self.decode = tokenizer_decode
        self.detector = detector or LinkDetector()

    def generate(
        self,
        prompt: str | None = None,
        prompt_tokens: np.ndarray | None = None,
        corpus: DocumentCorpus | None = None,
        config: GenerationConfig | None = None,
    ) -> GenerationResult:
        """Generate from ``prompt`` (text) or ``prompt_tokens``; returns a :class:`GenerationResult`."""
        run = self._prepare(prompt, prompt_tokens, corpus, config or GenerationConfig())
        self._ctx = run.ctx
        self._runner: ContextRunner = self.runner_factory(self.model, run.ctx, run.config)
        steps = self._steps(run)
        try:
            next(steps)
            while True:
                steps.send(self._runner.next_logits())
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    def generate_batch(
        self, prompts: Sequence[str], configs: Sequence[GenerationConfig], corpus: DocumentCorpus | None = None
    ) -> list[GenerationResult]:
        """Generate one sample per ``(prompts[i], configs[i])`` with batched decoding: every step
        runs one forward for all samples that need a next token (their KV caches stacked, each
        row with its own mask and positions); each sample samples with its own seed
        (``configs[i].seed``), so its result does not depend on the other samples of the batch
        (equal to :meth:`generate` up to float rounding, tested). Samples whose config asks for
        ``use_kv_cache=False`` or ``attention="flex"`` are stepped one by one (same results as
        :meth:`generate`, not batched)."""
        from .batched import BatchedContextRunner

        if len(prompts) != len(configs):
            raise ConfigError(f"generate_batch: {len(prompts)} prompts but {len(configs)} configs")
        runs = [self._prepare(p, None, corpus, c) for p, c in zip(prompts, configs)]
        # batched decoding needs the DS2DSModel API (extend_batch, stacked KV caches)
        runner = BatchedContextRunner(cast("DS2DSModel", self.model), [r.ctx for r in runs], [r.config for r in runs])
        results: list[GenerationResult | None] = [None] * len(runs)
        steps = [self._steps(r) for r in runs]
        waiting: list[int] = []
        for i, st in enumerate(steps):
            try:
                next(st)
                waiting.append(i)
            except StopIteration as stop:
                results[i] = stop.value
        while waiting:
            logits = runner.next_logits(waiting)
            step = runner.last_step
            if step is not None:
                rows = step[0]
                sel = step[1][rows] if len(rows) < step[1].shape[0] else step[1]
                # link-target constraints, row by row: a row writing a link target gets its logits
                # with the disallowed ids at -inf (what the single stream samples from), and that
                # constrained row is what its coroutine receives (for logprobs)
                constrained: dict[int, torch.Tensor] = {}
                for j, i in enumerate(rows):
                    run = runs[i]
                    if run.link_targets in ("corpus", "known") and run.doc is not None:
                        allowed = self._allowed_targets(run, run.doc.tokens)
                        if allowed is not None:
                            constrained[j] = _constrain(sel[j], allowed, self.model)
                if constrained:
                    sel = sel.clone()
                    for j, row in constrained.items():
                        sel[j] = row
                        logits[rows[j]] = row
                cf = [runs[i].config for i in rows]
                toks = sample_rows(
                    sel,
                    [c.temperature for c in cf],
                    [c.top_k for c in cf],
                    [runs[i].rng for i in rows],
                    [c.top_p for c in cf],
                )
                for i, t in zip(rows, toks):
                    runs[i].presampled = t
            still: list[int] = []
            for i in waiting:
                try:
                    steps[i].send(logits[i])
                    still.append(i)
                except StopIteration as stop:
                    results[i] = stop.value
                    runner.finish(i)
            waiting = still
        return [r for r in results if r is not None]

    def generate_n(
        self, prompt: str, n: int, config: GenerationConfig | None = None, corpus: DocumentCorpus | None = None
    ) -> list[GenerationResult]:
        """``n`` samples of one prompt, decoded as a batch; sample ``j`` uses seed
        ``config.seed + j`` (so sample 0 is what :meth:`generate` gives)."""
        import attrs

        config = config or GenerationConfig()
        if not isinstance(n, int) or n < 1:
            raise ConfigError(f"generate_n: n = {n!r}: must be an integer >= 1")
        cfgs = [attrs.evolve(config, seed=config.seed + j) for j in range(n)]
        return self.generate_batch([prompt] * n, cfgs, corpus=corpus)

    def _prepare(
        self, prompt: str | None, prompt_tokens: np.ndarray | None, corpus: DocumentCorpus | None, config: GenerationConfig
    ) -> _Run:
        """Validate the request and build its context (nothing is generated yet)."""
        mcfg = getattr(self.model, "cfg", None)
        if mcfg is not None:
            if config.max_tokens_per_document > mcfg.max_doc_len:
                raise ConfigError(
                    f"GenerationConfig.max_tokens_per_document = {config.max_tokens_per_document}: "
                    f"must be <= the model's max_doc_len = {mcfg.max_doc_len}"
                )
            if config.max_context_length > mcfg.max_seq_len:
                raise ConfigError(
                    f"GenerationConfig.max_context_length = {config.max_context_length}: "
                    f"must be <= the model's max_seq_len = {mcfg.max_seq_len}"
                )
        _check_model_placement(self.model, config)
        if prompt_tokens is None:
            if prompt is None:
                raise ConfigError("generate: give a prompt or prompt_tokens")
            if config.lead == "title":
                prompt = _with_lead(prompt)
            # a prompt ending in whitespace ("# Title\n\n") is encoded as it would be mid-text
            ids = encode_prefix(prompt, self.encode) if prompt[-1:].isspace() else self.encode(prompt)
            prompt_tokens = np.asarray(ids, dtype=np.int64)
        prompt_tokens = np.asarray(prompt_tokens, dtype=np.int64).reshape(-1)
        vocab = mcfg.vocab_size if mcfg is not None else None
        if vocab is not None and len(prompt_tokens) and (int(prompt_tokens.max()) >= vocab or int(prompt_tokens.min()) < 0):
            bad = int(prompt_tokens.max()) if int(prompt_tokens.max()) >= vocab else int(prompt_tokens.min())
            raise ConfigError(f"the prompt has token id {bad}, outside the model's vocab_size = {vocab}")
        if len(prompt_tokens) == 0:
            raise PromptTooLongError("the prompt is empty: give at least one token")
        limit = min(config.max_tokens_per_document, config.max_context_length) - 1
        if len(prompt_tokens) > limit:
            raise PromptTooLongError(
                f"the prompt has {len(prompt_tokens)} tokens; at most {limit} fit "
                f"(max_tokens_per_document/max_context_length minus one)"
            )
        text = prompt if prompt is not None else self.decode(prompt_tokens.tolist())
        ctx = DocumentContext(
            config.max_context_length,
            config.max_tokens_per_document,
            cast(Literal["drop_oldest", "stop_new"], config.eviction_policy),  # validated by GenerationConfig
            self.encode,
            self.decode,  # type: ignore[arg-type]
            device=config.device,
            title_lead=config.lead == "title",
        )
        ctx.initialize_root(prompt_tokens, _root_title(text))
        run = _Run(ctx, config, corpus, vocab, prompt_tokens)
        if config.link_targets == "auto":
            run.link_targets = "known" if corpus is not None else "free"
        if run.link_targets == "corpus" and corpus is None:
            raise ConfigError("GenerationConfig.link_targets = 'corpus': needs a corpus (--corpus)")
        if run.link_targets in ("corpus", "known") and corpus is not None:
            run.trie = self._title_trie(corpus)
        return run

    def _allowed_targets(self, run: _Run, tokens: Sequence[int]) -> frozenset[int] | None:
        """Tokens allowed next while a link target is written (None: unconstrained), per
        ``run.link_targets``: corpus titles, plus (``known``) the titles of the sample's other
        active documents."""
        prefix: tuple[int, ...] | None = None
        if run.trie is not None:
            prefix = run.trie.target_prefix(tokens)
            if prefix is None:
                return None  # not inside a link target (the common case: one backward scan)
            corpus_ok = run.trie.next_tokens(prefix)
        else:
            corpus_ok = None
        if run.link_targets != "known":
            return corpus_ok
        ctx = run.ctx
        titles = tuple(t for t in ctx.order if ctx.docs[t].active and t != ctx.current)
        if run.known is None or run.known[0] != titles:
            d = self.detector
            run.known = (titles, TitleTrie(titles, self.encode, d.mid_id, d.close_candidates, self.decode))
        own_ok = run.known[1].next_tokens(prefix) if prefix is not None else run.known[1].allowed(tokens)
        if corpus_ok is None or own_ok is None:
            return corpus_ok if own_ok is None else own_ok
        return corpus_ok | own_ok

    def _support_list(self, support: Tensor) -> list[int]:
        """``support.tolist()``, cached while the model's active ids stay the same tensor."""
        cached = self.__dict__.get("_support")
        if cached is None or cached[0] is not support:
            cached = self.__dict__["_support"] = (support, support.tolist())
        return cast("list[int]", cached[1])

    def _title_trie(self, corpus: DocumentCorpus) -> TitleTrie:
        tries: weakref.WeakKeyDictionary[DocumentCorpus, TitleTrie] = self.__dict__.setdefault(
            "_tries", weakref.WeakKeyDictionary()
        )
        trie = tries.get(corpus)
        if trie is None:
            d = self.detector
            trie = tries[corpus] = TitleTrie(corpus.titles(), self.encode, d.mid_id, d.close_candidates, self.decode)
        return trie

    def _steps(self, run: _Run) -> Generator[None, torch.Tensor, GenerationResult]:
        """The whole generation of one sample as a coroutine: it yields whenever it needs the
        next-token logits of ``run.ctx.current`` and is sent them; returns the result."""
        t0 = time.perf_counter()
        ctx, config = run.ctx, run.config
        root = ctx.current_document.title
        if config.process_prompt_links:
            proc = PromptLinkProcessor(self.detector, vocab_size=run.vocab, headings=self.headings)
            pending = proc.process_prompt(run.prompt_tokens, ctx, run.corpus, config)
            run.events.extend(proc.events)
            for title in pending:
                ctx.switch_to_document(title)
                yield from self._document_steps(run, 1, title)
            ctx.switch_to_document(root)
        reason = yield from self._document_steps(run, 0, root)
        docs = ctx.get_all_documents()
        root_doc = next(d for d in docs if d.is_root)
        return GenerationResult(
            root_doc,
            topological_order(docs),
            {**config.to_dict(), "link_targets_used": run.link_targets},
            run.events,
            reason,
            run.new_tokens,
            time.perf_counter() - t0,
        )

    def _document_steps(self, run: _Run, current_depth: int, target_doc_title: str) -> Generator[None, torch.Tensor, str]:
        """Generate ``target_doc_title`` (made current) until it stops, recursing into new links.
        Returns the stop reason."""
        context, config = run.ctx, run.config
        context.switch_to_document(target_doc_title)
        doc = context.current_document
        n = 0
        reason = ""
        while True:
            stop, reason = self._check_stopping_condition(None, n, config)
            if stop:
                break
            run.doc = doc
            logits = yield
            # with an active vocabulary, sample over its ids only (the others have probability 0);
            # a batched step sends those ids' logits alone (compact), a single stream all of them
            support = getattr(self.model, "active_ids", None)
            if run.presampled is not None:  # a batched step constrained and sampled this row already
                sub, j = logits, run.presampled
                run.presampled = None
                tok = self._support_list(support)[j] if support is not None else j
            else:
                sub = logits if support is None or logits.shape[-1] == support.shape[0] else logits[support]
                if run.link_targets in ("corpus", "known"):
                    # constrained on the compact row, as a batched step does: when none of the
                    # allowed ids is in the active vocabulary the row stays unconstrained (it
                    # used to fall back to the active vocabulary's first id here)
                    sub = _constrain(sub, self._allowed_targets(run, doc.tokens), self.model)
                j = sample_token(sub, config.temperature, config.top_k, config.top_p, run.rng)
                tok = self._support_list(support)[j] if support is not None else j
            if not context.append_token_to_current(tok):
                reason = "max_tokens_per_document" if len(doc.tokens) >= context.max_tokens_per_doc else "context_full"
                break
            n += 1
            run.new_tokens += 1
            if config.logprobs:
                lf = sub.float()
                if doc.logprobs is None:
                    doc.logprobs = []
                doc.logprobs.append(float(lf[j if support is not None else tok] - torch.logsumexp(lf, dim=0)))
            stop, reason = self._check_stopping_condition(tok, n, config)
            if not stop and config.stop and self._hits_stop(doc.tokens, doc.prompt_len, config.stop):
                stop, reason = True, "stop_string"
            if stop:
                break
            if self.detector.is_candidate(tok):
                link = self.detector.detect_link_at_position(doc.tokens, len(doc.tokens) - 1)
                if link is not None:
                    yield from self._link_steps(run, link, current_depth, doc.title)
                    context.switch_to_document(doc.title)
        context.switch_to_document(doc.title)
        context.complete_current_document()
        return reason

    def _link_steps(
        self, run: _Run, link: DetectedLink, current_depth: int, current_doc_title: str
    ) -> Generator[None, torch.Tensor, None]:
        """Resolve one link: reuse, corpus, or generate (recursively), and log what happened."""
        context, corpus, config = run.ctx, run.corpus, run.config

        def log(target: str, outcome: str) -> None:
            run.events.append(LinkEvent(current_doc_title, target, link.text, outcome))

        target = clean_target(link.target)
        if target is None:
            return log(link.target, "skipped:bad_target")
        variants = corpus.get_title_variants(target) if corpus is not None else []
        title = variants[0] if variants else target
        existing = context.get(title)
        if existing is not None:
            if existing.active and existing.complete:
                context.add_link(current_doc_title, title, link.paren_close_pos)
                return log(title, "existing")
            context.note_link(current_doc_title, title)
            if not existing.active:
                return log(title, "skipped:evicted")
            # unfinished: an ancestor of this document is a cycle; otherwise it is a document
            # waiting to be generated (a later prompt link's placeholder): pending
            return log(title, "cycle" if title in context.ancestors() else "pending")
        if current_depth >= config.max_link_depth or (current_depth > 0 and not config.allow_recursive_links):
            return log(target, "skipped:max_depth")
        if context.n_auxiliary() >= config.max_auxiliary_documents:
            return log(target, "skipped:max_aux")
        if variants:
            assert corpus is not None
            toks = corpus.get_document(title, run.vocab, headings=self.headings)
            src = corpus.get_source_path(title) or "corpus"
            if toks is not None and context.add_corpus_document(
                title, toks, current_doc_title, source=src, depth=current_depth + 1, links=corpus.links(title)
            ):
                context.add_link(current_doc_title, title, link.paren_close_pos)
                return log(title, "corpus")
            return log(title, "skipped:context_full")
        if not config.allow_corpus_fallback:
            return log(target, "skipped:not_in_corpus")
        if not context.start_auxiliary_generation(target, current_doc_title, depth=current_depth + 1):
            return log(target, "skipped:context_full")
        log(target, "generated")
        yield from self._document_steps(run, current_depth + 1, target)
        context.switch_to_document(current_doc_title)
        if context.docs[target].active:
            context.add_link(current_doc_title, target, link.paren_close_pos)
        else:
            context.note_link(current_doc_title, target)
        return None

    def _hits_stop(self, tokens: list[int], prompt_len: int, stop: tuple[str, ...]) -> bool:
        """Whether the generated text (after ``prompt_len``) contains a stop string; only its
        tail is decoded: every token is at least one byte, so the last ``max(UTF-8 length)``
        tokens hold any stop string the newest token completed."""
        k = max(len(x.encode("utf-8")) for x in stop) + 1
        tail = self.decode(tokens[max(prompt_len, len(tokens) - k) :])
        return any(x in tail for x in stop)

    def _check_stopping_condition(
        self, token_id: int | None, tokens_generated: int, config: GenerationConfig
    ) -> tuple[bool, str]:
        """(should stop, reason): EOS, or ``max_new_tokens`` generated for this document."""
        if token_id is not None and token_id == config.eos_token_id:
            return True, "eos"
        if tokens_generated >= config.max_new_tokens:
            return True, "max_new_tokens"
        return False, ""


@torch.no_grad()
def generate_linked(
    model: DS2DSModel,
    prompt: str | None = None,
    prompt_tokens: Tensor | Any = None,
    corpus: Any = None,
    max_new_tokens: int = 100,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    max_tokens_per_document: int | None = None,
    max_auxiliary_documents: int = 5,
    max_link_depth: int = 1,
    allow_corpus_fallback: bool = True,
    eviction_policy: str = "drop_oldest",
    seed: int = 0,
    max_context_length: int | None = None,
    **kwargs: Any,
) -> Any:
    """Generate a root document and its linked documents with ``model`` (see :class:`LinkedDocumentGenerator`).

    A function, not a model method, so the model layer does not import the generation layer above it.
    """
    from .tokenizer import get_encoding

    enc = get_encoding()
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        max_tokens_per_document=max_tokens_per_document or model.cfg.max_doc_len,
        max_context_length=max_context_length or model.cfg.max_seq_len,
        max_auxiliary_documents=max_auxiliary_documents,
        max_link_depth=max_link_depth,
        allow_corpus_fallback=allow_corpus_fallback,
        eviction_policy=eviction_policy,
        seed=seed,
        **{
            "device": str(next(model.parameters()).device),
            "dtype": "bfloat16" if next(model.parameters()).dtype == torch.bfloat16 else "float32",
            **kwargs,
        },
    )
    if prompt_tokens is not None and isinstance(prompt_tokens, Tensor):
        prompt_tokens = prompt_tokens.cpu().numpy()
    gen = LinkedDocumentGenerator(model, enc.encode_ordinary, enc.decode)
    return gen.generate(prompt=prompt, prompt_tokens=prompt_tokens, corpus=corpus, config=config)


def _constrain(logits: Tensor, allowed: frozenset[int] | None, model: Any) -> Tensor:
    """``logits`` with every id outside ``allowed`` at -inf (``logits`` may be the compact
    active-vocabulary row of a batched step). Unchanged when nothing constrains, or when none of
    the allowed ids can be produced by the model."""
    if allowed is None:
        return logits
    ids = torch.tensor(sorted(allowed), dtype=torch.long, device=logits.device)
    support = getattr(model, "active_ids", None)
    if support is not None and logits.shape[-1] == support.shape[0]:
        sup = support.to(logits.device)
        at = torch.searchsorted(sup, ids).clamp(max=sup.shape[0] - 1)
        ids = at[sup[at] == ids]
    if ids.numel() == 0:
        return logits
    out = torch.full_like(logits, float("-inf"))
    out[ids] = logits[ids]
    return out
