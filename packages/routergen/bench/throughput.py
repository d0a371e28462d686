"""routergen throughput and cost against datacore's loopback fake server with latency.

    python packages/routergen/bench/throughput.py [--n 480] [--batch-size 10] [--latency 0.05] [--json PATH]

A NAIVE recipe (structured output by forced tool use, schema + exact-dedup validators, no
judges) run end to end through ``run_recipe`` (datacore's sequential builder, shards, report,
exports) with routergen's own client pointed at the fake server (every request answered after
``--latency`` s plus up to 20% jitter).  Rows, all measured in the same run, each into a fresh
directory and cache (so every request really goes to the server):

- ``R=1 --max-in-flight 1``: one request in flight at a time: the baseline;
- ``R=1 --max-in-flight M`` for M in 4, 16: M requests in flight inside one iteration, one
  iteration at a time (what ``--concurrency`` meant before iterations could overlap);
- ``R=16 --concurrency K`` for K in 1, 4, 16: the recipe's ``router.round_size: 16`` (16
  decisions per round from the state after the previous round), K iterations in flight, 16 x K
  requests in flight at most (the default); the data depend on R, never on K;
- ``--execution batch`` (R=1): every round of an iteration's requests as one Message Batch
  (polled every 0.05 s; the fake server ends a batch after one poll), priced at the batch discount.

Printed per row: samples, wall seconds, samples/s, CPU seconds of this process (client,
validators, writing; the fake server runs in threads of this process too, so its CPU time is
included), priced USD per 1,000 samples (from the responses' token usage and list prices,
``claude-3-5-haiku`` rates) and whether the dataset bytes equal those of its group's first row
(R=1 rows: the baseline; R=16 rows: K=1).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import orjson
from datacore.llm.testing import FakeMessagesServer
from routergen import recipe_from_text, run_recipe

RECIPE = textwrap.dedent("""\
    name: bench-throughput
    task: Short gadget reviews with a star rating that matches the text.
    samples: 120
    batch_size: BATCH
    llm: {model: claude-3-5-haiku-latest, temperature: 0.7, max_tokens: 200}
    arms: [naive, naive-hot]
    output:
      schema:
        type: object
        properties: {text: {type: string, minLength: 5}, stars: {type: integer, minimum: 1, maximum: 5}}
        required: [text, stars]
    validators: {schema: {}, exact_dedup: {}}
    router: {policy: epsilon_greedy, epsilon: 1.0, decay: 0.5, round_size: ROUND}
    """)


def handler(body: dict) -> object:
    if "design prompts" in (body.get("system") or ""):
        return "Write one realistic, specific gadget review."
    h = int(hashlib.sha256(orjson.dumps([body["messages"], body.get("temperature")])).hexdigest()[:12], 16)
    stars = 1 + h % 5
    text = f"the {['kettle', 'toaster', 'blender', 'scale'][h % 4]} #{h % 1000003} is {'awful' if stars < 3 else 'great'}"
    return {
        "content": [
            {
                "type": "tool_use",
                "id": f"toolu_{h:012x}",
                "name": body["tool_choice"]["name"],
                "input": {"text": text, "stars": stars},
            }
        ]
    }


def _data_bytes(out: Path) -> bytes:
    return b"".join(p.read_bytes() for s in ("train", "val", "test") for p in sorted((out / s).glob("part-*.jsonl")))


def run_row(srv: FakeMessagesServer, tmp: Path, name: str, n: int, batch: int, round_size: int, **kw: object) -> dict:
    recipe = recipe_from_text(RECIPE.replace("BATCH", str(batch)).replace("ROUND", str(round_size)), "bench.yaml")
    out = tmp / name
    calls0, batch0 = srv.calls, srv.batch_calls
    c0, t0 = time.process_time(), time.perf_counter()
    res = run_recipe(recipe, out, n=n, progress=False, cache_dir=tmp / f"cache-{name}", **kw)  # type: ignore[arg-type]
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    state = orjson.loads((out / "bandit_state.json").read_bytes())
    usd = state["setup"]["usd"] + sum(h["cost_usd"] for h in res.history)
    return {
        "row": name,
        "group": round_size,
        "samples": res.records,
        "iterations": res.iterations,
        "requests": state["setup"]["requests"] + sum(h["requests"] for h in res.history),
        "message_calls": srv.calls - calls0,
        "batch_calls": srv.batch_calls - batch0,
        "seconds": round(wall, 2),
        "samples_per_s": round(res.records / wall, 1),
        "cpu_s": round(cpu, 2),
        "usd_per_1k": round(1000 * usd / res.records, 4),
        "data": hashlib.sha256(_data_bytes(out)).hexdigest()[:16],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=480)
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--latency", type=float, default=0.05, help="seconds per request at the fake server")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="routergen-throughput-"))
    rows = []
    try:
        with FakeMessagesServer(
            handler=handler, latency=a.latency, latency_jitter=a.latency / 5, batch_ready_after_polls=1
        ) as srv:
            os.environ["ANTHROPIC_API_KEY"] = "bench-key"
            os.environ["ANTHROPIC_BASE_URL"] = srv.base_url
            b = a.batch_size
            # Warm-up (not shown): the first run in a process pays for imports (matplotlib for the report).
            run_row(srv, tmp, "warm-up", b, b, 1)
            rows.append(run_row(srv, tmp, "R=1 --max-in-flight 1 (baseline)", a.n, b, 1, max_in_flight=1))
            for m in (4, 16):
                rows.append(run_row(srv, tmp, f"R=1 --max-in-flight {m}", a.n, b, 1, max_in_flight=m))
            for k in (1, 4, 16):
                rows.append(run_row(srv, tmp, f"R=16 --concurrency {k}", a.n, b, 16, concurrency=k))
            rows.append(run_row(srv, tmp, "R=1 --execution batch", a.n, b, 1, execution="batch", batch_poll_s=0.05))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base = rows[0]
    first = {}
    for r in rows:
        first.setdefault(r["group"], r)
    cols = [
        "row",
        "samples",
        "iterations",
        "requests",
        "message_calls",
        "batch_calls",
        "seconds",
        "samples_per_s",
        "cpu_s",
        "usd_per_1k",
    ]
    print(
        f"fake server latency {a.latency}s (+<= {a.latency / 5:.3f}s jitter), n={a.n}, batch_size={a.batch_size}, "
        f"{platform.python_version()}, {os.cpu_count()} cores, {time.process_time():.1f} CPU-s in all"
    )
    print("| " + " | ".join(cols) + " | speed-up | same data as its group's first row |")
    print("|" + "---|" * (len(cols) + 2))
    for r in rows:
        same = "yes" if r["data"] == first[r["group"]]["data"] else "no"
        print("| " + " | ".join(str(r[c]) for c in cols) + f" | {r['samples_per_s'] / base['samples_per_s']:.1f}x | {same} |")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"latency": a.latency, "n": a.n, "batch_size": a.batch_size, "rows": rows}, indent=2))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
