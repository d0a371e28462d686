"""bump_version changes each package's one version source, and every package has exactly one."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("bump_version", Path(__file__).with_name("bump_version.py"))
assert _spec and _spec.loader
bv = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bv)

NAMES = sorted(p.name for p in (bv.ROOT / "packages").iterdir() if (p / "pyproject.toml").exists())


def _copy(tmp: Path, name: str) -> Path:
    src = bv.ROOT / "packages" / name
    dst = tmp / "packages" / name
    dst.mkdir(parents=True)
    for f in ("pyproject.toml", "Cargo.toml", "CHANGELOG.md"):
        if (src / f).exists():
            shutil.copy(src / f, dst / f)
    path, _ = bv.version_source(src)
    rel = path.relative_to(src)
    (dst / rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, dst / rel)
    return dst


@pytest.mark.parametrize("name", NAMES)
def test_one_source_per_package(name) -> None:
    pkg = bv.ROOT / "packages" / name
    assert not re.search(r"(?m)^version\s*=", (pkg / "pyproject.toml").read_text())  # no second, static copy
    assert re.fullmatch(r"\d+\.\d+\.\d+", bv.current(pkg))


@pytest.mark.parametrize("name", NAMES)
def test_bump_changes_the_source_and_the_changelog(tmp_path, name) -> None:
    pkg = _copy(tmp_path, name)
    changed = bv.bump(name, "9.8.7", root=tmp_path)
    assert bv.current(pkg) == "9.8.7"
    assert pkg / "CHANGELOG.md" in changed
    assert "## 9.8.7 (unreleased)" in (pkg / "CHANGELOG.md").read_text()


def test_bad_version_refused(tmp_path) -> None:
    with pytest.raises(SystemExit, match="not a version"):
        bv.bump("datacore", "1.2", root=tmp_path)
