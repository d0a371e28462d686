//! Deterministic, parallel generation of one shard of reduction examples, written as JSONL.
//!
//! **What a shard holds.**  Record slot `p` of the run (`p = start .. start + count` for a
//! shard) belongs to cell `c` when `frac(p / phi)` (64-bit fixed point) falls in the cell's
//! slice of `[0, 1)`, the slices being proportional to the weights.  This golden-ratio
//! sequence has discrepancy O(log n), so every cell gets its configured share of the run's
//! records to within a few records, whatever the shard size, and each shard knows its own
//! per-cell counts from `(start, count)` alone.
//!
//! **Start terms.**  Trace `m` of cell `c` in a shard (counting every start term the shard
//! draws in that cell, kept or not) has the run-wide key `m * num_shards + shard_index`.  In
//! a cell with fewer than 2^96 terms its start term is the term of rank `perm_c(key)`, a
//! keyed permutation of the cell's ranks: no two traces of the run, in any shard, share a
//! start term, and a cell whose keys run out is reported, never refilled from elsewhere.
//! Bigger cells are sampled node by node (a repeat has probability below n^2 / 2^97) and
//! repeats within a shard are dropped.  This rule needs no other shard's output, so the
//! content does not depend on how many shards or workers there are, and whole traces are
//! kept (no (input, target) pair is dropped because another trace has it).
//!
//! **Parallelism.**  Chunk `j` of cell `c` (traces `m = j * chunk_traces ..`) draws from its
//! own generator seeded from `(seed, c, j)`.  Chunks are made in waves on worker threads;
//! the size of a wave depends only on what earlier waves yielded, and one thread merges the
//! chunks in a fixed order as they come, applying the per-cell counts and the optional
//! quotas (a chunk of a cell already filled is not made: the merge would skip it).  The last
//! trace a cell needs is thinned to the steps that fit (evenly spread).  The bytes written
//! depend on (seed, shard place, config) only, not on threads or worker processes.
//!
//! **Splits.**  A record's split key is its `trace_id` (xxh3-64 hex of the start term), so
//! a whole trace, and every trace of one start term, lands in one split.

use crate::perm::Perm;
use crate::printed::PrintedTrace;
use crate::reduce::{Status, Strategy};
use crate::rng::Rng;
use crate::sample::Sampler;
use crate::schedule::Cell;
use crate::split::Splitter;
use crate::term::{to_named, write_token_ids, Node};
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Condvar, Mutex};
use xxhash_rust::xxh3::{xxh3_128, xxh3_64};
use xxhash_rust::xxh64::xxh64;

/// A quota on the share of examples whose trace length (total steps) lies in `lo..=hi`.
#[derive(Clone, Debug, PartialEq)]
pub struct Quota {
    pub lo: usize,
    pub hi: usize,
    pub share: f64,
}

impl Quota {
    /// `LO-HI`, or `LO-` for an open bucket (the stratum name in telemetry).
    pub fn label(&self) -> String {
        if self.hi >= i32::MAX as usize {
            format!("{}-", self.lo)
        } else {
            format!("{}-{}", self.lo, self.hi)
        }
    }
}

/// Everything that decides the content of a shard besides its seed and place.
#[derive(Clone, Debug)]
pub struct GenConfig {
    pub cells: Vec<Cell>,
    pub max_steps: usize,
    pub max_size: usize,
    /// Keep at most this many steps of a trace (evenly spread over it); 0 keeps all.
    pub max_examples_per_trace: usize,
    /// Skip start terms that are already in normal form.
    pub redex_only: bool,
    /// One record per trace (start, final term, all terms) instead of one per step.
    pub whole_trace: bool,
    pub chunk_traces: usize,
    /// Quotas per trace-length bucket; empty: none.  Buckets must cover every length.
    pub quotas: Vec<Quota>,
    /// Quotas per bucket of the example's input size (nodes); empty: none.  Buckets must
    /// cover every size an input can have (the caller checks).
    pub size_quotas: Vec<Quota>,
    /// Quotas per bucket of the example's input depth; empty: none.  Same rule.
    pub depth_quotas: Vec<Quota>,
    pub zstd_level: i32,
    /// Also write `input_named` / `target_named` (named binders, `λa. λb. a b`).
    pub named: bool,
    /// Also write `input_ids` / `target_ids` (see [`crate::term::write_token_ids`]).
    pub tokens: bool,
    /// Which redex each step contracts.
    pub strategy: Strategy,
    /// Out-of-distribution splits: a trace's split from its total steps, start size or
    /// start depth (see [`SplitBy`]) instead of the hash of its id; `None`: the hash.
    pub split_by: Option<SplitBy>,
    /// `(val_from, test_from)`: a trace whose value is below `val_from` is train, below
    /// `test_from` val, else test.
    pub split_at: (usize, usize),
    /// Order records by difficulty: cells (by size, then depth) take contiguous blocks of
    /// the run's record slots, and a shard's records are sorted by (cell, trace length),
    /// whole traces kept together in step order.  Needs the run's record count.
    pub curriculum: bool,
}

/// What decides a trace's split in an out-of-distribution split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitBy {
    /// The trace's total steps.
    Steps,
    /// The start term's size (nodes).
    Size,
    /// The start term's depth.
    Depth,
}

impl SplitBy {
    /// `steps`, `size` or `depth`.
    pub fn from_name(name: &str) -> Option<SplitBy> {
        match name {
            "steps" => Some(SplitBy::Steps),
            "size" => Some(SplitBy::Size),
            "depth" => Some(SplitBy::Depth),
            _ => None,
        }
    }

    /// Split index (0 train, 1 val, 2 test) of a trace whose value is `v`.
    pub fn split(v: usize, (val_from, test_from): (usize, usize)) -> u8 {
        if v < val_from {
            0
        } else if v < test_from {
            1
        } else {
            2
        }
    }
}

/// Where a shard sits in its run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Place {
    /// The shard's seed (derived by datacore from the run seed and the index).
    pub seed: u64,
    /// Records the shard must make.
    pub count: usize,
    /// Index of the shard's first record in the run (decides its per-cell counts).
    pub start: u64,
    pub index: u64,
    /// The run's shard count; 0: unknown (start terms are then distinct within the shard only).
    pub num_shards: u64,
    /// The run's seed: keys the permutations that make small-cell start terms distinct.
    pub run_seed: u64,
    /// The run's record count (needed by `curriculum` only; 0: unknown).
    pub total: u64,
}

/// Compression of the shard files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compress {
    None,
    Gz,
    Zst,
}

/// Counters and histograms, merged by key-wise addition on the Python side.
#[derive(Default, Debug, Clone)]
pub struct Telemetry {
    pub counters: BTreeMap<String, u64>,
    pub histograms: BTreeMap<String, BTreeMap<String, u64>>,
}

impl Telemetry {
    fn count(&mut self, name: &str, by: u64) {
        *self.counters.entry(name.to_string()).or_insert(0) += by;
    }

    fn observe(&mut self, hist: &str, bucket: &str, by: u64) {
        *self
            .histograms
            .entry(hist.to_string())
            .or_default()
            .entry(bucket.to_string())
            .or_insert(0) += by;
    }

    /// `{"counters": {...}, "histograms": {...}}` (the layout of `datacore.Telemetry.to_dict`).
    pub fn to_json(&self) -> String {
        fn obj(m: &BTreeMap<String, u64>) -> String {
            let parts: Vec<String> = m.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            format!("{{{}}}", parts.join(","))
        }
        let hs: Vec<String> = self
            .histograms
            .iter()
            .map(|(k, v)| format!("\"{k}\":{}", obj(v)))
            .collect();
        format!(
            "{{\"counters\":{},\"histograms\":{{{}}}}}",
            obj(&self.counters),
            hs.join(",")
        )
    }
}

/// Name of the telemetry histogram datacore compares against the declared targets.
pub const STRATA: &str = "strata";

/// One example of a chunk, before the merge decides whether it is kept.
struct Example {
    line: std::ops::Range<usize>,
    size: u32,
    depth: u32,
    redex_depth: i32,
    redex_lambdas: i32,
    /// Token counts of input and target (0 without `tokens`).
    tokens: (u32, u32),
}

/// One trace of a chunk.
struct TraceOut {
    start: u128,
    /// Drawn freely (big cell): may repeat a start term drawn earlier in the shard.
    free: bool,
    start_text: String,
    split: u8,
    steps: usize,
    status: Status,
    examples: Vec<Example>,
}

struct ChunkOut {
    cell: usize,
    buf: Vec<u8>,
    traces: Vec<TraceOut>,
    drawn: u64,
    normal_starts: u64,
    capped_starts: u64,
    by_permutation: u64,
    /// The cell's keys ran out inside this chunk (no more distinct start terms).
    exhausted: bool,
}

fn chunk_seed(seed: u64, cell: usize, j: u64) -> u64 {
    let mut b = Vec::with_capacity(39);
    b.extend_from_slice(b"lambdagen.chunk");
    b.extend_from_slice(&seed.to_le_bytes());
    b.extend_from_slice(&(cell as u64).to_le_bytes());
    b.extend_from_slice(&j.to_le_bytes());
    xxh64(&b, 0)
}

/// Key of cell `c`'s permutation: from the run seed when the run's shard count is known
/// (all shards share it and take disjoint keys), else from the shard seed.
fn perm_key(base: u64, c: &Cell) -> u64 {
    let mut b = Vec::with_capacity(40);
    b.extend_from_slice(b"lambdagen.cell");
    b.extend_from_slice(&base.to_le_bytes());
    b.extend_from_slice(&(c.size as u64).to_le_bytes());
    b.extend_from_slice(&(c.depth as u64).to_le_bytes());
    xxh64(&b, 0)
}

/// 2^64 / phi: slot `p` lies at `frac(p / phi)` = `p * PHI64 mod 2^64` (64-bit fixed point).
const PHI64: u64 = 0x9E37_79B9_7F4A_7C15;

/// Upper ends of each cell's slice of `[0, 2^64)` (the last one is open).
fn cell_bounds(cells: &[Cell]) -> Vec<u64> {
    let total: f64 = cells.iter().map(|c| c.weight).sum();
    let mut acc = 0.0;
    cells[..cells.len() - 1]
        .iter()
        .map(|c| {
            acc += c.weight;
            // `as` saturates: a share of 1.0 maps to u64::MAX.
            (acc / total * 18_446_744_073_709_551_616.0) as u64
        })
        .collect()
}

/// The cell of record slot `p`.
fn slot_cell(bounds: &[u64], p: u64) -> usize {
    let x = p.wrapping_mul(PHI64);
    bounds.partition_point(|&b| b <= x)
}

/// Each cell's rank in the curriculum: by size, then depth.
fn curriculum_ranks(cells: &[Cell]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..cells.len()).collect();
    order.sort_by_key(|&i| (cells[i].size, cells[i].depth));
    let mut rank = vec![0; cells.len()];
    for (r, &ci) in order.iter().enumerate() {
        rank[ci] = r;
    }
    rank
}

/// Records per cell for the slots `start .. start + count` of a curriculum run of `total`
/// records: the cells, ranked by size then depth, take contiguous blocks of slots, block `k`
/// ending at `round(total * (w_0 + .. + w_k) / sum w)`.
pub fn curriculum_counts(cells: &[Cell], start: u64, count: usize, total: u64) -> Vec<usize> {
    let rank = curriculum_ranks(cells);
    let mut order: Vec<usize> = (0..cells.len()).collect();
    order.sort_by_key(|&i| rank[i]);
    let wsum: f64 = cells.iter().map(|c| c.weight).sum();
    let (mut acc, mut lo) = (0.0, 0u64);
    let end = start + count as u64;
    let mut out = vec![0usize; cells.len()];
    for (k, &ci) in order.iter().enumerate() {
        acc += cells[ci].weight;
        let hi = if k + 1 == order.len() {
            total
        } else {
            ((acc / wsum) * total as f64).round() as u64
        };
        let (a, b) = (lo.max(start), hi.min(end));
        if b > a {
            out[ci] = (b - a) as usize;
        }
        lo = hi;
    }
    out
}

/// Records per cell for the slots `start .. start + count`.
pub fn cell_counts(cells: &[Cell], start: u64, count: usize) -> Vec<usize> {
    let bounds = cell_bounds(cells);
    let mut out = vec![0usize; cells.len()];
    for p in start..start + count as u64 {
        out[slot_cell(&bounds, p)] += 1;
    }
    out
}

fn push_num(out: &mut Vec<u8>, v: usize) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// 16 lowercase hex digits of `v` (as `format!("{v:016x}")`).
fn hex16(v: u64) -> [u8; 16] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = HEX[((v >> (60 - 4 * i)) & 15) as usize];
    }
    out
}

/// Indices of the steps kept when a trace has `n` steps and at most `k` are wanted.
fn kept_steps(n: usize, k: usize) -> Vec<usize> {
    if k == 0 || n <= k {
        return (0..n).collect();
    }
    if k == 1 {
        return vec![0];
    }
    (0..k)
        .map(|i| (i * (n - 1) + (k - 1) / 2) / (k - 1))
        .collect()
}

/// `"steps_to_nf":N` (steps left to the normal form) or `null` when the trace did not reach one.
fn push_steps_to_nf(buf: &mut Vec<u8>, status: Status, left: usize) {
    buf.extend_from_slice(b",\"steps_to_nf\":");
    if status == Status::NormalForm {
        push_num(buf, left);
    } else {
        buf.extend_from_slice(b"null");
    }
}

/// Close the `cell` string; with an out-of-distribution split by size or depth, add the start
/// term's `start_size` / `start_depth` (the value that decided the split, which a later step's
/// input does not show).
fn push_start_fields(buf: &mut Vec<u8>, cfg: &GenConfig, size: usize, depth: usize) {
    buf.push(b'"');
    match cfg.split_by {
        Some(SplitBy::Size) => {
            buf.extend_from_slice(b",\"start_size\":");
            push_num(buf, size);
        }
        Some(SplitBy::Depth) => {
            buf.extend_from_slice(b",\"start_depth\":");
            push_num(buf, depth);
        }
        _ => {}
    }
}

/// Per-cell sampling state shared by the chunks of a shard.
struct CellDraw {
    /// (number of terms, permutation) for cells under 2^96 terms.
    perm: Option<(u128, Perm)>,
    /// Key stride and offset: trace `m` of the cell gets key `m * stride + offset`.
    stride: u128,
    offset: u128,
    name: String,
}

/// Chunk `j` of cell `ci`: traces `m = j * chunk_traces ..`, each one start term drawn
/// (see the module docs), traced, and printed as records.  Start terms that are already
/// normal (with `redex_only`) or whose first step exceeds `max_size` give no record.
/// `None` when `done` (the merge has filled the cell, so it would skip this chunk) is set
/// before the chunk is complete.
#[allow(clippy::too_many_arguments)]
fn make_chunk(
    cfg: &GenConfig,
    sampler: &Sampler,
    splitter: &Splitter,
    draw: &CellDraw,
    seed: u64,
    ci: usize,
    j: u64,
    done: &AtomicBool,
) -> Option<ChunkOut> {
    let mut rng = Rng::new(chunk_seed(seed, ci, j));
    let cell = &cfg.cells[ci];
    let mut out = ChunkOut {
        cell: ci,
        buf: Vec::with_capacity(cfg.chunk_traces * 16384),
        traces: Vec::new(),
        drawn: 0,
        normal_starts: 0,
        capped_starts: 0,
        by_permutation: 0,
        exhausted: false,
    };
    let mut start: Vec<Node> = Vec::new();
    let mut text: Vec<u8> = Vec::new();
    let mut named: Vec<Option<String>> = Vec::new();
    let mut tr = PrintedTrace::new();
    for t in 0..cfg.chunk_traces {
        if done.load(Ordering::Acquire) {
            // The merge filled this cell with earlier chunks: it will skip this one whole.
            return None;
        }
        let m = j as u128 * cfg.chunk_traces as u128 + t as u128;
        let free = match &draw.perm {
            Some((n, perm)) => {
                let key = m * draw.stride + draw.offset;
                if key >= *n {
                    out.exhausted = true;
                    break;
                }
                sampler.unrank(cell.size, cell.depth, perm.apply(key), &mut start);
                out.by_permutation += 1;
                false
            }
            None => {
                sampler
                    .sample(cell.size, cell.depth, &mut rng, &mut start)
                    .expect("cells are checked to be feasible");
                true
            }
        };
        out.drawn += 1;
        // A start that takes no step gives no record when it is size-capped (or normal,
        // with redex_only): it is then not printed at all.
        tr.run_unless_stuck(
            &start,
            cfg.max_steps,
            cfg.max_size,
            cfg.strategy,
            cfg.redex_only,
        );
        if tr.steps() == 0 {
            // No step taken: a normal form (a record only without redex_only), or a start
            // whose first reduct exceeds max_size, which is not a normal form and has no
            // target within the cap: it gives no record.
            if tr.status() == Status::SizeCap {
                out.capped_starts += 1;
                continue;
            }
            if cfg.redex_only {
                out.normal_starts += 1;
                continue;
            }
        }
        // The plain text of the start term (its JSON text with `\\` read as `\`).
        text.clear();
        let mut esc = false;
        for &c in tr.text(0) {
            if c == b'\\' && !esc {
                esc = true;
                continue;
            }
            esc = false;
            text.push(c);
        }
        let tid_buf = hex16(xxh3_64(&text));
        let tid: &[u8] = &tid_buf;
        // The split key is the trace id (a hash of the start term), which every record
        // carries: a start term lands in one split, and any record names its own key.
        // (With an out-of-distribution split, the trace's steps / start size / start
        // depth decide instead: still a function of the start term alone.)
        let start_depth = tr.depth(0);
        let split = match cfg.split_by {
            None => splitter.split(tid) as u8,
            Some(SplitBy::Steps) => SplitBy::split(tr.steps(), cfg.split_at),
            Some(SplitBy::Size) => SplitBy::split(start.len(), cfg.split_at),
            Some(SplitBy::Depth) => SplitBy::split(start_depth, cfg.split_at),
        };
        let status = tr.status();
        let mut t = TraceOut {
            start: if free { xxh3_128(&text) } else { 0 },
            free,
            start_text: String::from_utf8(text.clone()).expect("ASCII"),
            split,
            steps: tr.steps(),
            status,
            examples: Vec::new(),
        };
        let status = status.as_str();
        if cfg.whole_trace || tr.steps() == 0 {
            // One record: the start and its last term (input == target only for a normal form).
            let b0 = out.buf.len();
            let last_i = tr.len() - 1;
            let last = tr.term(last_i);
            let buf = &mut out.buf;
            buf.extend_from_slice(b"{\"id\":\"");
            buf.extend_from_slice(tid);
            buf.extend_from_slice(b"-0\",\"input\":\"");
            buf.extend_from_slice(tr.text(0));
            buf.extend_from_slice(b"\",\"target\":\"");
            buf.extend_from_slice(tr.text(last_i));
            buf.push(b'"');
            if cfg.named {
                buf.extend_from_slice(b",\"input_named\":\"");
                buf.extend_from_slice(to_named(&start).as_bytes());
                buf.extend_from_slice(b"\",\"target_named\":\"");
                buf.extend_from_slice(to_named(last).as_bytes());
                buf.push(b'"');
            }
            let mut toks = (0, 0);
            if cfg.tokens {
                buf.extend_from_slice(b",\"input_ids\":[");
                toks.0 = write_token_ids(&start, buf) as u32;
                buf.extend_from_slice(b"],\"target_ids\":[");
                toks.1 = write_token_ids(last, buf) as u32;
                buf.push(b']');
            }
            if cfg.whole_trace {
                buf.extend_from_slice(b",\"trace\":[");
                for i in 0..tr.len() {
                    if i > 0 {
                        buf.push(b',');
                    }
                    buf.push(b'"');
                    buf.extend_from_slice(tr.text(i));
                    buf.push(b'"');
                }
                buf.extend_from_slice(b"]");
            }
            buf.extend_from_slice(b",\"meta\":{\"step\":0,\"total_steps\":");
            push_num(buf, tr.steps());
            push_steps_to_nf(buf, tr.status(), tr.steps());
            buf.extend_from_slice(b",\"size\":");
            push_num(buf, start.len());
            buf.extend_from_slice(b",\"depth\":");
            push_num(buf, start_depth);
            if cfg.whole_trace {
                buf.extend_from_slice(b",\"redexes\":[");
                for (i, r) in tr.redexes().iter().enumerate() {
                    if i > 0 {
                        buf.push(b',');
                    }
                    push_num(buf, *r);
                }
                buf.extend_from_slice(b"]");
            } else {
                buf.extend_from_slice(
                    b",\"redex\":null,\"redex_depth\":null,\"redex_lambdas\":null",
                );
            }
            buf.extend_from_slice(b",\"status\":\"");
            buf.extend_from_slice(status.as_bytes());
            buf.extend_from_slice(b"\",\"strategy\":\"");
            buf.extend_from_slice(cfg.strategy.as_str().as_bytes());
            buf.extend_from_slice(b"\",\"trace_id\":\"");
            buf.extend_from_slice(tid);
            buf.extend_from_slice(b"\",\"cell\":\"");
            buf.extend_from_slice(draw.name.as_bytes());
            push_start_fields(buf, cfg, start.len(), start_depth);
            buf.extend_from_slice(b"}}\n");
            t.examples.push(Example {
                line: b0..out.buf.len(),
                size: start.len() as u32,
                depth: start_depth as u32,
                redex_depth: -1,
                redex_lambdas: -1,
                tokens: toks,
            });
        } else {
            // Each term's text was printed once by the trace (it is the target of one step
            // and the input of the next); lines are assembled by copying.
            if cfg.named {
                named.clear();
                named.resize(tr.len(), None);
            }
            let steps = tr.steps();
            let kept = kept_steps(steps, cfg.max_examples_per_trace);
            t.examples.reserve(kept.len());
            for s in kept {
                let (inp, pos) = (tr.term(s), tr.redex(s));
                let d = tr.depth(s);
                let (rd, rl) = tr.place(s);
                let b0 = out.buf.len();
                let buf = &mut out.buf;
                buf.extend_from_slice(b"{\"id\":\"");
                buf.extend_from_slice(tid);
                buf.push(b'-');
                push_num(buf, s);
                buf.extend_from_slice(b"\",\"input\":\"");
                buf.extend_from_slice(tr.text(s));
                buf.extend_from_slice(b"\",\"target\":\"");
                buf.extend_from_slice(tr.text(s + 1));
                buf.push(b'"');
                if cfg.named {
                    for (key, i) in [
                        (&b",\"input_named\":\""[..], s),
                        (b",\"target_named\":\"", s + 1),
                    ] {
                        let nm = named[i].get_or_insert_with(|| to_named(tr.term(i)));
                        buf.extend_from_slice(key);
                        buf.extend_from_slice(nm.as_bytes());
                        buf.push(b'"');
                    }
                }
                let mut toks = (0, 0);
                if cfg.tokens {
                    buf.extend_from_slice(b",\"input_ids\":[");
                    toks.0 = write_token_ids(inp, buf) as u32;
                    buf.extend_from_slice(b"],\"target_ids\":[");
                    toks.1 = write_token_ids(tr.term(s + 1), buf) as u32;
                    buf.push(b']');
                }
                buf.extend_from_slice(b",\"meta\":{\"step\":");
                push_num(buf, s);
                buf.extend_from_slice(b",\"total_steps\":");
                push_num(buf, steps);
                push_steps_to_nf(buf, tr.status(), steps - s);
                buf.extend_from_slice(b",\"size\":");
                push_num(buf, inp.len());
                buf.extend_from_slice(b",\"depth\":");
                push_num(buf, d);
                buf.extend_from_slice(b",\"redex\":");
                push_num(buf, pos);
                buf.extend_from_slice(b",\"redex_depth\":");
                push_num(buf, rd);
                buf.extend_from_slice(b",\"redex_lambdas\":");
                push_num(buf, rl);
                buf.extend_from_slice(b",\"status\":\"");
                buf.extend_from_slice(status.as_bytes());
                buf.extend_from_slice(b"\",\"strategy\":\"");
                buf.extend_from_slice(cfg.strategy.as_str().as_bytes());
                buf.extend_from_slice(b"\",\"trace_id\":\"");
                buf.extend_from_slice(tid);
                buf.extend_from_slice(b"\",\"cell\":\"");
                buf.extend_from_slice(draw.name.as_bytes());
                push_start_fields(buf, cfg, start.len(), start_depth);
                buf.extend_from_slice(b"}}\n");
                t.examples.push(Example {
                    line: b0..out.buf.len(),
                    size: inp.len() as u32,
                    depth: d as u32,
                    redex_depth: rd as i32,
                    redex_lambdas: rl as i32,
                    tokens: toks,
                });
            }
        }
        out.traces.push(t);
    }
    Some(out)
}

/// The accepted lines of a shard, in order, with the split of each.
pub struct ShardData {
    pub lines: Vec<u8>,
    /// (end offset in `lines`, split index) per record.
    pub records: Vec<(usize, u8)>,
    /// Start term (the split key) of each record's trace, as an index into `starts`.
    pub record_start: Vec<u32>,
    pub starts: Vec<String>,
    pub telemetry: Telemetry,
}

const STEPS_BUCKETS: [&str; 9] = [
    "0", "1", "2-3", "4-7", "8-15", "16-31", "32-63", "64-127", "128+",
];

/// Index into [`STEPS_BUCKETS`]: 0, 1, then powers of two up to 128+.
fn steps_bucket_index(steps: usize) -> usize {
    if steps < 2 {
        steps
    } else {
        ((usize::BITS - steps.leading_zeros()) as usize).min(8)
    }
}

fn steps_bucket(steps: usize) -> &'static str {
    STEPS_BUCKETS[steps_bucket_index(steps)]
}

/// Per-record histogram counts, kept as integers in the merge loop and turned into telemetry
/// buckets once per shard (building string keys for every record cost more than the rest
/// of its bookkeeping).  Flushed counts equal observing each record one by one.
#[derive(Default)]
struct Tally {
    strata_cell: Vec<u64>,
    strata_steps: Vec<u64>,
    strata_size: Vec<u64>,
    strata_depth: Vec<u64>,
    input_size: Vec<u64>,
    input_depth: Vec<u64>,
    redex_depth: Vec<u64>,
    redex_lambdas: Vec<u64>,
    steps: [u64; 9],
    input_tokens: Vec<u64>,
    target_tokens: Vec<u64>,
}

fn bump(v: &mut Vec<u64>, i: usize) {
    if i >= v.len() {
        v.resize(i + 1, 0);
    }
    v[i] += 1;
}

impl Tally {
    fn flush(&self, tel: &mut Telemetry, names: [&[String]; 4]) {
        for (counts, names) in [
            (&self.strata_cell, names[0]),
            (&self.strata_steps, names[1]),
            (&self.strata_size, names[2]),
            (&self.strata_depth, names[3]),
        ] {
            for (c, name) in counts.iter().zip(names) {
                if *c > 0 {
                    tel.observe(STRATA, name, *c);
                }
            }
        }
        let each = |tel: &mut Telemetry, hist: &str, v: &[u64], key: &dyn Fn(usize) -> String| {
            for (i, c) in v.iter().enumerate() {
                if *c > 0 {
                    tel.observe(hist, &key(i), *c);
                }
            }
        };
        each(tel, "input_size", &self.input_size, &|i| {
            bucket10(i as u32 * 20, 20)
        });
        each(tel, "input_depth", &self.input_depth, &|i| {
            format!("{i:02}")
        });
        each(tel, "redex_depth", &self.redex_depth, &|i| {
            format!("{i:02}")
        });
        each(tel, "redex_lambdas", &self.redex_lambdas, &|i| {
            format!("{i:02}")
        });
        each(tel, "examples_by_trace_steps", &self.steps, &|i| {
            STEPS_BUCKETS[i].to_string()
        });
        each(tel, "input_tokens", &self.input_tokens, &|i| {
            format!("{i:05}")
        });
        each(tel, "target_tokens", &self.target_tokens, &|i| {
            format!("{i:05}")
        });
    }
}

fn bucket10(v: u32, w: u32) -> String {
    let lo = v / w * w;
    format!("{:04}-{:04}", lo, lo + w - 1)
}

/// Make chunks `0..n` (`make(i)`) on `workers` threads and hand each to `merge` in index
/// order, as soon as it and every chunk before it are made.  `make` may return `None` for a
/// chunk `merge` would skip anyway (see `make_chunk`); the calls `merge` sees, and so the
/// output, are the same for any number of workers.  With one worker the chunks are made
/// one by one on this thread, each only after the previous one is merged.
fn run_wave<M, F>(n: usize, workers: usize, make: &M, merge: &mut F) -> Result<(), String>
where
    M: Fn(usize) -> Option<ChunkOut> + Sync,
    F: FnMut(Option<ChunkOut>) -> Result<(), String>,
{
    if workers <= 1 || n <= 1 {
        for i in 0..n {
            merge(make(i))?;
        }
        return Ok(());
    }
    // A worker starts chunk `i` only once `i < merged + window`: it never runs far ahead of
    // the merge, so few chunks are made for a cell the merge has just filled.
    let window = workers + 1;
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let merged = (Mutex::new(0usize), Condvar::new());
    std::thread::scope(|sc| {
        let (tx, rx) = mpsc::channel::<(usize, Option<ChunkOut>)>();
        for _ in 0..workers.min(n) {
            let tx = tx.clone();
            let (next, stop, merged) = (&next, &stop, &merged);
            sc.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                {
                    let mut m = merged.0.lock().unwrap_or_else(|e| e.into_inner());
                    while i >= *m + window && !stop.load(Ordering::Relaxed) {
                        m = merged.1.wait(m).unwrap_or_else(|e| e.into_inner());
                    }
                }
                if stop.load(Ordering::Relaxed) || tx.send((i, make(i))).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        // Chunks arrive in any order; they are merged in index order.
        let mut slots: Vec<Option<Option<ChunkOut>>> = (0..n).map(|_| None).collect();
        let mut want = 0;
        let res = (|| {
            while want < n {
                while slots[want].is_none() {
                    let (i, ch) = rx
                        .recv()
                        .map_err(|_| "a chunk worker stopped".to_string())?;
                    slots[i] = Some(ch);
                }
                let ch = slots[want].take().expect("present");
                merge(ch)?;
                want += 1;
                *merged.0.lock().unwrap_or_else(|e| e.into_inner()) = want;
                merged.1.notify_all();
            }
            Ok(())
        })();
        if res.is_err() {
            stop.store(true, Ordering::Relaxed);
            merged.1.notify_all();
        }
        drop(rx);
        res
    })
}

/// Make the records of the shard at `place` (see the module docs).
pub fn make_shard(
    cfg: &GenConfig,
    splitter: &Splitter,
    place: Place,
    threads: usize,
) -> Result<ShardData, String> {
    let mut data = ShardData {
        lines: Vec::new(),
        records: Vec::new(),
        record_start: Vec::new(),
        starts: Vec::new(),
        telemetry: Telemetry::default(),
    };
    let mut last_trace = u64::MAX;
    let tel = run_shard(
        cfg,
        splitter,
        place,
        threads,
        &mut |lines, _, split, trace, start| {
            if trace != last_trace {
                data.starts.push(start.to_string());
                last_trace = trace;
            }
            let base = data.lines.len();
            data.lines.extend_from_slice(lines);
            for (i, _) in lines.iter().enumerate().filter(|(_, &b)| b == b'\n') {
                data.records.push((base + i + 1, split));
                data.record_start.push((data.starts.len() - 1) as u32);
            }
            Ok(())
        },
    )?;
    data.telemetry = tel;
    Ok(data)
}

/// Problems with a schedule that make it unusable under `cfg` (empty if none).
pub fn check_config(cfg: &GenConfig) -> Vec<String> {
    let mut bad = crate::schedule::infeasible(&cfg.cells);
    for c in &cfg.cells {
        if c.size > cfg.max_size {
            bad.push(format!(
                "cell {}x{}: its start terms have {} nodes, above max_size {} (inputs above the cap are never made)",
                c.size, c.depth, c.size, cfg.max_size
            ));
        }
        if !(c.weight > 0.0 && c.weight.is_finite()) {
            bad.push(format!(
                "cell {}x{}: weight must be a positive number, got {}",
                c.size, c.depth, c.weight
            ));
        }
    }
    for (i, a) in cfg.cells.iter().enumerate() {
        for b in &cfg.cells[..i] {
            if a.size == b.size {
                bad.push(format!(
                    "cells {}x{} and {}x{} overlap (every term of {} nodes and depth <= {} is in both); give each size one depth bound",
                    b.size, b.depth, a.size, a.depth, a.size, a.depth.min(b.depth)
                ));
            }
        }
    }
    bad
}

/// Merge-side state of one cell.
#[derive(Default, Clone)]
struct CellState {
    quota: usize,
    got: usize,
    next_chunk: u64,
    chunks_merged: u64,
    offered: u64,
    drawn: u64,
    normal: u64,
    capped: u64,
    repeats: u64,
    over_quota: u64,
    exhausted: bool,
}

/// Receives the records of a shard in blocks: `(lines, records, split, trace number, start
/// term)`, `lines` being `records` whole lines (each ending in a newline) of one trace.
pub type Emit<'a> = dyn FnMut(&[u8], usize, u8, u64, &str) -> Result<(), String> + 'a;

/// The records of a shard, in order, in blocks of consecutive lines of one trace:
/// `emit(lines, records, split, trace number, start term)`.
pub fn run_shard(
    cfg: &GenConfig,
    splitter: &Splitter,
    place: Place,
    threads: usize,
    emit: &mut Emit<'_>,
) -> Result<Telemetry, String> {
    if cfg.cells.is_empty() {
        return Err("schedule has no cells".into());
    }
    let bad = check_config(cfg);
    if !bad.is_empty() {
        return Err(bad.join("; "));
    }
    if place.num_shards > 0 && place.index >= place.num_shards {
        return Err(format!(
            "shard index {} is not below the run's shard count {} (LambdaGenerator(num_shards=...) must be the run's)",
            place.index, place.num_shards
        ));
    }
    let count = place.count;
    let max_size = cfg.cells.iter().map(|c| c.size).max().unwrap_or(1);
    let max_depth = cfg.cells.iter().map(|c| c.depth).max().unwrap_or(0);
    let sampler = Sampler::shared(max_size, max_depth);
    let workers = if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    };
    let draws: Vec<CellDraw> = cfg
        .cells
        .iter()
        .map(|c| {
            let (base, stride, offset) = if place.num_shards > 0 {
                (
                    place.run_seed,
                    place.num_shards as u128,
                    place.index as u128,
                )
            } else {
                (place.seed, 1, 0)
            };
            CellDraw {
                perm: sampler
                    .small_count(c.size, c.depth)
                    .map(|n| (n, Perm::new(n, perm_key(base, c)))),
                stride,
                offset,
                name: format!("{}x{}", c.size, c.depth),
            }
        })
        .collect();
    if cfg.curriculum && (place.total == 0 || place.start + count as u64 > place.total) {
        return Err(format!(
            "curriculum needs the run's record count (ShardTask.total, which datacore sets): shard {} covers records {}..{} of a run of {}",
            place.index,
            place.start,
            place.start + count as u64,
            place.total
        ));
    }
    if cfg.curriculum
        && place.num_shards > 0
        && place.index + 1 == place.num_shards
        && place.start + count as u64 != place.total
    {
        return Err(format!(
            "curriculum: the last shard ends at record {}, but the run's record count is {} (ShardTask.total must be the run's n)",
            place.start + count as u64,
            place.total
        ));
    }
    let per_cell = if cfg.curriculum {
        curriculum_counts(&cfg.cells, place.start, count, place.total)
    } else {
        cell_counts(&cfg.cells, place.start, count)
    };
    let rank = curriculum_ranks(&cfg.cells);
    // Curriculum: records are held, then sorted by (cell rank, trace steps, arrival).
    let mut held: Vec<(usize, usize, usize, u8, u64)> = Vec::new();
    let mut held_lines: Vec<u8> = Vec::new();
    let mut held_starts: Vec<String> = Vec::new();
    let mut cells: Vec<CellState> = per_cell
        .into_iter()
        .map(|quota| CellState {
            quota,
            ..Default::default()
        })
        .collect();
    let strata_cell: Vec<String> = draws.iter().map(|d| format!("cell={}", d.name)).collect();
    let mut tel = Telemetry::default();
    let mut tally = Tally::default();
    let mut emitted = 0usize;
    let mut trace_no = 0u64;
    let mut starts: HashSet<u128> = HashSet::new();
    let limits_of = |qs: &[Quota]| -> Vec<usize> {
        qs.iter()
            .map(|q| (q.share * count as f64).ceil() as usize)
            .collect()
    };
    let limits = limits_of(&cfg.quotas);
    let mut used: Vec<usize> = vec![0; cfg.quotas.len()];
    // Size and depth quotas act per example: an example whose bucket is full is skipped.
    let size_limits = limits_of(&cfg.size_quotas);
    let depth_limits = limits_of(&cfg.depth_quotas);
    let mut size_used: Vec<usize> = vec![0; cfg.size_quotas.len()];
    let mut depth_used: Vec<usize> = vec![0; cfg.depth_quotas.len()];
    let strata_of = |what: &str, qs: &[Quota]| -> Vec<String> {
        qs.iter().map(|q| format!("{what}={}", q.label())).collect()
    };
    let strata_steps = strata_of("steps", &cfg.quotas);
    let strata_size = strata_of("size", &cfg.size_quotas);
    let strata_depth = strata_of("depth", &cfg.depth_quotas);
    let bucket_of = |qs: &[Quota], v: usize| qs.iter().position(|q| q.lo <= v && v <= q.hi);
    // A cell gives up when it has drawn this many start terms and still lacks records.
    let give_up = |quota: usize| 10_000 + 200 * quota as u64;
    while emitted < count {
        // Plan the wave: for each cell still short, chunks enough for what it lacks at the
        // yield seen so far (one chunk for a cell not tried yet).
        let mut plan: Vec<Vec<(usize, u64)>> = Vec::new();
        for (ci, st) in cells.iter_mut().enumerate() {
            if st.got >= st.quota {
                continue;
            }
            let lack = (st.quota - st.got) as u64;
            let k = if st.chunks_merged == 0 {
                1
            } else if st.offered == 0 {
                (st.chunks_merged * 2).min(64)
            } else {
                (lack * st.chunks_merged).div_ceil(st.offered).clamp(1, 64)
            };
            plan.push(
                (st.next_chunk..st.next_chunk + k)
                    .map(|j| (ci, j))
                    .collect(),
            );
            st.next_chunk += k;
        }
        // Interleave the cells' chunks (round robin) so a shard's records mix the cells.
        let longest = plan.iter().map(|p| p.len()).max().unwrap_or(0);
        let order: Vec<(usize, u64)> = (0..longest)
            .flat_map(|r| plan.iter().filter_map(move |p| p.get(r).copied()))
            .collect();
        // A cell is done once the merge has filled it; its later chunks are then skipped
        // by the merge, so a chunk not yet made (or being made) for it can stop.
        let done: Vec<AtomicBool> = cells
            .iter()
            .map(|st| AtomicBool::new(st.got >= st.quota))
            .collect();
        let make = |i: usize| {
            let (ci, j) = order[i];
            make_chunk(
                cfg, &sampler, splitter, &draws[ci], place.seed, ci, j, &done[ci],
            )
        };
        let mut merge = |ch: Option<ChunkOut>| -> Result<(), String> {
            // No chunk: its cell was done before (or while) it was made.
            let Some(ch) = ch else { return Ok(()) };
            let ci = ch.cell;
            if cells[ci].got >= cells[ci].quota {
                return Ok(());
            }
            {
                let st = &mut cells[ci];
                st.chunks_merged += 1;
                st.drawn += ch.drawn;
                st.normal += ch.normal_starts;
                st.capped += ch.capped_starts;
                st.exhausted |= ch.exhausted;
                tel.count("start_terms_drawn", ch.drawn);
                tel.count("start_terms_normal_skipped", ch.normal_starts);
                tel.count("start_terms_size_capped_skipped", ch.capped_starts);
                tel.count("start_terms_by_permutation", ch.by_permutation);
                if ch.normal_starts > 0 {
                    tel.observe(
                        "skipped_starts",
                        &format!("{} normal", draws[ci].name),
                        ch.normal_starts,
                    );
                }
                if ch.capped_starts > 0 {
                    tel.observe(
                        "skipped_starts",
                        &format!("{} size_cap", draws[ci].name),
                        ch.capped_starts,
                    );
                }
            }
            for t in &ch.traces {
                let lack = cells[ci].quota - cells[ci].got;
                if lack == 0 {
                    break;
                }
                cells[ci].offered += t.examples.len() as u64;
                if t.free && !starts.insert(t.start) {
                    cells[ci].repeats += 1;
                    tel.count("duplicate_start_terms_dropped", 1);
                    continue;
                }
                let q = bucket_of(&cfg.quotas, t.steps);
                let mut room = lack;
                if !cfg.quotas.is_empty() {
                    match q {
                        Some(qi) if used[qi] < limits[qi] => room = room.min(limits[qi] - used[qi]),
                        _ => {
                            cells[ci].over_quota += 1;
                            tel.count("traces_over_quota", 1);
                            continue;
                        }
                    }
                }
                // Which examples: all that fit; a trace with more than `room` is thinned
                // to `room` evenly spread steps; size/depth quotas skip examples whose
                // bucket is full.
                let per_example = !cfg.size_quotas.is_empty() || !cfg.depth_quotas.is_empty();
                let picks: Vec<usize> = if per_example {
                    (0..t.examples.len()).collect()
                } else {
                    kept_steps(t.examples.len(), room)
                };
                if picks.len() < t.examples.len() && !per_example {
                    tel.count("traces_thinned", 1);
                    tel.count(
                        "examples_thinned_away",
                        (t.examples.len() - picks.len()) as u64,
                    );
                }
                let mut kept = 0usize;
                // Consecutive kept lines (adjacent in the chunk's buffer) go out as one block.
                let (mut run_start, mut run_end, mut run_n) = (0usize, 0usize, 0usize);
                for i in picks {
                    if kept >= room {
                        break;
                    }
                    let e = &t.examples[i];
                    let qs = bucket_of(&cfg.size_quotas, e.size as usize);
                    let qd = bucket_of(&cfg.depth_quotas, e.depth as usize);
                    if !cfg.size_quotas.is_empty()
                        && qs.is_none_or(|i| size_used[i] >= size_limits[i])
                    {
                        tel.count("examples_over_size_quota", 1);
                        continue;
                    }
                    if !cfg.depth_quotas.is_empty()
                        && qd.is_none_or(|i| depth_used[i] >= depth_limits[i])
                    {
                        tel.count("examples_over_depth_quota", 1);
                        continue;
                    }
                    if cfg.curriculum {
                        if held_starts.len() as u64 == trace_no {
                            held_starts.push(t.start_text.clone());
                        }
                        held_lines.extend_from_slice(&ch.buf[e.line.clone()]);
                        held.push((rank[ci], t.steps, held_lines.len(), t.split, trace_no));
                    } else {
                        if run_n > 0 && e.line.start != run_end {
                            emit(
                                &ch.buf[run_start..run_end],
                                run_n,
                                t.split,
                                trace_no,
                                &t.start_text,
                            )?;
                            run_n = 0;
                        }
                        if run_n == 0 {
                            run_start = e.line.start;
                        }
                        run_end = e.line.end;
                        run_n += 1;
                    }
                    emitted += 1;
                    kept += 1;
                    bump(&mut tally.strata_cell, ci);
                    if let (Some(qi), false) = (q, cfg.quotas.is_empty()) {
                        used[qi] += 1;
                        bump(&mut tally.strata_steps, qi);
                    }
                    if let Some(i) = qs {
                        size_used[i] += 1;
                        bump(&mut tally.strata_size, i);
                    }
                    if let Some(i) = qd {
                        depth_used[i] += 1;
                        bump(&mut tally.strata_depth, i);
                    }
                    bump(&mut tally.input_size, (e.size / 20) as usize);
                    bump(&mut tally.input_depth, e.depth as usize);
                    if e.redex_depth >= 0 {
                        bump(&mut tally.redex_depth, e.redex_depth as usize);
                        bump(&mut tally.redex_lambdas, e.redex_lambdas as usize);
                    }
                    tally.steps[steps_bucket_index(t.steps)] += 1;
                    if cfg.tokens {
                        bump(&mut tally.input_tokens, e.tokens.0 as usize);
                        bump(&mut tally.target_tokens, e.tokens.1 as usize);
                    }
                }
                if run_n > 0 {
                    emit(
                        &ch.buf[run_start..run_end],
                        run_n,
                        t.split,
                        trace_no,
                        &t.start_text,
                    )?;
                }
                if kept > 0 {
                    cells[ci].got += kept;
                    trace_no += 1;
                    tel.count("traces", 1);
                    tel.observe("trace_steps", steps_bucket(t.steps), 1);
                    tel.observe("trace_status", t.status.as_str(), 1);
                    tel.observe("start_cell", &draws[ci].name, 1);
                }
            }
            if cells[ci].got >= cells[ci].quota {
                done[ci].store(true, Ordering::Release);
            }
            Ok(())
        };
        run_wave(order.len(), workers, &make, &mut merge)?;
        // A cell that still lacks records after running out of keys or its budget stops the shard.
        for (ci, st) in cells.iter().enumerate() {
            if st.got >= st.quota || !(st.exhausted || st.drawn > give_up(st.quota)) {
                continue;
            }
            let why = if st.exhausted {
                let n = draws[ci].perm.as_ref().map_or(0, |p| p.0);
                format!(
                    "the cell holds only {n} closed terms and this shard drew every one it may use{}",
                    if place.num_shards > 1 {
                        format!(" (1 in {} across the run's shards)", place.num_shards)
                    } else {
                        String::new()
                    }
                )
            } else {
                format!("gave up after {} start terms", st.drawn)
            };
            let mut unmet: Vec<String> = Vec::new();
            for (what, qs, ls, us) in [
                ("steps", &cfg.quotas, &limits, &used),
                ("size", &cfg.size_quotas, &size_limits, &size_used),
                ("depth", &cfg.depth_quotas, &depth_limits, &depth_used),
            ] {
                for (q, (l, u)) in qs.iter().zip(ls.iter().zip(us.iter())) {
                    if u < l {
                        unmet.push(format!("{what} {} has {u} of {l}", q.label()));
                    }
                }
            }
            return Err(format!(
                "cell {}: made {} of the {} records it needs in shard {}: {why} ({} drawn: {} already normal{}, {} with a first step over max_size {}, {} repeated, {} over a quota{}); \
                 use a bigger cell, a lower weight, fewer records{}",
                draws[ci].name,
                st.got,
                st.quota,
                place.index,
                st.drawn,
                st.normal,
                if cfg.redex_only { " and skipped" } else { "" },
                st.capped,
                cfg.max_size,
                st.repeats,
                st.over_quota,
                if unmet.is_empty() { String::new() } else { format!("; quotas unmet: {}", unmet.join(", ")) },
                if cfg.redex_only { ", or --include-normal" } else { "" },
            ));
        }
    }
    if cfg.curriculum {
        let mut begin = vec![0usize; held.len()];
        for i in 1..held.len() {
            begin[i] = held[i - 1].2;
        }
        let mut order: Vec<usize> = (0..held.len()).collect();
        // A stable sort: within one (cell, length) records keep their arrival order, so a
        // trace's records stay together and in step order.
        order.sort_by_key(|&i| (held[i].0, held[i].1));
        for i in order {
            let (_, _, end, split, tn) = held[i];
            emit(
                &held_lines[begin[i]..end],
                1,
                split,
                tn,
                &held_starts[tn as usize],
            )?;
        }
    }
    tally.flush(
        &mut tel,
        [&strata_cell, &strata_steps, &strata_size, &strata_depth],
    );
    tel.count("examples", emitted as u64);
    for (hist, qs, us) in [
        ("quota_examples", &cfg.quotas, &used),
        ("quota_examples_size", &cfg.size_quotas, &size_used),
        ("quota_examples_depth", &cfg.depth_quotas, &depth_used),
    ] {
        for (q, u) in qs.iter().zip(us.iter()) {
            tel.observe(hist, &format!("{}-{}", q.lo, q.hi), *u as u64);
        }
    }
    Ok(tel)
}

enum Sink {
    Plain(BufWriter<File>),
    Gz(flate2::write::GzEncoder<BufWriter<File>>),
    Zst(zstd::Encoder<'static, BufWriter<File>>),
}

impl Sink {
    fn open(path: &PathBuf, c: Compress, level: i32) -> std::io::Result<Sink> {
        let f = BufWriter::with_capacity(1 << 20, File::create(path)?);
        Ok(match c {
            Compress::None => Sink::Plain(f),
            // mtime 0 and no file name in the header: the bytes depend on the content only.
            Compress::Gz => Sink::Gz(
                flate2::GzBuilder::new()
                    .mtime(0)
                    .write(f, flate2::Compression::new(6)),
            ),
            Compress::Zst => Sink::Zst(zstd::Encoder::new(f, level)?),
        })
    }

    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(b),
            Sink::Gz(w) => w.write_all(b),
            Sink::Zst(w) => w.write_all(b),
        }
    }

    fn finish(self) -> std::io::Result<()> {
        let mut f = match self {
            Sink::Plain(w) => w,
            Sink::Gz(w) => w.finish()?,
            Sink::Zst(w) => w.finish()?,
        };
        f.flush()?;
        f.get_ref().sync_data()
    }
}

/// Make a shard and write its three split files; returns records per split.
pub fn write_shard(
    cfg: &GenConfig,
    splitter: &Splitter,
    place: Place,
    paths: &[PathBuf; 3],
    compress: Compress,
    threads: usize,
) -> Result<([u64; 3], Telemetry), String> {
    let res = write_shard_files(cfg, splitter, place, paths, compress, threads);
    if res.is_err() {
        // A failed shard leaves no partial files behind.
        for p in paths {
            let _ = std::fs::remove_file(p);
        }
    }
    res
}

fn write_shard_files(
    cfg: &GenConfig,
    splitter: &Splitter,
    place: Place,
    paths: &[PathBuf; 3],
    compress: Compress,
    threads: usize,
) -> Result<([u64; 3], Telemetry), String> {
    let io = |p: &PathBuf, e: std::io::Error| format!("{}: {e}", p.display());
    let mut sinks = Vec::with_capacity(3);
    for p in paths {
        sinks.push(Sink::open(p, compress, cfg.zstd_level).map_err(|e| io(p, e))?);
    }
    let mut counts = [0u64; 3];
    // Lines are gathered per split and handed to the encoder in large blocks (an encoder
    // call per 800-byte line costs more than the compression itself).
    const BLOCK: usize = 1 << 20;
    let mut bufs: [Vec<u8>; 3] = [
        Vec::with_capacity(BLOCK + 65536),
        Vec::with_capacity(BLOCK + 65536),
        Vec::with_capacity(BLOCK + 65536),
    ];
    // zstd (buffered streaming) and plain files give the same bytes however the input is cut,
    // so a large block goes to them directly; gzip always gets the same 1 MiB blocks.
    let direct = compress != Compress::Gz;
    let tel = run_shard(
        cfg,
        splitter,
        place,
        threads,
        &mut |lines, n, split, _, _| {
            let si = split as usize;
            counts[si] += n as u64;
            if direct && lines.len() >= 4096 {
                if !bufs[si].is_empty() {
                    sinks[si]
                        .write_all(&bufs[si])
                        .map_err(|e| io(&paths[si], e))?;
                    bufs[si].clear();
                }
                return sinks[si].write_all(lines).map_err(|e| io(&paths[si], e));
            }
            bufs[si].extend_from_slice(lines);
            if bufs[si].len() >= BLOCK {
                sinks[si]
                    .write_all(&bufs[si])
                    .map_err(|e| io(&paths[si], e))?;
                bufs[si].clear();
            }
            Ok(())
        },
    )?;
    for (si, buf) in bufs.iter().enumerate() {
        sinks[si].write_all(buf).map_err(|e| io(&paths[si], e))?;
    }
    for (s, p) in sinks.into_iter().zip(paths) {
        s.finish().map_err(|e| io(p, e))?;
    }
    Ok((counts, tel))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reduce::find_redex;
    use crate::term::parse;

    fn cell(size: usize, depth: usize, weight: f64) -> Cell {
        Cell {
            size,
            depth,
            weight,
        }
    }

    fn cfg() -> GenConfig {
        GenConfig {
            cells: vec![cell(30, 8, 1.0), cell(12, 5, 2.0)],
            max_steps: 50,
            max_size: 200,
            max_examples_per_trace: 0,
            redex_only: true,
            whole_trace: false,
            chunk_traces: 8,
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

    fn sp() -> Splitter {
        Splitter {
            t1: 800,
            t2: 900,
            salt: vec![],
        }
    }

    fn at(seed: u64, count: usize) -> Place {
        Place {
            seed,
            count,
            ..Default::default()
        }
    }

    fn lines(d: &ShardData) -> Vec<String> {
        String::from_utf8(d.lines.clone())
            .unwrap()
            .lines()
            .map(|s| s.to_string())
            .collect()
    }

    fn field<'a>(line: &'a str, key: &str) -> &'a str {
        let k = format!("\"{key}\":");
        let at = line.find(&k).unwrap() + k.len();
        let rest = &line[at..];
        if let Some(r) = rest.strip_prefix('"') {
            &r[..r.find('"').unwrap()]
        } else {
            &rest[..rest.find([',', '}']).unwrap()]
        }
    }

    fn term_field(line: &str, key: &str) -> Vec<Node> {
        parse(&field_raw(line, key).replace("\\\\", "\\")).unwrap()
    }

    fn field_raw(line: &str, key: &str) -> String {
        let k = format!("\"{key}\":\"");
        let at = line.find(&k).unwrap() + k.len();
        let rest = &line[at..];
        rest[..rest.find('"').unwrap()].to_string()
    }

    #[test]
    fn same_output_for_any_thread_count() {
        let a = make_shard(&cfg(), &sp(), at(42, 500), 1).unwrap();
        let b = make_shard(&cfg(), &sp(), at(42, 500), 3).unwrap();
        assert_eq!(a.records.len(), 500);
        assert_eq!(a.lines, b.lines);
        assert_eq!(a.records, b.records);
        let c = make_shard(&cfg(), &sp(), at(43, 500), 2).unwrap();
        assert_ne!(a.lines, c.lines);
    }

    #[test]
    fn cell_counts_follow_the_weights_for_any_sharding() {
        let cells = vec![cell(1, 1, 1.0), cell(2, 1, 2.0), cell(3, 1, 7.0)];
        let n = 100_000usize;
        let whole = cell_counts(&cells, 0, n);
        for (c, w) in whole.iter().zip([0.1, 0.2, 0.7]) {
            assert!((*c as f64 - w * n as f64).abs() <= 20.0, "{whole:?}");
        }
        for shard in [1usize, 7, 1000, 33_333] {
            let mut sum = vec![0usize; 3];
            let mut start = 0;
            while start < n {
                let k = shard.min(n - start);
                for (s, c) in sum.iter_mut().zip(cell_counts(&cells, start as u64, k)) {
                    *s += c;
                }
                start += k;
            }
            assert_eq!(sum, whole);
        }
        // Even a shard of 1,000 records is within a few records of its shares.
        let part = cell_counts(&cells, 123_456, 1000);
        for (c, w) in part.iter().zip([0.1, 0.2, 0.7]) {
            assert!((*c as f64 - w * 1000.0).abs() <= 8.0, "{part:?}");
        }
    }

    #[test]
    fn every_cell_gets_its_share_of_records() {
        let mut c = cfg();
        c.cells = vec![cell(20, 8, 1.0), cell(40, 9, 1.0), cell(60, 10, 2.0)];
        c.max_size = 100;
        let d = make_shard(&c, &sp(), at(3, 2000), 2).unwrap();
        let ls = lines(&d);
        assert_eq!(ls.len(), 2000);
        for (name, want) in [("20x8", 500usize), ("40x9", 500), ("60x10", 1000)] {
            let got = ls.iter().filter(|l| field(l, "cell") == name).count();
            assert!(got.abs_diff(want) <= 5, "{name}: {got}");
            assert_eq!(
                d.telemetry.histograms[STRATA][&format!("cell={name}")] as usize,
                got
            );
        }
    }

    #[test]
    fn a_cell_without_redexes_gives_up_instead_of_looping() {
        // 3x2 holds two closed terms (\\0 and \\1), both normal: nothing to reduce.
        let mut c = cfg();
        c.cells = vec![cell(3, 2, 1.0)];
        let e = make_shard(&c, &sp(), at(1, 5), 1).err().unwrap();
        assert!(
            e.contains("cell 3x2") && e.contains("holds only 2 closed terms"),
            "{e}"
        );
        // Also for a big cell whose every start is skipped: a budget, not a loop.
        let mut c = cfg();
        c.cells = vec![cell(40, 9, 1.0)];
        c.max_size = 40;
        c.size_quotas = vec![Quota {
            lo: 0,
            hi: 1,
            share: 1.0,
        }];
        let e = make_shard(&c, &sp(), at(1, 5), 2).err().unwrap();
        assert!(e.contains("gave up after"), "{e}");
    }

    #[test]
    fn cells_above_max_size_and_overlapping_cells_are_refused() {
        let mut c = cfg();
        c.max_size = 20;
        let e = make_shard(&c, &sp(), at(1, 5), 1).err().unwrap();
        assert!(
            e.contains("cell 30x8") && e.contains("above max_size 20"),
            "{e}"
        );
        let mut c = cfg();
        c.cells = vec![cell(20, 5, 1.0), cell(20, 8, 1.0)];
        let e = make_shard(&c, &sp(), at(1, 5), 1).err().unwrap();
        assert!(e.contains("overlap"), "{e}");
    }

    #[test]
    fn size_capped_starts_are_never_written_as_normal_forms() {
        let mut c = cfg();
        c.cells = vec![cell(40, 9, 1.0), cell(50, 10, 1.0)];
        c.max_size = 52;
        c.redex_only = false;
        let d = make_shard(&c, &sp(), at(9, 3000), 2).unwrap();
        assert!(d.telemetry.counters["start_terms_size_capped_skipped"] > 0);
        for l in lines(&d) {
            let inp = term_field(&l, "input");
            assert!(inp.len() <= 52, "{l}");
            if field(&l, "total_steps") == "0" {
                assert_eq!(field(&l, "status"), "normal_form", "{l}");
                assert!(find_redex(&inp).is_none(), "{l}");
                assert_eq!(field_raw(&l, "input"), field_raw(&l, "target"));
            }
            let id = field(&l, "id");
            assert_eq!(
                id,
                format!("{}-{}", field(&l, "trace_id"), field(&l, "step"))
            );
        }
    }

    #[test]
    fn small_cells_never_repeat_a_start_term_in_a_run() {
        // Two small cells: each has its own key space (a shared one exhausts the smaller).
        let mut c = cfg();
        c.cells = vec![cell(11, 5, 1.0), cell(12, 6, 1.0)];
        c.redex_only = false;
        c.max_steps = 20;
        c.whole_trace = true;
        let mut starts = HashSet::new();
        let shards = 8u64;
        for index in 0..shards {
            let p = Place {
                seed: 100 + index,
                count: 400,
                start: index * 400,
                index,
                num_shards: shards,
                run_seed: 32,
                total: 0,
            };
            let d = make_shard(&c, &sp(), p, 2).unwrap();
            for s in d.starts {
                assert!(starts.insert(s));
            }
        }
        assert_eq!(starts.len(), 3200);
        // 9x5 holds 846 terms: 8 shards asking 500 traces each run out, and say so.
        c.cells = vec![cell(9, 5, 1.0), cell(12, 6, 1.0)];
        let p = Place {
            seed: 1,
            count: 1000,
            start: 0,
            index: 0,
            num_shards: 8,
            run_seed: 32,
            total: 0,
        };
        let e = make_shard(&c, &sp(), p, 2).err().unwrap();
        assert!(
            e.contains("cell 9x5") && e.contains("holds only 846"),
            "{e}"
        );
    }

    #[test]
    fn fields_for_researchers() {
        let mut c = cfg();
        c.named = true;
        let d = make_shard(&c, &sp(), at(5, 300), 1).unwrap();
        for l in lines(&d) {
            let inp = term_field(&l, "input");
            assert_eq!(field_raw(&l, "input_named"), to_named(&inp));
            let pos: usize = field(&l, "redex").parse().unwrap();
            assert_eq!(
                field(&l, "redex_lambdas").parse::<usize>().unwrap(),
                crate::term::binders_above(&inp, pos)
            );
            assert_eq!(
                field(&l, "redex_depth").parse::<usize>().unwrap(),
                crate::term::node_depth(&inp, pos)
            );
            let left = field(&l, "steps_to_nf");
            let total: usize = field(&l, "total_steps").parse().unwrap();
            let step: usize = field(&l, "step").parse().unwrap();
            if field(&l, "status") == "normal_form" {
                assert_eq!(left.parse::<usize>().unwrap(), total - step);
            } else {
                assert_eq!(left, "null");
            }
        }
    }

    #[test]
    fn token_ids_spell_the_text() {
        let mut c = cfg();
        c.tokens = true;
        let d = make_shard(&c, &sp(), at(5, 200), 1).unwrap();
        let vocab = |id: u32| match id {
            3 => "\\".to_string(),
            4 => "(".to_string(),
            5 => ")".to_string(),
            6 => " ".to_string(),
            i => (i - 7).to_string(),
        };
        for l in lines(&d) {
            for (text_key, ids_key) in [("input", "input_ids"), ("target", "target_ids")] {
                let k = format!("\"{ids_key}\":[");
                let at = l.find(&k).unwrap() + k.len();
                let ids: Vec<u32> = l[at..l[at..].find(']').unwrap() + at]
                    .split(',')
                    .map(|x| x.parse().unwrap())
                    .collect();
                let spelled: String = ids.into_iter().map(vocab).collect();
                assert_eq!(spelled, field_raw(&l, text_key).replace("\\\\", "\\"));
            }
        }
        assert!(d.telemetry.histograms.contains_key("input_tokens"));
    }

    #[test]
    fn size_and_depth_quotas_hold() {
        let q = |lo, hi, share| Quota { lo, hi, share };
        let n = 1000;
        let share = |lines: &[u8], key: &str, hi: usize| {
            let text = std::str::from_utf8(lines).unwrap();
            let k = text
                .lines()
                .filter(|l| field(l, key).parse::<usize>().unwrap() <= hi)
                .count();
            k as f64 / n as f64
        };
        let free = make_shard(&cfg(), &sp(), at(7, n), 2).unwrap();
        for (key, hi, want) in [("size", 12, 0.5), ("depth", 4, 0.4)] {
            let mut c = cfg();
            let qs = vec![q(0, hi, want), q(hi + 1, usize::MAX, 1.0 - want)];
            if key == "size" {
                c.size_quotas = qs;
            } else {
                c.depth_quotas = qs;
            }
            let d = make_shard(&c, &sp(), at(7, n), 2).unwrap();
            assert_eq!(d.records.len(), n);
            let got = share(&d.lines, key, hi);
            assert!((got - want).abs() <= 0.05, "{key}: {got}");
            let unquoted = share(&free.lines, key, hi);
            assert!((unquoted - want).abs() > 0.1, "{key}: {unquoted}");
            let hist = format!("quota_examples_{key}");
            assert_eq!(
                d.telemetry.histograms[&hist].values().sum::<u64>(),
                n as u64
            );
            let one = make_shard(&c, &sp(), at(7, n), 1).unwrap();
            assert_eq!(one.lines, d.lines);
        }
    }

    #[test]
    fn ood_split_follows_the_trace_value() {
        for (by, name) in [
            (SplitBy::Steps, "total_steps"),
            (SplitBy::Size, "start_size"),
            (SplitBy::Depth, "start_depth"),
        ] {
            let mut c = cfg();
            c.split_by = Some(by);
            c.split_at = match by {
                SplitBy::Steps => (4, 8),
                SplitBy::Size => {
                    c.cells.push(cell(20, 6, 1.0));
                    (15, 25)
                }
                SplitBy::Depth => (5, 8),
            };
            let d = make_shard(&c, &sp(), at(3, 600), 2).unwrap();
            let mut seen = [0usize; 3];
            let mut by_trace: BTreeMap<String, u8> = BTreeMap::new();
            let mut begin = 0;
            for &(end, split) in &d.records {
                let line = std::str::from_utf8(&d.lines[begin..end]).unwrap();
                begin = end;
                let v: usize = field(line, name).parse().unwrap();
                assert_eq!(split, SplitBy::split(v, c.split_at), "{line}");
                let tid = field(line, "trace_id").to_string();
                assert_eq!(*by_trace.entry(tid).or_insert(split), split);
                seen[split as usize] += 1;
            }
            assert!(seen.iter().all(|&n| n > 0), "{by:?}: {seen:?}");
        }
    }

    #[test]
    fn curriculum_orders_cells_and_lengths() {
        let mut c = cfg();
        c.curriculum = true;
        assert!(make_shard(&c, &sp(), at(3, 100), 1).is_err());
        let total = 900u64;
        let counts: Vec<Vec<usize>> = (0..3)
            .map(|i| curriculum_counts(&c.cells, i * 300, 300, total))
            .collect();
        // 12x5 (weight 2) first: slots 0..600, then 30x8: 600..900.
        assert_eq!(counts, vec![vec![0, 300], vec![0, 300], vec![300, 0]]);
        let mut last_key = (0usize, 0usize);
        for i in 0..3u64 {
            let p = Place {
                seed: 10 + i,
                count: 300,
                start: i * 300,
                index: i,
                num_shards: 3,
                total,
                ..Default::default()
            };
            let d = make_shard(&c, &sp(), p, 2).unwrap();
            let mut begin = 0;
            let mut steps_seen = Vec::new();
            for &(end, _) in &d.records {
                let line = std::str::from_utf8(&d.lines[begin..end]).unwrap();
                begin = end;
                let size: usize = field(line, "cell")
                    .split('x')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                let steps: usize = field(line, "total_steps").parse().unwrap();
                let key = (size, steps);
                // Across shards by cell; within a shard by (cell, length).
                assert!(
                    key >= last_key || size > last_key.0,
                    "{key:?} after {last_key:?}"
                );
                last_key = key;
                steps_seen.push((field(line, "trace_id").to_string(), field(line, "step")));
            }
            // Whole traces together, in step order.
            let mut done: HashSet<String> = HashSet::new();
            let mut prev: Option<(String, usize)> = None;
            for (tid, step) in steps_seen {
                let step: usize = step.parse().unwrap();
                match &prev {
                    Some((p, s)) if *p == tid => assert!(step > *s),
                    _ => assert!(done.insert(tid.clone()), "trace {tid} split up"),
                }
                prev = Some((tid, step));
            }
            last_key = (last_key.0, 0);
        }
    }

    #[test]
    fn steps_buckets() {
        let old = |steps: usize| match steps {
            0 => "0",
            1 => "1",
            2..=3 => "2-3",
            4..=7 => "4-7",
            8..=15 => "8-15",
            16..=31 => "16-31",
            32..=63 => "32-63",
            64..=127 => "64-127",
            _ => "128+",
        };
        for s in 0..1000 {
            assert_eq!(steps_bucket(s), old(s), "{s}");
        }
    }

    #[test]
    fn kept_steps_spread() {
        assert_eq!(kept_steps(5, 0), vec![0, 1, 2, 3, 4]);
        assert_eq!(kept_steps(10, 3), vec![0, 5, 9]);
        assert_eq!(kept_steps(10, 1), vec![0]);
    }
}
