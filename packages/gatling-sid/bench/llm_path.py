"""The Anthropic oracle at scale against datacore.llm.testing's fake server: traces/s and $ per 1k traces.

    python packages/gatling-sid/bench/llm_path.py [-n 320] [--latency 0.4] [--jitter 0.4] [--json out.json]

Three ways to make the same n traces, side by side in one run:

* ``0.2 (before)``   tools in the user turn, no prompt caching, groups of ``batch_size=16`` requests (each group
  waits for its slowest request), 16 in flight;
* ``online+cache``   static system+tools block with ``cache_control``, all n requests handed over at once with
  ``concurrency=16`` in flight (a finished request frees its slot at once);
* ``online+cache 64`` the same with 64 in flight;
* ``batches``        the same requests through Message Batches (``llm_mode="batch"``).

Traces/s is wall time of ``make_traces`` over the n traces (the fake's latency is ``--latency`` + U(0, ``--jitter``)
per request).  $ per 1k traces is computed, not measured: input tokens are the fake server's count (characters / 4)
split into the cacheable prefix (tools + system) and the rest; output tokens are the fake model's reply counted the
same way.  Prices: claude-3-5-haiku list prices ($0.80 / MTok input, $4 output; cache write 1.25x, cache read 0.10x
of input; Message Batches 50% off).  A prefix is written to the cache the first time a domain is asked and read
after that in this run (``usd_per_1k``), and ``usd_per_1k_warm`` prices every prefix as a cache read: the steady
state of a long run (Anthropic keeps a prefix 5 minutes after each use; at these rates every domain stays warm).  Batches
are priced without cache reads (the API applies them best-effort inside batches), so that row is an upper bound.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import time
from pathlib import Path
from types import SimpleNamespace

from datacore.llm import AnthropicClient
from datacore.llm.testing import FakeMessagesServer
from gatling_sid import DomainRegistry
from gatling_sid.anthropic_oracle import AnthropicOracle

IN, OUT, WRITE, READ = 0.80, 4.00, 1.00, 0.08  # USD per million tokens (claude-3-5-haiku)
REG = DomainRegistry.load()


def _canon(x) -> str:
    return json.dumps(x, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class Model:
    """A fake model that writes a compliant identity -> get -> update graph, and keeps token counts."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, int, int, str]] = []  # (prefix tokens, rest tokens, output tokens, prefix digest)

    def __call__(self, body):
        user = body["messages"][0]["content"]
        domain = re.search(r"Domain: (\w+)", user).group(1)
        facts = json.loads(re.search(r"FACTS: (\{.*\})", user).group(1))
        d = REG.domain(domain)
        subj, ent = f"{d.subject}_id", f"{d.entity}_id"
        calls = [
            {
                "id": "call_1",
                "tool": d.roles["identity"],
                "arguments": {subj: facts["subject_id"], "date_of_birth": facts["dob"], "last4": facts["last4"]},
                "dependencies": [],
            },
            {"id": "call_2", "tool": d.roles["get"], "arguments": {ent: facts["entity_id"]}, "dependencies": []},
            {
                "id": "call_3",
                "tool": d.roles["update"],
                "arguments": {
                    ent: {"$ref": f"call_2.output.{ent}"},
                    "verification_token": {"$ref": "call_1.output.session_token"},
                    facts["field_key"]: facts["value_raw"],
                },
                "dependencies": ["call_1", "call_2"],
            },
        ]
        h = int(hashlib.sha256(user.encode()).hexdigest()[:8], 16)
        text = (
            f"hello, this is {facts['name']} ({facts['subject_id']}, born {facts['dob']}, last four {facts['last4']}) - "
            f"please set {facts['field_key']} to {facts['value_raw']} on {facts['entity_id']} (note {h % 9973})"
        )
        content = [
            {"type": "tool_use", "id": f"toolu_{h % 100000}", "name": "emit_json", "input": {"request": text, "calls": calls}}
        ]
        prefix = _canon({"t": body.get("tools"), "s": body.get("system")})
        rest = _canon({"m": body.get("messages")})
        out = math.ceil(len(_canon(content[0]["input"])) / 4)
        self.rows.append((math.ceil(len(prefix) / 4), math.ceil(len(rest) / 4), out, hashlib.sha256(prefix.encode()).hexdigest()))
        return {"content": content, "usage": {"input_tokens": math.ceil((len(prefix) + len(rest)) / 4), "output_tokens": out}}

    def cost(self, cached: bool, batch: bool, warm: bool = False) -> float:
        seen: set[str] = set()
        usd = 0.0
        for pre, rest, out, dig in self.rows:
            if cached and not batch:
                usd += pre * (WRITE if dig not in seen and not warm else READ) / 1e6
                seen.add(dig)
            else:
                usd += pre * IN / 1e6
            usd += rest * IN / 1e6 + out * OUT / 1e6
        return usd * (0.5 if batch else 1.0)


def run(label, n, latency, jitter, *, cache, group, mode, tmp, in_flight=16):
    import random

    model = Model()
    with FakeMessagesServer(handler=model, latency=latency, latency_jitter=jitter, seed=1, batch_ready_after_polls=1) as srv:
        cfg = SimpleNamespace(
            model="claude-3-5-haiku-latest",
            max_tokens=1024,
            batch_size=group,
            concurrency=in_flight,
            base_url=srv.base_url,
            cache_dir=str(tmp / label),
            budget_usd=None,
            fallback=None,
            prompt_cache=cache,
            llm_mode=mode,
            batch_poll_s=0.05,
        )
        client = AnthropicClient(api_key="bench-key", base_url=srv.base_url, max_in_flight=in_flight, cache_dir=None)
        oracle = AnthropicOracle(REG, cfg, client=client)
        rng = random.Random(0)
        ids = [f"sid-{i:06d}" for i in range(n)]
        t0, c0 = time.perf_counter(), time.process_time()
        made = []
        for k in range(0, n, group):
            made += oracle.make_traces(rng, ids[k : k + group])
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        tel = client.telemetry()
        client.close()
        ok = sum(t.meta.get("oracle") == "anthropic" for t in made)
        calls = srv.calls + srv.batch_calls
    usd = model.cost(cache, mode == "batch")
    return {
        "mode": label,
        "traces": len(made),
        "accepted": ok,
        "http_requests": calls,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "traces_per_s": round(len(made) / wall, 1),
        "input_tokens_per_call": round(sum(p + r for p, r, _, _ in model.rows) / max(1, len(model.rows))),
        "usd_per_1k": round(usd / max(1, len(made)) * 1000, 4),
        "usd_per_1k_warm": round(model.cost(cache, mode == "batch", warm=True) / max(1, len(made)) * 1000, 4),
        "client_cost_usd_per_1k": round(tel.counters.get("llm.cost_usd", 0.0) / max(1, len(made)) * 1000, 4),
    }


def main() -> None:
    import tempfile

    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=320)
    ap.add_argument("--latency", type=float, default=0.4)
    ap.add_argument("--jitter", type=float, default=0.4)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rows = [
            run("0.2 (before)", a.n, a.latency, a.jitter, cache=False, group=16, mode="online", tmp=tmp),
            run("online+cache", a.n, a.latency, a.jitter, cache=True, group=a.n, mode="online", tmp=tmp),
            run("online+cache 64", a.n, a.latency, a.jitter, cache=True, group=a.n, mode="online", tmp=tmp, in_flight=64),
            run("batches", a.n, a.latency, a.jitter, cache=True, group=a.n, mode="batch", tmp=tmp),
        ]
    print(f"n={a.n} traces, fake latency {a.latency}+U(0,{a.jitter}) s, 16 in flight unless the mode says 64")
    keys = [
        "mode",
        "traces",
        "accepted",
        "traces_per_s",
        "wall_s",
        "cpu_s",
        "input_tokens_per_call",
        "usd_per_1k",
        "usd_per_1k_warm",
    ]
    print("  ".join(f"{k:>14}" for k in keys))
    for r in rows:
        print("  ".join(f"{r[k]!s:>14}" for k in keys))
    for r in rows:
        print(f"{r['mode']}: $ for 4M traces (every domain's prefix warm) = {r['usd_per_1k_warm'] * 4000:,.0f}")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
