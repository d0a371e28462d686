"""The layering check finds a cycle, a private datacore import and a cross-generator import."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("check_imports", Path(__file__).with_name("check_imports.py"))
assert _spec and _spec.loader
ci = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ci)


def _pkg(tmp: Path, name: str, files: dict[str, str]) -> Path:
    root = tmp / name
    root.mkdir()
    for f, text in files.items():
        (root / f).write_text(text)
    return root


def test_finds_a_lazy_import_cycle(tmp_path) -> None:
    root = _pkg(tmp_path, "gen", {"__init__.py": "", "a.py": "from .b import x\n", "b.py": "def f():\n    from . import a\n"})
    problems = ci.check_package("gen", root, {"datacore": set()})
    assert problems == ["gen: import cycle: gen.a -> gen.b"]


def test_finds_private_and_hidden_datacore_names(tmp_path) -> None:
    root = _pkg(
        tmp_path, "gen", {"__init__.py": "from datacore.runner import build_dataset\nfrom datacore import secret, Telemetry\n"}
    )
    problems = ci.check_package("gen", root, {"datacore": {"Telemetry"}})
    assert any("private module datacore.runner" in p for p in problems)
    assert any("imports secret from datacore" in p for p in problems)


def test_finds_a_cross_generator_import(tmp_path) -> None:
    root = _pkg(tmp_path, "gen", {"__init__.py": "import fsmdata\n"})
    assert any("imports another generator" in p for p in ci.check_package("gen", root, {}))


def test_a_clean_package_passes(tmp_path) -> None:
    root = _pkg(tmp_path, "gen", {"__init__.py": "from . import a\n", "a.py": "from datacore import Telemetry\n"})
    assert ci.check_package("gen", root, {"datacore": {"Telemetry"}}) == []
