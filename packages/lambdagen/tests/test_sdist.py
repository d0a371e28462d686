"""The sdist builds and installs into a fresh venv (the Rust core lives outside the package).

Compiling the core from the sdist takes minutes, so this runs only when asked:
``LAMBDAGEN_TEST_SDIST=1 pytest -m slow packages/lambdagen/tests/test_sdist.py``
(or run ``packages/lambdagen/tools/check_sdist.sh`` directly).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "check_sdist.sh"


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("LAMBDAGEN_TEST_SDIST") != "1", reason="set LAMBDAGEN_TEST_SDIST=1 (builds Rust from the sdist)"
)
def test_sdist_builds_and_installs(tmp_path):
    maturin = shutil.which("maturin") or str(Path(sys.executable).with_name("maturin"))
    if not Path(maturin).exists() or not shutil.which("uv") or not shutil.which("cargo"):
        pytest.skip("needs maturin, uv and cargo")
    r = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "work")],
        env={**os.environ, "MATURIN": maturin},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "sdist install OK" in r.stdout
