//! Golden output: the bytes of shards made with fixed seeds under many configurations, as
//! xxh3-64 digests recorded from the writer before its speed work (main at 280327f).  Any
//! change to what a shard holds (a field, an order, a term, a split) changes a digest; a
//! change meant to alter the output must say so and record new digests here.
//!
//! Part of `cargo test` (about 4 s in a debug build);
//! `GOLDEN_PRINT=1` prints the digests instead of checking them.

use lambda_core::reduce::Strategy;
use lambda_core::schedule::{seed_schedule, Cell};
use lambda_core::split::Splitter;
use lambda_core::writer::{make_shard, write_shard, Compress, GenConfig, Place, Quota, SplitBy};
use std::path::PathBuf;
use xxhash_rust::xxh3::xxh3_64;

fn cell(size: usize, depth: usize, weight: f64) -> Cell {
    Cell {
        size,
        depth,
        weight,
    }
}

fn base() -> GenConfig {
    GenConfig {
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
        zstd_level: 3,
        named: false,
        tokens: false,
        strategy: Strategy::Normal,
        split_by: None,
        split_at: (0, 0),
        curriculum: false,
    }
}

fn small() -> GenConfig {
    let mut c = base();
    c.cells = vec![
        cell(24, 8, 1.0),
        cell(30, 9, 2.0),
        cell(16, 6, 1.0),
        cell(12, 6, 0.5),
    ];
    c.max_steps = 40;
    c.max_size = 120;
    c.chunk_traces = 8;
    c
}

fn q(lo: usize, hi: usize, share: f64) -> Quota {
    Quota { lo, hi, share }
}

/// (name, config, place) of every golden case.
fn cases() -> Vec<(&'static str, GenConfig, Place)> {
    let place = |seed: u64, count: usize, index: u64, num_shards: u64| Place {
        seed,
        count,
        start: index * count as u64,
        index,
        num_shards,
        run_seed: 7,
        total: count as u64 * num_shards,
    };
    let mut v: Vec<(&'static str, GenConfig, Place)> = vec![
        ("default", base(), place(11, 6000, 0, 4)),
        ("default_shard2", base(), place(12, 6000, 2, 4)),
        ("small", small(), place(13, 3000, 1, 3)),
    ];
    let mut c = base();
    c.named = true;
    c.tokens = true;
    v.push(("named_tokens", c, place(14, 2000, 0, 1)));
    let mut c = small();
    c.whole_trace = true;
    c.redex_only = false;
    v.push(("whole_trace_include_normal", c, place(15, 1500, 0, 2)));
    let mut c = small();
    c.redex_only = false;
    c.max_examples_per_trace = 3;
    v.push(("include_normal_max_examples", c, place(16, 2500, 1, 2)));
    for (name, s) in [
        ("cbn", Strategy::CallByName),
        ("cbv", Strategy::CallByValue),
        ("applicative", Strategy::Applicative),
        ("head", Strategy::Head),
        ("normal_eta", Strategy::NormalEta),
    ] {
        let mut c = small();
        c.strategy = s;
        c.redex_only = false;
        v.push((name, c, place(17, 1500, 0, 1)));
    }
    let mut c = small();
    c.quotas = vec![
        q(0, 2, 0.25),
        q(3, 6, 0.25),
        q(7, 15, 0.25),
        q(16, usize::MAX, 0.25),
    ];
    v.push(("quotas", c, place(18, 2000, 0, 1)));
    let mut c = small();
    c.size_quotas = vec![q(0, 20, 0.5), q(21, usize::MAX, 0.5)];
    c.depth_quotas = vec![q(0, 6, 0.4), q(7, usize::MAX, 0.6)];
    v.push(("size_depth_quotas", c, place(19, 2000, 0, 1)));
    for (name, by, at) in [
        ("split_steps", SplitBy::Steps, (4, 8)),
        ("split_size", SplitBy::Size, (20, 28)),
        ("split_depth", SplitBy::Depth, (7, 9)),
    ] {
        let mut c = small();
        c.split_by = Some(by);
        c.split_at = at;
        v.push((name, c, place(20, 1500, 0, 1)));
    }
    let mut c = small();
    c.curriculum = true;
    v.push(("curriculum", c.clone(), place(21, 1000, 1, 3)));
    let mut c = base();
    c.curriculum = true;
    c.named = true;
    v.push(("curriculum_default_named", c, place(22, 3000, 0, 2)));
    v
}

const GOLDEN: &[(&str, u64)] = &[
    ("default", 0xffde359e1a4de599),
    ("default_shard2", 0x59adf9bcb3582b40),
    ("small", 0xa564021ebd70f92b),
    ("named_tokens", 0x7d4d9574fd508bdf),
    ("whole_trace_include_normal", 0xba1fefcd2f646755),
    ("include_normal_max_examples", 0xaf576bd9da5feadf),
    ("cbn", 0x8e72711b70ae6eb9),
    ("cbv", 0x592e3eaed92778a9),
    ("applicative", 0x6b2d9a3dcb0aece2),
    ("head", 0xd6ecee5640d18d0f),
    ("normal_eta", 0x766ba614007be918),
    ("quotas", 0x94a3d3aa09570050),
    ("size_depth_quotas", 0x11058ae12ca4bab0),
    ("split_steps", 0xe974b4e671e867d4),
    ("split_size", 0x86dacaf0e3f84771),
    ("split_depth", 0x6d149bcc8bcbcea2),
    ("curriculum", 0x661f90bc59d775b8),
    ("curriculum_default_named", 0x8d1818ba0fcde7ed),
];

fn digest(cfg: &GenConfig, p: Place, threads: usize) -> u64 {
    let sp = Splitter {
        t1: 800,
        t2: 900,
        salt: b"golden".to_vec(),
    };
    let d = make_shard(cfg, &sp, p, threads).expect("shard");
    let mut all = d.lines.clone();
    for (end, split) in &d.records {
        all.extend_from_slice(&(*end as u64).to_le_bytes());
        all.push(*split);
    }
    for s in &d.starts {
        all.extend_from_slice(s.as_bytes());
        all.push(b'\n');
    }
    all.extend_from_slice(d.telemetry.to_json().as_bytes());
    xxh3_64(&all)
}

#[test]
fn shards_match_their_golden_digests() {
    let print = std::env::var_os("GOLDEN_PRINT").is_some();
    let mut bad = Vec::new();
    for (name, cfg, p) in cases() {
        let h = digest(&cfg, p, 2);
        if print {
            println!("    (\"{name}\", 0x{h:016x}),");
            continue;
        }
        let want = GOLDEN.iter().find(|(n, _)| *n == name).map(|(_, h)| *h);
        if want != Some(h) {
            bad.push(format!("{name}: got 0x{h:016x}, golden {want:x?}"));
        }
        // One thread makes each chunk only after the previous one is merged, more threads
        // make them ahead and skip those of filled cells: the same bytes either way.
        for threads in [1, 3] {
            let ht = digest(&cfg, p, threads);
            if ht != h {
                bad.push(format!(
                    "{name}: {threads} thread(s) give 0x{ht:016x}, 2 give 0x{h:016x}"
                ));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// The compressed files too: the same zstd level and block feeding give the same bytes.
#[test]
fn zstd_files_match_their_golden_digest() {
    let dir = std::env::temp_dir().join(format!("lambda-core-golden-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let paths: [PathBuf; 3] = ["train", "val", "test"].map(|s| dir.join(s));
    let sp = Splitter {
        t1: 800,
        t2: 900,
        salt: vec![],
    };
    let p = Place {
        seed: 5,
        count: 8000,
        start: 0,
        index: 0,
        num_shards: 1,
        run_seed: 0,
        total: 8000,
    };
    let mut all = Vec::new();
    for c in [Compress::Zst, Compress::Gz] {
        write_shard(&base(), &sp, p, &paths, c, 2).expect("shard");
        for path in &paths {
            all.extend_from_slice(&std::fs::read(path).unwrap());
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    let h = xxh3_64(&all);
    if std::env::var_os("GOLDEN_PRINT").is_some() {
        println!("    files: 0x{h:016x}");
        return;
    }
    assert_eq!(h, GOLDEN_FILES, "got 0x{h:016x}");
}

const GOLDEN_FILES: u64 = 0xa4ba57a2d09884a8;
