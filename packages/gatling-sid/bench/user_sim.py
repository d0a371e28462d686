"""The LLM user simulator against datacore.llm.testing's fake server: dialogues/s, calls, $ per 1k dialogues.

    python packages/gatling-sid/bench/user_sim.py [-n 160] [--latency 0.4] [--concurrency 16]

Side by side in one run, the same n dialogues (``dialogues=1.0``, one shard):

* ``procedural``   the procedural user simulator (no model);
* ``llm``          ``user_simulator="anthropic"``: every user turn asked from the fake model (latency ``--latency``
  + U(0, ``--latency``) per request), the shard's dialogues in rounds of ``complete_many`` with ``--concurrency`` in
  flight; the fake user answers with the turn's note in its own framing, so every dialogue is accepted;
* ``llm, cached``  the same run again on the filled response cache (0 calls).

$ per 1k dialogues is datacore's priced cost (``llm.cost_usd``: fake token counts, the model's list prices).
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from pathlib import Path

from datacore import build_dataset
from datacore.llm.testing import FakeMessagesServer
from gatling_sid import GatlingConfig, GatlingGenerator

NOTE = re.compile(r"\(Note for your next message: it must get across: (.*)\)\s*$", re.S)


def _user(body: dict) -> str:
    last = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
    text = last if isinstance(last, str) else "".join(b.get("text", "") for b in last)
    m = NOTE.search(text)
    return f"Hi - {m.group(1)}" if m else "Hi."


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=160)
    ap.add_argument("--latency", type=float, default=0.4)
    ap.add_argument("--concurrency", type=int, default=16)
    a = ap.parse_args()
    os.environ.setdefault("ANTHROPIC_API_KEY", "bench-key")
    rows = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeMessagesServer(handler=_user, latency=a.latency, latency_jitter=a.latency) as srv,
    ):
        runs = [
            ("procedural", GatlingConfig(dialogues=1.0)),
            *(
                (
                    label,
                    GatlingConfig(
                        dialogues=1.0,
                        user_simulator="anthropic",
                        base_url=srv.base_url,
                        cache_dir=str(Path(tmp) / "cache"),
                        concurrency=a.concurrency,
                    ),
                )
                for label in ("llm", "llm, cached")
            ),
        ]
        for i, (label, cfg) in enumerate(runs):
            calls0 = srv.calls
            t0 = time.perf_counter()
            res = build_dataset(
                GatlingGenerator(cfg), Path(tmp) / f"d{i}", a.n, seed=1, workers=1, executor="inline", progress=False
            )
            secs = time.perf_counter() - t0
            c = res.telemetry.counters
            rows.append(
                (
                    label,
                    a.n / secs,
                    srv.calls - calls0,
                    c.get("user_sim.accepted", 0),
                    c.get("user_sim.rejected", 0),
                    1000 * float(c.get("llm.cost_usd", 0.0)) / a.n,
                )
            )
    print(f"{a.n} dialogues, fake latency {a.latency}+U(0,{a.latency}) s, concurrency {a.concurrency}")
    print(f"{'simulator':<14} {'dialogues/s':>12} {'model calls':>12} {'accepted':>9} {'rejected':>9} {'$/1k dialogues':>15}")
    for label, rate, calls, acc, rej, usd in rows:
        print(f"{label:<14} {rate:>12.1f} {calls:>12} {acc:>9} {rej:>9} {usd:>15.4f}")


if __name__ == "__main__":
    main()
