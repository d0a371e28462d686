from __future__ import annotations

import numpy as np
import pytest
import torch
from ds2ds_gen.context_runner import ContextRunner
from ds2ds_gen.corpus import DocumentCorpus
from ds2ds_gen.document_context import DocumentContext
from ds2ds_gen.errors import ConfigError, PromptTooLongError
from ds2ds_gen.generation_config import GenerationConfig
from ds2ds_gen.linked_doc_generator import LinkedDocumentGenerator, generate_linked
from ds2ds_gen.single_doc_generator import SingleDocumentGenerator
from ds2ds_gen.tokenizer import EOS_TOKEN_ID, get_encoding

enc = get_encoding()
V = 50257


class ScriptedRunner:
    """Emits a fixed continuation per document title (then EOS); optionally checks that the
    KV-cache and full-recompute logits of a real model agree at every step."""

    def __init__(self, scripts, model, ctx, check: bool):
        self.scripts = {t: enc.encode(s) for t, s in scripts.items()}
        self.ctx = ctx
        self.checks = 0
        if check:
            self.kv = ContextRunner(model, ctx, use_kv_cache=True)
            self.full = ContextRunner(model, ctx, use_kv_cache=False)
        self.check = check

    def next_logits(self):
        doc = self.ctx.current_document
        if self.check:
            a, b = self.kv.next_logits(), self.full.next_logits()
            assert torch.allclose(a, b, atol=1e-4), (doc.title, (a - b).abs().max())
            self.checks += 1
        script = self.scripts.get(doc.title, [])
        i = len(doc.tokens) - doc.prompt_len
        tok = script[i] if i < len(script) else EOS_TOKEN_ID
        out = torch.zeros(V)
        out[tok] = 10.0
        return out


def run(scripts, prompt, corpus=None, check=False, model=None, **cfg):
    holder = {}

    def factory(m, ctx, config):
        holder["r"] = ScriptedRunner(scripts, model, ctx, check)
        return holder["r"]

    config = GenerationConfig(
        **{
            "temperature": 0.0,
            "max_tokens_per_document": 128,
            "max_context_length": 512,
            "max_new_tokens": 60,
            "link_targets": "free",  # scripted links to titles outside the corpus (the default constrains them)
            "lead": "none",  # scripts write whole bodies (the default lead writes the title first)
            **cfg,
        }
    )
    gen = LinkedDocumentGenerator(model, enc.encode_ordinary, enc.decode, runner_factory=factory)
    res = gen.generate(prompt=prompt, corpus=corpus, config=config)
    return res, holder["r"]


@pytest.fixture
def corpus(small_corpus):
    with DocumentCorpus(small_corpus[1]) as c:
        yield c


def outcomes(res):
    return [(e.target, e.outcome) for e in res.links]


def test_corpus_and_generated_links(corpus, tiny_model) -> None:
    a = corpus.titles()[0]
    scripts = {"Root": f" Intro [{a}]({a}) mid [B](B) end.", "B": "B is new. See [C](C)."}
    res, runner = run(scripts, "# Root\n\n", corpus, check=True, model=tiny_model(vocab=V, max_seq_len=512))
    assert runner.checks > 20  # KV cache and full recomputation agreed at every step
    assert outcomes(res) == [(a, "corpus"), ("B", "generated"), ("C", "skipped:max_depth")]
    titles = [d.title for d in res.get_all_documents()]
    assert titles == ["Root", a, "B"]
    # the corpus tokenizes headings as "title", this model as plain "bpe": the document comes in re-tokenized
    assert corpus.headings == "title" and tiny_model().cfg.headings == "bpe"
    assert res.get_document_by_title(a).tokens.tolist() == corpus.get_document(a, headings="bpe").tolist()
    b = res.get_document_by_title("B")
    assert b.text.startswith("# B\n\nB is new. See [C](C).") and b.depth == 1 and b.parent_title == "Root"
    assert res.root_document.text == f"# Root\n\n Intro [{a}]({a}) mid [B](B) end."
    assert int(res.root_document.tokens[-1]) == 50256  # the tokens keep the end-of-document id
    assert res.link_graph()["Root"] == [a, "B"] and res.stop_reason == "eos"
    assert res.get_document_by_title(b.title_normalized) is b


def test_depth_two_topological_order_and_cycles(corpus, tiny_model) -> None:
    scripts = {"Root": " [B](B) and [Root](Root).", "B": "b [C](C) [Root](Root)", "C": "c [D](D)"}
    res, runner = run(scripts, "# Root\n\n", None, check=True, model=tiny_model(vocab=V, max_seq_len=512), max_link_depth=2)
    assert [d.title for d in res.auxiliary_documents] == ["C", "B"]  # C before B: B links to C
    assert ("D", "skipped:max_depth") in outcomes(res) and ("Root", "cycle") in outcomes(res)
    assert res.get_document_by_title("C").depth == 2


def test_limits(corpus) -> None:
    a = corpus.titles()[0]
    scripts = {"Root": f" [{a}]({a}) [B](B) [{a}]({a})"}
    res, _ = run(scripts, "# Root\n\n", corpus, max_auxiliary_documents=1)
    assert outcomes(res) == [(a, "corpus"), ("B", "skipped:max_aux"), (a, "existing")]
    res, _ = run(scripts, "# Root\n\n", corpus, allow_corpus_fallback=False)
    assert ("B", "skipped:not_in_corpus") in outcomes(res)
    res, _ = run(scripts, "# Root\n\n", corpus, max_link_depth=0)
    assert all(o == "skipped:max_depth" for _, o in outcomes(res))
    res, _ = run({"Root": " x" * 100}, "# Root\n\n", max_new_tokens=7)
    assert res.stop_reason == "max_new_tokens" and res.new_tokens == 7
    res, _ = run({"Root": " x" * 100}, "# Root\n\n", max_tokens_per_document=20, max_context_length=64)
    assert res.stop_reason == "max_tokens_per_document" and len(res.root_document.tokens) == 20


def test_prompt_links(corpus, tiny_model) -> None:
    a = corpus.titles()[1]
    prompt = f"# Root\n\nSee [{a}]({a}) and [Q](Q)."
    res, runner = run({"Q": "q text.", "Root": " done."}, prompt, corpus, check=True, model=tiny_model(vocab=V, max_seq_len=512))
    assert [(e.target, e.outcome, e.in_prompt) for e in res.links] == [(a, "corpus", True), ("Q", "generated", True)]
    assert res.get_document_by_title("Q").text == "# Q\n\nq text."
    assert res.root_document.text == prompt + " done."


def test_eviction(corpus, tiny_model) -> None:
    a, b = corpus.titles()[0], corpus.titles()[1]
    scripts = {"Root": f" [{a}]({a}) [{b}]({b}) [N](N) end", "N": "n " * 10}
    la, lb = len(corpus.get_document(a)), len(corpus.get_document(b))
    root_at_n = len(enc.encode(f"# Root\n\n [{a}]({a}) [{b}]({b}) [N](N)"))
    ctx_len = root_at_n + la + lb + 1  # room for root and both corpus docs, not for N as well
    res, runner = run(
        scripts,
        "# Root\n\n",
        corpus,
        check=True,
        model=tiny_model(vocab=V, max_seq_len=512),
        max_context_length=ctx_len,
        max_tokens_per_document=min(ctx_len, 128),
    )
    assert res.get_document_by_title(a).evicted  # oldest finished auxiliary document went first
    assert ("N", "generated") in outcomes(res)
    res, _ = run(
        scripts,
        "# Root\n\n",
        corpus,
        max_context_length=ctx_len,
        max_tokens_per_document=min(ctx_len, 128),
        eviction_policy="stop_new",
    )
    assert ("N", "skipped:context_full") in outcomes(res)
    assert not any(d.evicted for d in res.get_all_documents())


def test_document_context_spans() -> None:
    ctx = DocumentContext(100, 50, "drop_oldest", enc.encode_ordinary, enc.decode)
    ctx.initialize_root([1, 2, 3], "R")
    assert ctx.add_corpus_document("A", np.arange(10), "R")
    ctx.add_link("R", "A", 2)
    assert ctx.start_auxiliary_generation("B", "R", header_tokens=[7, 8])
    assert ctx.current == "B" and ctx.append_token_to_current(9)
    ctx.complete_current_document()
    ctx.switch_to_document("R")
    spans = ctx.get_doc_spans()
    assert [(s.doc_id, s.start, s.length, s.links) for s in spans] == [(0, 0, 3, ((1, 2),)), (1, 3, 10, ()), (2, 13, 3, ())]
    assert ctx.get_tokens_for_model().shape == (1, 16) and ctx.current_token_index() == 2
    assert ctx.can_add_document(90) == (True, None)  # by evicting A and B
    assert ctx.can_add_document(98) == (False, "context_full")
    assert ctx.evict_if_needed(90) and [d.title for d in ctx.active_documents] == ["R", "B"]
    assert ctx.get_doc_spans()[0].links == ()
    with pytest.raises(KeyError):
        ctx.switch_to_document("A")


def test_bad_inputs(tiny_model) -> None:
    m = tiny_model(vocab=V, max_doc_len=64, max_seq_len=256)
    gen = LinkedDocumentGenerator(m, enc.encode_ordinary, enc.decode)
    with pytest.raises(PromptTooLongError, match="tokens"):
        gen.generate(prompt="word " * 100, config=GenerationConfig(max_tokens_per_document=64, max_context_length=256))
    with pytest.raises(ConfigError, match="max_doc_len"):
        gen.generate(prompt="x", config=GenerationConfig(max_tokens_per_document=128, max_context_length=256))
    with pytest.raises(ConfigError, match="temperature"):
        GenerationConfig(temperature=-1)
    with pytest.raises(ConfigError, match="eviction_policy"):
        GenerationConfig(eviction_policy="lru")


def test_path_characters_in_titles(tmp_path) -> None:
    res, _ = run({"Root": " [x](../../etc/passwd)"}, "# Root\n\n")
    doc = res.get_document_by_title("../../etc/passwd")
    assert doc is not None and doc.title_normalized.startswith("etcpasswd_")


def test_real_model_generate_is_seeded(tiny_model) -> None:
    m = tiny_model(vocab=V, max_seq_len=512)
    r1 = generate_linked(
        m,
        prompt="# T\n\nHello",
        max_new_tokens=12,
        temperature=1.0,
        top_k=50,
        seed=5,
        max_tokens_per_document=128,
        max_context_length=512,
    )
    r2 = generate_linked(
        m,
        prompt="# T\n\nHello",
        max_new_tokens=12,
        temperature=1.0,
        top_k=50,
        seed=5,
        max_tokens_per_document=128,
        max_context_length=512,
    )
    assert r1.root_document.tokens.tolist() == r2.root_document.tokens.tolist()
    assert len(r1.root_document.tokens) > len(enc.encode("# T\n\nHello"))
    ctx = DocumentContext(512, 128, "drop_oldest", enc.encode_ordinary, enc.decode)
    ctx.initialize_root(enc.encode("# T\n\nHello"), "T")
    n = SingleDocumentGenerator().generate(
        m, ctx, GenerationConfig(max_new_tokens=5, temperature=0.0, max_tokens_per_document=128, max_context_length=512)
    )
    assert n == 5 or ctx.current_document.tokens[-1] == EOS_TOKEN_ID
