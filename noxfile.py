"""Every test, lint, bench, demo and wheel session of the monorepo.

Sessions use uv (fast environment creation; large wheels such as torch come from uv's cache,
not the network, after the first install).  Packages are installed as a user installs them:
from the wheels that the ``wheels`` step builds into ``dist/``, never from the source tree.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False

ROOT = Path(__file__).parent
DIST = ROOT / "dist"
# name -> (distribution, extras to test with)
PACKAGES = {
    "datacore": ("datacore", "test,ray,llm,parquet,torch,remote"),
    "fsmdata": ("fsmdata", "test,torch"),
    "lambdagen": ("lambdagen", "test"),
    "ds2ds-gen": ("ds2ds-gen", "test"),
    "routergen": ("routergen", "test"),
    "gatling-sid": ("gatling-sid", "test"),
}


def _build(session: nox.Session, names: list[str]) -> None:
    """Build wheel + sdist of each package into dist/ (the wheel from the sdist, as pip would)."""
    DIST.mkdir(exist_ok=True)
    for name in names:
        for old in glob.glob(str(DIST / f"{name.replace('-', '_')}-*")):
            os.remove(old)
        session.run("uv", "build", "--quiet", "--out-dir", str(DIST), f"packages/{name}", external=True)


def _wheel(name: str) -> str:
    found = sorted(glob.glob(str(DIST / f"{name.replace('-', '_')}-*.whl")))
    if not found:
        raise RuntimeError(f"no wheel of {name} in {DIST}; run: nox -s wheels")
    return found[-1]


def _install(session: nox.Session, names: list[str]) -> None:
    """Install packages with their test extras from dist/, replacing older builds of ours."""
    # By wheel path, so a same-named project on PyPI can never stand in for ours.
    reqs = [f"{_wheel(n)}[{PACKAGES[n][1]}]" for n in names]
    if "datacore" not in names:
        reqs.append(_wheel("datacore"))  # only the extras the generator itself declares
    ours = [a for n in PACKAGES for a in ("--reinstall-package", PACKAGES[n][0])]
    session.run(
        "uv",
        "pip",
        "install",
        "--quiet",
        "--find-links",
        str(DIST),
        *ours,
        *reqs,
        "pytest-timeout",
        external=True,
        env={"VIRTUAL_ENV": session.virtualenv.location},
    )


@nox.session(tags=["ci"])
def wheels(session: nox.Session) -> None:
    """Build every wheel and sdist into dist/."""
    _build(session, list(PACKAGES))


@nox.session(tags=["ci"], venv_backend="none")
def rust(session: nox.Session) -> None:
    """cargo test of the pure-Rust core (rust/lambda-core), no Python involved."""
    # --lib --tests: the crate has no doctests, whose empty run would close with "0 passed".
    session.run("cargo", "test", "--quiet", "--lib", "--tests", "--manifest-path", "rust/Cargo.toml", external=True)


@nox.session(tags=["ci"])
def tests(session: nox.Session) -> None:
    """All packages in one environment, one pytest run (installed from dist/)."""
    if not all(glob.glob(str(DIST / f"{n.replace('-', '_')}-*.whl")) for n in PACKAGES):
        _build(session, list(PACKAGES))
    _install(session, list(PACKAGES))
    args = session.posargs or ["-q", "-ra", "--timeout=600"]
    session.run("pytest", *[f"packages/{n}/tests" for n in PACKAGES], *args, env={"DATACORE_NO_PROGRESS": "1"})


@nox.session(tags=["ci"], reuse_venv=False)  # a fresh environment every time
@nox.parametrize("package", list(PACKAGES))
def isolated(session: nox.Session, package: str) -> None:
    """Install one package and its declared dependencies alone, from its wheel, and run its tests."""
    if not glob.glob(str(DIST / f"{package.replace('-', '_')}-*.whl")):
        _build(session, [package] if package == "datacore" else ["datacore", package])
    _install(session, [package])
    others = [PACKAGES[n][0].replace("-", "_") for n in PACKAGES if n not in ("datacore", package)]
    session.run(
        "python",
        "-c",
        f"import importlib.util as u, sys; bad=[m for m in {others!r} if u.find_spec(m)]; "
        "sys.exit(f'other generators installed: {bad}') if bad else None",
    )
    session.run(
        # The slow tests (the conformance suite, the Ray cluster) ran in the combined session already.
        "pytest",
        f"packages/{package}/tests",
        *(session.posargs or ["-q", "--timeout=600", "-m", "not slow"]),
        env={"DATACORE_NO_PROGRESS": "1"},
    )


@nox.session(tags=["ci"])
def lint(session: nox.Session) -> None:
    """ruff, the layering check (no import cycles, public datacore API only) and the Rust linters."""
    session.install("ruff", "pytest")
    session.run("ruff", "check", "packages", "tools", "noxfile.py")
    session.run("ruff", "format", "--check", "packages", "tools", "noxfile.py")
    session.run("python", "tools/check_imports.py")
    session.run("pytest", "-q", "tools", env={"PYTHONDONTWRITEBYTECODE": "1"})
    for manifest in ("rust/Cargo.toml", "packages/lambdagen/Cargo.toml"):
        session.run("cargo", "fmt", "--check", "--manifest-path", manifest, external=True)
        session.run("cargo", "clippy", "--quiet", "--manifest-path", manifest, "--", "-D", "warnings", external=True)


@nox.session(tags=["ci"])
def typecheck(session: nox.Session) -> None:
    """mypy over all six packages (0 errors); lambdagen's extension is typed by its _core.pyi stub."""
    session.install(
        "mypy",
        "types-PyYAML",
        "-e",
        "packages/datacore[llm,parquet,torch]",
        "-e",
        "packages/fsmdata[torch]",
        "-e",
        "packages/ds2ds-gen",
        "-e",
        "packages/routergen",
        "-e",
        "packages/gatling-sid",
        "click",
        "attrs",
        "orjson",
        "zstandard",
    )
    # lambdagen is not built here (a Rust build per typecheck): its Python sources and the stub are read as they are.
    session.run(
        "mypy",
        "packages/datacore/src/datacore",
        "packages/fsmdata/src/fsmdata",
        "packages/ds2ds-gen/src/ds2ds_gen",
        "packages/routergen/src/routergen",
        "packages/gatling-sid/src/gatling_sid",
        "packages/lambdagen/python/lambdagen",
        env={"MYPYPATH": "packages/lambdagen/python"},
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Every package's benchmark script (``--quick`` unless ``-- --full``); JSON into bench-results/."""
    if not all(glob.glob(str(DIST / f"{n.replace('-', '_')}-*.whl")) for n in PACKAGES):
        _build(session, list(PACKAGES))
    _install(session, list(PACKAGES))
    session.install("exrex", "automata-lib")
    full = "--full" in session.posargs
    Path("bench-results").mkdir(exist_ok=True)
    for script in sorted(glob.glob("packages/*/bench/*.py")):
        name = Path(script).parts[1] + ("" if Path(script).stem == "bench" else "-" + Path(script).stem)
        session.run("python", script, *([] if full else ["--quick"]), "--json", f"bench-results/{name}.json")


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: every package's quick start on its embedded defaults, into ./out/."""
    if not all(glob.glob(str(DIST / f"{n.replace('-', '_')}-*.whl")) for n in PACKAGES):
        _build(session, list(PACKAGES))
    _install(session, list(PACKAGES))
    session.run("python", "tools/demo.py", "--out", "out", *session.posargs)
