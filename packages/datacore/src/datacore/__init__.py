"""datacore: the shared core of the synthetic-data toolkit.

Deterministic hash splits, shard seeds, streaming JSONL, sharded parallel runs (local
process pool or Ray) with resume, mergeable telemetry and self-contained HTML reports.
"""

from typing import TYPE_CHECKING, Any

from .cli_support import CliGroup, GenerateOptions, generate_options, run_generate
from .config import ConfigError, load_config, read_config_file
from .dataset_dir import DatasetBuilder
from .errors import ConfigMismatchError, DatacoreError, JsonlError, ManifestError, RecordError
from .generator import FileWritingGenerator, Generator, ReportSection, ShardTask
from .jsonl import ZSTD_LEVEL, JsonlWriter, ReadStats, read_jsonl, write_jsonl
from .manifest import dataset_file_paths, load_manifest, manifest_digest, verify_dataset
from .runner import BuildResult, build_dataset
from .seeds import shard_seed
from .shards import content_id, write_records, write_shard
from .split import SPLITS, Splitter, encode_key, split_counts, split_of
from .strata import STRATA, Delivery, ShortfallError, Target
from .telemetry import Telemetry

if TYPE_CHECKING:
    from .card import load_hf, write_card
    from .diff import DatasetDiff, diff_datasets
    from .report import bar_chart_svg, heatmap_svg, line_chart_svg, table_html
    from .sequential import Loop, build_sequential

# Imported on first use (PEP 562): the report, card, diff and the sequential loop (with tqdm)
# are needed at the end of a run or by a few commands, and importing them up front was a
# large share of a short CLI run's start-up.
_LAZY = {
    "load_hf": "card",
    "write_card": "card",
    "DatasetDiff": "diff",
    "diff_datasets": "diff",
    "bar_chart_svg": "report",
    "heatmap_svg": "report",
    "line_chart_svg": "report",
    "table_html": "report",
    "Loop": "sequential",
    "build_sequential": "sequential",
}


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'datacore' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__version__ = "0.2.0"

__all__ = [
    "SPLITS",
    "STRATA",
    "ZSTD_LEVEL",
    "BuildResult",
    "CliGroup",
    "ConfigError",
    "ConfigMismatchError",
    "DatacoreError",
    "DatasetBuilder",
    "DatasetDiff",
    "Delivery",
    "GenerateOptions",
    "Loop",
    "ShortfallError",
    "Target",
    "FileWritingGenerator",
    "Generator",
    "JsonlError",
    "JsonlWriter",
    "ManifestError",
    "ReadStats",
    "RecordError",
    "ReportSection",
    "ShardTask",
    "Splitter",
    "Telemetry",
    "__version__",
    "bar_chart_svg",
    "build_dataset",
    "build_sequential",
    "content_id",
    "diff_datasets",
    "generate_options",
    "heatmap_svg",
    "line_chart_svg",
    "load_config",
    "load_hf",
    "read_config_file",
    "run_generate",
    "table_html",
    "write_records",
    "encode_key",
    "dataset_file_paths",
    "load_manifest",
    "manifest_digest",
    "read_jsonl",
    "shard_seed",
    "split_counts",
    "split_of",
    "verify_dataset",
    "write_card",
    "write_jsonl",
    "write_shard",
]
