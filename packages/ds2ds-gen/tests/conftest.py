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
