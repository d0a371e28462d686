"""Hugging Face GPT-2 weights in a ds2ds-gen model (``ModelConfig(arch="gpt2")``).

A Hugging Face GPT-2 folder (``save_pretrained`` of ``GPT2LMHeadModel`` or ``GPT2Model``, or a
hub download such as ``openai-community/gpt2``) holds ``config.json`` and ``model.safetensors``.
:func:`load_hf_gpt2` maps it onto a :class:`~ds2ds_gen.model.DS2DSModel` of the ``gpt2``
architecture: ``wte`` -> ``embedding`` (tied head, as GPT-2's), ``wpe`` -> ``pos_embedding``
(indexed by the position *within each document*, so a single document is exactly GPT-2),
``ln_1/ln_2/ln_f`` -> the LayerNorms, and the ``Conv1D`` weights (stored ``[in, out]``) are
transposed into the ``[out, in]`` linears. The model then decodes linked documents like any
ds2ds-gen model; :func:`convert_hf_gpt2` writes it as a ds2ds-gen checkpoint folder, so the CLI
(``generate --model``, ``batch --model``) and :func:`~ds2ds_gen.model.load_checkpoint` take it.

Configurations this architecture cannot reproduce (another activation or LayerNorm epsilon,
``scale_attn_by_inverse_layer_idx``, ``reorder_and_upcast_attn``, an untied head, ``n_inner``
that is not a multiple of ``n_embd``) are refused with :class:`CheckpointError`, never
approximated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .errors import CheckpointError, ConfigError
from .model import DS2DSModel, ModelConfig, save_checkpoint

__all__ = ["convert_hf_gpt2", "hf_gpt2_config", "load_hf_gpt2"]

_ACTIVATIONS = ("gelu_new", "gelu_pytorch_tanh")


def _config_path(path: Path) -> Path:
    return path / "config.json" if path.is_dir() else path.with_name("config.json")


def hf_gpt2_config(hf: dict[str, Any], where: str = "config.json") -> ModelConfig:
    """The :class:`ModelConfig` of a Hugging Face GPT-2 ``config.json`` mapping; refuses what
    the ``gpt2`` architecture cannot reproduce (:class:`CheckpointError` naming the field)."""
    if hf.get("model_type") != "gpt2":
        raise CheckpointError(f"{where}: field 'model_type' must be 'gpt2', got {hf.get('model_type')!r}")
    checks = {
        "activation_function": (hf.get("activation_function", "gelu_new") in _ACTIVATIONS, f"one of {list(_ACTIVATIONS)}"),
        "layer_norm_epsilon": (hf.get("layer_norm_epsilon", 1e-5) == 1e-5, "1e-05"),
        "scale_attn_weights": (hf.get("scale_attn_weights", True) is True, "true"),
        "scale_attn_by_inverse_layer_idx": (not hf.get("scale_attn_by_inverse_layer_idx", False), "false"),
        "reorder_and_upcast_attn": (not hf.get("reorder_and_upcast_attn", False), "false"),
        "tie_word_embeddings": (hf.get("tie_word_embeddings", True) is True, "true"),
    }
    for name, (ok, want) in checks.items():
        if not ok:
            raise CheckpointError(f"{where}: field {name!r} = {hf.get(name)!r}: only {want} is supported")
    try:
        d = hf["n_embd"]
        inner = hf.get("n_inner") or 4 * d
        if not isinstance(inner, int) or not isinstance(d, int) or inner % d:
            raise CheckpointError(f"{where}: field 'n_inner' = {hf.get('n_inner')!r}: must be a multiple of n_embd = {d!r}")
        return ModelConfig(
            vocab_size=hf["vocab_size"],
            d_model=d,
            n_layers=hf["n_layer"],
            n_heads=hf["n_head"],
            mlp_ratio=inner // d,
            max_doc_len=hf["n_positions"],
            max_seq_len=max(2048, hf["n_positions"]),
            arch="gpt2",
        )
    except KeyError as e:
        raise CheckpointError(f"{where}: field {e.args[0]!r} is missing") from None
    except ConfigError as e:
        raise CheckpointError(f"{where}: {e}") from None


def _state_dict(hf_sd: dict[str, Tensor], cfg: ModelConfig, where: str) -> dict[str, Tensor]:
    # GPT2LMHeadModel prefixes "transformer."; GPT2Model and the original hub files do not
    sd: dict[str, Tensor | None] = {k.removeprefix("transformer."): v for k, v in hf_sd.items()}
    names = {"embedding.weight": "wte.weight", "pos_embedding.weight": "wpe.weight"}
    names |= {f"norm.{p}": f"ln_f.{p}" for p in ("weight", "bias")}
    conv = {"attn.c_attn": "qkv", "attn.c_proj": "proj", "mlp.c_fc": "fc", "mlp.c_proj": "out"}
    for i in range(cfg.n_layers):
        for p in ("weight", "bias"):
            names |= {f"blocks.{i}.{b}.{p}": f"h.{i}.{a}.{p}" for a, b in (("ln_1", "norm1"), ("ln_2", "norm2"))}
            names |= {f"blocks.{i}.{b}.{p}": f"h.{i}.{a}.{p}" for a, b in conv.items()}
        # causal-mask buffers of older transformers versions: not weights
        sd.pop(f"h.{i}.attn.bias", None)
        sd.pop(f"h.{i}.attn.masked_bias", None)
    found = {ours: sd.pop(theirs, None) for ours, theirs in names.items()}
    head = sd.pop("lm_head.weight", None)
    missing = sorted(names[k] for k, v in found.items() if v is None)
    if missing:
        raise CheckpointError(f"{where}: GPT-2 weights missing: {missing[:3]}")
    if sd:
        raise CheckpointError(f"{where}: unexpected GPT-2 weights: {sorted(sd)[:3]}")
    out = {k: v for k, v in found.items() if v is not None}
    for i in range(cfg.n_layers):
        for b in conv.values():  # Conv1D stores [in, out]; the linears hold [out, in]
            out[f"blocks.{i}.{b}.weight"] = out[f"blocks.{i}.{b}.weight"].t().contiguous()
    if head is not None and not torch.equal(head, out["embedding.weight"]):
        raise CheckpointError(f"{where}: lm_head.weight differs from wte.weight (untied head): not supported")
    out["logit_bias"] = torch.zeros(cfg.vocab_size)
    return out


def load_hf_gpt2(path: Path | str, device: str | torch.device = "cpu") -> DS2DSModel:
    """A ``gpt2``-architecture :class:`DS2DSModel` (eval mode, float32) with the weights of the
    Hugging Face GPT-2 folder (or ``.safetensors`` file beside its ``config.json``) at ``path``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    cfg_path = _config_path(path)
    w_path = path / "model.safetensors" if path.is_dir() else path
    for p in (cfg_path, w_path):
        if not p.is_file():
            raise CheckpointError(f"{p}: missing (not a Hugging Face GPT-2 folder)")
    try:
        hf = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{cfg_path}: not valid JSON ({e})") from None
    if not isinstance(hf, dict):
        raise CheckpointError(f"{cfg_path}: expected a JSON object")
    cfg = hf_gpt2_config(hf, str(cfg_path))
    try:
        hf_sd = load_file(str(w_path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{w_path}: not a readable safetensors file ({type(e).__name__})") from None
    sd = {k: v.float() for k, v in _state_dict(hf_sd, cfg, str(w_path)).items()}
    with torch.device("meta"):
        expected = DS2DSModel(cfg).state_dict()
    for k, ref in expected.items():
        if tuple(sd[k].shape) != tuple(ref.shape):
            raise CheckpointError(f"{w_path}: {k}: expected shape {tuple(ref.shape)} from config.json, got {tuple(sd[k].shape)}")
        if not bool(torch.isfinite(sd[k]).all()):
            raise CheckpointError(f"{w_path}: {k} has non-finite value(s) (NaN or inf)")
    model = DS2DSModel(cfg)
    model.load_state_dict(sd, strict=True)
    return model.to(device).eval()


def convert_hf_gpt2(path: Path | str, out: Path | str) -> ModelConfig:
    """Write the Hugging Face GPT-2 weights at ``path`` as a ds2ds-gen checkpoint folder ``out``."""
    model = load_hf_gpt2(path)
    save_checkpoint(model, Path(out), extra={"converted_from": str(path), "format": "huggingface-gpt2"})
    return model.cfg
