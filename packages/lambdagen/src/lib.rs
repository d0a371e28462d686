//! Thin PyO3 bindings of `lambda-core`: terms cross as canonical text, shards as files.
//! All logic lives in the pure-Rust crate; this file only converts arguments and errors.

use lambda_core::reduce::{self, Status, Strategy};
use lambda_core::rng::Rng;
use lambda_core::sample::Sampler;
use lambda_core::schedule::{self, Cell};
use lambda_core::split::Splitter;
use lambda_core::term::{self, Node};
use lambda_core::writer::{self, Compress, GenConfig, Place, Quota, SplitBy};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::path::PathBuf;

fn parse(text: &str) -> PyResult<Vec<Node>> {
    term::parse(text).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Per traced term: (final term, steps, status, redex positions).
type TraceSummary = (String, usize, &'static str, Vec<usize>);

/// A shard in memory: (JSONL bytes, split per record, start index per record, start terms, telemetry JSON).
type ShardLines<'py> = (Bound<'py, PyBytes>, Vec<u8>, Vec<u32>, Vec<String>, String);

/// Parse a batch; an error names the term's index and quotes it as given.
fn parse_all(terms: &[String]) -> PyResult<Vec<Vec<Node>>> {
    terms
        .iter()
        .enumerate()
        .map(|(i, t)| {
            term::parse(t).map_err(|e| {
                let shown: String = t.chars().take(60).collect();
                let more = if t.chars().count() > 60 { "..." } else { "" };
                PyValueError::new_err(format!("term {i} \"{shown}{more}\": {e}"))
            })
        })
        .collect()
}

/// Largest count tables a call may build: sizes up to 5,000 and size * depth bound up to
/// 30,000 (the tables grow as size^2 * depth^2; beyond this they take minutes and gigabytes).
const MAX_TABLE_SIZE: usize = 5_000;
const MAX_TABLE_AREA: usize = 30_000;

/// The depth bound that matters (a term of `size` nodes has depth < size), or an error when
/// the tables for (size, depth) would be too big to build.
fn table_bounds(what: &str, size: usize, depth: usize) -> PyResult<usize> {
    let d = depth.min(size);
    if size > MAX_TABLE_SIZE || size * d > MAX_TABLE_AREA {
        return Err(PyValueError::new_err(format!(
            "{what}: size {size} with depth bound {depth} is too big to count (allowed: size <= {MAX_TABLE_SIZE} \
             and size * min(depth, size) <= {MAX_TABLE_AREA})"
        )));
    }
    Ok(d)
}

/// Most terms `sample_terms` returns in one call.
const MAX_SAMPLES: usize = 10_000_000;

fn text(t: &[Node]) -> String {
    term::to_string(t)
}

/// Canonical text of a closed term (raises ValueError naming the position).
#[pyfunction]
fn canonical(t: &str) -> PyResult<String> {
    Ok(text(&parse(t)?))
}

/// (size, depth, named form, redex position or None) of a term.
#[pyfunction]
fn describe(t: &str) -> PyResult<(usize, usize, String, Option<usize>)> {
    let t = parse(t)?;
    Ok((
        term::size(&t),
        term::depth(&t),
        term::to_named(&t),
        reduce::find_redex(&t),
    ))
}

/// One normal-order step: (reduct, redex position), or None for a normal form.
#[pyfunction]
fn reduce_step(t: &str) -> PyResult<Option<(String, usize)>> {
    let t = parse(t)?;
    Ok(reduce::step(&t).map(|(r, pos)| (text(&r), pos)))
}

/// Normal form: (term, steps, status); stops at the caps.
#[pyfunction]
fn normalize(
    py: Python<'_>,
    t: &str,
    max_steps: usize,
    max_size: usize,
) -> PyResult<(String, usize, &'static str)> {
    let t = parse(t)?;
    let (r, steps, st) = py.allow_threads(|| reduce::normalize(&t, max_steps, max_size));
    Ok((text(&r), steps, st.as_str()))
}

fn strategy_of(name: &str) -> PyResult<Strategy> {
    Strategy::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Strategy::ALL.iter().map(|s| s.as_str()).collect();
        PyValueError::new_err(format!(
            "strategy must be one of {}, got {name:?}",
            names.join(", ")
        ))
    })
}

/// The strategy names, default first.
#[pyfunction]
fn strategies() -> Vec<&'static str> {
    Strategy::ALL.iter().map(|s| s.as_str()).collect()
}

/// A trace: (terms, redex positions, status).
#[pyfunction]
#[pyo3(signature = (t, max_steps, max_size, strategy="normal"))]
fn trace(
    py: Python<'_>,
    t: &str,
    max_steps: usize,
    max_size: usize,
    strategy: &str,
) -> PyResult<(Vec<String>, Vec<usize>, &'static str)> {
    let t = parse(t)?;
    let st = strategy_of(strategy)?;
    let tr = py.allow_threads(|| reduce::trace_with(&t, max_steps, max_size, st));
    Ok((
        tr.terms.iter().map(|x| text(x)).collect(),
        tr.redexes,
        tr.status.as_str(),
    ))
}

/// Trace many terms in one call: per term (final term, steps, status, redex positions).
#[pyfunction]
#[pyo3(signature = (terms, max_steps, max_size, strategy="normal"))]
fn trace_many(
    py: Python<'_>,
    terms: Vec<String>,
    max_steps: usize,
    max_size: usize,
    strategy: &str,
) -> PyResult<Vec<TraceSummary>> {
    let parsed = parse_all(&terms)?;
    let st = strategy_of(strategy)?;
    let out = py.allow_threads(|| {
        parsed
            .iter()
            .map(|t| {
                let tr = reduce::trace_with(t, max_steps, max_size, st);
                let last = text(tr.terms.last().expect("non-empty"));
                (last, tr.steps(), tr.status.as_str(), tr.redexes)
            })
            .collect()
    });
    Ok(out)
}

/// Reduction-only throughput: normalise each term; returns total steps taken.
#[pyfunction]
fn reduce_steps_total(
    py: Python<'_>,
    terms: Vec<String>,
    max_steps: usize,
    max_size: usize,
) -> PyResult<usize> {
    let parsed = parse_all(&terms)?;
    Ok(py.allow_threads(|| {
        parsed
            .iter()
            .map(|t| reduce::normalize(t, max_steps, max_size).1)
            .sum()
    }))
}

/// Exact number of closed terms of `size` nodes and depth <= `depth`, as a decimal string.
#[pyfunction]
fn count_terms(size: usize, depth: usize) -> PyResult<String> {
    let d = table_bounds("count_terms", size, depth)?;
    Ok(Sampler::shared(size, d).count(size, d).to_string())
}

/// Largest size of a closed term of depth <= `depth` (searched up to `limit` nodes).
#[pyfunction]
fn max_feasible_size(depth: usize, limit: usize) -> PyResult<usize> {
    table_bounds("max_feasible_size", limit, depth)?;
    Ok(Sampler::shared(limit, depth).max_feasible_size(depth))
}

/// `n` uniform samples of closed terms with `size` nodes and depth <= `depth`.
#[pyfunction]
fn sample_terms(
    py: Python<'_>,
    size: usize,
    depth: usize,
    n: usize,
    seed: u64,
) -> PyResult<Vec<String>> {
    let depth = table_bounds("sample_terms", size, depth)?;
    if n > MAX_SAMPLES {
        return Err(PyValueError::new_err(format!(
            "sample_terms: n = {n} is more than {MAX_SAMPLES} terms in one call"
        )));
    }
    let out = py.allow_threads(|| {
        let s = Sampler::shared(size, depth);
        let mut rng = Rng::new(seed);
        let mut t = Vec::new();
        let mut v = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            s.sample(size, depth, &mut rng, &mut t)?;
            v.push(text(&t));
        }
        Some(v)
    });
    out.ok_or_else(|| {
        PyValueError::new_err(format!(
            "no closed term has size {size} and depth <= {depth}"
        ))
    })
}

/// Start terms of a small cell as the shard writer draws them: term of rank
/// `perm(key)` for each key, the permutation keyed by `perm_key` (None if the cell is not small).
#[pyfunction]
fn permuted_terms(
    size: usize,
    depth: usize,
    keys: Vec<u128>,
    perm_key: u64,
) -> PyResult<Option<Vec<String>>> {
    table_bounds("permuted_terms", size, depth)?;
    let s = Sampler::shared(size, depth);
    let Some(n) = s.small_count(size, depth) else {
        return Ok(None);
    };
    let p = lambda_core::perm::Perm::new(n, perm_key);
    let mut t = Vec::new();
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        if k >= n {
            return Err(PyValueError::new_err(format!(
                "key {k} >= {n} terms in the cell"
            )));
        }
        s.unrank(size, depth, p.apply(k), &mut t);
        out.push(text(&t));
    }
    Ok(Some(out))
}

/// Messages for the cells (size, depth) that hold no closed term.
#[pyfunction]
fn infeasible_cells(cells: Vec<(usize, usize)>) -> Vec<String> {
    let cells: Vec<Cell> = cells
        .into_iter()
        .map(|(size, depth)| Cell {
            size,
            depth,
            weight: 1.0,
        })
        .collect();
    schedule::infeasible(&cells)
}

/// The seed's ten (size, depth) cycles.
#[pyfunction]
fn seed_cycles() -> Vec<(usize, usize)> {
    schedule::seed_schedule()
        .into_iter()
        .map(|c| (c.size, c.depth))
        .collect()
}

/// xxh64(salt + key) % 1000, the datacore split bucket.
#[pyfunction]
fn split_bucket(key: &[u8], salt: &[u8]) -> u32 {
    Splitter {
        t1: 0,
        t2: 0,
        salt: salt.to_vec(),
    }
    .bucket(key)
}

/// Every beta redex of a term (any position, not only normal order) and its contractum:
/// (pre-order position, reduct), in pre-order.
#[pyfunction]
fn beta_reducts(t: &str) -> PyResult<Vec<(usize, String)>> {
    let t = parse(t)?;
    let mut out = Vec::new();
    let mut r = Vec::new();
    for pos in 0..t.len().saturating_sub(1) {
        if t[pos] == term::APP && t[pos + 1] == term::LAM {
            reduce::contract_at(&t, pos, &mut r);
            out.push((pos, text(&r)));
        }
    }
    Ok(out)
}

/// (number of abstractions above, number of ancestors) of the node at pre-order `pos`.
#[pyfunction]
fn node_place(t: &str, pos: usize) -> PyResult<(usize, usize)> {
    let t = parse(t)?;
    if pos >= t.len() {
        return Err(PyValueError::new_err(format!(
            "position {pos} is outside the term ({} nodes)",
            t.len()
        )));
    }
    Ok((term::binders_above(&t, pos), term::node_depth(&t, pos)))
}

/// Records per cell for the record slots `start .. start + count` of a run.
#[pyfunction]
fn cell_counts(cells: Vec<(usize, usize, f64)>, start: u64, count: usize) -> PyResult<Vec<usize>> {
    if cells.is_empty() || cells.iter().any(|c| !(c.2 > 0.0 && c.2.is_finite())) {
        return Err(PyValueError::new_err("cells need positive finite weights"));
    }
    let cells: Vec<Cell> = cells
        .into_iter()
        .map(|(size, depth, weight)| Cell {
            size,
            depth,
            weight,
        })
        .collect();
    Ok(writer::cell_counts(&cells, start, count))
}

#[allow(clippy::too_many_arguments)]
fn place(
    seed: u64,
    count: usize,
    start: u64,
    index: u64,
    num_shards: u64,
    run_seed: u64,
    total: u64,
) -> Place {
    Place {
        seed,
        count,
        start,
        index,
        num_shards,
        run_seed,
        total,
    }
}

/// A generation config, built once and reused for every shard.
#[pyclass(frozen, module = "lambdagen._core")]
struct GenSpec {
    cfg: GenConfig,
}

#[pymethods]
impl GenSpec {
    #[new]
    #[pyo3(signature = (cells, max_steps, max_size, max_examples_per_trace, redex_only, whole_trace, chunk_traces, quotas, zstd_level, size_quotas=vec![], depth_quotas=vec![], named=false, tokens=false, strategy="normal", split_by="", split_at=(0, 0), curriculum=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        cells: Vec<(usize, usize, f64)>,
        max_steps: usize,
        max_size: usize,
        max_examples_per_trace: usize,
        redex_only: bool,
        whole_trace: bool,
        chunk_traces: usize,
        quotas: Vec<(usize, usize, f64)>,
        zstd_level: i32,
        size_quotas: Vec<(usize, usize, f64)>,
        depth_quotas: Vec<(usize, usize, f64)>,
        named: bool,
        tokens: bool,
        strategy: &str,
        split_by: &str,
        split_at: (usize, usize),
        curriculum: bool,
    ) -> PyResult<GenSpec> {
        let strategy = strategy_of(strategy)?;
        let split_by = match split_by {
            "" => None,
            name => Some(SplitBy::from_name(name).ok_or_else(|| {
                PyValueError::new_err(format!(
                    "split_by must be '', 'steps', 'size' or 'depth', got {name:?}"
                ))
            })?),
        };
        let to_quotas = |qs: Vec<(usize, usize, f64)>| -> Vec<Quota> {
            qs.into_iter()
                .map(|(lo, hi, share)| Quota { lo, hi, share })
                .collect()
        };
        let cells: Vec<Cell> = cells
            .into_iter()
            .map(|(size, depth, weight)| Cell {
                size,
                depth,
                weight,
            })
            .collect();
        let cfg = GenConfig {
            cells,
            max_steps,
            max_size,
            max_examples_per_trace,
            redex_only,
            whole_trace,
            chunk_traces: chunk_traces.max(1),
            quotas: to_quotas(quotas),
            size_quotas: to_quotas(size_quotas),
            depth_quotas: to_quotas(depth_quotas),
            zstd_level,
            named,
            tokens,
            strategy,
            split_by,
            split_at,
            curriculum,
        };
        let bad = writer::check_config(&cfg);
        if !bad.is_empty() {
            return Err(PyValueError::new_err(bad.join("; ")));
        }
        Ok(GenSpec { cfg })
    }

    /// Write one shard's three split files; returns ([train, val, test] counts, telemetry JSON).
    #[pyo3(signature = (seed, count, paths, compress, t1, t2, salt, threads=0, shard_index=0, num_shards=0, run_seed=0, start=0, total=0))]
    #[allow(clippy::too_many_arguments)]
    fn write_shard(
        &self,
        py: Python<'_>,
        seed: u64,
        count: usize,
        paths: [PathBuf; 3],
        compress: Option<&str>,
        t1: u32,
        t2: u32,
        salt: &[u8],
        threads: usize,
        shard_index: u64,
        num_shards: u64,
        run_seed: u64,
        start: u64,
        total: u64,
    ) -> PyResult<([u64; 3], String)> {
        let c = match compress {
            None => Compress::None,
            Some("gz") => Compress::Gz,
            Some("zst") => Compress::Zst,
            Some(other) => {
                return Err(PyValueError::new_err(format!(
                    "compress must be None, 'gz' or 'zst', got {other:?}"
                )))
            }
        };
        let sp = Splitter {
            t1,
            t2,
            salt: salt.to_vec(),
        };
        let (counts, tel) = py
            .allow_threads(|| {
                writer::write_shard(
                    &self.cfg,
                    &sp,
                    place(seed, count, start, shard_index, num_shards, run_seed, total),
                    &paths,
                    c,
                    threads,
                )
            })
            .map_err(PyRuntimeError::new_err)?;
        Ok((counts, tel.to_json()))
    }

    /// The same records in memory: (JSONL bytes, split index per record, start-term index per
    /// record, start terms, telemetry JSON).
    #[pyo3(signature = (seed, count, t1, t2, salt, threads=0, shard_index=0, num_shards=0, run_seed=0, start=0, total=0))]
    #[allow(clippy::too_many_arguments)]
    fn shard_lines<'py>(
        &self,
        py: Python<'py>,
        seed: u64,
        count: usize,
        t1: u32,
        t2: u32,
        salt: &[u8],
        threads: usize,
        shard_index: u64,
        num_shards: u64,
        run_seed: u64,
        start: u64,
        total: u64,
    ) -> PyResult<ShardLines<'py>> {
        let sp = Splitter {
            t1,
            t2,
            salt: salt.to_vec(),
        };
        let data = py
            .allow_threads(|| {
                writer::make_shard(
                    &self.cfg,
                    &sp,
                    place(seed, count, start, shard_index, num_shards, run_seed, total),
                    threads,
                )
            })
            .map_err(PyRuntimeError::new_err)?;
        let splits = data.records.iter().map(|&(_, s)| s).collect();
        Ok((
            PyBytes::new(py, &data.lines),
            splits,
            data.record_start,
            data.starts,
            data.telemetry.to_json(),
        ))
    }
}

/// Status names, in the order the core uses them.
#[pyfunction]
fn statuses() -> Vec<&'static str> {
    [
        Status::NormalForm,
        Status::StepCap,
        Status::SizeCap,
        Status::Cycle,
        Status::StrategyNormalForm,
    ]
    .iter()
    .map(|s| s.as_str())
    .collect()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(canonical, m)?)?;
    m.add_function(wrap_pyfunction!(describe, m)?)?;
    m.add_function(wrap_pyfunction!(reduce_step, m)?)?;
    m.add_function(wrap_pyfunction!(normalize, m)?)?;
    m.add_function(wrap_pyfunction!(trace, m)?)?;
    m.add_function(wrap_pyfunction!(trace_many, m)?)?;
    m.add_function(wrap_pyfunction!(reduce_steps_total, m)?)?;
    m.add_function(wrap_pyfunction!(count_terms, m)?)?;
    m.add_function(wrap_pyfunction!(max_feasible_size, m)?)?;
    m.add_function(wrap_pyfunction!(sample_terms, m)?)?;
    m.add_function(wrap_pyfunction!(infeasible_cells, m)?)?;
    m.add_function(wrap_pyfunction!(permuted_terms, m)?)?;
    m.add_function(wrap_pyfunction!(seed_cycles, m)?)?;
    m.add_function(wrap_pyfunction!(split_bucket, m)?)?;
    m.add_function(wrap_pyfunction!(statuses, m)?)?;
    m.add_function(wrap_pyfunction!(beta_reducts, m)?)?;
    m.add_function(wrap_pyfunction!(node_place, m)?)?;
    m.add_function(wrap_pyfunction!(cell_counts, m)?)?;
    m.add_function(wrap_pyfunction!(strategies, m)?)?;
    m.add_class::<GenSpec>()?;
    Ok(())
}
