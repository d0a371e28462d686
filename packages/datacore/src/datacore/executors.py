"""Executors: where shards run.  One small protocol, three implementations.

An executor takes the generator, the shard tasks still to do and the shared write
arguments, runs :func:`~datacore.shards.write_shard` for each task somewhere, and hands
every finished shard's marker to ``accept`` as it arrives.  The markers carry everything
the dataset needs, so the output does not depend on which executor ran the shards.
"""

from __future__ import annotations

import os
import sys
import uuid
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Any, Protocol

import attrs

from .errors import DatacoreError
from .generator import ShardTask
from .shards import Accept, WriteArgs, pool_initializer, pool_task, setup_generator, write_shard

EXECUTORS = ("process", "ray", "inline")


class Executor(Protocol):
    """Runs shard tasks and passes each finished shard's marker to ``accept``."""

    def run(self, generator: Any, tasks: list[ShardTask], args: WriteArgs, accept: Accept) -> None: ...


class InlineExecutor:
    """Every shard in this process, one after another (set-up runs once, here)."""

    def run(self, generator: Any, tasks: list[ShardTask], args: WriteArgs, accept: Accept) -> None:
        if not tasks:
            return
        setup_generator(generator)
        for t in tasks:
            accept(write_shard(generator, args.out, t, args.splitter, args.compress))


def start_method(generator: object = None) -> str:
    """fork on Linux (fast, and scripts need no ``__main__`` guard); spawn elsewhere.

    A generator whose parent-side set-up is not fork-safe (torch's OpenMP thread pool, once used
    in the parent, deadlocks forked children) declares ``mp_start = "spawn"``.
    ``DATACORE_MP_START`` overrides both.
    """
    method = os.environ.get("DATACORE_MP_START") or getattr(generator, "mp_start", None)
    if method:
        return str(method)
    return "fork" if sys.platform.startswith("linux") else "spawn"


@attrs.frozen
class ProcessExecutor:
    """A local process pool of ``workers`` processes; each sets the generator up once.

    Workers die with the parent (``PR_SET_PDEATHSIG`` on Linux), so killing only the parent
    leaves nothing running that could write into the output directory.
    """

    workers: int

    def run(self, generator: Any, tasks: list[ShardTask], args: WriteArgs, accept: Accept) -> None:
        if not tasks:
            return
        token = uuid.uuid4().hex
        ctx = get_context(start_method(generator))
        with ProcessPoolExecutor(
            max_workers=min(self.workers, len(tasks)),
            mp_context=ctx,
            initializer=pool_initializer,
            initargs=(token, generator, os.getpid()),
        ) as pool:
            pending = {pool.submit(pool_task, token, str(args.out), t, args.splitter, args.compress) for t in tasks}
            try:
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for f in finished:
                        accept(f.result())
            except BaseException:
                for f in pending:
                    f.cancel()
                raise


@attrs.frozen
class RayExecutor:
    """Ray tasks, on ``RAY_ADDRESS`` or a local Ray (see :mod:`datacore.ray_executor`)."""

    workers: int

    def run(self, generator: Any, tasks: list[ShardTask], args: WriteArgs, accept: Accept) -> None:
        if not tasks:
            return
        from .ray_executor import run_ray

        run_ray(generator, tasks, args, self.workers, accept)


def make_executor(name: str, workers: int, n_tasks: int) -> Executor:
    """The executor named ``name`` (``process`` with one worker or task runs inline)."""
    if name not in EXECUTORS:
        raise DatacoreError(f"executor must be one of {', '.join(EXECUTORS)}; got {name!r}")
    if name == "inline" or (name == "process" and (workers == 1 or n_tasks <= 1)):
        return InlineExecutor()
    if name == "process":
        return ProcessExecutor(workers)
    return RayExecutor(workers)
