"""PromptLinkProcessor: resolve the links already present in a prompt before generation starts."""

from __future__ import annotations

import numpy as np

from .corpus import DocumentCorpus
from .document_context import DocumentContext
from .generation_config import GenerationConfig
from .generation_result import LinkEvent
from .link_detector import DetectedLink, LinkDetector

__all__ = ["PromptLinkProcessor", "clean_target"]

_MAX_TARGET = 200


def clean_target(raw: str) -> str | None:
    """The title a link target names, or None if it cannot be a title (empty, too long, control
    characters, markdown link brackets). Path characters are allowed: titles only become file names through
    :func:`~ds2ds_gen.title_utils.create_filename`, which keeps ``[a-z0-9_]`` only."""
    t = raw.strip()
    if not t or len(t) > _MAX_TARGET or any(ord(c) < 32 for c in t) or "[" in t or "]" in t:
        return None
    return t


class PromptLinkProcessor:
    """Adds the documents that prompt links point to: from the corpus when it has them, else as
    empty placeholders to be generated (when ``allow_corpus_fallback``). Prompt links are at
    depth 0 -> 1, so nothing is followed when ``max_link_depth`` is 0."""

    def __init__(self, detector: LinkDetector | None = None, vocab_size: int | None = None, headings: str | None = None) -> None:
        self.detector = detector or LinkDetector()
        self.vocab_size = vocab_size
        #: the model's heading tokenization (corpus documents are re-tokenized to it when they differ)
        self.headings = headings
        self.events: list[LinkEvent] = []

    def process_prompt(
        self, prompt_tokens: np.ndarray, context: DocumentContext, corpus: DocumentCorpus | None, config: GenerationConfig
    ) -> list[str]:
        """Resolve the prompt's links; returns the titles that still need generating, in order."""
        root = context.current_document
        to_generate: list[str] = []
        self.events = []
        for link in self.detector.find_all(prompt_tokens):
            self._one(link, root.title, context, corpus, config, to_generate)
        return to_generate

    def _one(
        self,
        link: DetectedLink,
        root: str,
        context: DocumentContext,
        corpus: DocumentCorpus | None,
        config: GenerationConfig,
        to_generate: list[str],
    ) -> None:
        def log(target: str, outcome: str) -> None:
            self.events.append(LinkEvent(root, target, link.text, outcome, in_prompt=True))

        target = clean_target(link.target)
        if target is None:
            return log(link.target, "skipped:bad_target")
        if config.max_link_depth < 1:
            return log(target, "skipped:max_depth")
        variants = corpus.get_title_variants(target) if corpus is not None else []
        title = variants[0] if variants else target
        if title in context.docs:
            context.add_link(root, title, link.paren_close_pos)
            return log(title, "existing")
        if context.n_auxiliary() >= config.max_auxiliary_documents:
            return log(target, "skipped:max_aux")
        if variants:
            assert corpus is not None
            toks = corpus.get_document(title, self.vocab_size, headings=self.headings)
            src = corpus.get_source_path(title) or "corpus"
            if toks is not None and context.add_corpus_document(
                title, toks, root, source=src, depth=1, links=corpus.links(title)
            ):
                context.add_link(root, title, link.paren_close_pos)
                return log(title, "corpus")
            return log(title, "skipped:context_full")
        if not config.allow_corpus_fallback:
            return log(target, "skipped:not_in_corpus")
        if not context.add_placeholder(target, root, depth=1):
            return log(target, "skipped:context_full")
        context.add_link(root, target, link.paren_close_pos)
        to_generate.append(target)
        return log(target, "generated")
