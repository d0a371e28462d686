"""datacore.llm benchmark: AnthropicClient vs the ideal and vs a plain sequential SDK loop, same run.

    python packages/datacore/bench/bench_llm.py [--quick] [--json PATH] [--n 2000] [--concurrency 16]

A FakeMessagesServer runs in its own process (as the real API runs on another machine, so the
client and the server do not share one GIL) with a fixed reply latency (50 ms) and injected 429s
(10%, ``retry-after: 0.05``).  Measured on it, in one run:

- ``adaptive``: ``AnthropicClient.complete_many`` over N requests (max_in_flight=16, cache off);
- ``ideal``: concurrency / latency, the rate a zero-overhead client would reach with no faults;
- ``sequential SDK``: a plain ``for`` loop of ``anthropic.Anthropic().messages.create`` with the
  SDK's own retries (max_retries=6), over a smaller N (it is ~concurrency times slower);
- ``adaptive, no faults``: the same client on a fault-free server, to separate fault cost from overhead;
- ``fixed limit``: the same client with the limit pinned at the concurrency (retries, no adaptation),
  to show what admission control costs when 429s are random rather than a sign of overload;
- ``cache re-run``: the adaptive N again with a warm disk cache (zero calls).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
from typing import Any

try:
    import anthropic
    from datacore.llm import AnthropicClient, LLMRequest
    from datacore.llm.testing import FakeMessagesServer
except ImportError as e:  # the llm extra is optional
    print(f"bench_llm: skipped, datacore[llm] is not installed ({e})")
    sys.exit(0)

MODEL = "claude-haiku-4-5"


def _serve(conn: Any, kwargs: dict[str, Any]) -> None:
    with FakeMessagesServer(**kwargs) as srv:
        conn.send(srv.base_url)
        conn.recv()  # the parent says stop
        conn.send({"calls": srv.calls, "replied": srv.replied, "faults": dict(srv.faults_injected)})


class ServerProcess:
    """A FakeMessagesServer in a child process; ``stats()`` stops it and returns its counters."""

    def __init__(self, **kwargs: Any) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, kwargs), daemon=True)
        self.proc.start()
        self.base_url = self.conn.recv()

    def stats(self) -> dict[str, Any]:
        self.conn.send("stop")
        s = self.conn.recv()
        self.proc.join(timeout=10)
        return s


def requests(n: int, tag: str) -> list[LLMRequest]:
    return [LLMRequest(MODEL, [{"role": "user", "content": f"{tag} request {i}"}], max_tokens=32) for i in range(n)]


def run_adaptive(
    base_url: str, reqs: list[LLMRequest], concurrency: int, cache_dir: str | None, *, fixed: bool = False
) -> dict[str, Any]:
    # fixed=True pins the limit (min_in_flight = max_in_flight): retries only, no admission control.
    with AnthropicClient(
        api_key="bench-key",
        base_url=base_url,
        max_in_flight=concurrency,
        cache_dir=cache_dir,
        timeout=30,
        min_in_flight=concurrency if fixed else 1,
    ) as c:
        # Warm up (connection, lazy SDK imports, pydantic model building) outside the timed part.
        c.complete(LLMRequest(MODEL, [{"role": "user", "content": f"warm-up {time.time_ns()}"}], max_tokens=8))
        c.telemetry(reset=True)
        t0 = time.perf_counter()
        out = c.complete_many(reqs)
        dt = time.perf_counter() - t0
        tel = c.telemetry()
        return {
            "n": len(reqs),
            "seconds": dt,
            "rps": len(reqs) / dt,
            "ok": sum(r.ok for r in out),
            "failed": sum(not r.ok for r in out),
            "calls": int(tel.counters.get("llm.calls", 0)),
            "retries": int(tel.counters.get("llm.retries", 0)),
            "cache_hits": int(tel.counters.get("llm.cache_hits", 0)),
            "limit_min": c.limiter.min_seen,
            "limit_end": c.limiter.limit,
            "decreases": c.limiter.decreases,
        }


def run_sequential(base_url: str, reqs: list[LLMRequest]) -> dict[str, Any]:
    sdk = anthropic.Anthropic(api_key="bench-key", base_url=base_url, max_retries=6, timeout=30)
    sdk.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": f"warm-up {time.time_ns()}"}])
    ok = 0
    t0 = time.perf_counter()
    for r in reqs:
        try:
            sdk.messages.create(**r.to_api_params())
            ok += 1
        except anthropic.APIError:
            pass
    dt = time.perf_counter() - t0
    sdk.close()
    return {"n": len(reqs), "seconds": dt, "rps": len(reqs) / dt, "ok": ok, "failed": len(reqs) - ok}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small N (finishes in well under 60 s)")
    ap.add_argument("--json", metavar="PATH", help="write the results as JSON")
    ap.add_argument("--n", type=int, default=None, help="requests for the adaptive runs (default 2000; 400 with --quick)")
    ap.add_argument("--n-seq", type=int, default=None, help="requests for the sequential loop (default 200; 40 with --quick)")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--fault-rate", type=float, default=0.10)
    args = ap.parse_args(argv)
    n = args.n or (400 if args.quick else 2000)
    n_seq = args.n_seq or (40 if args.quick else 200)
    conc, lat = args.concurrency, args.latency
    ideal = conc / lat

    faulty = ServerProcess(latency=lat, fault_rate=args.fault_rate, faults=("429",), retry_after=lat, seed=0, max_lifetime_s=900)
    clean = ServerProcess(latency=lat, seed=0, max_lifetime_s=900)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["adaptive"] = run_adaptive(faulty.base_url, requests(n, "adaptive"), conc, cache_dir=os.path.join(tmp, "cache"))
        results["sequential_sdk"] = run_sequential(faulty.base_url, requests(n_seq, "sequential"))
        results["adaptive_no_faults"] = run_adaptive(clean.base_url, requests(n, "clean"), conc, cache_dir=None)
        results["fixed_limit"] = run_adaptive(faulty.base_url, requests(n, "fixed"), conc, cache_dir=None, fixed=True)
        results["cache_rerun"] = run_adaptive(
            faulty.base_url, requests(n, "adaptive"), conc, cache_dir=os.path.join(tmp, "cache")
        )
    results["server_faulty"] = faulty.stats()
    results["server_clean"] = clean.stats()

    a, s = results["adaptive"], results["sequential_sdk"]
    rows = [
        ("ideal (concurrency / latency)", "-", f"{ideal:,.0f}", "100%", "-", "-", "-"),
        (
            "adaptive, 10% 429",
            a["n"],
            f"{a['rps']:,.0f}",
            f"{100 * a['rps'] / ideal:.0f}%",
            a["calls"],
            a["retries"],
            a["failed"],
        ),
        (
            "adaptive, no faults",
            results["adaptive_no_faults"]["n"],
            f"{results['adaptive_no_faults']['rps']:,.0f}",
            f"{100 * results['adaptive_no_faults']['rps'] / ideal:.0f}%",
            results["adaptive_no_faults"]["calls"],
            0,
            results["adaptive_no_faults"]["failed"],
        ),
        (
            "fixed limit (no admission control), 10% 429",
            results["fixed_limit"]["n"],
            f"{results['fixed_limit']['rps']:,.0f}",
            f"{100 * results['fixed_limit']['rps'] / ideal:.0f}%",
            results["fixed_limit"]["calls"],
            results["fixed_limit"]["retries"],
            results["fixed_limit"]["failed"],
        ),
        ("sequential SDK loop, 10% 429", s["n"], f"{s['rps']:,.1f}", f"{100 * s['rps'] / ideal:.1f}%", "-", "-", s["failed"]),
        (
            "cache re-run (zero calls)",
            results["cache_rerun"]["n"],
            f"{results['cache_rerun']['rps']:,.0f}",
            "-",
            results["cache_rerun"]["calls"],
            0,
            results["cache_rerun"]["failed"],
        ),
    ]
    try:
        from rich.console import Console
        from rich.table import Table

        t = Table(title=f"datacore.llm vs ideal and sequential SDK (latency {lat * 1000:.0f} ms, concurrency {conc})")
        for col in ("mode", "N", "req/s", "of ideal", "API calls", "retries", "failed"):
            t.add_column(col, justify="left" if col == "mode" else "right")
        for row in rows:
            t.add_row(*map(str, row))
        Console(width=130).print(t)
    except ImportError:
        for row in rows:
            print(*row, sep="\t")
    speedup = a["rps"] / s["rps"]
    print(
        f"adaptive vs sequential SDK: {speedup:.1f}x; admission limit min {a['limit_min']}, end {a['limit_end']}, "
        f"{a['decreases']} decreases; server saw {results['server_faulty']['faults']} injected faults"
    )
    results["meta"] = {
        "ideal_rps": ideal,
        "latency_s": lat,
        "concurrency": conc,
        "fault_rate": args.fault_rate,
        "speedup_vs_sequential": speedup,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "anthropic": anthropic.__version__,
        "quick": args.quick,
    }
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2, sort_keys=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
