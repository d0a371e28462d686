"""``link_targets="corpus"``: link targets constrained to corpus titles while they are written."""

from __future__ import annotations

import re

import pytest
from ds2ds_gen.corpus import DocumentCorpus
from ds2ds_gen.errors import ConfigError
from ds2ds_gen.generation_config import GenerationConfig
from ds2ds_gen.linked_doc_generator import LinkedDocumentGenerator
from ds2ds_gen.title_constraint import TitleTrie
from ds2ds_gen.tokenizer import get_encoding, link_token_ids

enc = get_encoding()
LINK = re.compile(r"\]\(([^()\[\]]*)\)")


def test_trie_allows_exactly_title_continuations() -> None:
    ids = link_token_ids()
    trie = TitleTrie(["River Vash", "River Vashna", "Kelmar"], enc.encode_ordinary, ids.mid_id, ids.close_candidates, enc.decode)
    pre = enc.encode_ordinary("See [x](")
    assert pre[-1] == ids.mid_id
    first = trie.allowed(pre)
    assert first == {enc.encode_ordinary("River Vash")[0], enc.encode_ordinary("Kelmar")[0]}
    done = trie.allowed(pre + enc.encode_ordinary("Kelmar"))
    assert done and all(enc.decode([t]).startswith(")") for t in done) and ids.close_id in done
    assert trie.allowed(pre + enc.encode_ordinary("Kelmar") + [ids.close_id]) is None  # closed
    assert trie.allowed(pre + enc.encode_ordinary("Nowhere")) is None  # off the trie: free
    assert trie.allowed(enc.encode_ordinary("no link here")) is None


def test_scripted_link_to_a_missing_title_is_steered_into_the_corpus(small_corpus, scripted) -> None:
    _, out = small_corpus
    script = {"R": " See [Nowhere Land](Nowhere Land) and more."}
    with DocumentCorpus(out) as c:
        titles = set(c.titles())
        free = scripted(script, "# R\n\n", corpus=c)
        forced = scripted(script, "# R\n\n", corpus=c, link_targets="corpus")
    assert [e.outcome for e in free.links] == ["generated"]
    targets = LINK.findall(forced.root_document.text or enc.decode(list(forced.root_document.tokens)))
    assert targets and all(t in titles for t in targets)
    assert [e.outcome for e in forced.links][:1] == ["corpus"]


def test_constraint_needs_a_corpus_and_batched_equals_single(small_corpus, tiny_model) -> None:
    _, out = small_corpus
    m = tiny_model(seed=3)
    gen = LinkedDocumentGenerator(m, enc.encode_ordinary, enc.decode)
    cfgs = [
        GenerationConfig(
            max_new_tokens=12, temperature=1.0, seed=s, link_targets="corpus", max_tokens_per_document=96, max_context_length=400
        )
        for s in range(3)
    ]
    with pytest.raises(ConfigError, match="link_targets"):
        gen.generate(prompt="# R\n\nSee [a](", config=cfgs[0])
    with DocumentCorpus(out) as c:
        titles = set(c.titles())
        single = [gen.generate(prompt="# R\n\nSee [a](", corpus=c, config=k) for k in cfgs]
        batch = gen.generate_batch(["# R\n\nSee [a]("] * 3, cfgs, corpus=c)
    for a, b in zip(single, batch):
        assert list(a.root_document.tokens) == list(b.root_document.tokens)
        text = enc.decode(list(a.root_document.tokens))
        first = LINK.search(text)
        assert first is not None and first.group(1) in titles, text
