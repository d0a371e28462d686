"""datacore: the shared core of the synthetic-data toolkit.

Deterministic hash splits, shard seeds, streaming JSONL, sharded parallel runs (local
process pool or Ray) with resume, mergeable telemetry and self-contained HTML reports.
"""

from .card import load_hf, write_card
from .cli_support import CliGroup, GenerateOptions, generate_options, run_generate
from .config import ConfigError, load_config, read_config_file
from .dataset_dir import DatasetBuilder
from .diff import DatasetDiff, diff_datasets
from .errors import ConfigMismatchError, DatacoreError, JsonlError, ManifestError, RecordError
from .generator import FileWritingGenerator, Generator, ReportSection, ShardTask
from .jsonl import ZSTD_LEVEL, JsonlWriter, ReadStats, read_jsonl, write_jsonl
from .manifest import dataset_file_paths, load_manifest, manifest_digest, verify_dataset
from .report import bar_chart_svg, heatmap_svg, line_chart_svg, table_html
from .runner import BuildResult, build_dataset
from .seeds import shard_seed
from .sequential import Loop, build_sequential
from .shards import content_id, write_records, write_shard
from .split import SPLITS, Splitter, encode_key, split_counts, split_of
from .strata import STRATA, Delivery, ShortfallError, Target
from .telemetry import Telemetry

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
