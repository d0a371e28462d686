#!/usr/bin/env bash
# Every command behind a figure in docs/benchmarks.md, one after another (never two at once:
# they would share the cores), logs and JSON into bench-results/.  Run it on a quiet machine from
# the repository root in an environment where every package is installed (.venv, or nox's
# .nox/bench after `nox -s bench`):
#
#     PY=.venv/bin/python bash tools/figures.sh            # everything, about 20 minutes on 2 cores
#     PY=.venv/bin/python bash tools/figures.sh fsmdata    # one package's figures
#
# Each step prints the load average first, so a figure can be read against how busy the machine was.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
BIN=$(dirname "$PY")
OUT=bench-results
mkdir -p "$OUT"
only=${1:-}

step() {  # step NAME COMMAND...: run one figure's command, tee its output to $OUT/NAME.log
  local name=$1; shift
  if [[ -n "$only" && "$name" != "$only"* ]]; then return 0; fi
  echo "=== $name: $* (load: $(cut -d' ' -f1-3 /proc/loadavg))" | tee "$OUT/$name.log"
  /usr/bin/env time -f "wall %e s, user %U s, sys %S s, max RSS %M KB" "$@" 2>&1 | tee -a "$OUT/$name.log"
}

step datacore "$PY" packages/datacore/bench/bench.py --json "$OUT/datacore.json"
step datacore-llm "$PY" packages/datacore/bench/bench_llm.py --json "$OUT/datacore-llm.json"
step fsmdata "$PY" packages/fsmdata/bench/bench.py --json "$OUT/fsmdata.json"
rm -rf /tmp/figures-fsm1m
step fsmdata-1m "$BIN/fsmdata" generate --regex 'x(a|b)*y(c|d)z' --alphabet abcdxyz --l-max 64 -n 1000000 \
  --shard-size 50000 -w 2 --quiet --out /tmp/figures-fsm1m
rm -rf /tmp/figures-fsm1m
step lambdagen "$PY" packages/lambdagen/bench/bench.py --n 15000000 --workers 2 --stats --json "$OUT/lambdagen.json"
step gatling-sid "$PY" packages/gatling-sid/bench/bench.py --json "$OUT/gatling-sid.json"
step routergen "$PY" packages/routergen/bench/bench.py --json "$OUT/routergen.json"
# ds2ds-gen: decode and end to end on random weights, then the quality of a model trained here.
step ds2ds-gen "$PY" packages/ds2ds-gen/bench/bench.py --threads 2 --json "$OUT/ds2ds-gen.json"
if [[ -z "$only" || "ds2ds-gen-quality" == "$only"* ]]; then
  W=/tmp/figures-ds2ds
  [[ -f $W/corpus/index.json ]] || { "$BIN/ds2ds-gen" corpus synth $W/md && "$BIN/ds2ds-gen" pretokenize $W/md $W/corpus; }
  step ds2ds-gen-train "$BIN/ds2ds-gen" train $W/corpus --out $W/ckpt --steps 400 --max-seconds 900
  step ds2ds-gen-quality "$PY" packages/ds2ds-gen/bench/bench.py --threads 2 --skip-e2e --checkpoint $W/ckpt \
    --corpus $W/corpus --json "$OUT/ds2ds-gen-quality.json"
fi
echo "done: logs and JSON in $OUT/"
