//! Deterministic, parallel generation of one shard of reduction examples, written as JSONL.
//!
//! A shard is made of *chunks* of `chunk_traces` start terms each.  Chunk `j` of a shard
//! seeded `seed` draws from its own generator seeded
//! `xxh64(b"lambdagen.chunk" + le_u64(seed) + le_u64(j))`, so chunks are independent and
//! run in parallel (rayon).  Chunks are produced in waves of a size that depends only on
//! what earlier waves yielded, then merged *in chunk order* by one thread, which applies
//! the deduplication (start terms, then (input, target) pairs), the optional quotas and
//! the exact record count.  The bytes written therefore do not depend on the number of
//! threads, nor on the number of worker processes running other shards.

use crate::perm::Perm;
use crate::reduce::{trace, Status};
use crate::rng::Rng;
use crate::sample::Sampler;
use crate::schedule::Cell;
use crate::split::Splitter;
use crate::term::{depth, node_depth, write_term, Node};
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use xxhash_rust::xxh3::{xxh3_128, xxh3_64};
use xxhash_rust::xxh64::xxh64;

/// A quota on the share of examples whose trace length (total steps) lies in `lo..=hi`.
#[derive(Clone, Debug, PartialEq)]
pub struct Quota {
    pub lo: usize,
    pub hi: usize,
    pub share: f64,
}

/// Everything that decides the content of a shard besides its seed and count.
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
    /// Pairs whose input has at most this many nodes recur across shards (traces converge
    /// on small terms); with an [`Owner`], only the pair's owner shard may emit one.
    pub shared_pair_max_size: usize,
}

/// This shard's place in the run, for cross-shard deduplication of small pairs:
/// a small pair is emitted only by shard `hash(pair) % num_shards`.
#[derive(Clone, Copy, Debug)]
pub struct Owner {
    pub index: u64,
    pub num_shards: u64,
    /// The run's seed: keys the permutations that make small-cell start terms distinct.
    pub run_seed: u64,
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

/// One example of a chunk, before the merge decides whether it is kept.
struct Example {
    pair: u128,
    small: bool,
    line: std::ops::Range<usize>,
    size: u32,
    depth: u32,
    redex_depth: i32,
}

/// One trace of a chunk.
struct TraceOut {
    start: u128,
    start_text: String,
    split: u8,
    steps: usize,
    status: Status,
    cell: usize,
    examples: Vec<Example>,
}

struct ChunkOut {
    buf: Vec<u8>,
    traces: Vec<TraceOut>,
    normal_starts: u64,
    unique_starts: u64,
}

fn chunk_seed(seed: u64, j: u64) -> u64 {
    let mut b = Vec::with_capacity(31);
    b.extend_from_slice(b"lambdagen.chunk");
    b.extend_from_slice(&seed.to_le_bytes());
    b.extend_from_slice(&j.to_le_bytes());
    xxh64(&b, 0)
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

/// Hash of an (input, target) pair: pre-order arrays are self-delimiting, so hashing the
/// two node arrays back to back identifies the pair.
fn pair_hash(a: &[Node], b: &[Node]) -> u128 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(crate::reduce::as_bytes(a));
    h.update(crate::reduce::as_bytes(b));
    h.digest128()
}

fn json_term(t: &[Node], out: &mut Vec<u8>) {
    out.push(b'"');
    write_term(t, b"\\\\", out);
    out.push(b'"');
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

fn pick_cell(cells: &[Cell], total: f64, rng: &mut Rng) -> usize {
    let mut u = rng.unit_f64() * total;
    for (i, c) in cells.iter().enumerate() {
        if u < c.weight {
            return i;
        }
        u -= c.weight;
    }
    cells.len() - 1
}

/// With an [`Owner`], trace `t` of chunk `j` gets the run-wide unique key
/// `(j * chunk_traces + t) * num_shards + shard_index`; in a cell with fewer than 2^96
/// terms its start term is the one of rank `perm_cell(key)`, so no two traces of the run
/// (any shard) share a start term.  Bigger cells are sampled freely: there a repeat has
/// probability below n^2 / 2^97.
fn make_chunk(
    cfg: &GenConfig,
    sampler: &Sampler,
    splitter: &Splitter,
    seed: u64,
    j: u64,
    owner: Option<Owner>,
) -> ChunkOut {
    let mut rng = Rng::new(seed);
    let total_weight: f64 = cfg.cells.iter().map(|c| c.weight).sum();
    let mut out = ChunkOut {
        buf: Vec::with_capacity(cfg.chunk_traces * 4096),
        traces: Vec::new(),
        normal_starts: 0,
        unique_starts: 0,
    };
    let mut start: Vec<Node> = Vec::new();
    let mut text: Vec<u8> = Vec::new();
    let mut jt: Vec<u8> = Vec::new();
    let perms: Vec<Option<(u128, Perm)>> = cfg
        .cells
        .iter()
        .map(|c| {
            let o = owner?;
            let n = sampler.small_count(c.size, c.depth)?;
            let mut b = Vec::with_capacity(40);
            b.extend_from_slice(b"lambdagen.cell");
            b.extend_from_slice(&o.run_seed.to_le_bytes());
            b.extend_from_slice(&(c.size as u64).to_le_bytes());
            b.extend_from_slice(&(c.depth as u64).to_le_bytes());
            Some((n, Perm::new(n, xxh64(&b, 0))))
        })
        .collect();
    for t in 0..cfg.chunk_traces {
        let ci = pick_cell(&cfg.cells, total_weight, &mut rng);
        let cell = &cfg.cells[ci];
        let key = owner.map(|o| {
            ((j * cfg.chunk_traces as u64 + t as u64) as u128) * o.num_shards.max(1) as u128
                + o.index as u128
        });
        match (&perms[ci], key) {
            (Some((n, perm)), Some(k)) if k < *n => {
                sampler.unrank(cell.size, cell.depth, perm.apply(k), &mut start);
                out.unique_starts += 1;
            }
            _ => {
                sampler
                    .sample(cell.size, cell.depth, &mut rng, &mut start)
                    .expect("cells are checked to be feasible");
            }
        }
        let tr = trace(&start, cfg.max_steps, cfg.max_size);
        if tr.steps() == 0 && cfg.redex_only {
            out.normal_starts += 1;
            continue;
        }
        text.clear();
        write_term(&start, b"\\", &mut text);
        let split = splitter.split(&text) as u8;
        let tid = format!("{:016x}", xxh3_64(&text));
        let mut t = TraceOut {
            start: xxh3_128(&text),
            start_text: String::from_utf8(text.clone()).expect("ASCII"),
            split,
            steps: tr.steps(),
            status: tr.status,
            cell: ci,
            examples: Vec::new(),
        };
        let status = tr.status.as_str();
        let cell_name = format!("{}x{}", cell.size, cell.depth);
        if cfg.whole_trace || tr.steps() == 0 {
            // One record: the start and its last term (input == target for a normal start).
            let b0 = out.buf.len();
            let last = tr.terms.last().expect("non-empty");
            let buf = &mut out.buf;
            buf.extend_from_slice(b"{\"id\":\"");
            buf.extend_from_slice(tid.as_bytes());
            buf.extend_from_slice(b"\",\"input\":");
            json_term(&start, buf);
            buf.extend_from_slice(b",\"target\":");
            json_term(last, buf);
            if cfg.whole_trace {
                buf.extend_from_slice(b",\"trace\":[");
                for (i, term) in tr.terms.iter().enumerate() {
                    if i > 0 {
                        buf.push(b',');
                    }
                    json_term(term, buf);
                }
                buf.extend_from_slice(b"]");
            }
            buf.extend_from_slice(b",\"meta\":{\"step\":0,\"total_steps\":");
            push_num(buf, tr.steps());
            buf.extend_from_slice(b",\"size\":");
            push_num(buf, start.len());
            buf.extend_from_slice(b",\"depth\":");
            let d = depth(&start);
            push_num(buf, d);
            if cfg.whole_trace {
                buf.extend_from_slice(b",\"redexes\":[");
                for (i, r) in tr.redexes.iter().enumerate() {
                    if i > 0 {
                        buf.push(b',');
                    }
                    push_num(buf, *r);
                }
                buf.extend_from_slice(b"]");
            } else {
                buf.extend_from_slice(b",\"redex\":null,\"redex_depth\":null");
            }
            buf.extend_from_slice(b",\"status\":\"");
            buf.extend_from_slice(status.as_bytes());
            buf.extend_from_slice(b"\",\"trace_id\":\"");
            buf.extend_from_slice(tid.as_bytes());
            buf.extend_from_slice(b"\",\"cell\":\"");
            buf.extend_from_slice(cell_name.as_bytes());
            buf.extend_from_slice(b"\"}}\n");
            t.examples.push(Example {
                pair: pair_hash(&start, last),
                small: start.len() <= cfg.shared_pair_max_size,
                line: b0..out.buf.len(),
                size: start.len() as u32,
                depth: d as u32,
                redex_depth: -1,
            });
        } else {
            // Each term is printed once (it is the target of one step and the input of the
            // next), already JSON-escaped, and lines are assembled by copying.
            let mut spans: Vec<Option<std::ops::Range<usize>>> = vec![None; tr.terms.len()];
            jt.clear();
            let mut span = |i: usize, jt: &mut Vec<u8>| -> std::ops::Range<usize> {
                if let Some(r) = &spans[i] {
                    return r.clone();
                }
                let b0 = jt.len();
                write_term(&tr.terms[i], b"\\\\", jt);
                spans[i] = Some(b0..jt.len());
                b0..jt.len()
            };
            for s in kept_steps(tr.steps(), cfg.max_examples_per_trace) {
                let (inp, outp, pos) = (&tr.terms[s], &tr.terms[s + 1], tr.redexes[s]);
                let pair = pair_hash(inp, outp);
                let (ri, ro) = (span(s, &mut jt), span(s + 1, &mut jt));
                let d = depth(inp);
                let rd = node_depth(inp, pos);
                let b0 = out.buf.len();
                let buf = &mut out.buf;
                buf.extend_from_slice(b"{\"id\":\"");
                buf.extend_from_slice(tid.as_bytes());
                buf.push(b'-');
                push_num(buf, s);
                buf.extend_from_slice(b"\",\"input\":\"");
                buf.extend_from_slice(&jt[ri]);
                buf.extend_from_slice(b"\",\"target\":\"");
                buf.extend_from_slice(&jt[ro]);
                buf.extend_from_slice(b"\",\"meta\":{\"step\":");
                push_num(buf, s);
                buf.extend_from_slice(b",\"total_steps\":");
                push_num(buf, tr.steps());
                buf.extend_from_slice(b",\"size\":");
                push_num(buf, inp.len());
                buf.extend_from_slice(b",\"depth\":");
                push_num(buf, d);
                buf.extend_from_slice(b",\"redex\":");
                push_num(buf, pos);
                buf.extend_from_slice(b",\"redex_depth\":");
                push_num(buf, rd);
                buf.extend_from_slice(b",\"status\":\"");
                buf.extend_from_slice(status.as_bytes());
                buf.extend_from_slice(b"\",\"trace_id\":\"");
                buf.extend_from_slice(tid.as_bytes());
                buf.extend_from_slice(b"\",\"cell\":\"");
                buf.extend_from_slice(cell_name.as_bytes());
                buf.extend_from_slice(b"\"}}\n");
                t.examples.push(Example {
                    pair,
                    small: inp.len() <= cfg.shared_pair_max_size,
                    line: b0..out.buf.len(),
                    size: inp.len() as u32,
                    depth: d as u32,
                    redex_depth: rd as i32,
                });
            }
        }
        out.traces.push(t);
    }
    out
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

fn steps_bucket(steps: usize) -> &'static str {
    match steps {
        0 => "0",
        1 => "1",
        2..=3 => "2-3",
        4..=7 => "4-7",
        8..=15 => "8-15",
        16..=31 => "16-31",
        32..=63 => "32-63",
        64..=127 => "64-127",
        _ => "128+",
    }
}

fn bucket10(v: u32, w: u32) -> String {
    let lo = v / w * w;
    format!("{:04}-{:04}", lo, lo + w - 1)
}

/// Make the `count` records of the shard seeded `seed` (see the module docs).
pub fn make_shard(
    cfg: &GenConfig,
    splitter: &Splitter,
    seed: u64,
    count: usize,
    threads: usize,
    owner: Option<Owner>,
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
        seed,
        count,
        threads,
        owner,
        &mut |line, split, trace, start| {
            if trace != last_trace {
                data.starts.push(start.to_string());
                last_trace = trace;
            }
            data.lines.extend_from_slice(line);
            data.records.push((data.lines.len(), split));
            data.record_start.push((data.starts.len() - 1) as u32);
            Ok(())
        },
    )?;
    data.telemetry = tel;
    Ok(data)
}

/// The records of a shard, in order: `emit(line, split, trace number, start term)` per record.
pub fn run_shard(
    cfg: &GenConfig,
    splitter: &Splitter,
    seed: u64,
    count: usize,
    threads: usize,
    owner: Option<Owner>,
    emit: &mut dyn FnMut(&[u8], u8, u64, &str) -> Result<(), String>,
) -> Result<Telemetry, String> {
    use rayon::prelude::*;
    if cfg.cells.is_empty() {
        return Err("schedule has no cells".into());
    }
    let max_size = cfg.cells.iter().map(|c| c.size).max().unwrap_or(1);
    let max_depth = cfg.cells.iter().map(|c| c.depth).max().unwrap_or(0);
    let bad = crate::schedule::infeasible(&cfg.cells);
    if !bad.is_empty() {
        return Err(bad.join("; "));
    }
    let sampler = Sampler::shared(max_size, max_depth);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| e.to_string())?;
    let mut tel = Telemetry::default();
    let mut emitted = 0usize;
    let mut trace_no = 0u64;
    let mut starts: HashSet<u128> = HashSet::new();
    let mut pairs: HashSet<u128> = HashSet::with_capacity(count);
    let limits: Vec<usize> = cfg
        .quotas
        .iter()
        .map(|q| (q.share * count as f64).ceil() as usize)
        .collect();
    let mut used: Vec<usize> = vec![0; cfg.quotas.len()];
    // Size and depth quotas act per example: an example whose bucket is full is skipped.
    let limits_of = |qs: &[Quota]| -> Vec<usize> {
        qs.iter()
            .map(|q| (q.share * count as f64).ceil() as usize)
            .collect()
    };
    let size_limits = limits_of(&cfg.size_quotas);
    let depth_limits = limits_of(&cfg.depth_quotas);
    let mut size_used: Vec<usize> = vec![0; cfg.size_quotas.len()];
    let mut depth_used: Vec<usize> = vec![0; cfg.depth_quotas.len()];
    let bucket_of = |qs: &[Quota], v: u32| {
        qs.iter()
            .position(|q| q.lo <= v as usize && v as usize <= q.hi)
    };
    let mut next_chunk: u64 = 0;
    let mut wave: u64 = 16;
    let mut tried_traces: u64 = 0;
    // Give up on quotas that cannot be met rather than loop for ever.
    let max_traces = 1000 * count.max(1) as u64 + 10_000;
    while emitted < count {
        if tried_traces > max_traces {
            let mut unmet: Vec<String> = Vec::new();
            for (what, qs, ls, us) in [
                ("steps", &cfg.quotas, &limits, &used),
                ("size", &cfg.size_quotas, &size_limits, &size_used),
                ("depth", &cfg.depth_quotas, &depth_limits, &depth_used),
            ] {
                for (q, (l, u)) in qs.iter().zip(ls.iter().zip(us.iter())) {
                    if u < l {
                        unmet.push(format!("{what} {}-{} has {u} of {l}", q.lo, q.hi));
                    }
                }
            }
            return Err(format!(
                "could not make {count} records after {tried_traces} traces ({emitted} made from {} distinct start terms; \
                 quotas unmet: {}); relax the quotas or the schedule",
                starts.len(),
                if unmet.is_empty() { "none".to_string() } else { unmet.join(", ") }
            ));
        }
        let ids: Vec<u64> = (next_chunk..next_chunk + wave).collect();
        next_chunk += wave;
        let chunks: Vec<ChunkOut> = pool.install(|| {
            ids.par_iter()
                .map(|&j| make_chunk(cfg, &sampler, splitter, chunk_seed(seed, j), j, owner))
                .collect()
        });
        let before = emitted;
        'merge: for ch in &chunks {
            tel.count("start_terms_normal_skipped", ch.normal_starts);
            tel.count("start_terms_by_permutation", ch.unique_starts);
            for t in &ch.traces {
                tried_traces += 1;
                if emitted >= count {
                    break 'merge;
                }
                if !starts.insert(t.start) {
                    tel.count("duplicate_start_terms_dropped", 1);
                    continue;
                }
                let q = cfg
                    .quotas
                    .iter()
                    .position(|q| q.lo <= t.steps && t.steps <= q.hi);
                if !cfg.quotas.is_empty() {
                    match q {
                        Some(qi) if used[qi] < limits[qi] => {}
                        _ => {
                            tel.count("traces_over_quota", 1);
                            continue;
                        }
                    }
                }
                let mut kept = 0u64;
                for e in &t.examples {
                    if emitted >= count {
                        break;
                    }
                    if let Some(qi) = q {
                        if !cfg.quotas.is_empty() && used[qi] >= limits[qi] {
                            tel.count("examples_over_quota", 1);
                            break;
                        }
                    }
                    let qs = bucket_of(&cfg.size_quotas, e.size);
                    let qd = bucket_of(&cfg.depth_quotas, e.depth);
                    if !cfg.size_quotas.is_empty()
                        && qs.map_or(true, |i| size_used[i] >= size_limits[i])
                    {
                        tel.count("examples_over_size_quota", 1);
                        continue;
                    }
                    if !cfg.depth_quotas.is_empty()
                        && qd.map_or(true, |i| depth_used[i] >= depth_limits[i])
                    {
                        tel.count("examples_over_depth_quota", 1);
                        continue;
                    }
                    if let (true, Some(o)) = (e.small, owner) {
                        if (e.pair as u64) % o.num_shards.max(1) != o.index % o.num_shards.max(1) {
                            tel.count("small_pairs_left_to_owner_shard", 1);
                            continue;
                        }
                    }
                    if !pairs.insert(e.pair) {
                        tel.count("duplicate_pairs_dropped", 1);
                        continue;
                    }
                    if let (Some(qi), false) = (q, cfg.quotas.is_empty()) {
                        used[qi] += 1;
                    }
                    if let Some(i) = qs {
                        size_used[i] += 1;
                    }
                    if let Some(i) = qd {
                        depth_used[i] += 1;
                    }
                    emit(&ch.buf[e.line.clone()], t.split, trace_no, &t.start_text)?;
                    emitted += 1;
                    kept += 1;
                    tel.observe("input_size", &bucket10(e.size, 20), 1);
                    tel.observe("input_depth", &format!("{:02}", e.depth), 1);
                    if e.redex_depth >= 0 {
                        tel.observe("redex_depth", &format!("{:02}", e.redex_depth), 1);
                    }
                    tel.observe("examples_by_trace_steps", steps_bucket(t.steps), 1);
                }
                if kept > 0 {
                    trace_no += 1;
                    let c = &cfg.cells[t.cell];
                    tel.count("traces", 1);
                    tel.observe("trace_steps", steps_bucket(t.steps), 1);
                    tel.observe("trace_status", t.status.as_str(), 1);
                    tel.observe("start_cell", &format!("{:03}x{:02}", c.size, c.depth), 1);
                }
            }
        }
        // Size the next wave from this one's yield, so small shards do not overshoot much.
        let got = (emitted - before) as u64;
        let missing = (count - emitted) as u64;
        wave = if got == 0 {
            (wave * 2).min(256)
        } else {
            (missing * wave / got + 1).clamp(1, 256)
        };
    }
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
    seed: u64,
    count: usize,
    paths: &[PathBuf; 3],
    compress: Compress,
    threads: usize,
    owner: Option<Owner>,
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
    let tel = run_shard(
        cfg,
        splitter,
        seed,
        count,
        threads,
        owner,
        &mut |line, split, _, _| {
            let si = split as usize;
            counts[si] += 1;
            bufs[si].extend_from_slice(line);
            if bufs[si].len() >= BLOCK {
                sinks[si]
                    .write_all(&bufs[si])
                    .map_err(|e| io(&paths[si], e))?;
                bufs[si].clear();
            }
            Ok(())
        },
    )?;
    for si in 0..3 {
        sinks[si]
            .write_all(&bufs[si])
            .map_err(|e| io(&paths[si], e))?;
    }
    for (s, p) in sinks.into_iter().zip(paths) {
        s.finish().map_err(|e| io(p, e))?;
    }
    Ok((counts, tel))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> GenConfig {
        GenConfig {
            cells: vec![
                Cell {
                    size: 30,
                    depth: 8,
                    weight: 1.0,
                },
                Cell {
                    size: 12,
                    depth: 5,
                    weight: 2.0,
                },
            ],
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
            shared_pair_max_size: 0,
        }
    }

    fn sp() -> Splitter {
        Splitter {
            t1: 800,
            t2: 900,
            salt: vec![],
        }
    }

    #[test]
    fn same_output_for_any_thread_count() {
        let a = make_shard(&cfg(), &sp(), 42, 500, 1, None).unwrap();
        let b = make_shard(&cfg(), &sp(), 42, 500, 3, None).unwrap();
        assert_eq!(a.records.len(), 500);
        assert_eq!(a.lines, b.lines);
        assert_eq!(a.records, b.records);
        let c = make_shard(&cfg(), &sp(), 43, 500, 2, None).unwrap();
        assert_ne!(a.lines, c.lines);
    }

    #[test]
    fn no_duplicate_starts_or_pairs() {
        // Small cells make collisions frequent, so dedup is exercised.
        let mut c = cfg();
        c.cells = vec![Cell {
            size: 7,
            depth: 6,
            weight: 1.0,
        }];
        let d = make_shard(&c, &sp(), 1, 30, 2, None).unwrap();
        let text = String::from_utf8(d.lines).unwrap();
        let mut pairs = HashSet::new();
        for line in text.lines() {
            let i = line.find("\"input\":").unwrap();
            let j = line.find(",\"meta\"").unwrap();
            assert!(pairs.insert(line[i..j].to_string()), "{line}");
        }
        assert!(
            d.telemetry
                .counters
                .get("duplicate_start_terms_dropped")
                .copied()
                .unwrap_or(0)
                > 0
        );
    }

    #[test]
    fn small_pairs_only_in_their_owner_shard() {
        let mut c = cfg();
        c.shared_pair_max_size = 1000;
        let all = make_shard(
            &c,
            &sp(),
            5,
            300,
            2,
            Some(Owner {
                index: 0,
                num_shards: 1,
                run_seed: 0,
            }),
        )
        .unwrap();
        let own = make_shard(
            &c,
            &sp(),
            5,
            300,
            2,
            Some(Owner {
                index: 1,
                num_shards: 3,
                run_seed: 0,
            }),
        )
        .unwrap();
        assert_eq!(all.records.len(), 300);
        assert_eq!(own.records.len(), 300);
        let dropped = own.telemetry.counters["small_pairs_left_to_owner_shard"];
        assert!(dropped > 300, "{dropped}");
    }

    #[test]
    fn small_cells_never_repeat_a_start_term_across_shards() {
        let mut c = cfg();
        c.cells = vec![Cell {
            size: 12,
            depth: 6,
            weight: 1.0,
        }];
        c.redex_only = false;
        c.whole_trace = true;
        let mut starts = HashSet::new();
        let mut total = 0;
        for index in 0..4u64 {
            let o = Owner {
                index,
                num_shards: 4,
                run_seed: 9,
            };
            let d = make_shard(&c, &sp(), 100 + index, 150, 2, Some(o)).unwrap();
            assert_eq!(
                d.telemetry.counters["start_terms_by_permutation"] as usize >= 150,
                true
            );
            for s in d.starts {
                assert!(starts.insert(s));
                total += 1;
            }
        }
        assert_eq!(total, 600);
    }

    fn meta_field(line: &str, key: &str) -> usize {
        let k = format!("\"{key}\":");
        let at = line.find(&k).unwrap() + k.len();
        line[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    #[test]
    fn size_and_depth_quotas_hold() {
        let q = |lo, hi, share| Quota { lo, hi, share };
        let n = 1000;
        let share = |lines: &[u8], key: &str, hi: usize| {
            let text = std::str::from_utf8(lines).unwrap();
            let k = text.lines().filter(|l| meta_field(l, key) <= hi).count();
            k as f64 / n as f64
        };
        let free = make_shard(&cfg(), &sp(), 7, n, 2, None).unwrap();
        for (key, hi, want) in [("size", 12, 0.5), ("depth", 4, 0.4)] {
            let mut c = cfg();
            let qs = vec![q(0, hi, want), q(hi + 1, usize::MAX, 1.0 - want)];
            if key == "size" {
                c.size_quotas = qs;
            } else {
                c.depth_quotas = qs;
            }
            let d = make_shard(&c, &sp(), 7, n, 2, None).unwrap();
            assert_eq!(d.records.len(), n);
            let got = share(&d.lines, key, hi);
            assert!((got - want).abs() <= 0.05, "{key}: {got}");
            // Without quotas the same cells give a clearly different mix: the quotas do the work.
            let unquoted = share(&free.lines, key, hi);
            assert!((unquoted - want).abs() > 0.1, "{key}: {unquoted}");
            let hist = format!("quota_examples_{key}");
            assert_eq!(
                d.telemetry.histograms[&hist].values().sum::<u64>(),
                n as u64
            );
            let one = make_shard(&c, &sp(), 7, n, 1, None).unwrap();
            assert_eq!(one.lines, d.lines);
        }
    }

    #[test]
    fn kept_steps_spread() {
        assert_eq!(kept_steps(5, 0), vec![0, 1, 2, 3, 4]);
        assert_eq!(kept_steps(10, 3), vec![0, 5, 9]);
        assert_eq!(kept_steps(10, 1), vec![0]);
    }
}
