"""Regex -> minimal DFA -> balanced, coverage-driven datasets of accept / incomplete / reject strings."""

from .compile import DEFAULT_ALPHABET, compile_regex, compile_token_regex
from .errors import (
    EmptyLanguageError,
    FsmError,
    FsmFormatError,
    InfeasibleTargetError,
    RegexSyntaxError,
    UnsupportedConstructError,
)
from .fsm import CLASS_NAMES, FSM

__version__ = "0.1.0"
__all__ = [
    "CLASS_NAMES",
    "DEFAULT_ALPHABET",
    "FSM",
    "EmptyLanguageError",
    "FsmError",
    "FsmFormatError",
    "InfeasibleTargetError",
    "RegexSyntaxError",
    "UnsupportedConstructError",
    "__version__",
    "compile_regex",
    "compile_token_regex",
]
