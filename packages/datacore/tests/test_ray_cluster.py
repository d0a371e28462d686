"""A real two-node Ray cluster on loopback: a head and a second `ray start --address` node.

The driver connects through RAY_ADDRESS, the generator's module (a test-local package that no
worker has on its path) is shipped with runtime_env, a relative --out lands under the driver's
working directory, and the bytes equal a process-pool run. Everything started is stopped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

# Heavy (many builds, kills, a Ray start): run in the combined test session, not in each isolated one.
pytestmark = pytest.mark.slow

ray = pytest.importorskip("ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray_bin() -> str:
    exe = Path(sys.executable).with_name("ray")
    return str(exe) if exe.exists() else (shutil.which("ray") or "ray")


PKG = textwrap.dedent(
    """
    import random
    import attrs

    @attrs.frozen
    class ShippedGen:
        name: str = "shipped"
        version: str = "1"

        def config_dict(self):
            return {}

        def generate_shard(self, task, telemetry):
            rng = random.Random(task.seed)
            for i in range(task.count):
                yield {"x": [rng.randrange(100) for _ in range(5)], "meta": {"i": task.start + i}}

        def split_key(self, record):
            return record["x"]
    """
)

DRIVER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from shippedgen import ShippedGen
    from datacore import build_dataset
    build_dataset(ShippedGen(), sys.argv[2], 400, 3, shard_size=50, executor=sys.argv[3], workers=2, progress=False)
    """
)


@pytest.mark.timeout(420)
def test_two_node_cluster_ships_code_and_matches_the_pool(tmp_path) -> None:
    pkgroot = tmp_path / "code"
    (pkgroot / "shippedgen").mkdir(parents=True)
    (pkgroot / "shippedgen" / "__init__.py").write_text(PKG)
    (tmp_path / "driver.py").write_text(DRIVER)
    port = _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    ray_bin = _ray_bin()
    temp = tempfile.mkdtemp(prefix="rc", dir="/tmp")  # short: Ray's unix socket paths have a length limit
    procs: list[subprocess.Popen] = []
    try:
        common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--disable-usage-stats", "--block"]
        # --block keeps each node in a process group of ours, so the test stops exactly what it started
        procs.append(
            subprocess.Popen(
                [ray_bin, "start", "--head", "--port", str(port), "--include-dashboard", "false", "--temp-dir", temp, *common],
                env=env,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        _wait_port(port, 120)
        procs.append(
            subprocess.Popen(
                [ray_bin, "start", "--address", f"127.0.0.1:{port}", *common],
                env=env,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        _wait_nodes(f"127.0.0.1:{port}", 2, env, 120)
        drv_env = {**env, "RAY_ADDRESS": f"127.0.0.1:{port}", "DATACORE_NO_PROGRESS": "1"}
        # A relative --out: it must land under the driver's working directory, not a raylet's.
        r = subprocess.run(
            [sys.executable, str(tmp_path / "driver.py"), str(pkgroot), "rel-out", "ray"],
            cwd=tmp_path,
            env=drv_env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert r.returncode == 0, r.stderr[-3000:]
        subprocess.run(
            [sys.executable, str(tmp_path / "driver.py"), str(pkgroot), str(tmp_path / "pool"), "process"],
            env={**env, "DATACORE_NO_PROGRESS": "1"},
            check=True,
            timeout=240,
        )
        from datacore.testing import dataset_digest

        assert dataset_digest(tmp_path / "rel-out") == dataset_digest(tmp_path / "pool")
    finally:
        for p in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=30)
        shutil.rmtree(temp, ignore_errors=True)


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.5)
    raise AssertionError(f"Ray head did not listen on {port} within {timeout}s")


def _wait_nodes(address: str, n: int, env: dict, timeout: float) -> None:
    code = f"import ray; ray.init(address={address!r}, log_to_driver=False); print(sum(x['Alive'] for x in ray.nodes()))"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        if r.returncode == 0 and r.stdout.strip().endswith(str(n)):
            return
        time.sleep(1)
    raise AssertionError(f"the Ray cluster at {address} did not reach {n} nodes within {timeout}s")


def test_unreachable_address_fails_in_seconds(tmp_path) -> None:
    from datacore import DatacoreError, build_dataset
    from toygen import ToyGenerator

    port = _free_port()  # nobody listens here
    os.environ["RAY_ADDRESS"] = f"127.0.0.1:{port}"
    try:
        t0 = time.monotonic()
        with pytest.raises(DatacoreError, match="cannot reach the Ray cluster"):
            build_dataset(ToyGenerator(), tmp_path / "o", 100, shard_size=50, executor="ray", workers=2, progress=False)
        assert time.monotonic() - t0 < 30
    finally:
        del os.environ["RAY_ADDRESS"]
