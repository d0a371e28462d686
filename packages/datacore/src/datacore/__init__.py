"""datacore: the shared core of the synthetic-data toolkit.

Deterministic hash splits, shard seeds, streaming JSONL, sharded parallel runs (local
process pool or Ray) with resume, mergeable telemetry and self-contained HTML reports.
"""

from .errors import ConfigMismatchError, DatacoreError, JsonlError, ManifestError
from .generator import FileWritingGenerator, Generator, ReportSection, ShardTask
from .jsonl import JsonlWriter, ReadStats, read_jsonl, write_jsonl
from .manifest import load_manifest, verify_dataset
from .runner import BuildResult, build_dataset, write_shard
from .seeds import shard_seed
from .split import SPLITS, Splitter, encode_key, split_counts, split_of
from .telemetry import Telemetry

__version__ = "0.1.0"

__all__ = [
    "SPLITS",
    "BuildResult",
    "ConfigMismatchError",
    "DatacoreError",
    "FileWritingGenerator",
    "Generator",
    "JsonlError",
    "JsonlWriter",
    "ManifestError",
    "ReadStats",
    "ReportSection",
    "ShardTask",
    "Splitter",
    "Telemetry",
    "__version__",
    "build_dataset",
    "encode_key",
    "load_manifest",
    "read_jsonl",
    "shard_seed",
    "split_counts",
    "split_of",
    "verify_dataset",
    "write_jsonl",
    "write_shard",
]
