from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from ds2ds_gen.corpus import DocumentCorpus, extract_links, pretokenize
from ds2ds_gen.errors import CorpusError
from ds2ds_gen.synth import make_entities
from ds2ds_gen.title_utils import create_filename
from ds2ds_gen.tokenizer import EOS_TOKEN_ID, get_encoding


def test_synth_is_linked_and_deterministic(small_cfg) -> None:
    a, b = make_entities(small_cfg), make_entities(small_cfg)
    assert a == b and len(a) == small_cfg.total
    for title, text in a.items():
        assert text.startswith(f"# {title}\n")
        links = extract_links(text)
        assert links and all(t in a for t in links)


def test_roundtrip(small_corpus, small_cfg) -> None:
    md, out = small_corpus
    enc = get_encoding()
    index = json.loads((out / "index.json").read_text())
    assert len(index["shards"]) > 1  # small shard size forces several shards
    with DocumentCorpus(out) as c:
        assert len(c) == small_cfg.total
        for title in c.titles():
            path = md / f"{create_filename(title)}.md"
            toks = c.get_document(title)
            assert toks[-1] == EOS_TOKEN_ID
            assert enc.decode(toks[:-1].tolist()) == path.read_text()
            assert c.links(title) == extract_links(path.read_text())
            assert c.has_document(title) and c.get_title_variants(title) == [title]
        t = c.titles()[0]
        assert c.get_title_variants(t.upper()) == [t]
        assert c.get_document("No Such Title") is None and not c.has_document("No Such Title")


def _copy(src, tmp_path):
    dst = tmp_path / "c"
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize(
    "damage,match",
    [
        (lambda p: (p / "index.json").unlink(), "index missing"),
        (lambda p: (p / "index.json").write_text("{not json"), "not valid JSON"),
        (lambda p: (p / "index.json").write_text('{"format": "x"}'), "format"),
        (lambda p: _edit(p, lambda d: next(iter(d["documents"].values())).update(offset=10**9)), "past the end"),
        (lambda p: _edit(p, lambda d: d["shards"][0].update(file="../../etc/passwd")), "plain file name"),
    ],
)
def test_broken_index(small_corpus, tmp_path, damage, match) -> None:
    p = _copy(small_corpus[1], tmp_path)
    damage(p)
    with pytest.raises(CorpusError, match=match):
        DocumentCorpus(p)


def _edit(p, fn) -> None:
    d = json.loads((p / "index.json").read_text())
    fn(d)
    (p / "index.json").write_text(json.dumps(d))


def test_broken_shard(small_corpus, tmp_path) -> None:
    p = _copy(small_corpus[1], tmp_path)
    (p / "tokens_00000.npy").write_bytes(b"garbage")
    with DocumentCorpus(p) as c, pytest.raises(CorpusError, match="tokens_00000.npy"):
        for t in c.titles():
            c.get_document(t)
    np.save(p / "tokens_00000.npy", np.zeros(3, np.int32))
    with DocumentCorpus(p) as c, pytest.raises(CorpusError, match="uint16"):
        for t in c.titles():
            c.get_document(t)


def test_duplicate_titles_and_empty(tmp_path) -> None:
    (tmp_path / "a.md").write_text("# Same\n\nx")
    (tmp_path / "b.md").write_text("# Same\n\ny")
    with pytest.raises(CorpusError, match="already used"):
        pretokenize(tmp_path, tmp_path / "out")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CorpusError, match="no \\*.md"):
        pretokenize(empty, tmp_path / "out2")
