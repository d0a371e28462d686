from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ds2ds_gen.corpus import pretokenize
from ds2ds_gen.model import DS2DSModel, ModelConfig
from ds2ds_gen.synth import SynthConfig, write_synthetic_corpus

torch.set_num_threads(1)

SMALL = SynthConfig(regions=3, rivers=3, cities=8, people=8, organizations=4, seed=1)


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("corpus")
    md, out = root / "md", root / "corpus"
    write_synthetic_corpus(md, SMALL)
    pretokenize(md, out, shard_tokens=300)
    return md, out


def _tiny_model(seed: int = 0, vocab: int = 50257, **kw: int) -> DS2DSModel:
    torch.manual_seed(seed)
    cfg = dict(vocab_size=vocab, d_model=32, n_layers=2, n_heads=2, max_doc_len=128, max_seq_len=512)
    cfg.update(kw)
    return DS2DSModel(ModelConfig(**cfg)).eval()


def _set_active_vocab(m: DS2DSModel, n: int, seed: int, eos_bias: float = 0.0, extra=()) -> DS2DSModel:  # type: ignore[no-untyped-def]
    """Give ``m`` an active vocabulary as a trained checkpoint has one: ``n`` random live ids
    (plus EOS at ``eos_bias`` and ``extra`` ids, logit bias 0), every other id at -1e4; batched
    steps then send compact logits."""
    with torch.no_grad():
        keep = torch.randperm(50257, generator=torch.Generator().manual_seed(seed))[:n]
        m.logit_bias.fill_(-1e4)
        m.logit_bias[keep] = 0.0
        for t in extra:
            m.logit_bias[t] = 0.0
        m.logit_bias[50256] = eos_bias
    assert m.use_active_vocab(True) < 50257
    return m


@pytest.fixture(scope="session")
def active_vocab():  # type: ignore[no-untyped-def]
    """``active_vocab(model, n, seed, eos_bias=0.0, extra=())``: see :func:`_set_active_vocab`."""
    return _set_active_vocab


#: the small limits the generation tests share (the tiny models' max_doc_len is 128)
TEST_GENERATION = dict(max_tokens_per_document=128, max_context_length=512, max_new_tokens=60, max_link_depth=2)


def _gen_config(**overrides):  # type: ignore[no-untyped-def]
    from ds2ds_gen.generation_config import GenerationConfig

    return GenerationConfig(**{**TEST_GENERATION, **overrides})


@pytest.fixture(scope="session")
def gen_config():  # type: ignore[no-untyped-def]
    """``gen_config(**GenerationConfig fields) -> GenerationConfig`` with :data:`TEST_GENERATION`'s limits."""
    return _gen_config


@pytest.fixture(scope="session")
def small_cfg() -> SynthConfig:
    return SMALL


@pytest.fixture(scope="session")
def tiny_model():  # type: ignore[no-untyped-def]
    """Factory: tiny_model(seed=0, vocab=50257, **ModelConfig overrides)."""
    return _tiny_model


class _ScriptedRunner:
    """Emits a fixed continuation per document title (then EOS): the generation logic without a
    trained model (same as test_generation.ScriptedRunner, without the cache check)."""

    def __init__(self, scripts, ctx):  # type: ignore[no-untyped-def]
        from ds2ds_gen.tokenizer import get_encoding

        enc = get_encoding()
        self.scripts = {t: enc.encode(s) for t, s in scripts.items()}
        self.ctx = ctx

    def next_logits(self):  # type: ignore[no-untyped-def]
        from ds2ds_gen.tokenizer import EOS_TOKEN_ID

        doc = self.ctx.current_document
        script = self.scripts.get(doc.title, [])
        i = len(doc.tokens) - doc.prompt_len
        tok = script[i] if i < len(script) else EOS_TOKEN_ID
        out = torch.zeros(50257)
        out[tok] = 10.0
        return out


@pytest.fixture(scope="session")
def scripted():  # type: ignore[no-untyped-def]
    """``scripted(scripts, prompt, corpus=None, **GenerationConfig fields) -> GenerationResult``."""
    from ds2ds_gen.linked_doc_generator import LinkedDocumentGenerator
    from ds2ds_gen.tokenizer import get_encoding

    enc = get_encoding()

    def run(scripts, prompt, corpus=None, **cfg):  # type: ignore[no-untyped-def]
        config = _gen_config(
            **{
                "temperature": 0.0,
                "max_link_depth": 1,
                "link_targets": "free",  # scripted links to titles outside the corpus (the default constrains them)
                "lead": "none",  # scripts write whole bodies (the default lead writes the title first)
                **cfg,
            }
        )
        gen = LinkedDocumentGenerator(
            None,
            enc.encode_ordinary,
            enc.decode,  # type: ignore[arg-type]
            runner_factory=lambda m, ctx, c: _ScriptedRunner(scripts, ctx),
        )
        return gen.generate(prompt=prompt, corpus=corpus, config=config)

    return run
