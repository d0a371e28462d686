"""datacore.llm OpenAI backend benchmark: OpenAIClient vs the openai SDK used directly, and vs AnthropicClient, same run.

    python packages/datacore/bench/bench_llm_openai.py [--quick] [--json PATH] [--n 2000] [--concurrency 16]

A FakeMessagesServer runs in its own process (as a vLLM / llama.cpp server runs in another
process) with a fixed reply latency (50 ms) and injected faults on 10% of attempts, half 429 and
half 503, both with ``retry-after: 0.05``.  Measured on it, in one run, each mode on its own
requests (cache off unless said):

- ``OpenAIClient``: ``complete_many`` over N requests (max_in_flight=16), cache off;
- ``asyncio + AsyncOpenAI``: the peer a user would write: ``openai.AsyncOpenAI(max_retries=6)``
  (the SDK's own retries, which honour ``retry-after``) under an ``asyncio.Semaphore(16)`` with
  ``gather``, the same N;
- ``AnthropicClient``: the same engine over the Messages route of the same server, the same N
  (what the protocol translation costs);
- ``sequential SDK loop``: ``openai.OpenAI(max_retries=6)`` in a ``for`` loop, smaller N;
- ``disk cache on``: OpenAIClient over another N with the cache on (writing every answer), then
  ``cache re-run``: the same N again from the warm cache (zero calls).

Each row gives requests/s, the share of the ideal (concurrency / latency), API calls, retries,
failures and the client process's CPU seconds (``time.process_time``: all its threads).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

try:
    import openai
    from datacore.llm import AnthropicClient, LLMRequest, OpenAIClient
    from datacore.llm.openai_format import to_chat_params
except ImportError as e:  # the llm extra is optional
    print(f"bench_llm_openai: skipped, datacore[llm] is not installed ({e})")
    sys.exit(0)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_llm import ServerProcess  # noqa: E402

MODEL = "llama-3.1-8b-instruct"
PRICES = {MODEL: (0.0, 0.0)}


def requests(n: int, tag: str) -> list[LLMRequest]:
    return [LLMRequest(MODEL, [{"role": "user", "content": f"{tag} request {i}"}], max_tokens=32) for i in range(n)]


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def run_client(cls: Any, base_url: str, reqs: list[LLMRequest], conc: int, cache_dir: str | None) -> dict[str, Any]:
    with cls(api_key="bench-key", base_url=base_url, max_in_flight=conc, cache_dir=cache_dir, timeout=30, prices=PRICES) as c:
        # Warm up (connection, lazy SDK imports, pydantic model building) outside the timed part.
        c.complete(LLMRequest(MODEL, [{"role": "user", "content": f"warm-up {time.time_ns()}"}], max_tokens=8))
        c.telemetry(reset=True)
        out, dt, cpu = _timed(lambda: c.complete_many(reqs))
        tel = c.telemetry().counters
        return {
            "n": len(reqs),
            "seconds": dt,
            "cpu_s": cpu,
            "rps": len(reqs) / dt,
            "failed": sum(not r.ok for r in out),
            "calls": int(tel.get("llm.calls", 0)),
            "retries": int(tel.get("llm.retries", 0)),
            "limit_min": c.limiter.min_seen,
        }


def run_async_sdk(base_url: str, reqs: list[LLMRequest], conc: int) -> dict[str, Any]:
    async def main() -> tuple[int, float, float]:
        sdk = openai.AsyncOpenAI(api_key="bench-key", base_url=base_url, max_retries=6, timeout=30)
        await sdk.chat.completions.create(
            model=MODEL, max_tokens=8, messages=[{"role": "user", "content": f"warm-up {time.time_ns()}"}]
        )
        sem = asyncio.Semaphore(conc)

        async def one(r: LLMRequest) -> bool:
            async with sem:
                try:
                    await sdk.chat.completions.create(**to_chat_params(r))
                    return True
                except openai.APIError:
                    return False

        c0, t0 = time.process_time(), time.perf_counter()
        ok = sum(await asyncio.gather(*(one(r) for r in reqs)))
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        await sdk.close()
        return ok, dt, cpu

    ok, dt, cpu = asyncio.run(main())
    return {"n": len(reqs), "seconds": dt, "cpu_s": cpu, "rps": len(reqs) / dt, "failed": len(reqs) - ok}


def run_sequential(base_url: str, reqs: list[LLMRequest]) -> dict[str, Any]:
    sdk = openai.OpenAI(api_key="bench-key", base_url=base_url, max_retries=6, timeout=30)
    sdk.chat.completions.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": f"warm-up {time.time_ns()}"}])

    def loop() -> int:
        ok = 0
        for r in reqs:
            try:
                sdk.chat.completions.create(**to_chat_params(r))
                ok += 1
            except openai.APIError:
                pass
        return ok

    ok, dt, cpu = _timed(loop)
    sdk.close()
    return {"n": len(reqs), "seconds": dt, "cpu_s": cpu, "rps": len(reqs) / dt, "failed": len(reqs) - ok}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small N (finishes in well under 60 s)")
    ap.add_argument("--json", metavar="PATH", help="write the results as JSON")
    ap.add_argument("--n", type=int, default=None, help="requests per concurrent mode (default 2000; 400 with --quick)")
    ap.add_argument("--n-seq", type=int, default=None, help="requests for the sequential loop (default 200; 40 with --quick)")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--fault-rate", type=float, default=0.10)
    args = ap.parse_args(argv)
    n = args.n or (400 if args.quick else 2000)
    n_seq = args.n_seq or (40 if args.quick else 200)
    conc, lat = args.concurrency, args.latency
    ideal = conc / lat

    srv = ServerProcess(
        latency=lat, fault_rate=args.fault_rate, faults=("429", "503"), retry_after=lat, seed=0, max_lifetime_s=900
    )
    oa_url = srv.base_url + "/v1"
    res: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cache = os.path.join(tmp, "cache")
        res["openai_client"] = run_client(OpenAIClient, oa_url, requests(n, "oa"), conc, None)
        res["cache_first"] = run_client(OpenAIClient, oa_url, requests(n, "cached"), conc, cache)
        res["async_sdk"] = run_async_sdk(oa_url, requests(n, "peer"), conc)
        res["anthropic_client"] = run_client(AnthropicClient, srv.base_url, requests(n, "an"), conc, None)
        res["sequential_sdk"] = run_sequential(oa_url, requests(n_seq, "seq"))
        res["cache_rerun"] = run_client(OpenAIClient, oa_url, requests(n, "cached"), conc, cache)
    res["server"] = srv.stats()

    def row(name: str, r: dict[str, Any]) -> tuple[str, ...]:
        calls = str(r["calls"]) if "calls" in r else "-"
        retries = str(r["retries"]) if "retries" in r else "-"
        share = f"{100 * r['rps'] / ideal:.1f}%" if r is not res["cache_rerun"] else "-"
        return (name, str(r["n"]), f"{r['rps']:,.1f}", share, calls, retries, str(r["failed"]), f"{r['cpu_s']:.2f}")

    rows = [
        ("ideal (concurrency / latency)", "-", f"{ideal:,.0f}", "100%", "-", "-", "-", "-"),
        row("OpenAIClient (adaptive), 10% 429/503", res["openai_client"]),
        row("asyncio + AsyncOpenAI(max_retries=6), semaphore", res["async_sdk"]),
        row("AnthropicClient, same server (Messages route)", res["anthropic_client"]),
        row("sequential openai SDK loop", res["sequential_sdk"]),
        row("OpenAIClient, disk cache on (first run)", res["cache_first"]),
        row("OpenAIClient, cache re-run (zero calls)", res["cache_rerun"]),
    ]
    cols = ("mode", "N", "req/s", "of ideal", "API calls", "retries", "failed", "CPU s")
    try:
        from rich.console import Console
        from rich.table import Table

        t = Table(title=f"datacore.llm OpenAI backend vs peers (latency {lat * 1000:.0f} ms, concurrency {conc})")
        for col in cols:
            t.add_column(col, justify="left" if col == "mode" else "right")
        for r in rows:
            t.add_row(*r)
        Console(width=140).print(t)
    except ImportError:
        print(*cols, sep="\t")
        for r in rows:
            print(*r, sep="\t")
    o, p = res["openai_client"], res["async_sdk"]
    print(
        f"OpenAIClient / asyncio+SDK peer: {o['rps'] / p['rps']:.2f}x req/s, CPU per request "
        f"{1000 * o['cpu_s'] / o['n']:.2f} vs {1000 * p['cpu_s'] / p['n']:.2f} ms; admission limit min {o['limit_min']}; "
        f"server: {res['server']['calls']} calls, {res['server']['replied']} replied, faults {res['server']['faults']}"
    )
    res["meta"] = {
        "ideal_rps": ideal,
        "latency_s": lat,
        "concurrency": conc,
        "fault_rate": args.fault_rate,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "openai": openai.__version__,
        "quick": args.quick,
    }
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(res, f, indent=2, sort_keys=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
