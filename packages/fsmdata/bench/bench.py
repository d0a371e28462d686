"""fsmdata benchmark: throughput against exrex and automata-lib in the same run, a 1M-sample
dataset, class/length balance, edge coverage, uniform-mode TVD and a 10,000-state scale check.

    python packages/fsmdata/bench/bench.py [--quick] [--json PATH]

Prints a table; ``--json`` writes every figure.  ``--quick`` (< 60 s) shrinks every size.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from fsmdata import FSM, GenConfig, compile_regex, generate_corpus
from fsmdata.engine import Engine

PATTERNS = [
    ("(ab|cd)+e?", "abcde"),
    ("x(a|b)*y(c|d)z", "abcdxyz"),
    ("(0|1(01*0)*1)*", "01"),
    ("(GET|POST|PUT)/(a|b|c)+(/(x|y|z)+)*", "GETPOSU/abcxyz"),
]


def timed(fn, *a, **k):
    """Run ``fn``; return (result, wall seconds, CPU seconds of this process)."""
    t, c = time.perf_counter(), time.process_time()
    out = fn(*a, **k)
    return out, time.perf_counter() - t, time.process_time() - c


def throughput(n: int) -> list[dict]:
    rows = []
    for pattern, alphabet in PATTERNS:
        fsm = compile_regex(pattern, alphabet)
        row: dict = {"pattern": pattern, "states": fsm.n_states}
        # full mixed-class pipeline with quotas (A / I / R and crafted reject subtypes)
        cfg = GenConfig(L_min=1, L_max=64)
        eng = Engine(fsm, cfg)
        corpus, dt, ct = timed(generate_corpus, fsm, cfg, n, 1, _engine=eng)
        row["mixed_labelled_per_s"] = n / dt
        row["mixed_labelled_per_cpu_s"] = n / ct
        _, dr, cr = timed(lambda c=corpus: list(c.records()))
        row["mixed_records_per_s"] = n / (dt + dr)
        row["mixed_records_per_cpu_s"] = n / (ct + cr)
        # uniform over accepted strings (exact counting DP)
        ucfg = GenConfig(L_min=1, L_max=64, mode="uniform", p_class={"A": 1})
        ueng = Engine(fsm, ucfg)
        ucorp, du, cu = timed(generate_corpus, fsm, ucfg, n, 2, _engine=ueng)
        row["uniform_A_per_s"] = n / du
        row["uniform_A_per_cpu_s"] = n / cu
        _, dur, cur = timed(lambda c=ucorp: list(c.records()))
        row["uniform_A_records_per_s"] = n / (du + dur)
        row["uniform_A_records_per_cpu_s"] = n / (cu + cur)
        m = max(200, n // 50)
        try:
            import exrex

            _, de, ce = timed(lambda p=pattern, k=m: [exrex.getone(p, limit=32) for _ in range(k)])
            row["exrex_per_s"] = m / de
            row["exrex_per_cpu_s"] = m / ce
        except Exception as e:  # noqa: BLE001 - a baseline that cannot run is reported, not fatal
            row["exrex_per_s"] = row["exrex_per_cpu_s"] = f"n/a ({type(e).__name__})"
        try:
            from automata.fa.dfa import DFA
            from automata.fa.nfa import NFA

            dfa = DFA.from_nfa(NFA.from_regex(pattern, input_symbols=set(alphabet)))
            rng = np.random.default_rng(0)
            lens = [int(x) for x in rng.integers(1, 65, size=m)]
            ok_lens = [L for L in lens if dfa.count_words_of_length(L) > 0] or [fsm.shortest_accepted_length()]
            _, da, ca = timed(lambda d=dfa, ls=ok_lens, k=m: [d.random_word(L) for L in itertools.islice(itertools.cycle(ls), k)])
            row["automata_lib_per_s"] = m / da
            row["automata_lib_per_cpu_s"] = m / ca
        except Exception as e:  # noqa: BLE001
            row["automata_lib_per_s"] = row["automata_lib_per_cpu_s"] = f"n/a ({type(e).__name__})"
        rows.append(row)
    return rows


def dataset_time(n: int, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ds"
        cmd = [
            sys.executable,
            "-m",
            "fsmdata.cli",
            "generate",
            "--regex",
            "x(a|b)*y(c|d)z",
            "--alphabet",
            "abcdxyz",
            "--l-max",
            "64",
            "--out",
            str(out),
            "-n",
            str(n),
            "--shard-size",
            "50000",
            "-w",
            str(workers),
            "--quiet",
        ]
        t = time.perf_counter()
        r0 = os.times()
        subprocess.run(cmd, check=True, env={**os.environ, "DATACORE_NO_PROGRESS": "1"})
        dt = time.perf_counter() - t
        r1 = os.times()
        cpu = (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)
        size = sum(p.stat().st_size for p in out.rglob("*.jsonl"))
        lines = sum(1 for p in out.rglob("*.jsonl") for _ in p.open("rb"))
    return {
        "n": n,
        "workers": workers,
        "seconds": dt,
        "cpu_seconds": cpu,
        "records": lines,
        "bytes": size,
        "command": "python " + " ".join(cmd[1:]),
    }


def cli_vs_exrex(n: int, workers: int = 1) -> dict:
    """Whole process, end to end, same pattern and count: ``fsmdata generate`` (labelled,
    balanced records into a dataset directory) against exrex writing ``n`` random strings to a
    file (exrex's own CLI makes one random string per call, so its ``getone`` loop stands in)."""
    pattern, alphabet = "x(a|b)*y(c|d)z", "abcdxyz"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ds"
        cmd = [sys.executable, "-m", "fsmdata.cli", "generate", "--regex", pattern, "--alphabet", alphabet]
        cmd += ["--l-max", "64", "--out", str(out), "-n", str(n), "--shard-size", "50000", "-w", str(workers), "--quiet"]
        ex = [
            sys.executable,
            "-c",
            "import exrex, sys\n"
            f"out = open({str(Path(tmp) / 'exrex.txt')!r}, 'w')\n"
            f"for _ in range({n}):\n    out.write(exrex.getone({pattern!r}, limit=32) + '\\n')\n"
            "out.close()",
        ]
        res: dict = {"pattern": pattern, "n": n, "workers": workers}
        for name, c in (("fsmdata", cmd), ("exrex", ex)):
            t, r0 = time.perf_counter(), os.times()
            subprocess.run(c, check=True, env={**os.environ, "DATACORE_NO_PROGRESS": "1"})
            r1 = os.times()
            res[name + "_s"] = time.perf_counter() - t
            res[name + "_cpu_s"] = (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)
        res["speedup_wall"] = res["exrex_s"] / res["fsmdata_s"]
        res["speedup_cpu"] = res["exrex_cpu_s"] / res["fsmdata_cpu_s"]
        res["command"] = "python " + " ".join(cmd[1:])
    return res


def balance(n: int) -> dict:
    fsm = compile_regex("x(a|b)*y(c|d)z", "abcdxyz")
    cfg = GenConfig(L_min=1, L_max=64)
    eng = Engine(fsm, cfg)
    # the dataset is made in shards of 10,000 with their own seeds, as datacore runs it
    reps = [generate_corpus(fsm, cfg, min(10_000, n - i), seed=i, _engine=eng).report for i in range(0, n, 10_000)]
    rep = reps[0]
    for r in reps[1:]:
        rep.merge(r)
    dev = []
    for c, p in eng.plan.class_weights.items():
        Ls = eng.plan.class_lengths[c]
        for L in Ls:
            share = p / len(Ls)
            dev.append(abs(rep.class_length.get(f"{c}:{L}", 0) / n - share) / share)
    return {"n": n, "cells": len(dev), "max_rel_dev": max(dev), "mean_rel_dev": float(np.mean(dev))}


def coverage(n_big: int) -> list[dict]:
    """Live-edge coverage; an edge's count is the number of samples that contain it (quotas.py)."""
    rows = []
    for pattern, alphabet in PATTERNS:
        fsm = compile_regex(pattern, alphabet)
        cfg = GenConfig(L_min=1, L_max=64)
        eng = Engine(fsm, cfg)
        E = int(fsm.live_edges().sum())
        budget = max(10 * E, 1000)
        small = generate_corpus(fsm, cfg, budget, seed=3, _engine=eng).report.coverage(fsm)
        cov = generate_corpus(fsm, cfg, n_big, seed=4, _engine=eng).report.coverage(fsm)
        rows.append(
            {
                "pattern": pattern,
                "n": n_big,
                "live_edges": E,
                "budget": budget,
                "hit_within_budget": f"{small['live_edges_hit']}/{E}",
                "least": cov["min"],
                "median": cov["median"],
                "min_over_median": cov["min_over_median"],
            }
        )
    return rows


def uniform_tvd(n: int) -> dict:
    pattern, alphabet, L = "(a|bc)*(d|ab)", "abcd", 8
    fsm = compile_regex(pattern, alphabet)
    words = ["".join(w) for w in itertools.product(alphabet, repeat=L) if fsm.accepts("".join(w))]
    cfg = GenConfig(L_min=L, L_max=L, mode="uniform", p_class={"A": 1})
    got = Counter(r["text"] for r in generate_corpus(fsm, cfg, n, seed=1).records())
    tvd = 0.5 * sum(abs(got.get(w, 0) / n - 1 / len(words)) for w in words)
    # the same statistic for an ideal sampler (numpy choice over the enumerated words)
    ideal = np.bincount(np.random.default_rng(0).integers(0, len(words), n), minlength=len(words)) / n
    return {
        "pattern": pattern,
        "length": L,
        "strings": len(words),
        "n": n,
        "tvd": tvd,
        "ideal_sampler_tvd": float(0.5 * np.abs(ideal - 1 / len(words)).sum()),
    }


def scale(n_states: int, n: int) -> dict:
    rng = np.random.default_rng(0)
    S = 64
    table = rng.integers(0, n_states, size=(n_states, S))
    table[rng.random((n_states, S)) < 0.05] = -1
    fsm = FSM.from_table(
        {
            "alphabet": [f"w{i}" for i in range(S)],
            "accepting": np.flatnonzero(rng.random(n_states) < 0.2).tolist(),
            "table": table.tolist(),
        }
    )
    out = {"states": fsm.n_states, "symbols": S, "L_max": 512}
    for mode in ("coverage", "uniform"):
        cfg = GenConfig(L_min=1, L_max=512, mode=mode, batch_size=1024)
        eng, de, _ = timed(Engine, fsm, cfg)
        corpus, dg, _ = timed(generate_corpus, fsm, cfg, n, 1, _engine=eng)
        recs = list(corpus.records())
        bad = sum(fsm.classify(r["tokens"]) != r["class"] for r in recs)
        out[mode] = {
            "setup_s": de,
            "samples": n,
            "gen_per_s": n / dg,
            "label_errors": bad,
            "max_len": max(r["length"] for r in recs),
        }
    return out


def compile_time() -> dict:
    pattern = r"(GET|POST|PUT|DELETE) /[a-z]{1,8}(/[a-z0-9]{1,4}){0,3} HTTP/1\.[01]"
    best = min(timed(compile_regex, pattern)[2] for _ in range(5))
    return {"pattern": pattern, "states": compile_regex(pattern).n_states, "ms": best * 1000}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (< 60 s)")
    ap.add_argument("--json", type=Path, default=None, help="write results here")
    ap.add_argument(
        "--speed",
        action="store_true",
        help="only the issue-14 speed figures: whole CLI vs exrex (100,000, 1 worker) and the 1M dataset on 2 workers",
    )
    args = ap.parse_args()
    q = args.quick
    res: dict = {"machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}", "quick": q}
    if args.speed:
        x = res["cli_vs_exrex"] = cli_vs_exrex(100_000, 1)
        d = res["dataset"] = dataset_time(1_000_000, 2)
        print("measurement | fsmdata wall s | fsmdata CPU-s | exrex wall s | exrex CPU-s | speed-up wall | speed-up CPU")
        print(
            f"whole CLI, {x['n']:,} records, 1 worker | {x['fsmdata_s']:.2f} | {x['fsmdata_cpu_s']:.2f} | {x['exrex_s']:.2f} | "
            f"{x['exrex_cpu_s']:.2f} | {x['speedup_wall']:.2f}x | {x['speedup_cpu']:.2f}x (target >= 10x)"
        )
        print(f"1M-record dataset, 2 workers | {d['seconds']:.2f} | {d['cpu_seconds']:.2f} | - | - | - | - (target <= 3 s wall)")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(res, indent=2))
        return
    res["compile"] = compile_time()
    res["throughput"] = throughput(20_000 if q else 200_000)
    res["balance"] = balance(20_000 if q else 100_000)
    res["coverage"] = coverage(20_000 if q else 100_000)
    res["uniform_tvd"] = uniform_tvd(20_000 if q else 100_000)
    res["scale"] = scale(1_000 if q else 10_000, 100 if q else 2_000)
    res["dataset"] = dataset_time(50_000 if q else 1_000_000, min(2, os.cpu_count() or 1))
    res["cli_vs_exrex"] = cli_vs_exrex(20_000 if q else 200_000)

    def f(x):
        return f"{x:,.0f}" if isinstance(x, (int, float)) else str(x)

    print(f"\nfsmdata benchmark ({res['machine']}{', quick' if q else ''})\n")
    c = res["compile"]
    print(f"compile: {c['states']}-state pattern in {c['ms']:.1f} ms\n")
    hdr = ["pattern", "states", "mixed lab/s", "mixed rec/s", "uniform-A/s", "uniform-A rec/s", "exrex/s", "automata-lib/s"]
    keys = ["mixed_labelled", "mixed_records", "uniform_A", "uniform_A_records", "exrex", "automata_lib"]
    for unit, suffix in (
        ("per CPU-second of this process (robust to contention)", "_per_cpu_s"),
        ("per wall-clock second", "_per_s"),
    ):
        print(f"throughput, one core, strings of length 1..64, {unit}:")
        print(" | ".join(hdr))
        for r in res["throughput"]:
            print(" | ".join([r["pattern"], str(r["states"]), *(f(r[k + suffix]) for k in keys)]))
        print()
    b = res["balance"]
    print(
        f"\nbalance at {b['n']:,}: {b['cells']} (class, length) cells, max relative deviation {b['max_rel_dev']:.4f}, mean {b['mean_rel_dev']:.4f}"
    )
    print(
        "\ncoverage (edge count = samples containing the edge): pattern | live edges | budget | hit within budget | least | median | least/median"
    )
    for r in res["coverage"]:
        print(
            f"  {r['pattern']} | {r['live_edges']} | {r['budget']} | {r['hit_within_budget']} | {r['least']:,} | {r['median']:,.0f} | {r['min_over_median']:.3f}"
        )
    u = res["uniform_tvd"]
    print(
        f"\nuniform TVD: {u['pattern']} length {u['length']} ({u['strings']} strings), n={u['n']:,}: {u['tvd']:.4f} (ideal sampler: {u['ideal_sampler_tvd']:.4f})"
    )
    s = res["scale"]
    for mode in ("coverage", "uniform"):
        m = s[mode]
        print(
            f"scale {s['states']:,} states x {s['symbols']} symbols, L<=512, {mode}: setup {m['setup_s']:.1f}s, {f(m['gen_per_s'])} samples/s, "
            f"max len {m['max_len']}, label errors {m['label_errors']}"
        )
    d = res["dataset"]
    print(
        f"\ndataset: {d['records']:,} records ({d['bytes'] / 1e6:.0f} MB) in {d['seconds']:.1f}s whole process "
        f"({d['cpu_seconds']:.1f} CPU-s in all processes), {d['workers']} workers"
    )
    x = res["cli_vs_exrex"]
    print(
        f"whole CLI vs exrex, {x['pattern']}, n={x['n']:,}, 1 worker: fsmdata {x['fsmdata_s']:.2f}s "
        f"({x['fsmdata_cpu_s']:.2f} CPU-s), exrex {x['exrex_s']:.2f}s ({x['exrex_cpu_s']:.2f} CPU-s): "
        f"{x['speedup_wall']:.1f}x wall, {x['speedup_cpu']:.1f}x CPU (target >= 10x)"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
