"""Run shards as Ray tasks (``executor="ray"``), on ``RAY_ADDRESS`` or a local Ray.

The tasks write into the same output directory, so on a multi-node cluster ``out`` must
be on a file system every node shares (or an fsspec URL every node can reach); the path
is made absolute on the driver, never resolved on a raylet.  On an existing cluster the
generator's own top-level package is shipped to the workers with ``runtime_env``
(``py_modules``), so a user's generator module need not be installed on every node.
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from pathlib import Path
from typing import Any

from .errors import DatacoreError
from .generator import ShardTask
from .shards import Accept, WriteArgs, run_task

CONNECT_TIMEOUT_S = float(os.environ.get("DATACORE_RAY_CONNECT_TIMEOUT", "10"))


def _check_reachable(address: str) -> None:
    """Fail in seconds, with one line, when ``RAY_ADDRESS`` names a host:port nobody answers on."""
    hostport = address.removeprefix("ray://")
    if address in ("auto", "local") or ":" not in hostport:
        return
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT_S):
            return
    except (OSError, ValueError) as e:
        raise DatacoreError(f"RAY_ADDRESS={address}: cannot reach the Ray cluster within {CONNECT_TIMEOUT_S:g}s ({e})") from None


def _package_dir(generator: Any) -> str | None:
    """Directory of the generator's top-level package, to ship to the workers; None if unknown."""
    top = type(generator).__module__.split(".")[0]
    mod = sys.modules.get(top)
    path = getattr(mod, "__file__", None)
    if not path:
        return None
    p = Path(path)
    return str(p.parent) if p.name == "__init__.py" else str(p)


def run_ray(generator: Any, tasks: list[ShardTask], args: WriteArgs, workers: int, accept: Accept) -> None:
    """Execute ``write_shard`` for every task on Ray and pass each marker to ``accept``."""
    try:
        import ray
    except ImportError:
        raise DatacoreError("executor 'ray' needs Ray: pip install 'datacore[ray]'") from None

    started_here = False
    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS")
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address:
            _check_reachable(address)
            runtime_env: dict[str, Any] = {}
            pkg = _package_dir(generator)
            # Ship the generator's package unless it is datacore itself or an installed site package
            # (those the cluster's image must have, as it has datacore).
            if pkg and "site-packages" not in pkg and not pkg.endswith(os.sep + "datacore"):
                runtime_env["py_modules"] = [pkg]
            ray.init(address=address, runtime_env=runtime_env or None, **kwargs)
        else:
            # A local Ray's workers see the driver's import path, as a process pool's do.
            env = {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
            if os.environ.get("DATACORE_LLM_LEDGER"):  # the run-wide LLM budget (see runner._run_budget)
                env["DATACORE_LLM_LEDGER"] = os.environ["DATACORE_LLM_LEDGER"]
            ray.init(num_cpus=workers, runtime_env={"env_vars": env}, **kwargs)
        started_here = True
    try:
        token = uuid.uuid4().hex
        remote = ray.remote(num_cpus=1, max_retries=2)(run_task)
        gen_ref = ray.put(generator)
        pending = [remote.remote(token, gen_ref, str(args.out), t, args.splitter, args.compress) for t in tasks]
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
