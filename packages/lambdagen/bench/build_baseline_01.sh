#!/usr/bin/env bash
# Build the 0.1 core (main at 078fba8, before issue 15) with the same Rust-only harness as
# rust/lambda-core/examples/shard_bench.rs (default config, 50,000-record shards, zstd-3 files),
# so bench.py can print it beside the current core:
#
#     packages/lambdagen/bench/build_baseline_01.sh [DIR]      # default /tmp/lambdagen-01
#     python packages/lambdagen/bench/bench.py --baseline-01 DIR/target/release/examples/shard_bench ...
#
# The 0.1 harness is bench/shard_bench_01.rs (0.1's API: Owner instead of Place, the
# owner-shard pair dedup with shared_pair_max_size 50, as 0.1 ran by default).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(git -C "$here" rev-parse --show-toplevel)"
dir="${1:-/tmp/lambdagen-01}"
rm -rf "$dir" && mkdir -p "$dir"
git -C "$repo" archive 078fba8 rust | tar -x -C "$dir"
mkdir -p "$dir/rust/lambda-core/examples"
cp "$here/shard_bench_01.rs" "$dir/rust/lambda-core/examples/shard_bench.rs"
(cd "$dir/rust" && CARGO_TARGET_DIR="$dir/target" cargo build --release --example shard_bench)
echo "$dir/target/release/examples/shard_bench"
