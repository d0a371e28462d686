//! Reduction traces whose terms are printed incrementally, for the shard writer.
//!
//! A step replaces one subterm (the contracted redex) and keeps everything before and after
//! it, and in the canonical text the same holds: the text of the nodes before the redex and
//! the text after the end of the redex's subterm (the closing parentheses and spaces of the
//! enclosing applications, and the rest of the term) do not change.  So a reduct's text is
//! the previous text up to the redex, the new subterm printed afresh, and the previous text
//! after the redex.  On the default schedule the new subterms hold about a fifth of the
//! nodes, so most of the printing becomes copying.
//!
//! For each node of the current term the trace keeps where its text starts and where its
//! subterm's text ends; after a step these are copied for the unchanged parts (shifted by the
//! change in length) and recorded by the printer for the new subterm.
//!
//! [`PrintedTrace::run`] takes the same steps, with the same caps and cycle rule, as
//! [`crate::reduce::trace_with`] (tested equal on random terms of every strategy); it keeps
//! all terms in one node array and all texts (JSON-escaped: a lambda is `\\`) in one byte
//! array, reusing both from trace to trace.

use crate::reduce::{
    as_bytes, contract_any_end, find_redex, find_redex_from, find_redex_with, Scratch, Status,
    Strategy,
};
use crate::term::{Node, APP, LAM, VAR0};
use xxhash_rust::xxh3::xxh3_64;

/// A trace with every term's nodes and JSON-escaped text, buffers reused between runs.
pub struct PrintedTrace {
    nodes: Vec<Node>,
    node_off: Vec<usize>,
    text: Vec<u8>,
    text_off: Vec<usize>,
    redexes: Vec<usize>,
    status: Status,
    hashes: Vec<u64>,
    next: Vec<Node>,
    /// Text start of each node of the current term, relative to the term's text.
    starts: Vec<u32>,
    /// Text end of each node's subterm in the current term, relative to the term's text.
    ends: Vec<u32>,
    /// Ancestors and abstractions above each node of the current term.
    anc: Vec<u32>,
    lams: Vec<u32>,
    /// Depth (height) of each term.
    depths: Vec<u32>,
    /// (ancestors, abstractions above) of each step's redex.
    places: Vec<(u32, u32)>,
    stack: Vec<u32>,
    scratch: Scratch,
}

impl Default for PrintedTrace {
    fn default() -> Self {
        PrintedTrace::new()
    }
}

// Printer stack entries: node index << 2 | state.
const ST_LAM: u32 = 0;
const ST_FUN: u32 = 1;
const ST_ARG: u32 = 2;

/// Append the JSON-escaped text of `t` to `out`, recording for node `i` of `t` the text start
/// (`starts`) and the end of its subterm's text (`ends`), both as `out.len() - base`.
/// Also records each node's ancestors (`anc`) and abstractions above it (`lams`), counting
/// from `above` = those of `t`'s root in the whole term.
#[allow(clippy::too_many_arguments)]
fn print_with_offsets(
    t: &[Node],
    out: &mut Vec<u8>,
    base: usize,
    starts: &mut [u32],
    ends: &mut [u32],
    anc: &mut [u32],
    lams: &mut [u32],
    above: (u32, u32),
    stack: &mut Vec<u32>,
) {
    stack.clear();
    let mut nlam = above.1;
    // Worst case per node: "(", " ", ")" for an application (3), "\\" for an abstraction
    // (2), digits for a variable; indices above 99 reserve as they come.
    out.reserve(3 * t.len() + 8);
    for (i, &n) in t.iter().enumerate() {
        starts[i] = (out.len() - base) as u32;
        anc[i] = above.0 + stack.len() as u32;
        lams[i] = nlam;
        if n == APP {
            out.push(b'(');
            stack.push((i as u32) << 2 | ST_FUN);
        } else if n == LAM {
            out.extend_from_slice(b"\\\\");
            stack.push((i as u32) << 2 | ST_LAM);
            nlam += 1;
        } else {
            let v = n - VAR0;
            if v < 10 {
                out.push(b'0' + v as u8);
            } else {
                let mut buf = [0u8; 10];
                let mut k = buf.len();
                let mut v = v;
                while v > 0 {
                    k -= 1;
                    buf[k] = b'0' + (v % 10) as u8;
                    v /= 10;
                }
                out.extend_from_slice(&buf[k..]);
            }
            ends[i] = (out.len() - base) as u32;
            // Close what this variable completes: abstractions whose body it ends and
            // applications whose argument it ends, up to an application still in its function.
            while let Some(top) = stack.last_mut() {
                let (idx, st) = ((*top >> 2) as usize, *top & 3);
                if st == ST_FUN {
                    out.push(b' ');
                    *top = (idx as u32) << 2 | ST_ARG;
                    break;
                }
                if st == ST_ARG {
                    out.push(b')');
                } else {
                    nlam -= 1;
                }
                ends[idx] = (out.len() - base) as u32;
                stack.pop();
            }
        }
    }
}

impl PrintedTrace {
    /// Empty buffers.
    pub fn new() -> PrintedTrace {
        PrintedTrace {
            nodes: Vec::new(),
            node_off: Vec::new(),
            text: Vec::new(),
            text_off: Vec::new(),
            redexes: Vec::new(),
            status: Status::NormalForm,
            hashes: Vec::new(),
            next: Vec::new(),
            starts: Vec::new(),
            ends: Vec::new(),
            anc: Vec::new(),
            lams: Vec::new(),
            depths: Vec::new(),
            places: Vec::new(),
            stack: Vec::new(),
            scratch: Scratch::default(),
        }
    }

    /// Number of steps taken.
    pub fn steps(&self) -> usize {
        self.redexes.len()
    }

    /// Number of terms (steps + 1).
    pub fn len(&self) -> usize {
        self.node_off.len() - 1
    }

    /// Always false after [`PrintedTrace::run`] (the start term is a term of the trace).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How the trace ended.
    pub fn status(&self) -> Status {
        self.status
    }

    /// Position of the redex contracted by step `i`.
    pub fn redex(&self, i: usize) -> usize {
        self.redexes[i]
    }

    /// The redex positions of every step.
    pub fn redexes(&self) -> &[usize] {
        &self.redexes
    }

    /// Depth (height) of term `i`, as [`crate::term::depth`].
    pub fn depth(&self, i: usize) -> usize {
        self.depths[i] as usize
    }

    /// (ancestors, abstractions among them) of step `i`'s redex in term `i`, as
    /// [`crate::term::place_of`].
    pub fn place(&self, i: usize) -> (usize, usize) {
        let (a, l) = self.places[i];
        (a as usize, l as usize)
    }

    /// Nodes of term `i` (0 = the start).
    pub fn term(&self, i: usize) -> &[Node] {
        &self.nodes[self.node_off[i]..self.node_off[i + 1]]
    }

    /// JSON-escaped canonical text of term `i` (a lambda is written `\\`).
    pub fn text(&self, i: usize) -> &[u8] {
        &self.text[self.text_off[i]..self.text_off[i + 1]]
    }

    /// Reduce `start` with `strategy` as [`crate::reduce::trace_with`] does, printing each
    /// term as it is made.
    pub fn run(&mut self, start: &[Node], max_steps: usize, max_size: usize, strategy: Strategy) {
        self.run_inner(start, max_steps, max_size, strategy, (false, false));
    }

    /// [`PrintedTrace::run`], except that a start term that takes no step is not printed
    /// when its first reduct exceeds `max_size` (status [`Status::SizeCap`]) or, with
    /// `skip_stuck`, for any reason: then it returns false, and [`PrintedTrace::status`],
    /// [`PrintedTrace::steps`] (0) and [`PrintedTrace::term`] (0) are all the trace has.
    /// (The shard writer gives such starts no record, and most of them are size-capped.)
    pub fn run_unless_stuck(
        &mut self,
        start: &[Node],
        max_steps: usize,
        max_size: usize,
        strategy: Strategy,
        skip_stuck: bool,
    ) -> bool {
        self.run_inner(start, max_steps, max_size, strategy, (true, skip_stuck))
    }

    /// `skip`: (skip a size-capped start, skip any start that takes no step).
    fn run_inner(
        &mut self,
        start: &[Node],
        max_steps: usize,
        max_size: usize,
        strategy: Strategy,
        skip: (bool, bool),
    ) -> bool {
        self.nodes.clear();
        self.nodes.extend_from_slice(start);
        self.node_off.clear();
        self.node_off.extend_from_slice(&[0, start.len()]);
        self.text.clear();
        self.text_off.clear();
        self.text_off.push(0);
        self.redexes.clear();
        self.hashes.clear();
        self.depths.clear();
        self.places.clear();
        let first = self.next_step(0, 0, max_steps, max_size, strategy);
        if let Err(status) = first {
            if (skip.0 && status == Status::SizeCap) || skip.1 {
                self.status = status;
                return false;
            }
        }
        self.hashes.push(xxh3_64(as_bytes(start)));
        self.starts.resize(start.len(), 0);
        self.ends.resize(start.len(), 0);
        self.anc.resize(start.len(), 0);
        self.lams.resize(start.len(), 0);
        print_with_offsets(
            start,
            &mut self.text,
            0,
            &mut self.starts,
            &mut self.ends,
            &mut self.anc,
            &mut self.lams,
            (0, 0),
            &mut self.stack,
        );
        self.text_off.push(self.text.len());
        self.depths.push(max_of(&self.anc));
        let mut pending = Some(first);
        self.status = loop {
            let k = self.len() - 1;
            // Normal order: no redex before the previous step's position less one.
            let from = self.redexes.last().map_or(0, |p| p.saturating_sub(1));
            let step = match pending.take() {
                Some(step) => step,
                None => self.next_step(k, from, max_steps, max_size, strategy),
            };
            let (pos, old_end) = match step {
                Ok(step) => step,
                Err(status) => break status,
            };
            let h = xxh3_64(as_bytes(&self.next));
            let repeated =
                self.hashes.contains(&h) && (0..=k).any(|i| self.term(i) == self.next.as_slice());
            if !self.hashes.contains(&h) {
                self.hashes.push(h);
            }
            self.places.push((self.anc[pos], self.lams[pos]));
            self.print_reduct(k, pos, old_end);
            self.depths.push(max_of(&self.anc));
            self.redexes.push(pos);
            self.nodes.extend_from_slice(&self.next);
            self.node_off.push(self.nodes.len());
            if repeated {
                break Status::Cycle;
            }
        };
        true
    }

    /// The step after term `k` (the last one), searching a normal-order redex from `from`:
    /// (redex position, end of its subterm), with the reduct in `self.next`, or the status
    /// that ends the trace there.
    fn next_step(
        &mut self,
        k: usize,
        from: usize,
        max_steps: usize,
        max_size: usize,
        strategy: Strategy,
    ) -> Result<(usize, usize), Status> {
        let cur = &self.nodes[self.node_off[k]..self.node_off[k + 1]];
        let found = if strategy == Strategy::Normal {
            find_redex_from(cur, from)
        } else {
            find_redex_with(cur, strategy)
        };
        let Some(pos) = found else {
            return Err(
                if strategy == Strategy::Normal || find_redex(cur).is_none() {
                    Status::NormalForm
                } else {
                    Status::StrategyNormalForm
                },
            );
        };
        if self.redexes.len() >= max_steps {
            return Err(Status::StepCap);
        }
        let old_end = contract_any_end(cur, pos, &mut self.next, &mut self.scratch);
        if self.next.len() > max_size {
            return Err(Status::SizeCap);
        }
        Ok((pos, old_end))
    }

    /// Append the text of `self.next`, the reduct of term `k` whose subterm at
    /// `pos..old_end` was replaced, and make its offsets the current ones.
    fn print_reduct(&mut self, k: usize, pos: usize, old_end: usize) {
        let old_len = self.node_off[k + 1] - self.node_off[k];
        let suffix = old_len - old_end;
        let new_len = self.next.len();
        let new_end = new_len - suffix;
        let (t0, t1) = (self.text_off[k], self.text_off[k + 1]);
        let a = self.starts[pos] as usize;
        let b = self.ends[pos] as usize;
        let above = (self.anc[pos], self.lams[pos]);
        let base = self.text.len();
        self.text.extend_from_within(t0..t0 + a);
        // The offsets are updated in place: the nodes before the redex keep their places,
        // those after it move from `old_end..` to `new_end..`, and the new subterm's are
        // recorded by the printer in between.
        for v in [
            &mut self.starts,
            &mut self.ends,
            &mut self.anc,
            &mut self.lams,
        ] {
            if new_len > old_len {
                v.resize(new_len, 0);
            }
            v.copy_within(old_end..old_len, new_end);
            v.truncate(new_len);
        }
        print_with_offsets(
            &self.next[pos..new_end],
            &mut self.text,
            base,
            &mut self.starts[pos..new_end],
            &mut self.ends[pos..new_end],
            &mut self.anc[pos..new_end],
            &mut self.lams[pos..new_end],
            above,
            &mut self.stack,
        );
        // Outside the new subterm every node keeps its ancestors (anc, lams unchanged).
        let new_b = self.text.len() - base;
        self.text.extend_from_within(t0 + b..t1);
        self.text_off.push(self.text.len());
        // Shift of everything after the subterm (wrapping: it may be negative).
        let delta = (new_b as u32).wrapping_sub(b as u32);
        let a32 = a as u32;
        for e in &mut self.ends[..pos] {
            // A subterm ending after the redex's start encloses the redex.
            if *e > a32 {
                *e = e.wrapping_add(delta);
            }
        }
        for x in &mut self.starts[new_end..] {
            *x = x.wrapping_add(delta);
        }
        for x in &mut self.ends[new_end..] {
            *x = x.wrapping_add(delta);
        }
    }
}

/// Largest value (0 for none).
fn max_of(v: &[u32]) -> u32 {
    v.iter().copied().max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reduce::trace_with;
    use crate::rng::Rng;
    use crate::sample::Sampler;
    use crate::term::{depth, place_of, write_term};

    fn json(t: &[Node]) -> Vec<u8> {
        let mut v = Vec::new();
        write_term(t, b"\\\\", &mut v);
        v
    }

    #[test]
    fn same_steps_and_texts_as_trace_with() {
        let s = Sampler::new(60, 10);
        let mut rng = Rng::new(3);
        let mut t = Vec::new();
        let mut pt = PrintedTrace::new();
        let mut steps = 0;
        for strategy in Strategy::ALL {
            for (size, dmax) in [(12, 6), (25, 8), (40, 9), (60, 10)] {
                for _ in 0..150 {
                    s.sample(size, dmax, &mut rng, &mut t).unwrap();
                    let want = trace_with(&t, 30, 90, strategy);
                    pt.run(&t, 30, 90, strategy);
                    assert_eq!(pt.status(), want.status);
                    assert_eq!(pt.redexes(), &want.redexes[..]);
                    assert_eq!(pt.len(), want.terms.len());
                    for (i, term) in want.terms.iter().enumerate() {
                        assert_eq!(pt.term(i), &term[..]);
                        assert_eq!(pt.text(i), &json(term)[..], "{strategy:?} step {i}");
                        assert_eq!(pt.depth(i), depth(term));
                        if i < want.redexes.len() {
                            assert_eq!(pt.place(i), place_of(term, want.redexes[i]));
                        }
                    }
                    steps += pt.steps();
                }
            }
        }
        assert!(steps > 5000, "{steps}");
    }

    #[test]
    fn unless_stuck_skips_exactly_the_starts_that_take_no_step() {
        // Small caps so that many starts are size-capped or step-capped at once.
        let s = Sampler::new(40, 9);
        let mut rng = Rng::new(8);
        let (mut t, mut a, mut b) = (Vec::new(), PrintedTrace::new(), PrintedTrace::new());
        let mut skipped = [0; 2];
        for strategy in Strategy::ALL {
            for (size, dmax, max_steps, max_size) in
                [(12, 6, 5, 14), (25, 8, 0, 60), (40, 9, 20, 45)]
            {
                for _ in 0..200 {
                    s.sample(size, dmax, &mut rng, &mut t).unwrap();
                    a.run(&t, max_steps, max_size, strategy);
                    for skip_stuck in [false, true] {
                        let kept =
                            b.run_unless_stuck(&t, max_steps, max_size, strategy, skip_stuck);
                        assert_eq!((b.status(), b.steps()), (a.status(), a.steps()));
                        let stuck = a.steps() == 0 && (a.status() == Status::SizeCap || skip_stuck);
                        assert_eq!(kept, !stuck, "{strategy:?} {:?}", a.status());
                        if kept {
                            for i in 0..a.len() {
                                assert_eq!(b.text(i), a.text(i));
                                assert_eq!(b.term(i), a.term(i));
                                assert_eq!(b.depth(i), a.depth(i));
                            }
                            assert_eq!(b.redexes(), a.redexes());
                        } else {
                            skipped[usize::from(skip_stuck)] += 1;
                        }
                    }
                }
            }
        }
        assert!(skipped[0] > 50 && skipped[1] > skipped[0], "{skipped:?}");
    }

    #[test]
    fn wide_indices_cycles_and_caps() {
        use crate::term::parse_bytes;
        let mut pt = PrintedTrace::new();
        for s in [
            "(\\(0 0) \\(0 0))",
            "(\\((0 0) 0) \\((0 0) 0))",
            "\\\\\\\\\\\\\\\\\\\\\\\\(\\(0 11) (\\12 \\\\(1 (0 11))))",
            "((\\\\1 \\0) (\\(0 0) \\(0 0)))",
        ] {
            let t = parse_bytes(s.as_bytes(), true).unwrap();
            for strategy in Strategy::ALL {
                let want = trace_with(&t, 20, 60, strategy);
                pt.run(&t, 20, 60, strategy);
                assert_eq!(
                    (pt.status(), pt.steps()),
                    (want.status, want.steps()),
                    "{s}"
                );
                for (i, term) in want.terms.iter().enumerate() {
                    assert_eq!(pt.text(i), &json(term)[..], "{s} {strategy:?} {i}");
                }
            }
        }
    }
}
