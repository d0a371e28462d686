"""Regex -> minimal DFA -> balanced, coverage-driven datasets of accept / incomplete / reject strings."""

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .algebra import complement, difference, intersection, union
from .compile import DEFAULT_ALPHABET, build_fsm, compile_regex, compile_token_regex
from .config import REJECT_SUBTYPES, GenConfig
from .datagen import FsmGenerator
from .engine import Engine
from .errors import (
    EmptyLanguageError,
    FsmError,
    FsmFormatError,
    InfeasibleTargetError,
    RegexSyntaxError,
    UnsupportedConstructError,
)
from .feasibility import Feasibility, can_reach_tables, count_exact, count_scaled
from .fsm import CLASS_NAMES, FSM
from .generator import Corpus, backward, forward, generate_corpus, generate_sample, sample_target
from .quotas import QuotaManager
from .rejects import describe_reject, reject_subtype_holds
from .split import split_counts_by, split_of
from .targets import TargetPlan
from .telemetry import DataReport

if TYPE_CHECKING:
    from .dataset import FsmDataset, collate
    from .tokenfsm import TokenFSM, compile_token_fsm
    from .tokengen import TokenFsmGenerator
    from .vocab import Vocabulary, gpt2_vocabulary, load_tokenizer_json, load_vocabulary

# Imported on first use: a character-level `fsmdata generate` never needs them (start-up time).
_LAZY = {
    "FsmDataset": "dataset",
    "collate": "dataset",
    "TokenFSM": "tokenfsm",
    "compile_token_fsm": "tokenfsm",
    "TokenFsmGenerator": "tokengen",
    "Vocabulary": "vocab",
    "gpt2_vocabulary": "vocab",
    "load_tokenizer_json": "vocab",
    "load_vocabulary": "vocab",
}


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'fsmdata' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "CLASS_NAMES",
    "DEFAULT_ALPHABET",
    "FSM",
    "REJECT_SUBTYPES",
    "Corpus",
    "DataReport",
    "EmptyLanguageError",
    "Engine",
    "Feasibility",
    "FsmDataset",
    "FsmError",
    "FsmFormatError",
    "FsmGenerator",
    "GenConfig",
    "InfeasibleTargetError",
    "QuotaManager",
    "RegexSyntaxError",
    "TargetPlan",
    "TokenFSM",
    "TokenFsmGenerator",
    "UnsupportedConstructError",
    "Vocabulary",
    "__version__",
    "backward",
    "build_fsm",
    "can_reach_tables",
    "collate",
    "complement",
    "compile_regex",
    "compile_token_fsm",
    "compile_token_regex",
    "count_exact",
    "count_scaled",
    "describe_reject",
    "difference",
    "forward",
    "generate_corpus",
    "generate_sample",
    "gpt2_vocabulary",
    "intersection",
    "load_tokenizer_json",
    "load_vocabulary",
    "reject_subtype_holds",
    "sample_target",
    "split_counts_by",
    "split_of",
    "union",
]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
