"""The main job: every package's quick start on its embedded defaults, into one output folder.

    python tools/demo.py --out out            # what `nox -s demo` runs
    python tools/demo.py --out out --fresh    # start again from nothing
    python tools/demo.py --only fsmdata,lambdagen

Each step calls the package's own CLI, exactly as its README's quick start does, so the demo
proves the installed console scripts work, not a private code path.  Generators resume: a second
run over the same folder finishes at once (datacore resume) and ds2ds-gen's corpus, token shards
and checkpoint are reused when they are complete.  At the end every dataset directory is
re-hashed against its manifest with ``datacore verify`` and summarised with ``datacore stats``.
Exit status: 0 when every step succeeded, 1 otherwise (the failing step is named).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

# The console scripts live beside the interpreter that runs this file (the nox/venv bin folder).
BIN = Path(sys.executable).parent


def _cli(name: str) -> str:
    found = BIN / name
    if found.exists():
        return str(found)
    on_path = shutil.which(name)
    if on_path is None:
        raise SystemExit(
            f"error: console script {name!r} not found beside {sys.executable} or on PATH; "
            "install the packages first (nox -s demo does)"
        )
    return on_path


def _steps(out: Path) -> list[tuple[str, str, list[str], Path | None]]:
    """(package, what, argv, dataset directory or None) in the order they run."""
    ds = out / "ds2ds-gen"
    prompts = ds / "prompts.txt"
    return [
        (
            "fsmdata",
            "regex -> DFA -> 100k balanced A/I/R strings",
            [
                "fsmdata",
                "generate",
                "--regex",
                "x(a|b)*y(c|d)z",
                "--out",
                str(out / "fsmdata"),
                "-n",
                "100000",
                "--l-max",
                "32",
                "--p-class",
                "A=0.5,I=0.2,R=0.3",
                "--reject-mix",
                "illegal_step=1,overrun=1,wrong_alt=2",
            ],
            out / "fsmdata",
        ),
        (
            "lambdagen",
            "1M beta-reduction steps (seed's 10-cell schedule, zstd)",
            ["lambdagen", "generate", "--out", str(out / "lambdagen"), "-n", "1000000", "--compress", "zst"],
            out / "lambdagen",
        ),
        (
            "routergen",
            "1,000 support tickets, offline grammar arms, bandit-routed",
            ["routergen", "run", "support_tickets", "--out", str(out / "routergen"), "-n", "1000", "--offline"],
            out / "routergen",
        ),
        (
            "gatling-sid",
            "100k gold tool-call traces + 25% labelled hard negatives",
            ["gatling-sid", "generate", "--out", str(out / "gatling-sid"), "-n", "100000", "--negatives", "0.25"],
            out / "gatling-sid",
        ),
        ("gatling-sid", "validate the traces just written", ["gatling-sid", "validate", str(out / "gatling-sid")], None),
        ("ds2ds-gen", "synthetic linked corpus (~2,000 articles)", ["ds2ds-gen", "corpus", "synth", str(ds / "md")], None),
        (
            "ds2ds-gen",
            "batch roots of every article type (half link to a new entity)",
            ["ds2ds-gen", "corpus", "prompts", str(prompts), "--per-kind", "4"],
            None,
        ),
        ("ds2ds-gen", "pretokenize (GPT-2 BPE, offline)", ["ds2ds-gen", "pretokenize", str(ds / "md"), str(ds / "corpus")], None),
        (
            "ds2ds-gen",
            "train the small model on CPU (400 steps, <= 200 s)",
            ["ds2ds-gen", "train", str(ds / "corpus"), "--out", str(ds / "ckpt"), "--steps", "400"],
            None,
        ),
        (
            "ds2ds-gen",
            "one root document and its linked documents",
            [
                "ds2ds-gen",
                "generate",
                "--model",
                str(ds / "ckpt"),
                "--corpus",
                str(ds / "corpus"),
                "--prompt",
                "# Velmora\n\n",
                "--out",
                str(ds / "gen"),
                "--max-new-tokens",
                "80",
                "--max-auxiliary-documents",
                "4",
            ],
            None,
        ),
        (
            "ds2ds-gen",
            "batch: 40 linked-document samples into a dataset",
            [
                "ds2ds-gen",
                "batch",
                "--model",
                str(ds / "ckpt"),
                "--corpus",
                str(ds / "corpus"),
                "--prompts",
                str(prompts),
                "-n",
                "40",
                "--max-new-tokens",
                "64",
                "--shard-size",
                "10",
                "--out",
                str(ds / "dataset"),
            ],
            ds / "dataset",
        ),
    ]


def _done_already(argv: list[str]) -> bool:
    """ds2ds-gen's set-up steps are reused when their output is complete (they have no resume)."""
    if argv[:3] == ["ds2ds-gen", "corpus", "synth"]:
        return any(Path(argv[3]).glob("*.md"))
    if argv[:2] == ["ds2ds-gen", "pretokenize"]:
        return (Path(argv[3]) / "index.json").is_file()
    if argv[:2] == ["ds2ds-gen", "train"]:
        ckpt = Path(argv[argv.index("--out") + 1])
        return (ckpt / "model.pt").is_file() and (ckpt / "config.json").is_file()
    return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="out", help="output folder [default: out]")
    ap.add_argument("--fresh", action="store_true", help="delete the output folder first")
    ap.add_argument("--only", default="", help="comma-separated packages to run [default: all]")
    args = ap.parse_args(argv)
    out = Path(args.out)
    only = {p.strip() for p in args.only.split(",") if p.strip()}
    if args.fresh and out.exists():
        shutil.rmtree(out)
    (out / "ds2ds-gen").mkdir(parents=True, exist_ok=True)

    rows: list[tuple[str, str, str, float]] = []
    datasets: list[Path] = []
    for package, what, cmd, dataset in _steps(out):
        if only and package not in only:
            continue
        if _done_already(cmd):
            rows.append((package, what, "reused", 0.0))
            continue
        print(f"\n==> {package}: {what}\n    $ {' '.join(cmd)}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([_cli(cmd[0]), *cmd[1:]])
        dt = time.perf_counter() - t0
        rows.append((package, what, "ok" if rc == 0 else f"FAILED (exit {rc})", dt))
        if rc != 0:
            _summary(rows, out)
            print(f"error: demo step '{package}: {what}' failed with exit {rc}", file=sys.stderr)
            return 1
        if dataset is not None:
            datasets.append(dataset)

    for dataset in datasets:
        for sub in ("verify", "stats"):
            print(f"\n==> datacore {sub} {dataset}", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            rc = subprocess.call([_cli("datacore"), sub, str(dataset)])
            rows.append(("datacore", f"{sub} {dataset}", "ok" if rc == 0 else f"FAILED (exit {rc})", time.perf_counter() - t0))
            if rc != 0:
                _summary(rows, out)
                print(f"error: datacore {sub} {dataset} failed with exit {rc}", file=sys.stderr)
                return 1
    _summary(rows, out)
    return 0


def _summary(rows: list[tuple[str, str, str, float]], out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"demo: everything under {out}/")
    for col in ("package", "step", "result", "seconds"):
        table.add_column(col, justify="right" if col == "seconds" else "left")
    for package, what, result, dt in rows:
        table.add_row(package, what, result, f"{dt:.1f}")
    Console(stderr=True).print(table)
    reports = sorted(str(p) for p in out.rglob("report.html"))
    if reports:
        print("reports to open in a browser:\n  " + "\n  ".join(reports), file=sys.stderr)
    (out / "demo.json").write_text(
        json.dumps([{"package": p, "step": w, "result": r, "seconds": round(t, 2)} for p, w, r, t in rows], indent=1)
    )


if __name__ == "__main__":
    sys.exit(main())
