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
    #: log-probability of each generated token (after the prompt or ``# Title`` header), when
    #: ``GenerationConfig.logprobs`` was set; None otherwise and for corpus documents
    logprobs: list[float] | None = None

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
            "title": self.title,
            "title_normalized": self.title_normalized,
            "source": self.source_kind,
            "corpus_file": str(self.source) if isinstance(self.source, Path) else None,
            "is_root": self.is_root,
            "parent_title": self.parent_title,
            "depth": self.depth,
            "evicted": self.evicted,
            "links": list(self.links),
            "n_tokens": int(len(self.tokens)) if self.tokens is not None else None,
            **({"logprobs": [round(x, 6) for x in self.logprobs]} if self.logprobs is not None else {}),
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

    def graph(self) -> dict[str, Any]:
        """The complete link graph: ``{"nodes": [...], "edges": [...]}``.

        Nodes: every document of the result (title, source, depth, evicted, root). Edges: every
        link met while generating (``kind`` ``prompt`` or ``generated``, with its ``outcome``
        from the link log, skipped ones included with the reason, e.g. ``skipped:max_depth``) and
        every link written in a corpus document (``kind`` ``corpus``: ``outcome`` ``in_result``
        when its target is a document of the result, else ``not_in_result``). ``attends`` says
        whether the source document's later tokens could attend to the target."""
        from .title_utils import normalize_title

        docs = self.get_all_documents()
        titles = {d.title for d in docs}
        by_norm: dict[str, list[str]] = {}
        for d in docs:
            by_norm.setdefault(normalize_title(d.title), []).append(d.title)

        def resolve(t: str) -> str:
            if t in titles:
                return t
            c = by_norm.get(normalize_title(t), [])
            return c[0] if len(c) == 1 else t

        nodes = [
            {"title": d.title, "source": d.source_kind, "depth": d.depth, "evicted": d.evicted, "is_root": d.is_root}
            for d in docs
        ]
        edges: list[dict[str, Any]] = []
        for e in self.links:
            edges.append(
                {
                    "source": e.source_title,
                    "target": resolve(e.target),
                    "text": e.text,
                    "kind": "prompt" if e.in_prompt else "generated",
                    "outcome": e.outcome,
                    "attends": e.outcome in ("corpus", "generated", "existing"),
                }
            )
        for d in docs:
            if d.source_kind != "corpus":
                continue
            for t in d.links:
                r = resolve(t)
                edges.append(
                    {
                        "source": d.title,
                        "target": r,
                        "text": None,
                        "kind": "corpus",
                        "outcome": "in_result" if r in titles else "not_in_result",
                        "attends": False,
                    }
                )
        return {"nodes": nodes, "edges": edges}

    def graph_stats(self) -> dict[str, Any]:
        """Depth, fan-out (links per document, every edge of :meth:`graph`), corpus vs generated."""
        g = self.graph()
        fan: dict[str, int] = {n["title"]: 0 for n in g["nodes"]}
        for e in g["edges"]:
            fan[e["source"]] = fan.get(e["source"], 0) + 1
        return {
            "documents": len(g["nodes"]),
            "corpus_documents": sum(1 for n in g["nodes"] if n["source"] == "corpus"),
            "generated_documents": sum(1 for n in g["nodes"] if n["source"] == "generated" and not n["is_root"]),
            "max_depth": max(n["depth"] for n in g["nodes"]),
            "edges": len(g["edges"]),
            "attention_edges": sum(1 for e in g["edges"] if e["attends"]),
            "skipped_edges": sum(1 for e in g["edges"] if str(e["outcome"]).startswith("skipped")),
            "max_fan_out": max(fan.values()) if fan else 0,
            "fan_out": fan,
        }

    def to_dot(self) -> str:
        """The graph of :meth:`graph` in Graphviz DOT: documents as boxes (corpus: grey, generated:
        white, root: bold, evicted: dashed), links that became attention edges solid, others
        dotted and labelled with their outcome; targets outside the result as plain ellipses."""
        g = self.graph()

        def q(t: str) -> str:
            return '"' + t.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'

        lines = ["digraph links {", "  rankdir=LR;", "  node [shape=box, fontname=Helvetica];"]
        known = set()
        for n in g["nodes"]:
            known.add(n["title"])
            style = ["filled"] + (["bold"] if n["is_root"] else []) + (["dashed"] if n["evicted"] else [])
            color = "lightgrey" if n["source"] == "corpus" else "white"
            lines.append(
                f'  {q(n["title"])} [style="{",".join(style)}", fillcolor={color}, tooltip="{n["source"]}, depth {n["depth"]}"];'
            )
        for t in sorted({e["target"] for e in g["edges"]} - known):
            lines.append(f"  {q(t)} [shape=ellipse, color=grey];")
        for e in g["edges"]:
            attrs_ = "style=solid" if e["attends"] else f"style=dotted, label={q(str(e['outcome']))}"
            lines.append(f"  {q(e['source'])} -> {q(e['target'])} [{attrs_}];")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_svg(self) -> str:
        """A picture of :meth:`graph` as standalone SVG: one column per link depth (targets
        outside the result in a last column), documents as boxes (corpus grey, root bold border,
        evicted dashed), attention edges solid, other links dashed grey; every box and edge has
        a ``<title>`` tooltip (source, depth / outcome)."""
        from html import escape

        g = self.graph()
        depth_of = {n["title"]: n["depth"] for n in g["nodes"]}
        outside = sorted({e["target"] for e in g["edges"]} - set(depth_of))
        last = max(depth_of.values(), default=0) + 1
        cols: dict[int, list[str]] = {}
        for n in g["nodes"]:
            cols.setdefault(n["depth"], []).append(n["title"])
        if outside:
            cols[last] = outside
        bw, bh, gx, gy = 180, 28, 90, 18
        where = {t: (20 + c * (bw + gx), 20 + i * (bh + gy)) for c, ts in cols.items() for i, t in enumerate(ts)}
        width = 40 + (max(cols) + 1) * (bw + gx)
        height = 40 + max(len(ts) for ts in cols.values()) * (bh + gy)
        out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="Helvetica" '
            f'font-size="11"><defs><marker id="a" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" '
            f'markerHeight="6" orient="auto"><path d="M0,0L10,5L0,10z"/></marker></defs>'
        ]
        for e in g["edges"]:
            (x1, y1), (x2, y2) = where[e["source"]], where[e["target"]]
            sx, ex = (x1 + bw, x2) if x2 > x1 else (x1, x2 + bw)
            style = 'stroke="black"' if e["attends"] else 'stroke="grey" stroke-dasharray="4,3"'
            out.append(
                f'<line class="edge" x1="{sx}" y1="{y1 + bh // 2}" x2="{ex}" y2="{y2 + bh // 2}" {style} '
                f'marker-end="url(#a)"><title>{escape(e["source"])} -&gt; {escape(e["target"])}: '
                f"{escape(str(e['outcome']))}</title></line>"
            )
        kinds = {n["title"]: n for n in g["nodes"]}
        for t, (x, y) in where.items():
            n = kinds.get(t)
            fill = "#ddd" if n and n["source"] == "corpus" else ("#fff" if n else "#f6f6f6")
            stroke = ' stroke-width="2.5"' if n and n["is_root"] else ""
            dash = ' stroke-dasharray="5,3"' if (n is None or n["evicted"]) else ""
            tip = f"{n['source']}, depth {n['depth']}" + (", evicted" if n["evicted"] else "") if n else "not in result"
            label = t if len(t) <= 28 else t[:27] + "…"
            out.append(
                f'<g class="node"><rect x="{x}" y="{y}" width="{bw}" height="{bh}" rx="4" fill="{fill}" '
                f'stroke="black"{stroke}{dash}/><text x="{x + 6}" y="{y + 18}">{escape(label)}</text>'
                f"<title>{escape(t)} ({escape(tip)})</title></g>"
            )
        out.append("</svg>")
        return "".join(out)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (what ``result.json`` holds)."""
        return {
            "root": self.root_document.to_dict(),
            "auxiliary": [d.to_dict() for d in self.auxiliary_documents],
            "link_graph": self.link_graph(),
            "graph": self.graph(),
            "links": [vars(e) for e in self.links],
            "stop_reason": self.stop_reason,
            "new_tokens": self.new_tokens,
            "config": self.generation_config,
        }
