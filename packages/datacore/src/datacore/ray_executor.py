"""Run shards as Ray tasks (``executor="ray"``), on ``RAY_ADDRESS`` or a local Ray.

The tasks write into the same output directory, so on a multi-node cluster ``out`` must
be on a file system every node shares.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from .errors import DatacoreError
from .generator import ShardTask


def run_ray(generator: Any, tasks: list[ShardTask], args: tuple, workers: int, accept: Callable[[dict], None]) -> None:
    """Execute ``write_shard`` for every task on Ray and pass each marker to ``accept``."""
    try:
        import ray
    except ImportError:
        raise DatacoreError("executor 'ray' needs Ray: pip install 'datacore[ray]'") from None
    from .runner import write_shard

    started_here = False
    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS")
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address:
            ray.init(address=address, **kwargs)
        else:
            # A local Ray's workers see the driver's import path, as a process pool's do.
            env = {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
            ray.init(num_cpus=workers, runtime_env={"env_vars": env}, **kwargs)
        started_here = True
    try:
        remote = ray.remote(num_cpus=1, max_retries=2)(write_shard)
        gen_ref = ray.put(generator)
        pending = [remote.remote(gen_ref, args[0], t, args[1], args[2]) for t in tasks]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for r in ready:
                try:
                    marker = ray.get(r)
                except ray.exceptions.RayTaskError as e:
                    cause = getattr(e, "cause", None)
                    if isinstance(cause, DatacoreError):
                        raise DatacoreError(str(cause)) from None
                    raise
                accept(marker)
    finally:
        if started_here:
            ray.shutdown()
