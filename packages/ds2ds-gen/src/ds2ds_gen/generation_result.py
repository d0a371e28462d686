"""What a generation run returns: the root document, its auxiliary documents, the link graph."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import numpy as np

__all__ = ["GeneratedDocument", "GenerationResult", "LinkEvent"]


@dataclass
class GeneratedDocument:
    """One document of a result.

    ``title``: as written in the link (or the root's title); ``title_normalized``: the
    normalized+hashed file stem; ``source``: ``"generated"``, ``"corpus"`` or the corpus file's
    Path; ``depth``: link distance from the root; ``evicted``: left the context before the end.
    At least one of ``tokens`` and ``text`` is set.
    """

    title: str
    title_normalized: str
    tokens: np.ndarray | None
    text: str | None
    source: Union[Literal["generated", "corpus"], Path]
    is_root: bool
    parent_title: str | None
    depth: int = 0
    evicted: bool = False
    links: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.tokens is None and self.text is None:
            raise ValueError(f"document {self.title!r}: at least one of tokens and text must be set")

    @property
    def source_kind(self) -> str:
        """``"generated"`` or ``"corpus"``."""
        return "generated" if self.source == "generated" else "corpus"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (no token arrays)."""
        return {
            "title": self.title, "title_normalized": self.title_normalized, "source": self.source_kind,
            "corpus_file": str(self.source) if isinstance(self.source, Path) else None,
            "is_root": self.is_root, "parent_title": self.parent_title, "depth": self.depth,
            "evicted": self.evicted, "links": list(self.links),
            "n_tokens": int(len(self.tokens)) if self.tokens is not None else None,
        }


@dataclass
class LinkEvent:
    """A link met during generation and what was done with it.

    ``outcome``: ``corpus`` (document added from the corpus), ``generated`` (document generated),
    ``existing`` (target already in context: linked, not duplicated), ``cycle`` (target is an
    unfinished ancestor), ``pending`` (target is an unfinished document waiting to be generated,
    e.g. a later link of the prompt: recorded in the graph, no attention edge), or ``skipped:<reason>`` (``max_depth``, ``max_aux``, ``context_full``,
    ``not_in_corpus``, ``bad_target``).
    """

    source_title: str
    target: str
    text: str
    outcome: str
    in_prompt: bool = False


@dataclass
class GenerationResult:
    """Root document, auxiliary documents (dependencies before dependents), config and link log."""

    root_document: GeneratedDocument
    auxiliary_documents: list[GeneratedDocument]
    generation_config: dict[str, Any]
    links: list[LinkEvent] = field(default_factory=list)
    stop_reason: str = ""
    new_tokens: int = 0
    seconds: float = 0.0

    def get_all_documents(self) -> list[GeneratedDocument]:
        """Root first, then the auxiliary documents in order."""
        return [self.root_document] + self.auxiliary_documents

    def get_document_by_title(self, title: str) -> GeneratedDocument | None:
        """The document whose title or normalized title is ``title``."""
        for doc in self.get_all_documents():
            if doc.title == title or doc.title_normalized == title:
                return doc
        return None

    def link_graph(self) -> dict[str, list[str]]:
        """``{title: [linked titles present in the result]}``, corpus documents' links included
        (a target naming a document by a variant of its title, e.g. other case, is resolved
        through :func:`~ds2ds_gen.title_utils.normalize_title` when that is unambiguous)."""
        from .title_utils import normalize_title

        docs = self.get_all_documents()
        titles = {d.title for d in docs}
        by_norm: dict[str, list[str]] = {}
        for d in docs:
            by_norm.setdefault(normalize_title(d.title), []).append(d.title)

        def resolve(t: str) -> str | None:
            if t in titles:
                return t
            cands = by_norm.get(normalize_title(t), [])
            return cands[0] if len(cands) == 1 else None

        out: dict[str, list[str]] = {}
        for d in docs:
            seen: list[str] = []
            for t in d.links:
                r = resolve(t)
                if r is not None and r not in seen:
                    seen.append(r)
            out[d.title] = seen
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (what ``result.json`` holds)."""
        return {
            "root": self.root_document.to_dict(),
            "auxiliary": [d.to_dict() for d in self.auxiliary_documents],
            "link_graph": self.link_graph(),
            "links": [vars(e) for e in self.links],
            "stop_reason": self.stop_reason,
            "new_tokens": self.new_tokens,
            "config": self.generation_config,
        }
