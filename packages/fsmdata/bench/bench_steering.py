"""Coverage steering on unseen patterns and the realism of long strings (issue 14, 0.2).

    python packages/fsmdata/bench/bench_steering.py [--n 20000] [--json OUT]

Prints, per pattern, least/median over the coverable live edges (``min_over_median_coverable``),
the least edge's share vs its bound, the share of accepted strings of length >= 12 holding a run
of 10+ identical symbols (Python ``re``), and CPU seconds, for the default sampler and the same
sampler with steering off (``balance=0``), side by side in one run: the four benchmark patterns
and 18 random patterns (``random_pattern(default_rng(2026))`` of the tests, alphabet ``abcd``,
L <= 16).  Then the CPU seconds of one 50,000-record shard (``write_shard_files``), best and
median of five.  Compare two builds by running it with each on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import attrs
import numpy as np
from datacore import ShardTask, Splitter, Telemetry
from fsmdata import FsmError, FsmGenerator, GenConfig, compile_regex, generate_corpus

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_v02_defects import random_pattern  # noqa: E402

RUN = re.compile(r"(.)\1{9}")
BENCH = [
    ("x(a|b)*y(c|d)z", "abcdxyz", 32),
    ("x(a|b)*y(c|d)z", "abcdxyz", 64),
    ("(ab|cd)+e?", "abcde", 64),
    ("(GET|POST|PUT)/(a|b|c)+(/(x|y|z)+)*", None, 64),
]


def measure(fsm, cfg: GenConfig, n: int, seed: int) -> dict:
    t = time.process_time()
    c = generate_corpus(fsm, cfg, n, seed=seed)
    cpu = time.process_time() - t
    acc = [r["text"] for r in c.records() if r["class"] == "A" and r["length"] >= 12]
    cv = c.coverage()
    return {
        "run10_share": sum(bool(RUN.search(s)) for s in acc) / len(acc) if acc else None,
        "min_over_median": cv.get("min_over_median_coverable", cv.get("min_over_median")),
        "least_edge_vs_bound": cv.get("least_edge_vs_bound"),
        "cpu_s": cpu,
    }


def shard_cpu() -> dict:
    fsm = compile_regex("x(a|b)*y(c|d)z", "abcdxyz")
    g = FsmGenerator(fsm, GenConfig(L_min=1, L_max=64))
    d = Path(tempfile.mkdtemp())
    paths = {s: d / f"{s}.jsonl" for s in ("train", "val", "test")}
    r = []
    for i in range(6):
        task = ShardTask(index=i, seed=1234 + i, count=50_000, start=i * 50_000, shards=20, total=1_000_000, run_seed=0)
        t = time.process_time()
        g.write_shard_files(task, paths, Splitter(), None, Telemetry())
        r.append(time.process_time() - t)
    r = sorted(r[1:])  # the first shard warms up
    return {"best": r[0], "median": r[2]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    rows = []
    cases = [(p, a, L, 1) for p, a, L in BENCH]
    rng = np.random.default_rng(2026)
    for _ in range(18):
        cases.append((random_pattern(rng), "abcd", 16, 3))
    print(
        "pattern | L | states | least/median | vs bound | 10-run share | CPU s || steering off: least/median | 10-run share | CPU s"
    )
    for p, a, L, seed in cases:
        try:
            fsm = compile_regex(p, a)
        except FsmError as e:
            print(f"{p[:40]} | refused: {e}")
            continue
        cfg = GenConfig(L_min=1, L_max=L)
        on, off = measure(fsm, cfg, args.n, seed), measure(fsm, attrs.evolve(cfg, balance=0.0), args.n, seed)
        rows.append({"pattern": p, "L_max": L, "states": fsm.n_states, "steered": on, "plain": off})

        def f(x):
            return "-" if x is None else f"{x:.3f}"

        print(
            f"{p[:40]} | {L} | {fsm.n_states} | {f(on['min_over_median'])} | {f(on['least_edge_vs_bound'])} | "
            f"{f(on['run10_share'])} | {on['cpu_s']:.2f} || {f(off['min_over_median'])} | {f(off['run10_share'])} | {off['cpu_s']:.2f}",
            flush=True,
        )
    sc = shard_cpu()
    print(f"\none 50,000-record shard (write_shard_files), CPU-s: best {sc['best']:.3f}, median {sc['median']:.3f}")
    if args.json:
        args.json.write_text(json.dumps({"patterns": rows, "shard_cpu": sc}, indent=2))


if __name__ == "__main__":
    main()
