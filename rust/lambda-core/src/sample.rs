//! Exact counting of closed terms by size and depth bound, and a uniform sampler.
//!
//! `count(s, d, k)` is the number of terms with `s` nodes, depth (tree height) at most `d`,
//! whose free variables are all below `k` (i.e. terms closed under `k` enclosing binders):
//!
//! ```text
//! count(1, d, k) = k
//! count(s, 0, k) = 0                                  for s > 1
//! count(s, d, k) = count(s-1, d-1, k+1)               (abstraction)
//!                + sum_{i=1}^{s-2} count(i, d-1, k) * count(s-1-i, d-1, k)   (application)
//! ```
//!
//! The counts are exact big integers.  For sampling, each (s, d, k) gets the cumulative
//! distribution over its choices (abstraction, or the application's size split), computed
//! from the exact counts and rounded once to f64; a sample then takes one uniform draw
//! and one binary search per node.  The only departure from exact uniformity is that
//! rounding (relative error below 2^-52 per choice).

use crate::rng::Rng;
use crate::term::{Node, APP, LAM, VAR0};
use num_bigint::BigUint;
use num_traits::{ToPrimitive, Zero};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Count tables and choice distributions for sizes up to `max_size`, depth bounds up to
/// `max_depth`.
pub struct Sampler {
    pub max_size: usize,
    pub max_depth: usize,
    /// counts[d][k][s]; k ranges over 0..=max_depth - d (deeper binders cannot fit).
    counts: Vec<Vec<Vec<BigUint>>>,
    /// cdf[d][k][s]: cumulative probabilities over [abstraction, split 1, ..., split s-2].
    cdf: Vec<Vec<Vec<Box<[f64]>>>>,
    /// counts[d][k][s] as u128 where below 2^SMALL_BITS, else None (for exact unranking).
    small: Vec<Vec<Vec<Option<u128>>>>,
    /// The first [`HEAD`] and the last [`TAIL`] entries of each cdf row, densely packed (two
    /// cache lines each) at `(d * (max_depth + 2) + k) * (max_size + 1) + s`: most draws end
    /// there (an abstraction, a small function or a small argument), so a sample mostly
    /// reads this table instead of rows spread over tens of megabytes.
    edges: Vec<Edges>,
}

/// The head of a cdf row (padded with infinity) and, for rows of at least `HEAD + TAIL`
/// choices, its last `TAIL` entries (else infinity).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Edges {
    head: [f64; HEAD],
    tail: [f64; TAIL],
}

/// Samplers built so far in this process, by (max_size, max_depth).
type SamplerCache = HashMap<(usize, usize), Arc<Sampler>>;

/// Cells with fewer than 2^SMALL_BITS terms are sampled by exact unranking of a keyed
/// permutation of distinct keys (so start terms cannot repeat); products of their
/// sub-counts stay below 2^SMALL_BITS and fit in u128.
pub const SMALL_BITS: u64 = 96;

/// Choices per row kept at the start of the dense edge table (on the seed's schedule about
/// 85% of draws end among the first eight: an abstraction, or a function of at most seven
/// nodes).
const HEAD: usize = 8;

/// Choices at the end of each row kept beside the head (an argument of a few nodes).
const TAIL: usize = 8;

fn big_ratio(a: &BigUint, b: &BigUint) -> f64 {
    // a/b for huge numbers without overflowing f64: drop the same low bits from both.
    let bits = b.bits();
    let sh = bits.saturating_sub(100);
    let a2 = a >> sh;
    let b2 = b >> sh;
    a2.to_f64().unwrap_or(f64::INFINITY) / b2.to_f64().unwrap_or(f64::INFINITY)
}

impl Sampler {
    /// Build the tables (cost grows with max_size^2 * max_depth^2 big-integer products).
    pub fn new(max_size: usize, max_depth: usize) -> Sampler {
        let zero = BigUint::zero();
        let nk = |d: usize| max_depth - d + 1;
        let mut counts: Vec<Vec<Vec<BigUint>>> = Vec::with_capacity(max_depth + 1);
        for d in 0..=max_depth {
            let mut per_k = Vec::with_capacity(nk(d));
            for k in 0..nk(d) {
                let mut row = vec![zero.clone(); max_size + 1];
                if max_size >= 1 {
                    row[1] = BigUint::from(k);
                }
                if d > 0 {
                    let below = &counts[d - 1];
                    let lam_row: &Vec<BigUint> = &below[k + 1];
                    let app_row: &Vec<BigUint> = &below[k];
                    for s in 2..=max_size {
                        let mut c = lam_row[s - 1].clone();
                        for i in 1..s.saturating_sub(1) {
                            let (a, b) = (&app_row[i], &app_row[s - 1 - i]);
                            if !a.is_zero() && !b.is_zero() {
                                c += a * b;
                            }
                        }
                        row[s] = c;
                    }
                }
                per_k.push(row);
            }
            counts.push(per_k);
        }
        let mut cdf: Vec<Vec<Vec<Box<[f64]>>>> = Vec::with_capacity(max_depth + 1);
        for d in 0..=max_depth {
            let mut per_k = Vec::with_capacity(nk(d));
            for k in 0..nk(d) {
                let mut rows: Vec<Box<[f64]>> = Vec::with_capacity(max_size + 1);
                for s in 0..=max_size {
                    let total = &counts[d][k][s];
                    if s < 2 || d == 0 || total.is_zero() {
                        rows.push(Box::new([]));
                        continue;
                    }
                    let mut acc = counts[d - 1][k + 1][s - 1].clone();
                    let mut row = Vec::with_capacity(s - 1);
                    let mut positive = Vec::with_capacity(s - 1);
                    positive.push(!acc.is_zero());
                    row.push(big_ratio(&acc, total));
                    for i in 1..s - 1 {
                        let (a, b) = (&counts[d - 1][k][i], &counts[d - 1][k][s - 1 - i]);
                        let p = !a.is_zero() && !b.is_zero();
                        if p {
                            acc += a * b;
                        }
                        positive.push(p);
                        row.push(big_ratio(&acc, total));
                    }
                    // The last choice with positive weight must catch every draw below 1,
                    // whatever the rounding; later zero-weight choices are never reached.
                    let last = positive.iter().rposition(|&p| p).expect("total > 0");
                    for c in &mut row[last..] {
                        *c = 1.0;
                    }
                    rows.push(row.into_boxed_slice());
                }
                per_k.push(rows);
            }
            cdf.push(per_k);
        }
        let small = counts
            .iter()
            .map(|per_k| {
                per_k
                    .iter()
                    .map(|row| {
                        row.iter()
                            .map(|c| (c.bits() < SMALL_BITS).then(|| c.to_u128().expect("small")))
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let blank = Edges {
            head: [f64::INFINITY; HEAD],
            tail: [f64::INFINITY; TAIL],
        };
        let mut edges = vec![blank; (max_depth + 1) * (max_depth + 2) * (max_size + 1)];
        for (d, per_k) in cdf.iter().enumerate() {
            for (k, rows) in per_k.iter().enumerate() {
                for (sz, row) in rows.iter().enumerate() {
                    let e = &mut edges[((d * (max_depth + 2)) + k) * (max_size + 1) + sz];
                    for (x, c) in e.head.iter_mut().zip(row.iter()) {
                        *x = *c;
                    }
                    if row.len() >= HEAD + TAIL {
                        e.tail.copy_from_slice(&row[row.len() - TAIL..]);
                    }
                }
            }
        }
        Sampler {
            max_size,
            max_depth,
            counts,
            cdf,
            small,
            edges,
        }
    }

    /// A shared sampler covering at least (max_size, max_depth), built once per process.
    pub fn shared(max_size: usize, max_depth: usize) -> Arc<Sampler> {
        static CACHE: OnceLock<Mutex<SamplerCache>> = OnceLock::new();
        let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
        let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = map
            .iter()
            .find(|((ms, md), _)| *ms >= max_size && *md >= max_depth)
            .map(|(_, s)| s.clone())
        {
            return s;
        }
        let s = Arc::new(Sampler::new(max_size, max_depth));
        map.insert((max_size, max_depth), s.clone());
        s
    }

    /// Exact number of closed terms with `size` nodes and depth at most `depth`.
    pub fn count(&self, size: usize, depth: usize) -> BigUint {
        assert!(size <= self.max_size && depth <= self.max_depth);
        // Depth bound `depth` uses rows d = depth .. 0; the table is indexed by remaining depth.
        self.counts[depth][0][size].clone()
    }

    /// Largest size of a closed term of depth at most `depth` (within the table).
    pub fn max_feasible_size(&self, depth: usize) -> usize {
        (1..=self.max_size)
            .rev()
            .find(|&s| !self.counts[depth][0][s].is_zero())
            .unwrap_or(0)
    }

    /// A uniformly random closed term with `size` nodes and depth at most `depth`;
    /// `None` when there is none.
    pub fn sample(
        &self,
        size: usize,
        depth: usize,
        rng: &mut Rng,
        out: &mut Vec<Node>,
    ) -> Option<()> {
        if size > self.max_size || depth > self.max_depth || self.counts[depth][0][size].is_zero() {
            return None;
        }
        out.clear();
        self.go(size, depth, 0, rng, out);
        Some(())
    }

    /// Number of closed terms of the cell when below 2^SMALL_BITS (else None).
    pub fn small_count(&self, size: usize, depth: usize) -> Option<u128> {
        self.small[depth][0][size].filter(|&n| n > 0)
    }

    /// The closed term of rank `r` (0 <= r < small_count) among those of `size` nodes and
    /// depth <= `depth`, in the order: abstraction first, then applications by the size of
    /// their function.  A bijection between ranks and terms.
    pub fn unrank(&self, size: usize, depth: usize, r: u128, out: &mut Vec<Node>) {
        out.clear();
        self.unrank_go(size, depth, 0, r, out);
    }

    fn unrank_go(&self, s: usize, d: usize, k: usize, mut r: u128, out: &mut Vec<Node>) {
        if s == 1 {
            out.push(VAR0 + r as Node);
            return;
        }
        let lam = self.small[d - 1][k + 1][s - 1].expect("sub-count of a small cell");
        if r < lam {
            out.push(LAM);
            return self.unrank_go(s - 1, d - 1, k + 1, r, out);
        }
        r -= lam;
        for i in 1..s - 1 {
            let (a, b) = (
                self.small[d - 1][k][i].unwrap_or(0),
                self.small[d - 1][k][s - 1 - i].unwrap_or(0),
            );
            if a == 0 || b == 0 {
                continue;
            }
            let p = a * b;
            if r < p {
                out.push(APP);
                self.unrank_go(i, d - 1, k, r / b, out);
                self.unrank_go(s - 1 - i, d - 1, k, r % b, out);
                return;
            }
            r -= p;
        }
        unreachable!("rank out of range");
    }

    /// The choice a draw `u` in [0, 1) picks in row (d, k, s): the first index whose
    /// cumulative probability exceeds `u` (the last choice if none does), exactly what a
    /// binary search of the whole row gives.  Most draws end in the first few choices (an
    /// abstraction, or a small function) or the last few (a small argument), both read from
    /// the dense edge table; the rest binary-search the middle of the row.
    #[inline]
    fn choose(&self, s: usize, d: usize, k: usize, u: f64) -> usize {
        let e = &self.edges[((d * (self.max_depth + 2)) + k) * (self.max_size + 1) + s];
        let j = e.head.iter().take_while(|&&c| c <= u).count();
        let last = s - 2;
        if j < HEAD {
            // Padding (infinity) stops the scan at the row's end: the last choice.
            return j.min(last);
        }
        let len = s - 1;
        if e.tail[0] <= u {
            // The row is at least HEAD + TAIL long (else the tail is infinity): the first
            // entry above u lies after tail[0], among the last TAIL - 1 entries.
            let t = e.tail[1..].iter().take_while(|&&c| c <= u).count();
            return (len - TAIL + 1 + t).min(last);
        }
        // The first entry above u is at most the tail's first (or, for a short row, the end).
        let row = &self.cdf[d][k][s];
        let end = if len >= HEAD + TAIL { len - TAIL } else { len };
        (HEAD + row[HEAD..end].partition_point(|&c| c <= u)).min(last)
    }

    fn go(&self, s: usize, d: usize, k: usize, rng: &mut Rng, out: &mut Vec<Node>) {
        if s == 1 {
            out.push(VAR0 + rng.below(k as u64) as Node);
            return;
        }
        let j = self.choose(s, d, k, rng.unit_f64());
        if j == 0 {
            out.push(LAM);
            self.go(s - 1, d - 1, k + 1, rng, out);
        } else {
            out.push(APP);
            self.go(j, d - 1, k, rng, out);
            self.go(s - 1 - j, d - 1, k, rng, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::term::{depth, is_closed, to_string};

    fn enumerate(s: usize, d: usize, k: usize) -> u64 {
        // Independent brute force: build every term explicitly and count them.
        fn all(s: usize, d: usize, k: usize) -> Vec<Vec<Node>> {
            let mut v = Vec::new();
            if s == 1 {
                for i in 0..k {
                    v.push(vec![VAR0 + i as Node]);
                }
                return v;
            }
            if d == 0 {
                return v;
            }
            for b in all(s - 1, d - 1, k + 1) {
                let mut t = vec![LAM];
                t.extend(b);
                v.push(t);
            }
            for i in 1..s.saturating_sub(1) {
                for f in all(i, d - 1, k) {
                    for a in all(s - 1 - i, d - 1, k) {
                        let mut t = vec![APP];
                        t.extend(&f);
                        t.extend(&a);
                        v.push(t);
                    }
                }
            }
            v
        }
        let terms = all(s, d, k);
        let set: std::collections::HashSet<_> = terms.iter().cloned().collect();
        assert_eq!(set.len(), terms.len());
        assert!(terms
            .iter()
            .all(|t| is_closed(t) && depth(t) <= d && t.len() == s));
        terms.len() as u64
    }

    #[test]
    fn choose_is_a_binary_search_of_the_whole_row() {
        // Every row of a sampler with long and short rows, at draws on, just below and just
        // above every entry and at random points: the edge table gives the index a plain
        // search of the full row gives.
        let s = Sampler::new(70, 9);
        let mut rng = Rng::new(11);
        let mut checked = 0;
        for d in 1..=9 {
            for k in 0..=(9 - d) {
                for sz in 2..=70 {
                    let row = &s.cdf[d][k][sz];
                    if row.is_empty() {
                        continue;
                    }
                    let want = |u: f64| row.partition_point(|&c| c <= u).min(row.len() - 1);
                    let mut us: Vec<f64> = (0..20).map(|_| rng.unit_f64()).collect();
                    for &c in row.iter() {
                        for u in [c, c.next_down(), c.next_up()] {
                            if (0.0..1.0).contains(&u) {
                                us.push(u);
                            }
                        }
                    }
                    us.push(0.0);
                    for u in us {
                        assert_eq!(s.choose(sz, d, k, u), want(u), "d={d} k={k} s={sz} u={u}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 50_000, "{checked}");
    }

    #[test]
    fn small_counts_match_enumeration() {
        let s = Sampler::new(9, 7);
        for n in 1..=9 {
            for d in 0..=7 {
                assert_eq!(
                    s.count(n, d).to_u64().unwrap(),
                    enumerate(n, d, 0),
                    "size {n} depth {d}"
                );
            }
        }
    }

    #[test]
    fn largest_closed_term_per_depth() {
        // f(h) = max(1 + (2^h - 1), 1 + 2 f(h-1)), f(1) = 2: (\0 \0)-style trees win from h = 2.
        let s = Sampler::new(200, 15);
        let got: Vec<usize> = (0..=7).map(|d| s.max_feasible_size(d)).collect();
        assert_eq!(got, vec![0, 2, 5, 11, 23, 47, 95, 191]);
        assert!(!s.count(80, 6).is_zero());
        assert!(s.count(100, 6).is_zero());
    }

    #[test]
    fn unrank_is_a_bijection() {
        let s = Sampler::new(12, 8);
        for (size, dmax) in [(7, 7), (9, 5), (10, 4)] {
            let n = s.small_count(size, dmax).unwrap();
            let mut seen = std::collections::HashSet::new();
            let mut t = Vec::new();
            for r in 0..n {
                s.unrank(size, dmax, r, &mut t);
                assert_eq!(t.len(), size);
                assert!(is_closed(&t) && depth(&t) <= dmax);
                assert!(seen.insert(t.clone()));
            }
            assert_eq!(seen.len() as u64, enumerate(size, dmax, 0));
        }
    }

    #[test]
    fn samples_have_the_requested_shape() {
        let s = Sampler::new(120, 10);
        let mut rng = Rng::new(7);
        let mut t = Vec::new();
        for _ in 0..200 {
            s.sample(100, 8, &mut rng, &mut t).unwrap();
            assert_eq!(t.len(), 100, "{}", to_string(&t));
            assert!(depth(&t) <= 8);
            assert!(is_closed(&t));
        }
        assert!(s.sample(100, 6, &mut rng, &mut t).is_none());
    }
}
