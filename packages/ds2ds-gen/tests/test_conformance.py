"""ds2ds-gen's batch generator against datacore's conformance suite (every promise of the contract)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from datacore.testing import check_generator
from ds2ds_gen.batch import BatchConfig, LinkedDocDatasetGenerator
from ds2ds_gen.generation_config import GenerationConfig
from ds2ds_gen.model import DS2DSModel, ModelConfig, save_checkpoint

# Heavy (many builds, kills, a Ray start): run in the combined test session, not in each isolated one.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = DS2DSModel(ModelConfig(vocab_size=50257, d_model=32, n_layers=1, n_heads=2, max_doc_len=128, max_seq_len=256)).eval()
    path = tmp_path_factory.mktemp("ckpt") / "ckpt"
    save_checkpoint(model, path)
    return path


def test_ds2ds_batch_conforms(ckpt, tmp_path) -> None:
    gen = GenerationConfig(max_new_tokens=6, max_tokens_per_document=32, max_context_length=256, max_auxiliary_documents=1)

    def make() -> LinkedDocDatasetGenerator:
        return LinkedDocDatasetGenerator(
            BatchConfig(model=str(ckpt), prompts=("# Alpha\n\nSee [Beta](beta).", "# Gamma\n\n"), generation=gen)
        )

    def bad() -> LinkedDocDatasetGenerator:
        return LinkedDocDatasetGenerator(BatchConfig(model=str(ckpt), prompts=()))

    times = check_generator(make, n=12, shard_size=4, bad_configs=[bad], kills=1, workdir=tmp_path)
    assert "kill" in times
