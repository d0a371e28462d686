from __future__ import annotations

import hashlib
import re

import pytest
from ds2ds_gen import tokenizer as tk
from ds2ds_gen.errors import TokenizerError
from ds2ds_gen.title_utils import create_filename, generate_title_hash, normalize_title, strip_hash, title_matches_filename
from hypothesis import given, settings
from hypothesis import strategies as st


def test_known_gpt2_ids() -> None:
    enc = tk.get_encoding()
    # Published GPT-2 ids (e.g. the HF gpt2 tokenizer): "Hello world" -> [15496, 995].
    assert enc.encode("Hello world") == [15496, 995]
    assert enc.encode("<|endoftext|>", allowed_special="all") == [50256]
    assert enc.n_vocab == 50257
    text = "The [Quick](Brown Fox) jumps: ümlaut & 漢字 123."
    assert enc.decode(enc.encode(text)) == text


def test_link_ids_derived_match_seed_values() -> None:
    ids = tk.link_token_ids()
    assert ids.open_ids == (58, 685) and ids.mid_id == 16151 and ids.close_id == 8
    enc = tk.get_encoding()
    assert all(")" in enc.decode([t]) for t in ids.close_candidates)
    assert enc.encode(").")[0] in ids.close_candidates


def test_sha_mismatch_is_reported(tmp_path, monkeypatch) -> None:
    (tmp_path / "vocab.bpe").write_text("#version\n")
    (tmp_path / "encoder.json").write_text("{}")
    monkeypatch.setattr(tk, "_data_dir", lambda: tmp_path)
    tk.get_encoding.cache_clear()
    try:
        with pytest.raises(TokenizerError, match="sha256"):
            tk.get_encoding()
    finally:
        monkeypatch.undo()
        tk.get_encoding.cache_clear()


def test_title_examples() -> None:
    assert normalize_title("New Topic") == "new_topic"
    assert normalize_title("C++ (language)!") == "c_language"
    h = hashlib.sha256(b"New Topic").hexdigest()[:6]
    assert generate_title_hash("New Topic") == h
    assert create_filename("New Topic") == f"new_topic_{h}"
    assert strip_hash("new_topic_3a7f2c") == "new_topic"
    assert strip_hash("new_topic") == "new_topic"
    assert title_matches_filename(create_filename("Python"), "Python")
    assert not title_matches_filename(create_filename("Python"), "python")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_filenames_are_safe_and_roundtrip(title: str) -> None:
    name = create_filename(title)
    assert re.fullmatch(r"[a-z0-9_]*_[0-9a-f]{6}", name)
    assert "/" not in name and ".." not in name and len(name) <= 207
    assert name == create_filename(title)  # deterministic
    assert strip_hash(name) == normalize_title(title)[:200]


def test_encode_prefix_matches_mid_text_tokens() -> None:
    enc = tk.get_encoding()
    for head in ["# Foo Bar\n\n", "A [x](y)\n", "Title\n\n\n"]:
        ids = tk.encode_prefix(head)
        assert enc.decode(ids) == head
        assert enc.encode(head + "Next words")[: len(ids)] == ids
