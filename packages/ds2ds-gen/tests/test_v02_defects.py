"""Defects of issue 18 (ds2ds-gen 0.2): each test failed on main at 078fba8."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ds2ds_gen.errors import CheckpointError, ConfigError, CorpusError
from ds2ds_gen.model import ModelConfig, load_checkpoint, save_checkpoint

torch.set_num_threads(1)


# ---- checkpoint config.json: every field validated, sizes bounded ------------------------------
@pytest.mark.parametrize(
    "field,value,match",
    [
        ("rope_base", "x", "rope_base"),
        ("rope_base", -1.0, "rope_base"),
        ("rope_base", float("nan"), "rope_base"),
        ("d_model", 10**9, "d_model"),
        ("n_layers", 10**6, "n_layers"),
        ("vocab_size", 10**12, "vocab_size"),
        ("max_doc_len", 10**12, "max_doc_len"),
        ("max_seq_len", "2048", "max_seq_len"),
        ("mlp_ratio", 4.5, "mlp_ratio"),
    ],
)
def test_checkpoint_config_fields_validated(tiny_model, tmp_path, field, value, match) -> None:
    save_checkpoint(tiny_model(vocab=300), tmp_path / "ck")
    meta = json.loads((tmp_path / "ck" / "config.json").read_text())
    meta["model"][field] = value
    (tmp_path / "ck" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=match) as ei:
        load_checkpoint(tmp_path / "ck")
    assert "config.json" in str(ei.value) and "\n" not in str(ei.value)


def test_model_config_bounds_direct() -> None:
    with pytest.raises(ConfigError, match="rope_base"):
        ModelConfig(rope_base="x")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="d_model"):
        ModelConfig(d_model=1 << 20, n_heads=4)
    assert ModelConfig(rope_base=500000).rope_base == 500000  # ints are fine numbers


def test_checkpoint_with_nan_weights_is_refused(tiny_model, tmp_path) -> None:
    m = tiny_model(vocab=300)
    with torch.no_grad():
        m.blocks[1].fc.weight[3, 2] = float("nan")
    save_checkpoint(m, tmp_path / "ck")
    with pytest.raises(CheckpointError, match=r"model\.pt.*blocks\.1\.fc\.weight.*(NaN|finite)"):
        load_checkpoint(tmp_path / "ck")


def test_checkpoint_extra_not_an_object(tiny_model, tmp_path) -> None:
    save_checkpoint(tiny_model(vocab=300), tmp_path / "ck")
    meta = json.loads((tmp_path / "ck" / "config.json").read_text())
    meta["extra"] = [1, 2]
    (tmp_path / "ck" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="extra"):
        load_checkpoint(tmp_path / "ck")


# ---- corpus token ids beyond the vocabulary ----------------------------------------------------
def _damaged_corpus(small_corpus, tmp_path, value: int):
    import shutil

    dst = tmp_path / "c"
    shutil.copytree(small_corpus[1], dst)
    shard = dst / "tokens_00000.npy"
    arr = np.load(shard)
    arr[5] = value
    np.save(shard, arr)
    return dst


def test_corpus_token_id_beyond_vocab(small_corpus, tmp_path) -> None:
    from ds2ds_gen.corpus import DocumentCorpus

    dst = _damaged_corpus(small_corpus, tmp_path, 60000)
    with DocumentCorpus(dst) as c:
        with pytest.raises(CorpusError, match=r"tokens_00000\.npy.*60000.*position 5"):
            for t in c.titles():
                c.get_document(t)


def test_corpus_token_id_beyond_model_vocab(small_corpus, tiny_model) -> None:
    """A corpus valid for GPT-2 but a model with a smaller vocabulary: one clear error, not an
    IndexError in the embedding."""
    from ds2ds_gen.corpus import DocumentCorpus
    from ds2ds_gen.generation_config import GenerationConfig
    from ds2ds_gen.linked_doc_generator import LinkedDocumentGenerator
    from ds2ds_gen.tokenizer import get_encoding

    enc = get_encoding()
    with DocumentCorpus(small_corpus[1]) as c:
        a = c.titles()[0]
        m = tiny_model(vocab=max(enc.encode(f"[x]({a})")) + 1)  # the prompt fits; the corpus doc's EOS does not
        gen = LinkedDocumentGenerator(m, enc.encode_ordinary, enc.decode)
        with pytest.raises(CorpusError, match=r"vocab"):
            gen.generate(
                prompt=f"[x]({a})",
                corpus=c,
                config=GenerationConfig(max_new_tokens=2, max_tokens_per_document=128, max_context_length=512),
            )


def test_prompt_token_id_beyond_model_vocab(tiny_model) -> None:
    from ds2ds_gen.generation_config import GenerationConfig
    from ds2ds_gen.linked_doc_generator import LinkedDocumentGenerator
    from ds2ds_gen.tokenizer import get_encoding

    enc = get_encoding()
    gen = LinkedDocumentGenerator(tiny_model(vocab=300), enc.encode_ordinary, enc.decode)
    with pytest.raises(ConfigError, match=r"prompt.*token id.*vocab_size = 300"):
        gen.generate(
            prompt="Hello world", config=GenerationConfig(max_new_tokens=2, max_tokens_per_document=128, max_context_length=512)
        )


# ---- link targets holding markdown link syntax ---------------------------------------------------
def test_link_target_with_markdown_link_syntax() -> None:
    from ds2ds_gen.corpus import extract_links
    from ds2ds_gen.link_detector import LinkDetector
    from ds2ds_gen.prompt_processor import clean_target
    from ds2ds_gen.tokenizer import get_encoding

    enc = get_encoding()
    text = "see [a](x [b](c) y) ok and [d](e)."
    found = [(lk.text, lk.target) for lk in LinkDetector().find_all(enc.encode(text))]
    assert found == [("b", "c"), ("d", "e")]
    assert extract_links(text) == ["c", "e"]
    assert clean_target("x [b](c) y") is None and clean_target("x ] y") is None
    assert extract_links("[Mercury](Mercury (planet))") == ["Mercury (planet)"]  # still fine


# ---- the link graph: corpus documents' links, pending siblings -----------------------------------
def _outcomes(res):
    return [(e.target, e.outcome) for e in res.links]


def test_link_graph_includes_corpus_documents_links(small_corpus, scripted) -> None:
    from ds2ds_gen.corpus import DocumentCorpus

    run = scripted

    with DocumentCorpus(small_corpus[1]) as c:
        # a corpus document a that links to another corpus document b
        a, b = next((t, x) for t in c.titles() for x in c.links(t) if x in c.titles() and x != t)
        res = run({"Root": f" [{a}]({a}) and [{b}]({b})."}, "# Root\n\n", c)
        graph = res.link_graph()
        assert b in graph[a], graph
        assert res.get_document_by_title(a).links == c.links(a)


def test_pending_sibling_is_not_a_cycle(scripted) -> None:
    run, outcomes = scripted, _outcomes
    scripts = {"A": "a [B](B).", "B": "b.", "Root": " r [Root](Root)."}
    res = run(scripts, "# Root\n\nSee [A](A) and [B](B).", None, max_link_depth=2)
    got = outcomes(res)
    assert ("B", "pending") in got and ("B", "cycle") not in got, got
    assert ("Root", "cycle") in got  # a real cycle: an unfinished ancestor
    assert "B" in res.link_graph()["A"]


# ---- training: steps are the bound, wall-clock time is opt-in --------------------------------------
def test_training_is_bounded_by_steps_not_time(small_corpus, tmp_path, monkeypatch) -> None:
    import ds2ds_gen.train as tr

    clock = iter(range(0, 10**9, 1000))  # a very busy machine: every clock read is 1000 s later
    monkeypatch.setattr(tr.time, "perf_counter", lambda: float(next(clock)))
    mc = ModelConfig(d_model=16, n_layers=1, n_heads=2, max_doc_len=128, max_seq_len=512)
    cfg = tr.TrainConfig(model=mc, seq_len=64, batch_size=2, steps=4, warmup=2, threads=1)
    assert cfg.max_seconds is None
    s = tr.train(small_corpus[1], tmp_path / "ck", cfg)
    assert s["steps"] == 4 and s["stopped_by"] == "steps"
    s2 = tr.train(
        small_corpus[1],
        tmp_path / "ck2",
        tr.TrainConfig(model=mc, seq_len=64, batch_size=2, steps=4, warmup=2, threads=1, max_seconds=1.0),
    )
    assert s2["steps"] < 4 and s2["stopped_by"] == "max_seconds"  # opt-in time cap, recorded
    a = torch.load(tmp_path / "ck" / "model.pt", weights_only=True)
    monkeypatch.undo()
    tr.train(small_corpus[1], tmp_path / "ck3", cfg)
    b = torch.load(tmp_path / "ck3" / "model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)  # same command, same checkpoint


# ---- device / dtype / threads ------------------------------------------------------------------
def test_generation_config_device_is_used(tiny_model) -> None:
    from ds2ds_gen.generation_config import GenerationConfig
    from ds2ds_gen.linked_doc_generator import LinkedDocumentGenerator
    from ds2ds_gen.tokenizer import get_encoding

    enc = get_encoding()
    with pytest.raises(ConfigError, match="device"):
        GenerationConfig(device="gpu0")
    gen = LinkedDocumentGenerator(tiny_model(), enc.encode_ordinary, enc.decode)
    base = dict(max_new_tokens=2, max_tokens_per_document=128, max_context_length=512)
    with pytest.raises(ConfigError, match=r"device = 'cuda'.*model is on cpu"):
        gen.generate(prompt="Hi", config=GenerationConfig(device="cuda", **base))
    with pytest.raises(ConfigError, match=r"dtype = 'bfloat16'.*float32"):
        gen.generate(prompt="Hi", config=GenerationConfig(dtype="bfloat16", **base))
    assert gen.generate(prompt="Hi", config=GenerationConfig(device="cpu", **base)).new_tokens == 2


def test_cli_generate_threads_device_dtype(tiny_model, tmp_path) -> None:
    from click.testing import CliRunner
    from ds2ds_gen.cli import main

    save_checkpoint(tiny_model(), tmp_path / "ck")
    args = [
        "generate",
        "--model",
        str(tmp_path / "ck"),
        "--prompt",
        "# T\n\nHi",
        "--max-new-tokens",
        "3",
        "--max-tokens-per-document",
        "64",
        "--max-context-length",
        "256",
    ]
    try:
        r = CliRunner().invoke(
            main, [*args, "--out", str(tmp_path / "o"), "--threads", "2", "--device", "cpu", "--dtype", "bfloat16"]
        )
        assert r.exit_code == 0, r.output
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
    res = json.loads((tmp_path / "o" / "result.json").read_text())
    assert res["config"]["dtype"] == "bfloat16" and res["config"]["device"] == "cpu"
    if not torch.cuda.is_available():
        r = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "o2"), "--device", "cuda"])
        assert r.exit_code == 1 and "CUDA is not available" in r.output and "Traceback" not in r.output


# ---- generate --out: stale files of an earlier run, folders that are not ours ---------------------
def test_generate_out_stale_files(tiny_model, tmp_path) -> None:
    from click.testing import CliRunner
    from ds2ds_gen.cli import main

    save_checkpoint(tiny_model(), tmp_path / "ck")
    out = tmp_path / "o"

    def gen(prompt: str):
        return CliRunner().invoke(
            main,
            [
                "generate",
                "--model",
                str(tmp_path / "ck"),
                "--prompt",
                prompt,
                "--out",
                str(out),
                "--max-new-tokens",
                "2",
                "--max-tokens-per-document",
                "64",
                "--max-context-length",
                "256",
                "--temperature",
                "0",
            ],
        )

    assert gen("# First\n\nSee [Aux One](Aux One) x").exit_code == 0
    first = json.loads((out / "result.json").read_text())["files"]
    assert len(first) == 2
    (out / "notes.txt").write_text("mine")  # not ours: must survive
    r = gen("# Second\n\nplain")
    assert r.exit_code == 0, r.output
    second = json.loads((out / "result.json").read_text())["files"]
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([*second.values(), "result.json", "notes.txt", "graph.dot", "graph.html"]), names  # no stale .md left
    other = tmp_path / "foreign"
    other.mkdir()
    (other / "keep.md").write_text("x")
    r = CliRunner().invoke(
        main,
        [
            "generate",
            "--model",
            str(tmp_path / "ck"),
            "--prompt",
            "x",
            "--out",
            str(other),
            "--max-new-tokens",
            "2",
            "--max-tokens-per-document",
            "64",
            "--max-context-length",
            "256",
        ],
    )
    assert r.exit_code == 1 and "not empty" in r.output and (other / "keep.md").read_text() == "x"


# ---- batch: a prompt that does not fit is reported with the prompt, before generating -------------
def test_batch_too_long_prompt_names_the_prompt(tiny_model, tmp_path) -> None:
    from click.testing import CliRunner
    from ds2ds_gen.cli import main

    save_checkpoint(tiny_model(), tmp_path / "ck")
    pf = tmp_path / "p.txt"
    pf.write_text("# A\\n\\nshort\n\n" + "word " * 100 + "\n")
    r = CliRunner().invoke(
        main,
        [
            "batch",
            "--model",
            str(tmp_path / "ck"),
            "--prompts",
            str(pf),
            "--out",
            str(tmp_path / "ds"),
            "-n",
            "4",
            "--max-tokens-per-document",
            "64",
            "--max-context-length",
            "256",
            "--executor",
            "inline",
            "-q",
        ],
    )
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "prompt 2" in r.output and "p.txt:3" in r.output and "shard 0" not in r.output, r.output
    assert not (tmp_path / "ds" / "dataset.json").exists()


# ---- --attention flex on the KV-cache path ---------------------------------------------------------
def test_flex_runs_on_kv_cache_path(small_corpus, tiny_model, gen_config, monkeypatch) -> None:
    """attention="flex" with the KV cache executes flex_attention (counted through the kernel
    itself), agrees with the SDPA cache path at every step (prompt links, corpus documents,
    recursion, eviction), and builds one BlockMask per context structure, not one per step."""
    pytest.importorskip("torch.nn.attention.flex_attention")
    import torch.nn.attention.flex_attention as fa
    from ds2ds_gen.context_runner import ContextRunner
    from ds2ds_gen.corpus import DocumentCorpus
    from ds2ds_gen.linked_doc_generator import LinkedDocumentGenerator
    from ds2ds_gen.tokenizer import EOS_TOKEN_ID, get_encoding

    enc = get_encoding()
    model = tiny_model(vocab=50257, max_seq_len=512)
    model.compile_flex = False  # the eager kernel: same maths, no compiler needed in CI
    kernel_calls = []
    real = fa.flex_attention

    def counting(*a, **k):
        kernel_calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(fa, "flex_attention", counting)
    model._flex = None

    class Both:
        def __init__(self, scripts, ctx):
            self.scripts = {t: enc.encode(s) for t, s in scripts.items()}
            self.ctx = ctx
            self.sdpa = ContextRunner(model, ctx, use_kv_cache=True, attention="sdpa")
            self.flex = ContextRunner(model, ctx, use_kv_cache=True, attention="flex")
            self.steps = 0

        def next_logits(self):
            a, b = self.sdpa.next_logits(), self.flex.next_logits()
            assert torch.allclose(a, b, atol=1e-4), (self.ctx.current, (a - b).abs().max())
            self.steps += 1
            doc = self.ctx.current_document
            script = self.scripts.get(doc.title, [])
            i = len(doc.tokens) - doc.prompt_len
            out = torch.zeros(50257)
            out[script[i] if i < len(script) else EOS_TOKEN_ID] = 10.0
            return out

    holder = {}
    with DocumentCorpus(small_corpus[1]) as c:
        a, b = c.titles()[0], c.titles()[1]
        scripts = {
            "Root": f" x [{a}]({a}) y [N](N) and more words here [{b}]({b}) end.",
            "N": "n text " * 3,
            "P": "p says [Q](Q).",
        }
        cfg = gen_config(temperature=0.0, max_context_length=300, attention="flex")

        def factory(m, ctx, config):
            holder["r"] = Both(scripts, ctx)
            return holder["r"]

        gen = LinkedDocumentGenerator(model, enc.encode_ordinary, enc.decode, runner_factory=factory)
        res = gen.generate(prompt="# Root\n\nSee [P](P).", corpus=c, config=cfg)
    steps = holder["r"].steps
    assert steps > 40 and any(e.outcome == "corpus" for e in res.links) and len(res.auxiliary_documents) >= 3
    assert model.flex_calls == steps * model.cfg.n_layers and len(kernel_calls) == model.flex_calls
    # one mask per structure (document switches and link changes), far fewer than steps
    assert 1 <= model.flex_block_masks_built < steps / 3, (model.flex_block_masks_built, steps)


def test_flex_cache_decode_matches_full_recompute(tiny_model) -> None:
    """Token-by-token flex decode over a context crossing a 128-slot block boundary equals full
    SDPA recomputation (the sliced BlockMask and the offset mask_mod are exact)."""
    pytest.importorskip("torch.nn.attention.flex_attention")
    from ds2ds_gen.masks import DocSpan, link_table
    from ds2ds_gen.model import KVCache

    m = tiny_model(vocab=500, max_doc_len=256, max_seq_len=512)
    m.compile_flex = False
    la, lb = 100, 60
    spans = [DocSpan(0, 0, la), DocSpan(1, la, lb, ((0, 7),))]
    toks = torch.randint(0, 500, (la + lb,), generator=torch.Generator().manual_seed(1))
    full = m.forward_inference(toks, spans)[0]
    table = link_table(spans, "cross_doc_link")
    doc = torch.tensor([0] * la + [1] * lb)
    pos = torch.cat([torch.arange(la), torch.arange(lb)])
    cache = KVCache(m, 200)
    cut = la + 1
    got = [m.extend(cache, toks[:cut], doc[:cut], pos[:cut], table, attention="flex")]
    for i in range(cut, la + lb):
        got.append(m.extend(cache, toks[i : i + 1], doc[i : i + 1], pos[i : i + 1], table, attention="flex"))
    assert torch.allclose(torch.cat(got), full, atol=1e-5)
    assert m.flex_block_masks_built == 1


# ---- item 4: the complete, visible graph ----------------------------------------------------------
def test_complete_graph_and_dot(small_corpus, scripted) -> None:
    import re

    from ds2ds_gen.corpus import DocumentCorpus

    with DocumentCorpus(small_corpus[1]) as c:
        a = next(t for t in c.titles() if c.links(t))
        res = scripted(
            {"Root": f" [{a}]({a}) [B](B) [C](C).", "B": "b [D](D)."},
            "# Root\n\nSee [P](P).",
            c,
            max_auxiliary_documents=3,
            max_link_depth=1,
        )
        g = res.graph()
        edges = {(e["source"], e["target"], e["kind"], e["outcome"]) for e in g["edges"]}
        assert ("Root", "P", "prompt", "generated") in edges
        assert ("Root", a, "generated", "corpus") in edges
        assert ("B", "D", "generated", "skipped:max_depth") in edges  # skipped links kept, with the reason
        assert ("Root", "C", "generated", "skipped:max_aux") in edges
        for t in c.links(a):  # the corpus document's own links
            assert any(e[0] == a and e[2] == "corpus" for e in edges), t
        assert len(g["edges"]) == len(res.links) + len(c.links(a))
        st = res.graph_stats()
        assert st["max_depth"] == 1 and st["corpus_documents"] == 1 and st["generated_documents"] == 2
        assert st["fan_out"]["Root"] == 4 and st["skipped_edges"] >= 2
        dot = res.to_dot()
        # oracle: count edge lines with a regex, independent of the writer
        assert len(re.findall(r'^\s+"[^"]*" -> "[^"]*" \[', dot, re.M)) == len(g["edges"])
        assert dot.startswith("digraph") and dot.rstrip().endswith("}")
        assert re.search(r'"B" -> "D" \[style=dotted, label="skipped:max_depth"\]', dot)


# ---- item 6: stop strings, logprobs, n samples per prompt -------------------------------------------
def test_stop_strings(scripted) -> None:
    res = scripted({"Root": " one two. STOP here three", "B": "b text END more"}, "# Root\n\nSee [B](B).", stop=("STOP", "END"))
    assert res.root_document.text.endswith("one two. STOP") and res.stop_reason == "stop_string"
    assert res.get_document_by_title("B").text == "# B\n\nb text END"
    # a stop string inside the prompt or the header does not stop anything
    res = scripted({"Root": " a b c"}, "# Root\n\nSTOP is in the prompt", stop=("STOP",))
    assert res.stop_reason == "eos"
    with pytest.raises(ConfigError, match="stop"):
        from ds2ds_gen.generation_config import GenerationConfig

        GenerationConfig(stop=("",))


def test_logprobs_and_n_samples(tiny_model) -> None:
    from ds2ds_gen.generation_config import GenerationConfig
    from ds2ds_gen.linked_doc_generator import LinkedDocumentGenerator
    from ds2ds_gen.masks import DocSpan
    from ds2ds_gen.tokenizer import get_encoding

    enc = get_encoding()
    m = tiny_model(vocab=50257, max_seq_len=512)
    gen = LinkedDocumentGenerator(m, enc.encode_ordinary, enc.decode)
    cfg = GenerationConfig(
        max_new_tokens=6,
        temperature=1.0,
        seed=3,
        logprobs=True,
        max_tokens_per_document=64,
        max_context_length=256,
        eos_token_id=50257 + 0,
    )
    res = gen.generate(prompt="# T\n\nHello", config=cfg)
    toks = res.root_document.tokens.tolist()
    n_prompt = len(toks) - 6
    lp = res.root_document.logprobs
    assert lp is not None and len(lp) == 6 and res.root_document.to_dict()["logprobs"]
    # oracle: an independent full forward, log_softmax in float64
    full = m.forward_inference(torch.tensor(toks), [DocSpan(0, 0, len(toks))])[0].double()
    ref = [float(torch.log_softmax(full[n_prompt - 1 + j], -1)[toks[n_prompt + j]]) for j in range(6)]
    assert max(abs(a - b) for a, b in zip(lp, ref)) < 1e-4
    outs = gen.generate_n("# T\n\nHello", 3, cfg)
    assert [o.root_document.tokens.tolist() for o in outs][0] == toks  # sample 0 = generate()
    assert len({tuple(o.root_document.tokens.tolist()) for o in outs}) > 1


def test_batch_samples_per_prompt_targets(tiny_model, tmp_path) -> None:
    from ds2ds_gen.batch import BatchConfig, LinkedDocDatasetGenerator

    save_checkpoint(tiny_model(), tmp_path / "ck")
    g = LinkedDocDatasetGenerator(BatchConfig(model=str(tmp_path / "ck"), prompts=("a", "b", "c"), samples_per_prompt=2))
    assert [g.prompt_index(i) for i in range(8)] == [0, 0, 1, 1, 2, 2, 0, 0]
    t = {x.stratum: x.share for x in g.targets(8)}
    assert t == {"prompt=0": 4 / 8, "prompt=1": 2 / 8, "prompt=2": 2 / 8}
    brute = [sum(1 for i in range(7) if g.prompt_index(i) == k) / 7 for k in range(3)]
    assert [x.share for x in g.targets(7)] == brute


def test_graph_picture_svg(scripted) -> None:
    import xml.etree.ElementTree as ET

    res = scripted(
        {"Root": " [B](B) [<script>](<script>) [C](C).", "B": "b [D](D)."},
        "# Root\n\n",
        max_auxiliary_documents=2,
        max_link_depth=1,
    )
    svg = res.to_svg()
    root = ET.fromstring(svg)  # oracle: a real XML parser (well-formed, titles escaped)
    ns = "{http://www.w3.org/2000/svg}"
    g = res.graph()
    assert len(root.findall(f"{ns}line")) == len(g["edges"])
    outside = {e["target"] for e in g["edges"]} - {n["title"] for n in g["nodes"]}
    assert len(root.findall(f"{ns}g")) == len(g["nodes"]) + len(outside)
    assert "<script>" not in svg and "&lt;script&gt;" in svg
