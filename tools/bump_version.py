"""Bump one package's version in its one version source, and open a CHANGELOG section.

    python tools/bump_version.py fsmdata 0.3.0
    python tools/bump_version.py --check          # every package has exactly one version source

Each package has one place that holds its version; everything else reads it:

* hatchling packages: the module named by ``[tool.hatch.version] path`` in pyproject.toml
  (``__version__ = "..."``); pyproject.toml declares ``dynamic = ["version"]``;
* lambdagen: ``packages/lambdagen/Cargo.toml`` (maturin takes the wheel's version from it;
  ``lambdagen.__version__`` reads the installed metadata).

Packages are versioned independently, so nothing else changes.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_VERSION = re.compile(r"\d+\.\d+\.\d+((a|b|rc)\d+)?")


def version_source(pkg: Path) -> tuple[Path, re.Pattern[str]]:
    """The file holding a package's version and the pattern of the line that holds it."""
    pyproject = (pkg / "pyproject.toml").read_text(encoding="utf-8")
    if re.search(r"(?m)^version\s*=", pyproject):
        raise SystemExit(f'error: {pkg / "pyproject.toml"} has a static version; declare dynamic = ["version"]')
    if 'dynamic = ["version"]' not in pyproject:
        raise SystemExit(f'error: {pkg / "pyproject.toml"} does not declare dynamic = ["version"]')
    m = re.search(r'(?ms)^\[tool\.hatch\.version\]\s*\npath\s*=\s*"([^"]+)"', pyproject)
    if m:
        return pkg / m.group(1), re.compile(r'(?m)^__version__ = "([^"]+)"')
    if (pkg / "Cargo.toml").exists():
        return pkg / "Cargo.toml", re.compile(r'(?m)^version = "([^"]+)"')
    raise SystemExit(f"error: {pkg}: no version source ([tool.hatch.version] path or Cargo.toml)")


def current(pkg: Path) -> str:
    """The version a package's one source holds."""
    path, pattern = version_source(pkg)
    m = pattern.search(path.read_text(encoding="utf-8"))
    if not m:
        raise SystemExit(f"error: {path}: no version line")
    return m.group(1)


def bump(name: str, version: str, root: Path = ROOT) -> list[Path]:
    """Set package ``name``'s version to ``version``; return the files changed."""
    if not _VERSION.fullmatch(version):
        raise SystemExit(f"error: {version!r} is not a version like 1.2.3")
    pkg = root / "packages" / name
    if not pkg.is_dir():
        raise SystemExit(f"error: no package {name!r} under packages/")
    path, pattern = version_source(pkg)
    text = path.read_text(encoding="utf-8")
    m = pattern.search(text)
    if not m:
        raise SystemExit(f"error: {path}: no version line")
    changed = []
    new = text[: m.start(1)] + version + text[m.end(1) :]
    if new != text:
        path.write_text(new, encoding="utf-8")
        changed.append(path)
    log = pkg / "CHANGELOG.md"
    if log.exists() and f"## {version}" not in log.read_text(encoding="utf-8"):
        text = log.read_text(encoding="utf-8")
        head, _, rest = text.partition("\n## ")
        log.write_text(
            f"{head}\n## {version} (unreleased)\n\n- \n\n## {rest}" if rest else f"{text}\n## {version} (unreleased)\n",
            encoding="utf-8",
        )
        changed.append(log)
    return changed


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        for pkg in sorted((ROOT / "packages").iterdir()):
            if (pkg / "pyproject.toml").exists():
                print(f"{pkg.name} {current(pkg)} ({version_source(pkg)[0].relative_to(ROOT)})")
        return 0
    if len(argv) != 2:
        print(__doc__)
        return 2
    for p in bump(argv[0], argv[1]):
        print(f"updated {p.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
