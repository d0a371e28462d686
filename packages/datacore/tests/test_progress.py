"""The run's progress bar survives a forked child killed while it holds the bar's lock.

tqdm's default lock is shared with forked children (a multiprocessing semaphore); a child
killed while holding it hung the parent's next bar forever (seen in CI: the conformance
kill check, then every later test that made a bar).
"""

from __future__ import annotations

import os
import signal
import sys
import threading

import pytest
from datacore.progress import progress_bar

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork")


def _bar_made_within(seconds: float) -> bool:
    done = threading.Event()

    def make() -> None:
        progress_bar(10, "after", enabled=False).close()
        done.set()

    threading.Thread(target=make, daemon=True).start()
    return done.wait(seconds)


@pytest.mark.parametrize("enabled", [False, True])
def test_a_child_killed_while_holding_the_bar_lock_does_not_block_the_parent(enabled: bool) -> None:
    progress_bar(10, "before", enabled=enabled).close()  # the parent has made its lock before the fork
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        bar = progress_bar(10, "child", enabled=enabled)
        with type(bar).get_lock():  # held, as during a bar's creation or close
            os.write(ready_w, b"x")
            signal.pause()
        os._exit(0)
    os.read(ready_r, 1)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(ready_r)
    os.close(ready_w)
    assert _bar_made_within(5.0), "the parent's next bar blocked on a lock its killed child held"


_PLAIN = """
import os, signal, threading
from tqdm import tqdm
tqdm(total=1, disable=True).close()
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    with tqdm.get_lock():
        os.write(w, b"x")
        signal.pause()
    os._exit(0)
os.read(r, 1)
os.kill(pid, signal.SIGKILL)
os.waitpid(pid, 0)
done = threading.Event()
threading.Thread(target=lambda: (tqdm(total=1, disable=True).close(), done.set()), daemon=True).start()
print("blocked" if not done.wait(2.0) else "free")
"""


def test_plain_tqdm_has_the_hazard_this_module_avoids() -> None:
    """The same scenario with tqdm's default lock blocks (in a separate interpreter, so this
    process keeps a free lock): the test above is not vacuous."""
    import subprocess

    out = subprocess.run([sys.executable, "-c", _PLAIN], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "blocked"
