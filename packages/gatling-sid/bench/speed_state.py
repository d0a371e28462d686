"""Issue 17 item 10: records per CPU-second of one shard, this tree vs an earlier commit, same run.

    python packages/gatling-sid/bench/speed_state.py [--base 676f3c5] [--n 2000] [--rounds 3]

Each round times, in fresh subprocesses taking turns (so machine load hits both alike), one
in-process shard of ``n`` records (``negatives=0.3``; gold traces generated, executed against the
domain state, grounded and validated, negatives mutated and validated) with this tree's package and
with the package as of ``--base`` (extracted with ``git archive``; default: the commit before
the executable domains).  Prints the best and median records per CPU-second of each and the
implied rate on 2 cores (x2: shards are independent, datacore runs one per core).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SRC = ROOT / "packages" / "gatling-sid" / "src"
CHILD = r"""
import sys, time
from datacore import ShardTask, Telemetry
from gatling_sid import GatlingConfig, GatlingGenerator
kw = dict(negatives=0.3)
if len(sys.argv) > 2 and float(sys.argv[2]) > 0:
    kw["dialogues"] = float(sys.argv[2])
gen = GatlingGenerator(GatlingConfig(**kw))
list(gen.generate_shard(ShardTask(0, 1, 300, 0), Telemetry()))  # warm: schemas compiled
n = int(sys.argv[1])
t = time.process_time()
recs = list(gen.generate_shard(ShardTask(1, 2, n, 0), Telemetry()))
print(len(recs) / (time.process_time() - t))
"""


def _run(src: Path, n: int, dialogues: float = 0.0) -> float:
    env = {"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(n), str(dialogues)], capture_output=True, text=True, env=env, check=True, cwd="/"
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="676f3c5", help="earlier commit to compare with")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        arch = Path(tmp) / "base.tar"
        subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(arch), a.base, "packages/gatling-sid/src"], check=True)
        with tarfile.open(arch) as tf:
            tf.extractall(tmp, filter="data")
        base_src = Path(tmp) / "packages" / "gatling-sid" / "src"
        rows: dict[str, list[float]] = {f"{a.base}": [], "this tree": [], "this tree, --dialogues 0.3": []}
        for _ in range(a.rounds):
            rows[f"{a.base}"].append(_run(base_src, a.n))
            rows["this tree"].append(_run(SRC, a.n))
            rows["this tree, --dialogues 0.3"].append(_run(SRC, a.n, 0.3))
    print(f"one shard of {a.n} records (negatives 0.3), {a.rounds} rounds, records per CPU-second")
    print(f"{'version':<36} {'best':>8} {'median':>8} {'x2 cores (best)':>16}")
    for k, v in rows.items():
        print(f"{k:<36} {max(v):>8.0f} {statistics.median(v):>8.0f} {2 * max(v):>16.0f}")


if __name__ == "__main__":
    main()
