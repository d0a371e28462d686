"""SingleDocumentGenerator: generate the current document of a context, ignoring links."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import torch

from .context_runner import ContextRunner
from .document_context import DocumentContext
from .generation_config import GenerationConfig
from .sampling import sample_token

if TYPE_CHECKING:
    from .model import DS2DSModel

__all__ = ["SingleDocumentGenerator", "make_runner", "torch_dtype"]


def torch_dtype(name: str) -> torch.dtype:
    """``"float32"`` / ``"bfloat16"`` -> torch dtype."""
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[name]


def make_runner(model: torch.nn.Module, context: DocumentContext, config: GenerationConfig) -> ContextRunner:
    """A :class:`ContextRunner` set up from ``config``."""
    return ContextRunner(
        cast("DS2DSModel", model),
        context,
        use_kv_cache=config.use_kv_cache,
        mask_type=config.mask_type,  # type: ignore[arg-type]
        attention=config.attention,
        dtype=torch_dtype(config.dtype),
    )


class SingleDocumentGenerator:
    """Generates tokens for ``context.current`` until EOS, the document limit, ``max_new_tokens``
    or a full context; returns the number of tokens generated. No link handling."""

    def __init__(self, generator: torch.Generator | None = None) -> None:
        self.generator = generator
        self.stop_reason = ""

    def generate(
        self, model: torch.nn.Module, context: DocumentContext, config: GenerationConfig, runner: ContextRunner | None = None
    ) -> int:
        """Generate the current document; ``self.stop_reason`` says why it stopped."""
        runner = runner or make_runner(model, context, config)
        gen = self.generator or torch.Generator().manual_seed(config.seed)
        n = 0
        while True:
            if n >= config.max_new_tokens:
                self.stop_reason = "max_new_tokens"
                break
            tok = sample_token(runner.next_logits(), config.temperature, config.top_k, config.top_p, gen)
            if not context.append_token_to_current(tok):
                self.stop_reason = (
                    "max_tokens_per_document"
                    if len(context.current_document.tokens) >= context.max_tokens_per_doc
                    else "context_full"
                )
                break
            n += 1
            if tok == config.eos_token_id:
                self.stop_reason = "eos"
                break
        context.complete_current_document()
        return n
