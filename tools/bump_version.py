"""Bump one package's version everywhere it is written, and open a CHANGELOG section.

    python tools/bump_version.py fsmdata 0.2.0

Edits packages/<name>/pyproject.toml (``version = ...``), the ``__version__`` in the
package's ``__init__.py`` (src/ or python/ layout; Cargo.toml too for lambdagen) and adds a
``## <version> (unreleased)`` heading to its CHANGELOG.md.  Packages are versioned
independently, so nothing else changes.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bump(name: str, version: str) -> list[Path]:
    if not re.fullmatch(r"\d+\.\d+\.\d+([ab]|rc)?\d*", version):
        raise SystemExit(f"error: {version!r} is not a version like 1.2.3")
    pkg = ROOT / "packages" / name
    if not pkg.is_dir():
        raise SystemExit(f"error: no package {name!r} under packages/")
    changed = []
    targets = [(pkg / "pyproject.toml", r'(?m)^version = "[^"]+"', f'version = "{version}"'),
               (pkg / "Cargo.toml", r'(?m)^version = "[^"]+"', f'version = "{version}"')]
    for init in list(pkg.glob("src/*/__init__.py")) + list(pkg.glob("python/*/__init__.py")):
        targets.append((init, r'(?m)^__version__ = "[^"]+"', f'__version__ = "{version}"'))
    for path, pattern, repl in targets:
        if path.exists():
            text = path.read_text()
            new, n = re.subn(pattern, repl, text, count=1)
            if n and new != text:
                path.write_text(new)
                changed.append(path)
    log = pkg / "CHANGELOG.md"
    if log.exists() and f"## {version}" not in log.read_text():
        text = log.read_text()
        head, _, rest = text.partition("\n## ")
        log.write_text(f"{head}\n## {version} (unreleased)\n\n- \n\n## {rest}" if rest else f"{text}\n## {version} (unreleased)\n")
        changed.append(log)
    return changed


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    for p in bump(sys.argv[1], sys.argv[2]):
        print(f"updated {p.relative_to(ROOT)}")
