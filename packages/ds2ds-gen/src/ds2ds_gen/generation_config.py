"""GenerationConfig: every knob of a generation run (frozen, validated, JSON-able)."""

from __future__ import annotations

from typing import Any

import attrs

from .errors import ConfigError
from .masks import MASK_TYPES, MaskType
from .tokenizer import EOS_TOKEN_ID

__all__ = ["LINK_TARGETS", "GenerationConfig"]


def _int_ge(lo: int):  # type: ignore[no-untyped-def]
    def check(_i: object, a: attrs.Attribute, v: object) -> None:
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise ConfigError(f"GenerationConfig.{a.name} = {v!r}: must be an integer >= {lo}")

    return check


def _choice(options: tuple[str, ...]):  # type: ignore[no-untyped-def]
    def check(_i: object, a: attrs.Attribute, v: object) -> None:
        if v not in options:
            raise ConfigError(f"GenerationConfig.{a.name} = {v!r}: must be one of {list(options)}")

    return check


def _temperature(_i: object, a: attrs.Attribute, v: object) -> None:
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= 100:
        raise ConfigError(f"GenerationConfig.{a.name} = {v!r}: must be a number in [0, 100] (0 = greedy)")


def _top_k(_i: object, a: attrs.Attribute, v: object) -> None:
    if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
        raise ConfigError(f"GenerationConfig.{a.name} = {v!r}: must be None or an integer >= 1")


def _top_p(_i: object, a: attrs.Attribute, v: object) -> None:
    if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 < v <= 1):
        raise ConfigError(f"GenerationConfig.{a.name} = {v!r}: must be None or a number in (0, 1]")


def _device(_i: object, a: attrs.Attribute, v: object) -> None:
    import torch

    try:
        dev = torch.device(v) if isinstance(v, str) else None
    except (RuntimeError, ValueError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"GenerationConfig.{a.name} = {v!r}: must be 'cpu', 'cuda', 'cuda:N' or 'mps'")


def _stop(_i: object, a: attrs.Attribute, v: tuple[object, ...]) -> None:
    if len(v) > 16 or not all(isinstance(x, str) and 1 <= len(x) <= 200 for x in v):
        raise ConfigError(f"GenerationConfig.{a.name} = {v!r}: must be at most 16 strings of 1..200 characters")


def _bool(_i: object, a: attrs.Attribute, v: object) -> None:
    if not isinstance(v, bool):
        raise ConfigError(f"GenerationConfig.{a.name} = {v!r}: must be true or false")


#: ``GenerationConfig.link_targets`` values.
LINK_TARGETS = ("auto", "free", "corpus", "known")


@attrs.frozen
class GenerationConfig:
    """Configuration of one generation run.

    ``max_new_tokens`` caps the tokens generated for *each* document (the root and every
    generated auxiliary document, counted separately; a run generates up to
    ``(1 + max_auxiliary_documents) * max_new_tokens`` tokens); every document (root,
    generated or from the corpus) is capped at ``max_tokens_per_document`` tokens in all (corpus
    documents are cut). ``max_context_length`` caps the tokens of all documents in context; when
    it is reached ``eviction_policy`` decides: ``drop_oldest`` evicts the oldest finished auxiliary
    document, ``stop_new`` refuses new documents and stops the current one. ``max_link_depth``:
    the root is at depth 0, its links make depth-1 documents, and a document at depth ``d`` follows
    links only while ``d < max_link_depth``. ``seed`` makes sampling reproducible. ``device``
    (``cpu``, ``cuda``, ``cuda:N``, ``mps``) and ``dtype`` are where and in what precision the
    context and KV cache live; the model must already be there (``load_checkpoint(path,
    device=...)``, ``model.to(...)``): a mismatch is refused, never silently ignored.
    """

    max_new_tokens: int = attrs.field(default=100, validator=_int_ge(1))
    temperature: float = attrs.field(default=1.0, validator=_temperature)
    top_k: int | None = attrs.field(default=None, validator=_top_k)
    top_p: float | None = attrs.field(default=None, validator=_top_p)
    max_tokens_per_document: int = attrs.field(default=512, validator=_int_ge(2))
    max_context_length: int = attrs.field(default=2048, validator=_int_ge(2))
    max_auxiliary_documents: int = attrs.field(default=5, validator=_int_ge(0))
    max_link_depth: int = attrs.field(default=1, validator=_int_ge(0))
    allow_corpus_fallback: bool = attrs.field(default=True, validator=_bool)
    eviction_policy: str = attrs.field(default="drop_oldest", validator=_choice(("drop_oldest", "stop_new")))
    process_prompt_links: bool = attrs.field(default=True, validator=_bool)
    allow_recursive_links: bool = attrs.field(default=True, validator=_bool)
    eos_token_id: int = attrs.field(default=EOS_TOKEN_ID, validator=_int_ge(0))
    mask_type: MaskType = attrs.field(default="cross_doc_link", validator=_choice(MASK_TYPES))
    use_kv_cache: bool = attrs.field(default=True, validator=_bool)
    attention: str = attrs.field(default="sdpa", validator=_choice(("sdpa", "flex")))
    dtype: str = attrs.field(default="float32", validator=_choice(("float32", "bfloat16")))
    seed: int = attrs.field(default=0, validator=_int_ge(0))
    device: str = attrs.field(default="cpu", validator=_device)
    #: a document stops as soon as the text it generated contains one of these strings (kept in
    #: the text; stop reason ``stop_string``); at most 16 strings of 1..200 characters
    stop: tuple[str, ...] = attrs.field(default=(), converter=tuple, validator=_stop)
    #: record the model's log-probability (temperature 1, unfiltered) of every generated token
    logprobs: bool = attrs.field(default=False, validator=_bool)
    #: ``free``: the model writes any link target (a target missing from the corpus becomes a
    #: generated document); ``corpus``: link targets are constrained to the corpus's titles while
    #: they are written (:mod:`ds2ds_gen.title_constraint`; needs a corpus); ``known``: to the
    #: corpus's titles and the titles of the sample's own documents in context (those its prompt
    #: links to, generated ones); ``auto`` (default): ``known`` with a corpus, ``free`` without
    link_targets: str = attrs.field(default="auto", validator=_choice(LINK_TARGETS))
    #: ``title`` (default): a document that starts from a bare heading (every generated
    #: auxiliary document, and a root whose prompt is exactly ``# Title\n\n``) starts its body
    #: with its title, as every article of the corpus does (``# Kelmar\n\nKelmar``); the model
    #: writes the rest of the first sentence. The lead counts as prompt (not generated, no
    #: logprobs). ``none``: the body starts empty (0.1 behaviour)
    lead: str = attrs.field(default="title", validator=_choice(("title", "none")))

    def __attrs_post_init__(self) -> None:
        if self.max_tokens_per_document > self.max_context_length:
            raise ConfigError(
                f"GenerationConfig.max_tokens_per_document = {self.max_tokens_per_document}: must be <= "
                f"max_context_length = {self.max_context_length}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for metadata (result.json, dataset manifests)."""
        return attrs.asdict(self)
