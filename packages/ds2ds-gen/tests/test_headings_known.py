"""Title headings (a ``# Title`` line holds the title's own tokens) and ``link_targets="known"``
(the default with a corpus: corpus titles plus the sample's own documents)."""

from __future__ import annotations

import json
import re

import pytest
from ds2ds_gen.corpus import DocumentCorpus, pretokenize
from ds2ds_gen.errors import CorpusError, TokenizerError
from ds2ds_gen.generation_config import GenerationConfig
from ds2ds_gen.linked_doc_generator import LinkedDocumentGenerator
from ds2ds_gen.model import ModelConfig, load_checkpoint
from ds2ds_gen.tokenizer import get_encoding, heading_encoder

enc = get_encoding()
LINK = re.compile(r"\]\(([^()\[\]]*)\)")


@pytest.mark.parametrize("title", ["Shisteam", "Mara Tol", "River Vash", "Drea Guild", "Kelmar-on-Vash"])
def test_title_heading_holds_the_tokens_the_document_names_itself_with(title: str) -> None:
    text = f"# {title}\n\n{title} is here. See [{title}]({title})."
    ids = heading_encoder(enc.encode_ordinary)(text)
    assert enc.decode(ids) == text
    own = enc.encode_ordinary(f"{title} is")[:-1]  # the title at the start of a line, plain BPE
    assert ids[:2] == enc.encode_ordinary("# ") and ids[2 : 2 + len(own)] == own
    # ... the same ids as the first sentence and as the link target (plain BPE of those)
    body = enc.encode_ordinary(f"\n\n{title} is here.")
    assert ids[2 + len(own) : 2 + len(own) + len(body)] == body
    assert enc.encode_ordinary(f"]({title})")[1 : 1 + len(own)] == own
    assert heading_encoder(enc.encode_ordinary, "bpe") == enc.encode_ordinary
    with pytest.raises(TokenizerError, match="headings"):
        heading_encoder(enc.encode_ordinary, "x")


def test_corpus_records_headings_and_retokenizes_on_request(small_corpus, tmp_path) -> None:
    md, out = small_corpus
    index = json.loads((out / "index.json").read_text())
    assert index["headings"] == "title"
    with DocumentCorpus(out) as c:
        t = c.titles()[0]
        text = (md / index["documents"][t]["file"]).read_text()
        stored = c.get_document(t).tolist()
        assert stored[:2] == enc.encode_ordinary("# ") and enc.decode(stored[:-1]) == text
        # oracle: plain tiktoken on the markdown file
        assert c.get_document(t, headings="bpe").tolist() == enc.encode_ordinary(text) + [enc.eot_token]
        assert c.get_document(t, headings="title").tolist() == stored
    plain = tmp_path / "plain"
    pretokenize(md, plain, headings="bpe")
    with DocumentCorpus(plain) as c:
        assert c.headings == "bpe" and c.get_document(t).tolist() == enc.encode_ordinary(text) + [enc.eot_token]
    with pytest.raises(CorpusError, match="headings"):
        pretokenize(md, tmp_path / "bad", headings="nope")
    # an index from before 0.2 has no field: plain BPE; a bad value is refused naming the field
    data = json.loads((plain / "index.json").read_text())
    del data["headings"]
    (plain / "index.json").write_text(json.dumps(data))
    with DocumentCorpus(plain) as c:
        assert c.headings == "bpe"
    data["headings"] = 3
    (plain / "index.json").write_text(json.dumps(data))
    with pytest.raises(CorpusError, match="field 'headings'"):
        DocumentCorpus(plain)


def test_training_inherits_the_corpus_headings_and_generation_uses_them(small_corpus, tmp_path, tiny_model) -> None:
    import ds2ds_gen.train as tr

    mc = ModelConfig(d_model=16, n_layers=1, n_heads=2, max_doc_len=128, max_seq_len=512)
    tr.train(small_corpus[1], tmp_path / "ck", tr.TrainConfig(model=mc, seq_len=64, batch_size=2, steps=2, warmup=1, threads=1))
    model, _ = load_checkpoint(tmp_path / "ck")
    assert model.cfg.headings == "title"
    with pytest.raises(Exception, match="headings"):
        ModelConfig(headings="x")
    cfg = GenerationConfig(max_new_tokens=2, temperature=0.0, max_tokens_per_document=96, max_context_length=400)
    with DocumentCorpus(small_corpus[1]) as c:
        a = c.titles()[0]
        prompt = f"# Mara Tol\n\nSee [{a}]({a})"
        for m, head in ((model, "title"), (tiny_model(), "bpe")):
            res = LinkedDocumentGenerator(m, enc.encode_ordinary, enc.decode).generate(prompt=prompt, corpus=c, config=cfg)
            want = heading_encoder(enc.encode_ordinary, head)(prompt)
            assert res.root_document.tokens.tolist()[: len(want)] == want
            # the linked corpus document is in the model's tokenization, same text
            assert res.get_document_by_title(a).tokens.tolist() == c.get_document(a, headings=head).tolist()


def test_known_targets_allow_corpus_titles_and_the_samples_own_documents(small_corpus, scripted) -> None:
    _, out = small_corpus
    prompt = "# R\n\nAbout [New One](New One)."
    script = {"R": " Again [New One](New One), then [Nowhere Land](Nowhere Land) end.", "New One": " A new one."}
    with DocumentCorpus(out) as c:
        titles = set(c.titles())
        free = scripted(script, prompt, corpus=c)  # the helper's default: free
        known = scripted(script, prompt, corpus=c, link_targets="known")
        auto = scripted(script, prompt, corpus=c, link_targets="auto")
        bare = scripted(script, prompt, link_targets="auto")
    assert [(e.target, e.outcome) for e in free.links][1:] == [("New One", "existing"), ("Nowhere Land", "generated")]
    text = known.root_document.text or enc.decode(list(known.root_document.tokens))
    targets = LINK.findall(text)
    assert targets[:2] == ["New One", "New One"]  # the prompt's link and the model's link to the same document
    assert targets[2] in titles  # "Nowhere Land" was steered into the corpus
    assert [e.outcome for e in known.links][1:] == ["existing", "corpus"]
    assert known.generation_config["link_targets_used"] == "known"
    assert (
        auto.generation_config["link_targets_used"] == "known"
        and auto.root_document.tokens.tolist() == known.root_document.tokens.tolist()
    )
    assert bare.generation_config["link_targets_used"] == "free"  # no corpus: nothing to constrain to
    assert [e.outcome for e in bare.links][-1] == "generated"


def test_title_lead_starts_bare_headings_with_the_title(small_corpus, scripted) -> None:
    _, out = small_corpus
    script = {"R": " is a root. See [New One](New One).", "New One": " is new."}
    led = scripted(script, "# R\n\n", link_targets="free", lead="title")
    assert (led.root_document.text or "").startswith("# R\n\nR is a root.")
    new = led.get_document_by_title("New One")
    assert new is not None and (new.text or "").startswith("# New One\n\nNew One is new.")
    # the lead is prompt, not generated: max_new_tokens counts the model's tokens only
    short = scripted(script, "# R\n\n", link_targets="free", lead="title", max_new_tokens=2)
    assert enc.decode(list(short.root_document.tokens)) == "# R\n\nR is a"
    # a prompt that is more than a bare heading is left as it is
    other = scripted(script, "# R\n\nAbout", link_targets="free", lead="title", max_new_tokens=2)
    assert enc.decode(list(other.root_document.tokens)) == "# R\n\nAbout is a"
    none = scripted(script, "# R\n\n", link_targets="free", lead="none")
    assert (none.root_document.text or "").startswith("# R\n\n is a root.")
