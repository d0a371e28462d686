"""DocumentContext: the documents in the model's context during generation.

Documents are kept in the order they entered the context (the pack order). Each has its tokens,
a document id (never reused), the links that let it see other documents (``target id ->
visible_from`` position), whether it is finished, and its parent. Evicted documents leave the
pack (their tokens are archived for the result) and every link to them is dropped from the mask.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from .generation_result import GeneratedDocument
from .masks import DocSpan
from .title_utils import create_filename
from .tokenizer import encode_prefix

_EOS_TEXT = "<|endoftext|>"

__all__ = ["ContextDocument", "DocumentContext"]


@dataclass
class ContextDocument:
    """A document tracked by a :class:`DocumentContext`."""

    doc_id: int
    title: str
    tokens: list[int]
    source: Any  # "generated" | Path | "corpus"
    parent_title: str | None
    depth: int
    is_root: bool = False
    complete: bool = False
    active: bool = True
    links: dict[int, int] = field(default_factory=dict)  # target doc id -> visible_from position
    link_titles: list[str] = field(default_factory=list)
    prompt_len: int = 0
    logprobs: list[float] | None = None  # per generated token (GenerationConfig.logprobs)


class DocumentContext:
    """Manages the packed context: documents, spans, limits, eviction and the generation target."""

    def __init__(
        self,
        max_context_length: int,
        max_tokens_per_doc: int,
        eviction_policy: Literal["drop_oldest", "stop_new"] = "drop_oldest",
        tokenizer_encode: Callable[[str], list[int]] | None = None,
        tokenizer_decode: Callable[[list[int]], str] | None = None,
        device: torch.device | str = "cpu",
        title_lead: bool = False,
    ) -> None:
        #: generated documents' headers end with their title (``# T\n\nT``, GenerationConfig.lead)
        self.title_lead = title_lead
        self.max_context_length = max_context_length
        self.max_tokens_per_doc = max_tokens_per_doc
        self.eviction_policy = eviction_policy
        self.encode = tokenizer_encode
        self.decode = tokenizer_decode
        self.device = torch.device(device)
        self.docs: dict[str, ContextDocument] = {}
        self.order: list[str] = []  # creation order of all documents
        self.current: str | None = None
        self.evictions = 0  # bumped on every eviction (KV caches must be rebuilt)
        self.link_version = 0  # bumped on every link change (cached mask rows must be refreshed)
        self._next_id = 0

    # ---- queries -----------------------------------------------------------------------------
    @property
    def active_documents(self) -> list[ContextDocument]:
        """Documents in context, in pack order."""
        return [self.docs[t] for t in self.order if self.docs[t].active]

    def total_tokens(self) -> int:
        """Tokens of all active documents."""
        return sum(len(d.tokens) for d in self.active_documents)

    def n_auxiliary(self) -> int:
        """Auxiliary documents created so far (active or evicted)."""
        return sum(1 for d in self.docs.values() if not d.is_root)

    def get(self, title: str) -> ContextDocument | None:
        """The document titled ``title`` (active or evicted)."""
        return self.docs.get(title)

    @property
    def current_document(self) -> ContextDocument:
        """The document being generated."""
        if self.current is None:
            raise RuntimeError("no current document")
        return self.docs[self.current]

    def can_add_document(self, n_tokens: int = 1) -> tuple[bool, str | None]:
        """Whether a document of ``n_tokens`` fits (after eviction under ``drop_oldest``)."""
        free = self.max_context_length - self.total_tokens()
        if n_tokens <= free:
            return True, None
        if self.eviction_policy == "stop_new":
            return False, "context_full"
        reclaim = sum(len(d.tokens) for d in self._evictable())
        return (True, None) if n_tokens <= free + reclaim else (False, "context_full")

    # ---- building ----------------------------------------------------------------------------
    def _new(
        self,
        title: str,
        tokens: list[int],
        source: Any,
        parent: str | None,
        depth: int,
        is_root: bool = False,
        complete: bool = False,
    ) -> ContextDocument:
        if title in self.docs:
            raise ValueError(f"document {title!r} is already in the context")
        doc = ContextDocument(self._next_id, title, list(tokens), source, parent, depth, is_root, complete)
        self._next_id += 1
        self.docs[title] = doc
        self.order.append(title)
        return doc

    def initialize_root(self, prompt_tokens: np.ndarray | list[int], title: str = "Root Document") -> None:
        """Make the root document from the prompt and make it the generation target."""
        toks = [int(t) for t in prompt_tokens]
        doc = self._new(title, toks, "generated", None, 0, is_root=True)
        doc.prompt_len = len(toks)
        self.current = title

    def add_corpus_document(
        self,
        title: str,
        tokens: np.ndarray,
        linked_from_title: str | None,
        source: Any = "corpus",
        depth: int = 1,
        links: list[str] | None = None,
    ) -> bool:
        """Add a finished document from the corpus (cut to ``max_tokens_per_doc``); ``links`` are
        its outgoing link targets (graph edges; a corpus document attends only to itself).
        Returns False if it cannot fit (``stop_new``, or nothing left to evict)."""
        toks = [int(t) for t in tokens[: self.max_tokens_per_doc]]
        ok, _ = self.can_add_document(len(toks))
        if not ok or not self._make_room(len(toks)):
            return False
        doc = self._new(title, toks, source, linked_from_title, depth, complete=True)
        doc.link_titles = list(links or [])
        return True

    def start_auxiliary_generation(
        self, title: str, linked_from_title: str | None, depth: int = 1, header_tokens: list[int] | None = None
    ) -> bool:
        """Begin a new generated document (seeded with ``# Title\\n\\n``) and make it current.
        Returns False if the context has no room for it."""
        if not self.add_placeholder(title, linked_from_title, depth, header_tokens):
            return False
        self.current = title
        return True

    def add_placeholder(
        self, title: str, linked_from_title: str | None, depth: int = 1, header_tokens: list[int] | None = None
    ) -> bool:
        """Add an unfinished generated document without switching to it (prompt links)."""
        if header_tokens is None:
            if self.encode is None:
                raise ValueError("a tokenizer_encode is needed to write the document header")
            head = f"# {title}\n\n"
            header_tokens = encode_prefix(head, self.encode) if not self.title_lead else self.encode(head + title)
        header_tokens = header_tokens[: max(1, self.max_tokens_per_doc - 1)]
        ok, _ = self.can_add_document(len(header_tokens) + 1)
        if not ok or not self._make_room(len(header_tokens) + 1):
            return False
        doc = self._new(title, header_tokens, "generated", linked_from_title, depth)
        doc.prompt_len = len(header_tokens)
        return True

    def add_link(self, from_title: str, to_title: str, visible_from: int) -> None:
        """Let ``from_title``'s tokens at positions ``>= visible_from`` see all of ``to_title``."""
        src, dst = self.docs[from_title], self.docs[to_title]
        if dst.doc_id == src.doc_id:
            return
        old = src.links.get(dst.doc_id)
        src.links[dst.doc_id] = visible_from if old is None else min(old, visible_from)
        if to_title not in src.link_titles:
            src.link_titles.append(to_title)
        self.link_version += 1

    def note_link(self, from_title: str, to_title: str) -> None:
        """Record a link in the graph without an attention edge (cycles, evicted targets)."""
        src = self.docs[from_title]
        if to_title not in src.link_titles:
            src.link_titles.append(to_title)

    def append_token_to_current(self, token_id: int) -> bool:
        """Append a token to the current document. Returns False, appending nothing, when the
        document is at ``max_tokens_per_doc`` or the context is full and nothing can be evicted."""
        doc = self.current_document
        if len(doc.tokens) >= self.max_tokens_per_doc:
            return False
        if self.total_tokens() + 1 > self.max_context_length and not self.evict_if_needed(1):
            return False
        doc.tokens.append(int(token_id))
        return True

    def complete_current_document(self) -> None:
        """Mark the current document finished."""
        self.current_document.complete = True

    def switch_to_document(self, title: str) -> None:
        """Make ``title`` (an active document) the generation target."""
        doc = self.docs.get(title)
        if doc is None or not doc.active:
            raise KeyError(f"document {title!r} is not in the context")
        self.current = title

    # ---- eviction ----------------------------------------------------------------------------
    def ancestors(self) -> set[str]:
        """The current document and its parents up to the root."""
        return self._ancestors()

    def _ancestors(self) -> set[str]:
        out: set[str] = set()
        t = self.current
        while t is not None:
            out.add(t)
            t = self.docs[t].parent_title if t in self.docs else None
        return out

    def _evictable(self) -> list[ContextDocument]:
        if self.eviction_policy != "drop_oldest":
            return []
        keep = self._ancestors()
        return [d for d in self.active_documents if not d.is_root and d.complete and d.title not in keep]

    def _make_room(self, n_tokens: int) -> bool:
        return self.total_tokens() + n_tokens <= self.max_context_length or self.evict_if_needed(n_tokens)

    def evict_if_needed(self, n_tokens: int = 0) -> bool:
        """Evict the oldest finished auxiliary documents (``drop_oldest``) until ``n_tokens`` more
        fit. Returns whether they fit now."""
        while self.total_tokens() + n_tokens > self.max_context_length:
            cands = self._evictable()
            if not cands:
                return False
            victim = cands[0]
            victim.active = False
            for d in self.docs.values():
                d.links.pop(victim.doc_id, None)
            self.evictions += 1
            self.link_version += 1
        return True

    # ---- model views -------------------------------------------------------------------------
    def get_doc_spans(self) -> list[DocSpan]:
        """Spans of the active documents in pack order, with their links to active documents."""
        active = self.active_documents
        ids = {d.doc_id for d in active}
        spans, start = [], 0
        for d in active:
            links = tuple(sorted((t, v) for t, v in d.links.items() if t in ids))
            spans.append(DocSpan(d.doc_id, start, len(d.tokens), links))
            start += len(d.tokens)
        return spans

    def get_tokens_for_model(self) -> torch.Tensor:
        """Packed token ids ``[1, T]`` of the active documents."""
        toks = [t for d in self.active_documents for t in d.tokens]
        return torch.tensor([toks], dtype=torch.long, device=self.device)

    def current_token_index(self) -> int:
        """Index in the pack of the current document's last token."""
        idx = 0
        for d in self.active_documents:
            idx += len(d.tokens)
            if d.title == self.current:
                return idx - 1
        raise RuntimeError("current document not active")

    def get_all_documents(self) -> list[GeneratedDocument]:
        """Every document (active and evicted) as :class:`GeneratedDocument`, in creation order.

        ``text`` is the decoded tokens without a final ``<|endoftext|>``; ``tokens`` keep it."""
        out = []
        for t in self.order:
            d = self.docs[t]
            arr = np.asarray(d.tokens, dtype=np.int64)
            text = self.decode(d.tokens) if self.decode is not None else None
            if text is not None:
                # The tokens keep the end-of-document token (the model's boundary); the text,
                # which becomes a markdown file, does not.
                text = text.removesuffix(_EOS_TEXT)
            src: Literal["generated", "corpus"] | Path = (
                d.source if isinstance(d.source, Path) or d.source in ("generated", "corpus") else "corpus"
            )
            out.append(
                GeneratedDocument(
                    d.title,
                    create_filename(d.title),
                    arr,
                    text,
                    src,
                    d.is_root,
                    d.parent_title,
                    d.depth,
                    not d.active,
                    list(d.link_titles),
                    list(d.logprobs) if d.logprobs is not None else None,
                )
            )
        return out
