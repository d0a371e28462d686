"""LP coverage bound vs delivered on unseen random patterns (issue 14, coverage).

    python packages/fsmdata/bench/bench_lp.py [--n 20000] [--seed 3] [--json OUT]

For the 18 patterns ``random_pattern(default_rng(2026))`` of the tests (alphabet ``abcd``,
``GenConfig(L_min=1, L_max=16)``), prints per pattern: states, LP solve CPU seconds, generation
CPU seconds, share of distinct texts, ``lp_bound`` (upper bound on the least walk-made edge
share), ``lp_achievable`` (what the LP flow attains), the delivered least share over the
LP-coverable edges (and its ratio to ``lp_achievable``), the delivered least / median over those
edges, and whether the shard was remade steered to the LP flow.  Compare builds by running it
with each on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from fsmdata import GenConfig, compile_regex, generate_corpus
from fsmdata.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_v02_defects import random_pattern  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    rng = np.random.default_rng(2026)
    rows = []
    for _ in range(18):
        pat = random_pattern(rng)
        fsm = compile_regex(pat, "abcd")
        cfg = GenConfig(L_min=1, L_max=16)
        eng = Engine(fsm, cfg)
        t = time.process_time()
        lp = eng.lp
        t_lp = time.process_time() - t
        t = time.process_time()
        c = generate_corpus(fsm, cfg, a.n, seed=a.seed, _engine=eng)
        t_gen = time.process_time() - t
        texts = [r["text"] for r in c.records()]
        h = c.report.edge_hits
        live = fsm.live_edges()
        row = {
            "pattern": pat,
            "states": fsm.n_states,
            "lp_cpu_s": t_lp,
            "gen_cpu_s": t_gen,
            "distinct": len(set(texts)) / a.n,
            "lp_used": c.lp_used,
            "live_min_over_median": float(h[live].min() / np.median(h[live])) if np.median(h[live]) else 0.0,
        }
        if lp is not None:
            hc = h[lp.coverable]
            row.update(
                lp_bound=lp.bound,
                lp_achievable=lp.achievable,
                delivered_least=float(hc.min() / a.n),
                delivered_vs_achievable=float(hc.min() / a.n / lp.achievable),
                delivered_min_over_median=float(hc.min() / np.median(hc)),
            )
        rows.append(row)
        line = f"{fsm.n_states:5d} lp {t_lp:5.2f}s gen {t_gen:5.2f}s distinct {row['distinct']:.3f}"
        if lp is None:
            line += f"  no LP (over budget); least/median {row['live_min_over_median']:.3f}"
        else:
            line += (
                f"  bound {lp.bound:.4f} attainable {lp.achievable:.4f} delivered {row['delivered_least']:.4f}"
                f" ({row['delivered_vs_achievable']:.2f}x) least/median {row['delivered_min_over_median']:.3f}"
                f" {'LP-steered' if c.lp_used else 'palettes'}"
            )
        print(line, flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
