"""The progress bar of a run: tqdm, with a lock that no other process can hold.

tqdm's default write lock includes a ``multiprocessing.RLock``: a semaphore that a forked
child shares with its parent.  Every bar takes it when it is made and when it is closed, so
a child killed (SIGKILL, OOM) while it holds it leaves the parent, and every later run in
it, blocked forever on the next bar.  Runs here are forked and killed by design (process
pools, the conformance kill check, a user's Ctrl-C), so the bar uses a thread lock of its
own and no monitor thread (a thread that holds the lock while the process forks would leave
the child's copy locked).
"""

from __future__ import annotations

import sys
import threading
from typing import Any
from weakref import WeakSet

from tqdm import tqdm

__all__ = ["progress_bar"]


class _Bar(tqdm):  # type: ignore[type-arg]
    _lock = threading.RLock()
    _instances: WeakSet[Any] = WeakSet()
    monitor_interval = 0


def progress_bar(total: int, desc: str, *, enabled: bool, initial: int = 0) -> tqdm:  # type: ignore[type-arg]
    """A records bar on stderr for a run of ``total`` records (drawn only when ``enabled``)."""
    return _Bar(
        total=total,
        initial=initial,
        unit="rec",
        unit_scale=True,
        file=sys.stderr,
        disable=not enabled,
        desc=desc,
        dynamic_ncols=True,
    )
