//! Normal-order (leftmost-outermost) beta reduction on pre-order term arrays.

use crate::term::{skip, Node, APP, LAM, VAR0};
use std::collections::HashSet;

/// Pre-order index of the leftmost-outermost redex, if any.
///
/// In pre-order, outer nodes come before inner ones and left before right, so the normal
/// order redex is the first application whose function is an abstraction.
#[inline]
pub fn find_redex(t: &[Node]) -> Option<usize> {
    find_redex_from(t, 0)
}

/// [`find_redex`] for a term with no redex before `from`.  The reduct of a normal-order
/// step at `pos` keeps the nodes before `pos`, so its redex is at `pos - 1` or later.
#[inline]
pub fn find_redex_from(t: &[Node], from: usize) -> Option<usize> {
    t.get(from..)?
        .windows(2)
        .position(|w| w[0] == APP && w[1] == LAM)
        .map(|i| i + from)
}

/// Which redex a reduction step contracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Strategy {
    /// Leftmost-outermost, also under abstractions (reaches the normal form if there is one).
    #[default]
    Normal,
    /// Leftmost-outermost along the application spine only: no step under an abstraction or
    /// inside an argument (stops at a weak head normal form).
    CallByName,
    /// Left to right, weak: the function to a value, then the argument to a value (an
    /// abstraction or a variable), then the redex; no step under an abstraction.
    CallByValue,
    /// Leftmost-innermost, also under abstractions: function, then argument, then the redex.
    Applicative,
    /// The head redex only, also under the abstractions of the head (stops at a head normal form).
    Head,
    /// Normal order with eta: the leftmost-outermost beta redex `(\M N)` or eta redex
    /// `\(M 0)` (0 not free in M), whichever comes first in pre-order (reaches the
    /// beta-eta normal form if there is one).
    NormalEta,
}

impl Strategy {
    /// Every strategy, in a fixed order.
    pub const ALL: [Strategy; 6] = [
        Strategy::Normal,
        Strategy::CallByName,
        Strategy::CallByValue,
        Strategy::Applicative,
        Strategy::Head,
        Strategy::NormalEta,
    ];

    /// Name used in configs and records.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Normal => "normal",
            Strategy::CallByName => "call_by_name",
            Strategy::CallByValue => "call_by_value",
            Strategy::Applicative => "applicative",
            Strategy::Head => "head",
            Strategy::NormalEta => "normal_eta",
        }
    }

    /// The strategy named `name` (see [`Strategy::as_str`]).
    pub fn from_name(name: &str) -> Option<Strategy> {
        Strategy::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// Pre-order index of the redex `strategy` contracts next, if any.
pub fn find_redex_with(t: &[Node], strategy: Strategy) -> Option<usize> {
    fn cbv(t: &[Node], i: usize) -> Option<usize> {
        if t[i] != APP {
            return None; // an abstraction is a value; a variable is stuck (a value too)
        }
        let f = i + 1;
        let a = skip(t, f);
        if let Some(p) = cbv(t, f) {
            return Some(p);
        }
        if let Some(p) = cbv(t, a) {
            return Some(p);
        }
        (t[f] == LAM && t[a] != APP).then_some(i)
    }
    fn innermost(t: &[Node], i: usize) -> Option<usize> {
        if t[i] == LAM {
            return innermost(t, i + 1);
        }
        if t[i] != APP {
            return None;
        }
        let f = i + 1;
        let a = skip(t, f);
        innermost(t, f)
            .or_else(|| innermost(t, a))
            .or((t[f] == LAM).then_some(i))
    }
    match strategy {
        Strategy::Normal => find_redex(t),
        Strategy::CallByName | Strategy::Head => {
            // Walk down the spine: through functions of applications (and, for head
            // reduction, through abstractions) to the first application of an abstraction.
            let mut i = 0;
            loop {
                if t[i] == APP {
                    if t[i + 1] == LAM {
                        return Some(i);
                    }
                    i += 1;
                } else if t[i] == LAM && strategy == Strategy::Head {
                    i += 1;
                } else {
                    return None;
                }
            }
        }
        Strategy::CallByValue => cbv(t, 0),
        Strategy::Applicative => innermost(t, 0),
        Strategy::NormalEta => find_beta_eta_redex(t),
    }
}

/// Whether the variable bound `k` binders above `m`'s root occurs in `m`.
fn occurs(m: &[Node], k: Node) -> bool {
    let mut pending: Vec<Node> = Vec::with_capacity(16);
    let mut b: Node = 0;
    for &n in m {
        if n == APP {
            pending.push(b);
        } else if n == LAM {
            b += 1;
        } else {
            if n - VAR0 == k + b {
                return true;
            }
            if let Some(nb) = pending.pop() {
                b = nb;
            }
        }
    }
    false
}

/// Whether the abstraction at `i` is an eta redex `\(M 0)` with 0 not free in `M`.
pub fn is_eta_redex(t: &[Node], i: usize) -> bool {
    if t[i] != LAM || t[i + 1] != APP {
        return false;
    }
    let f = i + 2;
    let a = skip(t, f);
    t[a] == VAR0 && !occurs(&t[f..a], 0)
}

/// Pre-order index of the leftmost-outermost beta or eta redex.  In pre-order a node comes
/// before everything inside it and everything to its right, so the first redex node is
/// the leftmost-outermost one.
pub fn find_beta_eta_redex(t: &[Node]) -> Option<usize> {
    (0..t.len().saturating_sub(1)).find(|&i| (t[i] == APP && t[i + 1] == LAM) || is_eta_redex(t, i))
}

/// Contract the redex at `pos` into `out` (cleared first): a beta redex (an `APP` followed
/// by a `LAM`) or an eta redex (`\(M 0)` becomes `M` with its free variables lowered by one).
pub fn contract_any(t: &[Node], pos: usize, out: &mut Vec<Node>) {
    contract_any_with(t, pos, out, &mut Scratch::default());
}

/// [`contract_any`] with reusable stacks.
pub fn contract_any_with(t: &[Node], pos: usize, out: &mut Vec<Node>, s: &mut Scratch) {
    contract_any_end(t, pos, out, s);
}

/// [`contract_any_with`], returning the end of the contracted redex's subterm in `t`
/// (`skip(t, pos)`), which the contraction finds anyway.
pub fn contract_any_end(t: &[Node], pos: usize, out: &mut Vec<Node>, s: &mut Scratch) -> usize {
    if t[pos] == APP {
        return contract_end(t, pos, out, s);
    }
    debug_assert!(is_eta_redex(t, pos));
    let f = pos + 2;
    let a = skip(t, f);
    out.clear();
    out.reserve(t.len());
    out.extend_from_slice(&t[..pos]);
    let mut pending: Vec<Node> = Vec::with_capacity(16);
    let mut b: Node = 0;
    for &n in &t[f..a] {
        if n == APP {
            out.push(APP);
            pending.push(b);
        } else if n == LAM {
            out.push(LAM);
            b += 1;
        } else {
            // 0 (at this depth: b) does not occur, so every free index is above it.
            out.push(if n - VAR0 > b { n - 1 } else { n });
            if let Some(nb) = pending.pop() {
                b = nb;
            }
        }
    }
    out.extend_from_slice(&t[a + 1..]);
    a + 1
}

/// Reusable stacks for substitution (a reduction loop allocates nothing once they have grown).
#[derive(Default, Debug, Clone)]
pub struct Scratch {
    pending: Vec<Node>,
    arg_pending: Vec<Node>,
    /// Per node of the current argument: 1 for a free variable, else 0.
    free: Vec<Node>,
}

/// `free[i] = 1` where `arg[i]` is a variable free in `arg`, else 0.
fn free_mask(arg: &[Node], pending: &mut Vec<Node>, free: &mut Vec<Node>) {
    pending.clear();
    free.clear();
    free.reserve(arg.len());
    let mut b: Node = 0;
    for &n in arg {
        if n == APP {
            free.push(0);
            pending.push(b);
        } else if n == LAM {
            free.push(0);
            b += 1;
        } else {
            free.push(Node::from(n - VAR0 >= b));
            if let Some(nb) = pending.pop() {
                b = nb;
            }
        }
    }
}

/// Append `body[0 := arg]`: the body of an abstraction with its variable replaced by `arg`
/// (shifted under the binders it crosses) and the body's other free variables lowered by one.
pub fn substitute_into(body: &[Node], arg: &[Node], out: &mut Vec<Node>) {
    substitute_with(body, arg, out, &mut Scratch::default());
}

/// [`substitute_into`] with reusable stacks.
pub fn substitute_with(body: &[Node], arg: &[Node], out: &mut Vec<Node>, s: &mut Scratch) {
    let Scratch {
        pending,
        arg_pending,
        free,
    } = s;
    pending.clear();
    // Which nodes of `arg` are free variables, computed at the first copy under a binder;
    // a copy under `c` binders raises exactly those by `c`.
    let mut have_free = false;
    let mut c: Node = 0; // binders inside the body above the current node
    for &n in body {
        if n == APP {
            out.push(APP);
            pending.push(c);
        } else if n == LAM {
            out.push(LAM);
            c += 1;
        } else {
            let v = n - VAR0;
            if v == c {
                if c == 0 {
                    out.extend_from_slice(arg);
                } else {
                    if !have_free {
                        free_mask(arg, arg_pending, free);
                        have_free = true;
                    }
                    out.extend(arg.iter().zip(free.iter()).map(|(&a, &f)| a + c * f));
                }
            } else if v > c {
                out.push(n - 1);
            } else {
                out.push(n);
            }
            if let Some(nc) = pending.pop() {
                c = nc;
            }
        }
    }
}

/// Contract the redex at `pos` (an `APP` followed by a `LAM`) into `out` (cleared first).
pub fn contract_at(t: &[Node], pos: usize, out: &mut Vec<Node>) {
    contract_with(t, pos, out, &mut Scratch::default());
}

/// [`contract_at`] with reusable stacks.
pub fn contract_with(t: &[Node], pos: usize, out: &mut Vec<Node>, s: &mut Scratch) {
    contract_end(t, pos, out, s);
}

/// [`contract_with`], returning the end of the redex's subterm (`skip(t, pos)`).
fn contract_end(t: &[Node], pos: usize, out: &mut Vec<Node>, s: &mut Scratch) -> usize {
    debug_assert!(t[pos] == APP && t[pos + 1] == LAM);
    let body_end = skip(t, pos + 2);
    let arg_end = skip(t, body_end);
    out.clear();
    out.reserve(t.len() + (arg_end - body_end) * 4);
    out.extend_from_slice(&t[..pos]);
    substitute_with(&t[pos + 2..body_end], &t[body_end..arg_end], out, s);
    out.extend_from_slice(&t[arg_end..]);
    arg_end
}

/// One normal-order step: the reduct and the position of the contracted redex.
pub fn step(t: &[Node]) -> Option<(Vec<Node>, usize)> {
    let pos = find_redex(t)?;
    let mut out = Vec::new();
    contract_at(t, pos, &mut out);
    Some((out, pos))
}

/// How a trace ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Reached a term without a redex.
    NormalForm,
    /// Took `max_steps` steps and a redex remains.
    StepCap,
    /// The next reduct would be larger than `max_size` nodes (that step is not taken).
    SizeCap,
    /// The next reduct equals a term already in the trace (the step that closes the cycle
    /// is included, the trace stops there).
    Cycle,
    /// The strategy has no redex to contract but the term is not normal (a redex is left
    /// under an abstraction or in an argument the strategy does not enter).
    StrategyNormalForm,
}

impl Status {
    /// Name used in records and telemetry.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::NormalForm => "normal_form",
            Status::StepCap => "step_cap",
            Status::SizeCap => "size_cap",
            Status::Cycle => "cycle",
            Status::StrategyNormalForm => "strategy_normal_form",
        }
    }
}

/// A reduction trace: `terms[0]` is the start, `terms[i+1]` the reduct of `terms[i]`
/// whose contracted redex was at `redexes[i]`.
#[derive(Debug, Clone)]
pub struct Trace {
    pub terms: Vec<Vec<Node>>,
    pub redexes: Vec<usize>,
    pub status: Status,
}

impl Trace {
    /// Number of steps taken.
    pub fn steps(&self) -> usize {
        self.redexes.len()
    }
}

/// Reduce in normal order until a normal form, `max_steps` steps, a reduct over
/// `max_size` nodes, or a repeated term.
pub fn trace(start: &[Node], max_steps: usize, max_size: usize) -> Trace {
    trace_with(start, max_steps, max_size, Strategy::Normal)
}

/// [`trace`] with the steps `strategy` takes; a term it cannot reduce further ends the trace
/// as `NormalForm` if it has no redex at all, else as `StrategyNormalForm`.
pub fn trace_with(start: &[Node], max_steps: usize, max_size: usize, strategy: Strategy) -> Trace {
    let mut terms = vec![start.to_vec()];
    let mut redexes = Vec::new();
    // Hashes of terms seen; a hash hit is confirmed against the stored terms.
    let mut seen: HashSet<u64> = HashSet::new();
    seen.insert(xxhash_rust::xxh3::xxh3_64(as_bytes(start)));
    let status = loop {
        let cur = terms.last().expect("non-empty");
        let Some(pos) = find_redex_with(cur, strategy) else {
            break if strategy == Strategy::Normal || find_redex(cur).is_none() {
                Status::NormalForm
            } else {
                Status::StrategyNormalForm
            };
        };
        if redexes.len() >= max_steps {
            break Status::StepCap;
        }
        let mut next = Vec::new();
        contract_any(cur, pos, &mut next);
        if next.len() > max_size {
            break Status::SizeCap;
        }
        let h = xxhash_rust::xxh3::xxh3_64(as_bytes(&next));
        let repeated = !seen.insert(h) && terms.contains(&next);
        redexes.push(pos);
        terms.push(next);
        if repeated {
            break Status::Cycle;
        }
    };
    Trace {
        terms,
        redexes,
        status,
    }
}

/// Normal form by normal-order reduction, with the same caps as [`trace`] but keeping
/// only the current term (no cycle detection: a cycle runs into the step cap).
pub fn normalize(start: &[Node], max_steps: usize, max_size: usize) -> (Vec<Node>, usize, Status) {
    let mut cur = start.to_vec();
    let mut next = Vec::new();
    let mut steps = 0;
    loop {
        let Some(pos) = find_redex(&cur) else {
            return (cur, steps, Status::NormalForm);
        };
        if steps >= max_steps {
            return (cur, steps, Status::StepCap);
        }
        contract_at(&cur, pos, &mut next);
        if next.len() > max_size {
            return (cur, steps, Status::SizeCap);
        }
        std::mem::swap(&mut cur, &mut next);
        steps += 1;
    }
}

/// View a node array as bytes (for hashing).
#[inline]
pub fn as_bytes(t: &[Node]) -> &[u8] {
    // SAFETY: u32 has no padding and any byte pattern is a valid u8.
    unsafe { std::slice::from_raw_parts(t.as_ptr() as *const u8, std::mem::size_of_val(t)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::term::{parse, parse_bytes, to_string};

    fn p(s: &str) -> Vec<Node> {
        parse(s).unwrap()
    }

    fn nf(s: &str) -> String {
        let (t, _, st) = normalize(&p(s), 10_000, 100_000);
        assert_eq!(st, Status::NormalForm, "{s}");
        to_string(&t)
    }

    fn church(n: usize) -> String {
        let mut body = "0".to_string();
        for _ in 0..n {
            body = format!("(1 {body})");
        }
        format!("\\\\{body}")
    }

    const PLUS: &str = "\\\\\\\\((3 1) ((2 1) 0))";
    const MULT: &str = "\\\\\\(2 (1 0))";
    const SUCC: &str = "\\\\\\(1 ((2 1) 0))";

    #[test]
    fn identity_and_k_and_s() {
        assert_eq!(nf("(\\0 \\0)"), "\\0");
        // K a b = a, with a = \0, b = \\1
        assert_eq!(nf("((\\\\1 \\0) \\\\1)"), "\\0");
        // S K K = I (extensionally); normal form of S K K is \0
        let s = "\\\\\\((2 0) (1 0))";
        let k = "\\\\1";
        assert_eq!(nf(&format!("(({s} {k}) {k})")), "\\0");
    }

    #[test]
    fn church_arithmetic() {
        for a in 0..4 {
            for b in 0..4 {
                let plus = format!("(({PLUS} {}) {})", church(a), church(b));
                assert_eq!(nf(&plus), church(a + b));
                let mult = format!("(({MULT} {}) {})", church(a), church(b));
                assert_eq!(nf(&mult), church(a * b));
            }
            assert_eq!(nf(&format!("({SUCC} {})", church(a))), church(a + 1));
        }
    }

    #[test]
    fn shifting_under_binders() {
        // (\ \ 1) applied to a term with a free variable under one binder: the free
        // variable of the argument must be shifted when it moves under the inner binder.
        let t = parse_bytes(b"(\\\\1 0)", true).unwrap();
        let (r, pos) = step(&t).unwrap();
        assert_eq!(pos, 0);
        assert_eq!(to_string(&r), "\\1");
        // Outer free variables of the body are lowered by one.
        let t = parse_bytes(b"(\\2 \\0)", true).unwrap();
        assert_eq!(to_string(&step(&t).unwrap().0), "1");
        // Redex under a binder, argument refers to that binder.
        let t = p("\\(\\\\(1 2) 0)");
        assert_eq!(to_string(&step(&t).unwrap().0), "\\\\(1 1)");
    }

    #[test]
    fn normal_order_picks_leftmost_outermost() {
        // (K I) omega: normal order discards omega.
        let t = p("((\\\\1 \\0) (\\(0 0) \\(0 0)))");
        assert_eq!(find_redex(&t), Some(1));
        assert_eq!(nf("((\\\\1 \\0) (\\(0 0) \\(0 0)))"), "\\0");
        // The outer redex comes before one inside the argument.
        let t = p("(\\0 (\\0 \\0))");
        assert_eq!(find_redex(&t), Some(0));
    }

    #[test]
    fn strategies_pick_their_redex() {
        // K applied to (I I), then to \x.(I x): ((\\1 (\0 \0)) \(\0 0)).
        let t = p(r"((\\1 (\0 \0)) \(\0 0))");
        // Normal and call-by-name: the outer redex (K applied) at 1.
        assert_eq!(find_redex_with(&t, Strategy::Normal), Some(1));
        assert_eq!(find_redex_with(&t, Strategy::CallByName), Some(1));
        assert_eq!(find_redex_with(&t, Strategy::Head), Some(1));
        // Call-by-value: the argument (\0 \0) of K first.
        assert_eq!(find_redex_with(&t, Strategy::CallByValue), Some(5));
        assert_eq!(find_redex_with(&t, Strategy::Applicative), Some(5));
        // Under a lambda only normal, applicative and head reduce.
        let u = p(r"\(\0 0)");
        assert_eq!(find_redex_with(&u, Strategy::CallByName), None);
        assert_eq!(find_redex_with(&u, Strategy::CallByValue), None);
        assert_eq!(find_redex_with(&u, Strategy::Head), Some(1));
        assert_eq!(find_redex_with(&u, Strategy::Applicative), Some(1));
        let tr = trace_with(&u, 10, 100, Strategy::CallByName);
        assert_eq!((tr.steps(), tr.status), (0, Status::StrategyNormalForm));
        for s in Strategy::ALL {
            assert_eq!(Strategy::from_name(s.as_str()), Some(s));
        }
    }

    #[test]
    fn omega_cycles() {
        let tr = trace(&p("(\\(0 0) \\(0 0))"), 100, 1000);
        assert_eq!(tr.status, Status::Cycle);
        assert_eq!(tr.steps(), 1);
        assert_eq!(to_string(&tr.terms[1]), "(\\(0 0) \\(0 0))");
    }

    #[test]
    fn caps() {
        // Omega3 = (\(0 0 0)) applied to itself grows: size cap.
        let w3 = "(\\((0 0) 0) \\((0 0) 0))";
        let tr = trace(&p(w3), 1000, 60);
        assert_eq!(tr.status, Status::SizeCap);
        assert!(tr.terms.iter().all(|t| t.len() <= 60));
        let tr = trace(&p(w3), 2, 100_000);
        assert_eq!(tr.status, Status::StepCap);
        assert_eq!(tr.steps(), 2);
        let tr = trace(&p("\\0"), 10, 10);
        assert_eq!((tr.status, tr.steps()), (Status::NormalForm, 0));
    }

    #[test]
    fn eta_steps() {
        let eta = |s: &str| {
            let t = p(s);
            let pos = find_redex_with(&t, Strategy::NormalEta)?;
            let mut out = Vec::new();
            contract_any(&t, pos, &mut out);
            Some((to_string(&out), pos))
        };
        // \(1 0) under a binder: eta gives 0 (the outer variable, lowered).
        assert_eq!(eta("\\\\(1 0)"), Some(("\\0".to_string(), 1)));
        // \(0 0): 0 is free in the function, no eta redex.
        assert_eq!(eta("\\(0 0)"), None);
        // The outermost redex first: the beta redex inside comes after the eta redex.
        assert_eq!(eta("\\\\((\\0 1) 0)"), Some(("\\(\\0 0)".to_string(), 1)));
        // A beta redex left of an eta redex wins.
        assert_eq!(
            eta("((\\0 \\0) \\(\\0 0))"),
            Some(("(\\0 \\(\\0 0))".to_string(), 1))
        );
        let tr = trace_with(&p("\\\\((\\0 1) 0)"), 10, 100, Strategy::NormalEta);
        assert_eq!(tr.status, Status::NormalForm);
        assert_eq!(to_string(tr.terms.last().unwrap()), "\\0");
    }
}
