"""GPT-2 interop: a randomly initialised ``transformers`` GPT-2 (tiny config), saved locally as
safetensors, loaded into a ``gpt2``-architecture DS2DSModel; logits compared with transformers'
own forward (the oracle shares no code with ds2ds-gen)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from ds2ds_gen.errors import CheckpointError
from ds2ds_gen.hf_gpt2 import convert_hf_gpt2, load_hf_gpt2
from ds2ds_gen.masks import DocSpan, link_table
from ds2ds_gen.model import KVCache, load_checkpoint

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    torch.manual_seed(0)
    # initializer_range 0.2 (not 0.02): logits of a few units, so a wrong mapping cannot hide in rounding
    cfg = transformers.GPT2Config(vocab_size=50257, n_positions=64, n_embd=32, n_layer=2, n_head=4, initializer_range=0.2)
    hf = transformers.GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():  # biases and LayerNorm parameters away from their 0/1 init
        for p in hf.parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.1)
    d = tmp_path_factory.mktemp("hf") / "gpt2"
    hf.save_pretrained(d, safe_serialization=True)
    assert (d / "model.safetensors").is_file()
    return d, hf


def _ref(hf, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return hf(x[None]).logits[0]


def test_logits_match_transformers(hf_dir) -> None:
    d, hf = hf_dir
    m = load_hf_gpt2(d)
    assert m.cfg.arch == "gpt2" and m.cfg.d_model == 32 and m.cfg.max_doc_len == 64
    x = torch.randint(0, 50257, (50,), generator=torch.Generator().manual_seed(1))
    ref = _ref(hf, x)
    assert ref.abs().max() > 1.0
    torch.testing.assert_close(m.forward_inference(x)[0], ref, atol=2e-5, rtol=1e-5)


def test_converted_checkpoint_and_kv_decode_match(hf_dir, tmp_path: Path) -> None:
    d, hf = hf_dir
    convert_hf_gpt2(d, tmp_path / "ck")
    m, extra = load_checkpoint(tmp_path / "ck")
    assert extra["format"] == "huggingface-gpt2"
    x = torch.randint(0, 50257, (30,), generator=torch.Generator().manual_seed(2))
    ref = _ref(hf, x)
    # KV-cache decode: a 10-token chunk, then one token at a time
    cache = KVCache(m, 64)
    doc, pos, table = torch.zeros(30, dtype=torch.long), torch.arange(30), link_table([DocSpan(0, 0, 30)], "cross_doc_link")
    got = [m.extend(cache, x[:10], doc[:10], pos[:10], table)]
    got += [m.extend(cache, x[i : i + 1], doc[i : i + 1], pos[i : i + 1], table) for i in range(10, 30)]
    torch.testing.assert_close(torch.cat(got), ref, atol=2e-5, rtol=1e-5)


def test_second_document_of_a_pack_is_plain_gpt2(hf_dir) -> None:
    """Positions restart per document: a document packed after another (no link) gets exactly
    GPT-2's logits for it alone; with a link it may attend to the other and the logits change."""
    d, hf = hf_dir
    m = load_hf_gpt2(d)
    g = torch.Generator().manual_seed(3)
    a, b = torch.randint(0, 50257, (12,), generator=g), torch.randint(0, 50257, (20,), generator=g)
    plain = m.forward_inference(torch.cat([a, b]), [DocSpan(0, 0, 12), DocSpan(1, 12, 20)])[0, 12:]
    torch.testing.assert_close(plain, _ref(hf, b), atol=2e-5, rtol=1e-5)
    linked = m.forward_inference(torch.cat([a, b]), [DocSpan(0, 0, 12), DocSpan(1, 12, 20, ((0, 5),))])[0, 12:]
    torch.testing.assert_close(linked[:5], plain[:5], atol=2e-5, rtol=1e-5)
    assert not torch.allclose(linked[5:], plain[5:], atol=1e-3)


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("activation_function", "relu", "activation_function"),
        ("layer_norm_epsilon", 1e-6, "layer_norm_epsilon"),
        ("scale_attn_by_inverse_layer_idx", True, "scale_attn_by_inverse_layer_idx"),
        ("model_type", "llama", "model_type"),
        ("n_head", 5, "n_heads"),
    ],
)
def test_unsupported_configs_are_refused(hf_dir, tmp_path: Path, field: str, value: object, needle: str) -> None:
    d, _ = hf_dir
    cfg = json.loads((d / "config.json").read_text())
    cfg[field] = value
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match=needle) as e:
        load_hf_gpt2(tmp_path)
    assert "config.json" in str(e.value) and "\n" not in str(e.value)


def test_broken_weights_are_one_line_errors(hf_dir, tmp_path: Path) -> None:
    d, _ = hf_dir
    (tmp_path / "config.json").write_text((d / "config.json").read_text())
    (tmp_path / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_hf_gpt2(tmp_path)
    from safetensors.torch import load_file, save_file

    sd = load_file(str(d / "model.safetensors"))
    sd.pop(next(k for k in sd if k.endswith("h.1.mlp.c_fc.weight")))
    save_file(sd, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="missing"):
        load_hf_gpt2(tmp_path)
    sd = load_file(str(d / "model.safetensors"))
    k = next(k for k in sd if k.endswith("wpe.weight"))
    sd[k] = sd[k].clone()
    sd[k][0, 0] = float("nan")
    save_file(sd, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="non-finite"):
        load_hf_gpt2(tmp_path)


def test_cli_convert_then_generate(hf_dir, tmp_path: Path) -> None:
    from click.testing import CliRunner
    from ds2ds_gen.cli import main

    d, _ = hf_dir
    r = CliRunner().invoke(main, ["convert-gpt2", str(d), "--out", str(tmp_path / "ck")])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(
        main,
        [
            "generate",
            "--model",
            str(tmp_path / "ck"),
            "--prompt",
            "# A\n\nHello",
            "--out",
            str(tmp_path / "o"),
            "--max-new-tokens",
            "5",
        ]
        + ["--max-tokens-per-document", "60", "--max-context-length", "256"],
    )
    assert r.exit_code == 0, r.output
    assert (tmp_path / "o" / "result.json").is_file()
    r = CliRunner().invoke(main, ["convert-gpt2", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")])
    assert r.exit_code != 0 and "Traceback" not in r.output


def test_gpt2_arch_config() -> None:
    from ds2ds_gen.errors import ConfigError
    from ds2ds_gen.model import DS2DSModel, ModelConfig

    cfg = ModelConfig(d_model=32, n_layers=2, n_heads=4, max_doc_len=64, arch="gpt2")
    assert cfg.n_parameters() == sum(p.numel() for p in DS2DSModel(cfg).parameters())
    with pytest.raises(ConfigError, match="arch"):
        ModelConfig(arch="bert")
    assert ModelConfig.from_dict({k: v for k, v in ModelConfig().to_dict().items() if k != "arch"}).arch == "ds2ds"
