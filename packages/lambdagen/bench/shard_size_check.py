"""Issue 15's "Done when": the same run with shard sizes 1,000 and 100,000 gives the same
per-cell and per-size-band shares (within 2 points), counted from the records written.

    python packages/lambdagen/bench/shard_size_check.py [--n 200000] [--workers 2]

Prints, per cell and per input-size band (20 nodes), the share of records under both shard
sizes and the largest difference; exits 1 when a difference exceeds the tolerance.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

from datacore import read_jsonl
from lambdagen import LambdaConfig, generate

TOLERANCE = 0.02


def shares(out: Path) -> tuple[dict[str, float], dict[str, float], int]:
    """(share per cell, share per input-size band, records) over every record written."""
    cells: Counter[str] = Counter()
    bands: Counter[str] = Counter()
    n = 0
    for p in sorted(out.glob("*/part-*")):
        for r in read_jsonl(p):
            m = r["meta"]
            cells[m["cell"]] += 1
            lo = m["size"] // 20 * 20
            bands[f"{lo:03d}-{lo + 19:03d}"] += 1
            n += 1
    return {k: v / n for k, v in cells.items()}, {k: v / n for k, v in bands.items()}, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lambdagen-shards-"))
    try:
        got = {}
        for size in (1_000, 100_000):
            out = tmp / str(size)
            generate(out, args.n, seed=args.seed, config=LambdaConfig(), workers=args.workers, shard_size=size, compress="zst")
            got[size] = shares(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    worst = 0.0
    for i, what in ((0, "cell"), (1, "input size band")):
        a, b = got[1_000][i], got[100_000][i]
        print(f"{what:<16} {'shard 1,000':>12} {'shard 100,000':>14} {'diff':>8}")
        for k in sorted(set(a) | set(b)):
            d = abs(a.get(k, 0.0) - b.get(k, 0.0))
            worst = max(worst, d)
            print(f"{k:<16} {100 * a.get(k, 0.0):>11.2f}% {100 * b.get(k, 0.0):>13.2f}% {100 * d:>7.2f}")
    print(
        f"records {got[1_000][2]:,} / {got[100_000][2]:,}; largest difference {100 * worst:.2f} points (tolerance {100 * TOLERANCE:.0f})"
    )
    sys.exit(0 if worst <= TOLERANCE and got[1_000][2] == got[100_000][2] == args.n else 1)


if __name__ == "__main__":
    main()
