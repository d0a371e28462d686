"""lambdagen benchmark: end-to-end examples/s vs the pure-Python reference, reduction steps/s,
and distribution figures (duplicates, quota shares).

    python packages/lambdagen/bench/bench.py [--quick] [--n N] [--workers W] [--json PATH] [--no-ceiling]
        [--baseline-01 PATH]

Prints a table; ``--json`` writes the figures.  ``--quick`` finishes in well under a minute.
The end-to-end run is shown beside the Rust-only ceiling measured in the same run: the same
config, shard size and thread count made and written (zstd) by ``rust/lambda-core``'s
``shard_bench`` example alone, no Python, no datacore (built with ``cargo build --release
--example shard_bench`` in ``rust/`` on first use).  ``--baseline-01 PATH`` adds the 0.1 core
(main at 078fba8, before issue 15) run by the same harness (built by ``build_baseline_01.sh``).
All give wall and CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from datacore import write_jsonl
from lambdagen import LambdaConfig, _core, dataset_stats, generate, sample_terms
from lambdagen import reference as ref

QUOTAS = "1-2:0.25,3-6:0.25,7-15:0.25,16-:0.25"


RUST_DIR = Path(__file__).resolve().parents[3] / "rust"


def _cpu() -> float:
    """CPU seconds (user + system) of this process and its waited-for children."""
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def rust_ceiling(n: int, threads: int, out: Path, exe: Path | None = None) -> dict | None:
    """The core alone (``shard_bench``: default config, 50,000-record shards, zstd files);
    ``exe``: another build of the harness (the 0.1 baseline)."""
    if exe is not None:
        if not exe.exists():
            raise SystemExit(f"{exe}: no such harness (run bench/build_baseline_01.sh)")
    else:
        exe = RUST_DIR / "target" / "release" / "examples" / "shard_bench"
    if not exe.exists():
        if not (RUST_DIR / "Cargo.toml").exists():
            return None
        subprocess.run(["cargo", "build", "--release", "--example", "shard_bench"], cwd=RUST_DIR, check=True)
    out.mkdir(parents=True, exist_ok=True)
    c0 = _cpu()
    line = subprocess.run([str(exe), str(n), str(threads), "zst", str(out)], check=True, capture_output=True, text=True)
    cpu = _cpu() - c0
    f = line.stdout.split()
    vals = dict(zip(f[::2], f[1::2]))
    wall = float(vals["wall_s"])
    return {"examples": int(vals["records"]), "seconds": wall, "cpu_seconds": cpu, "examples_per_s": int(vals["records"]) / wall}


def end_to_end(out: Path, n: int, workers: int, shard_size: int, config: LambdaConfig) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    c0 = _cpu()
    t0 = time.perf_counter()
    res = generate(out, n, seed=0, config=config, workers=workers, shard_size=shard_size, compress="zst", resume=False)
    wall = time.perf_counter() - t0
    cpu = _cpu() - c0
    size = sum(p.stat().st_size for p in out.glob("*/part-*"))
    return {
        "examples": res.records,
        "seconds": wall,
        "cpu_seconds": cpu,
        "examples_per_s": res.records / wall,
        "bytes_on_disk": size,
        "shards": len(res.manifest["shards"]),
    }


def python_reference(out: Path, n: int, config: LambdaConfig) -> dict:
    t0 = time.perf_counter()
    recs = ref.generate_examples(n, list(config.schedule), config.max_steps, config.max_size, seed=0)
    write_jsonl(out / "ref.jsonl.zst", recs)
    wall = time.perf_counter() - t0
    return {"examples": len(recs), "seconds": wall, "examples_per_s": len(recs) / wall}


def reduction_rate(config: LambdaConfig, terms_per_cell: int) -> dict:
    terms = [t for s, d, _ in config.schedule for t in sample_terms(s, d, terms_per_cell, seed=s)]
    t0 = time.perf_counter()
    steps = _core.reduce_steps_total(terms, config.max_steps, config.max_size)
    wall = time.perf_counter() - t0
    t0 = time.perf_counter()
    py_steps = 0
    for t in terms[:: max(1, len(terms) // 200)]:
        py_steps += len(ref.trace(t, config.max_steps, config.max_size)[0]) - 1
    py_wall = time.perf_counter() - t0
    return {"steps": steps, "steps_per_s_one_core": steps / wall, "python_steps_per_s": py_steps / py_wall}


def distribution(out: Path) -> dict:
    s = dataset_stats(out)
    keys = ("records", "traces", "duplicate_start_terms", "duplicate_pairs", "traces_in_two_splits", "traces_labelled")
    return {k: s[k] for k in keys} | {
        "duplicate_pair_share": s["duplicate_pairs"] / max(1, s["records"]),
        "traces_labelled_share": s["traces_labelled"] / max(1, s["traces"]),
        "status": s["histograms"]["status"],
    }


def quota_shares(out: Path, n: int, workers: int, shard_size: int) -> dict:
    cfg = LambdaConfig(quotas=QUOTAS)
    generate(out, n, seed=1, config=cfg, workers=workers, shard_size=shard_size, compress="zst", resume=False)
    s = dataset_stats(out)
    steps = s["histograms"]["total_steps"]
    got = {}
    for lo, hi, share in cfg.quotas:
        k = sum(v for t, v in steps.items() if lo <= int(t) <= hi)
        got[f"{lo}-{hi if hi < 2**31 - 1 else ''}"] = {"configured": share, "actual": k / max(1, s["records"])}
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (under a minute)")
    ap.add_argument("--n", type=int, default=None, help="examples for the end-to-end run")
    ap.add_argument(
        "--workers", type=int, default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )
    ap.add_argument("--shard-size", type=int, default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--no-ceiling", action="store_true", help="skip the Rust-only ceiling")
    ap.add_argument("--baseline-01", type=Path, default=None, help="the 0.1 core's shard_bench (build_baseline_01.sh)")
    ap.add_argument(
        "--stats", action="store_true", help="duplicate/distribution figures even above 5M examples (slow: reads every record)"
    )
    args = ap.parse_args()
    n = args.n or (200_000 if args.quick else 2_000_000)
    n_py = 1000 if args.quick else 5000
    shard_size = args.shard_size or (50_000 if n >= 1_000_000 else 20_000)
    config = LambdaConfig()
    tmp = Path(tempfile.mkdtemp(prefix="lambdagen-bench-"))
    try:
        e2e = end_to_end(tmp / "rust", n, args.workers, shard_size, config)
        ceiling = None if args.no_ceiling else rust_ceiling(n, args.workers, tmp / "ceiling")
        base01 = rust_ceiling(n, args.workers, tmp / "base01", args.baseline_01) if args.baseline_01 else None
        dist = distribution(tmp / "rust") if n <= 5_000_000 or args.stats else {}
        py = python_reference(tmp, n_py, config)
        red = reduction_rate(config, 100 if args.quick else 400)
        quotas = quota_shares(tmp / "quota", 100_000 if args.quick else 400_000, args.workers, 20_000)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}",
        "config": config.to_dict() | {"compress": "zst", "workers": args.workers, "shard_size": shard_size},
        "end_to_end": e2e,
        "rust_ceiling": ceiling,
        "baseline_01_core": base01,
        "python_reference": py,
        "speedup_vs_python": e2e["examples_per_s"] / py["examples_per_s"],
        "reduction": red,
        "distribution": dist,
        "quota_shares": quotas,
        "projected_seconds_for_15M": 15_000_000 / e2e["examples_per_s"],
    }
    rows = [
        (
            "end to end (sample, reduce, dedup, zstd JSONL, manifest+report)",
            f"{e2e['examples_per_s']:,.0f} ex/s",
            f"{py['examples_per_s']:,.0f} ex/s (pure Python)",
            f"x{result['speedup_vs_python']:,.0f}",
        ),
        (
            f"  run: {e2e['examples']:,} examples, {args.workers} workers",
            f"{e2e['seconds']:.1f} s",
            f"{py['examples']:,} in {py['seconds']:.1f} s",
            "",
        ),
        (
            "  CPU seconds (all processes), per 1M examples",
            f"{e2e['cpu_seconds']:.1f} s, {1e6 * e2e['cpu_seconds'] / e2e['examples']:.1f} s",
            "",
            "",
        ),
        ("  projected 15M examples", f"{result['projected_seconds_for_15M']:.0f} s", "", ""),
    ]
    if ceiling:
        rows += [
            (
                f"end to end vs Rust-only ceiling ({args.workers} threads, zstd files)",
                f"{e2e['examples_per_s']:,.0f} ex/s",
                f"{ceiling['examples_per_s']:,.0f} ex/s (core alone)",
                f"{e2e['examples_per_s'] / ceiling['examples_per_s']:.2f}",
            ),
            (
                "  CPU seconds per 1M examples",
                f"{1e6 * e2e['cpu_seconds'] / e2e['examples']:.1f} s",
                f"{1e6 * ceiling['cpu_seconds'] / ceiling['examples']:.1f} s",
                "",
            ),
        ]
    if base01:
        rows += [
            (
                f"core alone vs the 0.1 core (078fba8), same harness, {args.workers} threads",
                f"{ceiling['examples_per_s']:,.0f} ex/s" if ceiling else "-",
                f"{base01['examples_per_s']:,.0f} ex/s (0.1 core)",
                f"{ceiling['examples_per_s'] / base01['examples_per_s']:.2f}" if ceiling else "",
            ),
            (
                "  CPU seconds per 1M examples",
                f"{1e6 * ceiling['cpu_seconds'] / ceiling['examples']:.1f} s" if ceiling else "-",
                f"{1e6 * base01['cpu_seconds'] / base01['examples']:.1f} s",
                "",
            ),
        ]
    rows += [
        (
            "reduction, one core",
            f"{red['steps_per_s_one_core']:,.0f} steps/s",
            f"{red['python_steps_per_s']:,.0f} steps/s",
            f"x{red['steps_per_s_one_core'] / red['python_steps_per_s']:,.0f}",
        ),
    ]
    if dist:
        rows += [
            ("duplicate start terms", str(dist["duplicate_start_terms"]), "", ""),
            ("duplicate (input, target) pairs", f"{dist['duplicate_pairs']} ({100 * dist['duplicate_pair_share']:.3f}%)", "", ""),
            ("traces in two splits", str(dist["traces_in_two_splits"]), "", ""),
            (
                "traces labelled (normal_form/step_cap/size_cap/cycle)",
                f"{100 * dist['traces_labelled_share']:.2f}%",
                f"{dist['traces_labelled']:,} of {dist['traces']:,}",
                "",
            ),
            (
                "  trace endings (share of examples)",
                ", ".join(f"{k} {100 * v / max(1, dist['records']):.1f}%" for k, v in dist["status"].items()),
                "",
                "",
            ),
        ]
    for k, v in quotas.items():
        ok = "within 5% of share" if abs(v["actual"] - v["configured"]) <= 0.05 * v["configured"] else "OFF BY > 5%"
        rows.append((f"quota steps {k}", f"{100 * v['actual']:.1f}%", f"configured {100 * v['configured']:.0f}%", ok))
    w = max(len(r[0]) for r in rows)
    print(f"{'figure':<{w}}  {'lambdagen (Rust)':>22}  {'baseline':>30}  ratio")
    for r in rows:
        print(f"{r[0]:<{w}}  {r[1]:>22}  {r[2]:>30}  {r[3]}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
