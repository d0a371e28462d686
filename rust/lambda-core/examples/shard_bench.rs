//! The Rust-only ceiling of lambdagen: shards of the default config made and written by the
//! core alone (no Python, no datacore), for `bench/bench.py` and profiling.
//!
//!     cargo run --release --example shard_bench -- RECORDS [THREADS] [none|zst] [OUT_DIR] [ZSTD_LEVEL]
//!
//! ZSTD_LEVEL defaults to 1, lambdagen's default (`LambdaConfig.zstd_level`).
//!
//! Prints records, wall seconds, CPU seconds (process) and records/s.

use lambda_core::reduce::Strategy;
use lambda_core::schedule::seed_schedule;
use lambda_core::split::Splitter;
use lambda_core::writer::{write_shard, Compress, GenConfig, Place};
use std::path::PathBuf;
use std::time::Instant;

fn cpu_seconds() -> f64 {
    // /proc/self/stat fields 14 and 15: user and system time in clock ticks (100 per second).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let threads: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(1);
    let compress = match args.get(3).map(String::as_str) {
        Some("none") => Compress::None,
        _ => Compress::Zst,
    };
    let dir = PathBuf::from(args.get(4).cloned().unwrap_or_else(|| "/tmp".into()));
    let zstd_level: i32 = args.get(5).and_then(|v| v.parse().ok()).unwrap_or(1);
    let cfg = GenConfig {
        cells: seed_schedule(),
        max_steps: 100,
        max_size: 400,
        max_examples_per_trace: 0,
        redex_only: true,
        whole_trace: false,
        chunk_traces: 32,
        quotas: vec![],
        size_quotas: vec![],
        depth_quotas: vec![],
        zstd_level,
        named: false,
        tokens: false,
        strategy: Strategy::Normal,
        split_by: None,
        split_at: (0, 0),
        curriculum: false,
    };
    let sp = Splitter {
        t1: 800,
        t2: 900,
        salt: vec![],
    };
    let shard = 50_000usize;
    let shards = n.div_ceil(shard);
    let paths: [PathBuf; 3] =
        ["train", "val", "test"].map(|s| dir.join(format!("shard_bench.{s}")));
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let mut total = 0u64;
    for i in 0..shards {
        let count = shard.min(n - i * shard);
        let place = Place {
            seed: 1000 + i as u64,
            count,
            start: (i * shard) as u64,
            index: i as u64,
            num_shards: shards as u64,
            run_seed: 0,
            total: n as u64,
        };
        let (counts, _) = write_shard(&cfg, &sp, place, &paths, compress, threads).expect("shard");
        total += counts.iter().sum::<u64>();
    }
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    for p in &paths {
        let _ = std::fs::remove_file(p);
    }
    println!(
        "records {total} wall_s {wall:.3} cpu_s {cpu:.3} records_per_s {:.0} records_per_cpu_s {:.0}",
        total as f64 / wall,
        total as f64 / cpu.max(1e-9)
    );
}
