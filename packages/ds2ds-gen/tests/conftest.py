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
    from ds2ds_gen.generation_config import GenerationConfig
    from ds2ds_gen.linked_doc_generator import LinkedDocumentGenerator
    from ds2ds_gen.tokenizer import get_encoding

    enc = get_encoding()

    def run(scripts, prompt, corpus=None, **cfg):  # type: ignore[no-untyped-def]
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
        gen = LinkedDocumentGenerator(
            None,
            enc.encode_ordinary,
            enc.decode,  # type: ignore[arg-type]
            runner_factory=lambda m, ctx, c: _ScriptedRunner(scripts, ctx),
        )
        return gen.generate(prompt=prompt, corpus=corpus, config=config)

    return run
