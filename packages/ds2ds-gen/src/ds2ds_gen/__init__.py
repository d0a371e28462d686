"""Linked-document generation with a small document-aware transformer.

Pipeline: ``synth`` a linked markdown corpus (or bring your own) -> ``pretokenize`` it into
token shards and a graph index -> ``train`` a small decoder-only transformer whose attention
follows document links -> ``generate`` a root document whose links are resolved from the corpus
or generated recursively.
"""

__version__ = "0.2.0"

from .corpus import DocumentCorpus, GraphIndex, PretokShardedBackend, pretokenize
from .document_context import DocumentContext
from .errors import CheckpointError, ConfigError, CorpusError, Ds2dsError, PromptTooLongError, TokenizerError
from .generation_config import GenerationConfig
from .generation_result import GeneratedDocument, GenerationResult, LinkEvent
from .hf_gpt2 import convert_hf_gpt2, load_hf_gpt2
from .link_detector import DetectedLink, LinkDetector
from .linked_doc_generator import LinkedDocumentGenerator, generate_linked
from .masks import DocSpan
from .model import DS2DSModel, KVCache, ModelConfig, load_checkpoint, save_checkpoint
from .prompt_processor import PromptLinkProcessor
from .sampling import greedy_sample, sample_token
from .single_doc_generator import SingleDocumentGenerator
from .synth import SynthConfig, write_synthetic_corpus
from .title_utils import create_filename, generate_title_hash, normalize_title, strip_hash
from .tokenizer import get_encoding, heading_encoder, link_token_ids

__all__ = [
    "CheckpointError",
    "ConfigError",
    "CorpusError",
    "DS2DSModel",
    "DetectedLink",
    "DocSpan",
    "DocumentContext",
    "DocumentCorpus",
    "Ds2dsError",
    "GeneratedDocument",
    "GenerationConfig",
    "GenerationResult",
    "GraphIndex",
    "KVCache",
    "LinkDetector",
    "LinkEvent",
    "LinkedDocumentGenerator",
    "generate_linked",
    "ModelConfig",
    "PretokShardedBackend",
    "PromptLinkProcessor",
    "PromptTooLongError",
    "SingleDocumentGenerator",
    "SynthConfig",
    "TokenizerError",
    "__version__",
    "convert_hf_gpt2",
    "create_filename",
    "generate_title_hash",
    "get_encoding",
    "heading_encoder",
    "greedy_sample",
    "link_token_ids",
    "load_checkpoint",
    "load_hf_gpt2",
    "normalize_title",
    "pretokenize",
    "sample_token",
    "save_checkpoint",
    "strip_hash",
    "write_synthetic_corpus",
]
