"""routergen: bandit-routed synthetic data from grammars and LLMs, with validators and feedback.

The loop (one iteration = one shard of a datacore dataset directory)::

    Recipe -> GenerationContext -> Router (reads the bandit state) -> GenerationPlan
      -> generator makes a batch of Samples -> QualityOrchestrator -> BatchMetrics
      -> reward = pass_rate x quality -> bandit state -> next iteration

Start with :func:`load_recipe` and :func:`run_recipe`, or the ``routergen`` command.
"""

__version__ = "0.2.0"

from .errors import GrammarError, NoArmsError, RecipeError, RoutergenError  # noqa: E402
from .feedback import LocalFeedbackState, compute_reward  # noqa: E402
from .generators import BaseGenerator, GenerationPlan, NaiveGenerator, TemplaterGenerator  # noqa: E402
from .grammar import Derivation, Grammar, grammar_from_dict  # noqa: E402
from .minhash import LSHIndex, MinHasher  # noqa: E402
from .pipeline import RunResult, run_recipe  # noqa: E402
from .quality import BatchMetrics, QualityOrchestrator, Sample  # noqa: E402
from .router import AdaptationPolicy, BanditState, Router, simulate  # noqa: E402
from .spec import (  # noqa: E402
    ArmSpec,
    Budget,
    GenerationContext,
    LLMConfig,
    Recipe,
    RouterConfig,
    ValidatorSpec,
    builtin_recipes,
    load_recipe,
    recipe_from_text,
)

__all__ = [
    "AdaptationPolicy",
    "ArmSpec",
    "BanditState",
    "BaseGenerator",
    "BatchMetrics",
    "Budget",
    "Derivation",
    "GenerationContext",
    "GenerationPlan",
    "Grammar",
    "GrammarError",
    "LLMConfig",
    "LSHIndex",
    "LocalFeedbackState",
    "MinHasher",
    "NaiveGenerator",
    "NoArmsError",
    "QualityOrchestrator",
    "Recipe",
    "RecipeError",
    "Router",
    "RouterConfig",
    "RoutergenError",
    "RunResult",
    "Sample",
    "TemplaterGenerator",
    "ValidatorSpec",
    "__version__",
    "builtin_recipes",
    "compute_reward",
    "grammar_from_dict",
    "load_recipe",
    "recipe_from_text",
    "run_recipe",
    "simulate",
]
