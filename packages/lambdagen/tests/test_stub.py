"""The type stub _core.pyi matches the built extension (mypy's stubtest)."""

from __future__ import annotations

import subprocess
import sys


def test_core_stub_matches_the_extension(tmp_path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "lambdagen._core"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
