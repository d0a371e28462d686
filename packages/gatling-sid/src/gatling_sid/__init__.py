"""gatling-sid: policy-compliant gold tool-call traces and labelled hard negatives.

Registry (domains, tool schemas, policies as data) -> oracle (procedural or Anthropic) ->
validator (format, structure, scope, policy, diversity) -> datacore dataset, with mutations
that turn gold traces into labelled policy violations.
"""

__version__ = "0.2.0"

from .diversity import DiversityReport, diversity_report, near_duplicates  # noqa: E402
from .errors import GatlingError, GraphError, RegistryError, TraceFormatError  # noqa: E402
from .exporters import dpo_pair, to_hf_chat, to_openai  # noqa: E402
from .generator import GatlingConfig, GatlingGenerator  # noqa: E402
from .injection import detect_injection  # noqa: E402
from .models import (  # noqa: E402
    GoldTrace,
    PolicyRule,
    SystemPolicy,
    ToolCall,
    ToolCallGraph,
    ToolSchema,
    UserRequest,
)
from .mutations import MUTATIONS, HardNegative, Mutator  # noqa: E402
from .peer_formats import to_bfcl, to_toolace, to_xlam  # noqa: E402
from .procedural import INTENTS, ProceduralOracle  # noqa: E402
from .registry import Domain, DomainRegistry  # noqa: E402
from .validator import TraceValidator, ValidationReport, Violation  # noqa: E402

__all__ = [
    "INTENTS",
    "MUTATIONS",
    "DiversityReport",
    "Domain",
    "DomainRegistry",
    "GatlingConfig",
    "GatlingError",
    "GatlingGenerator",
    "GoldTrace",
    "GraphError",
    "HardNegative",
    "Mutator",
    "PolicyRule",
    "ProceduralOracle",
    "RegistryError",
    "SystemPolicy",
    "ToolCall",
    "ToolCallGraph",
    "ToolSchema",
    "TraceFormatError",
    "TraceValidator",
    "UserRequest",
    "ValidationReport",
    "Violation",
    "__version__",
    "detect_injection",
    "diversity_report",
    "dpo_pair",
    "near_duplicates",
    "to_bfcl",
    "to_hf_chat",
    "to_openai",
    "to_toolace",
    "to_xlam",
]
