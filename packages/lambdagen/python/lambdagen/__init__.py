"""Lambda-calculus beta-reduction traces from a Rust core.

Closed untyped lambda terms in de Bruijn notation (canonical text ``\\0``, ``(\\(0 0) \\(0 0))``),
sampled uniformly by exact counting per (size, depth) cell, reduced in normal order one
step at a time; each step is a training example.  Shards are written by the Rust core
(``lambdagen._core``) into a :mod:`datacore` dataset directory.
"""

from ._version import __version__
from .api import generate
from .config import LambdaConfig, parse_quotas, parse_schedule, seed_schedule
from .errors import LambdaSyntaxError, LambdaValueError, ScheduleError
from .generator import LambdaGenerator
from .score import score_predictions
from .stats import dataset_stats
from .terms import Normalized, Term, Trace, count_terms, normalize, parse, reduce_step, sample_terms, trace, trace_many

__all__ = [
    "LambdaConfig",
    "LambdaGenerator",
    "LambdaSyntaxError",
    "LambdaValueError",
    "Normalized",
    "ScheduleError",
    "Term",
    "Trace",
    "__version__",
    "count_terms",
    "dataset_stats",
    "generate",
    "normalize",
    "parse",
    "parse_quotas",
    "parse_schedule",
    "reduce_step",
    "sample_terms",
    "score_predictions",
    "seed_schedule",
    "trace",
    "trace_many",
]
