//! Terms as flat pre-order arrays of nodes, and their canonical text form.
//!
//! A term is a `Vec<Node>` in pre-order: [`APP`] is followed by its function then its
//! argument, [`LAM`] by its body, and a variable is `VAR0 + index` (de Bruijn, 0 = nearest
//! binder).  The flat form makes the leftmost-outermost redex the *first* `APP` whose next
//! node is a `LAM`, keeps terms in one allocation, and lets unchanged parts of a term be
//! copied with `memcpy` during reduction.
//!
//! Canonical text: `term := INDEX | "\" term | "(" term " " term ")"`, no other spaces.

use std::fmt;

/// One node of a pre-order term array.
pub type Node = u32;
/// Application node: followed by the function, then the argument.
pub const APP: Node = 0;
/// Abstraction node: followed by its body.
pub const LAM: Node = 1;
/// Variable with de Bruijn index `i` is `VAR0 + i`.
pub const VAR0: Node = 2;

/// A parse error with the byte position (0-based) where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub pos: usize,
    pub msg: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "position {}: {}", self.pos, self.msg)
    }
}

impl std::error::Error for ParseError {}

/// Index one past the end of the subterm starting at `i`.
#[inline]
pub fn skip(t: &[Node], i: usize) -> usize {
    // `need` = subterms still to be read; an APP adds one, a variable completes one, an
    // abstraction neither.  Branch-free per node: only the loop exit is a branch.
    let mut need: isize = 1;
    for (k, &n) in t[i..].iter().enumerate() {
        need += isize::from(n == APP) - isize::from(n >= VAR0);
        if need == 0 {
            return i + k + 1;
        }
    }
    panic!("skip: the subterm at {i} runs past the end of the term");
}

/// Parse the canonical text form of a closed term (open terms are refused).
pub fn parse(s: &str) -> Result<Vec<Node>, ParseError> {
    parse_bytes(s.as_bytes(), false)
}

/// Parse canonical text; with `allow_open`, free variables are accepted.
pub fn parse_bytes(b: &[u8], allow_open: bool) -> Result<Vec<Node>, ParseError> {
    let mut out = Vec::with_capacity(b.len());
    let mut p = Parser {
        b,
        i: 0,
        allow_open,
    };
    p.term(&mut out, 0, 0)?;
    if p.i != b.len() {
        return Err(p.err(format!(
            "unexpected {} after the end of the term",
            p.describe()
        )));
    }
    Ok(out)
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
    allow_open: bool,
}

/// Nesting beyond this is refused rather than risking the parser's stack.
const MAX_NESTING: usize = 10_000;

impl Parser<'_> {
    fn err(&self, msg: String) -> ParseError {
        ParseError { pos: self.i, msg }
    }

    fn describe(&self) -> String {
        match self.b.get(self.i) {
            None => "end of input".to_string(),
            Some(c) if c.is_ascii_graphic() => format!("'{}'", *c as char),
            Some(c) if *c == b' ' => "space".to_string(),
            Some(c) => format!("byte 0x{c:02x}"),
        }
    }

    fn expect(&mut self, c: u8, what: &str) -> Result<(), ParseError> {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(format!("expected {what}, found {}", self.describe())))
        }
    }

    fn term(&mut self, out: &mut Vec<Node>, binders: usize, nest: usize) -> Result<(), ParseError> {
        if nest > MAX_NESTING {
            return Err(self.err(format!("term nested deeper than {MAX_NESTING}")));
        }
        match self.b.get(self.i) {
            Some(b'\\') => {
                self.i += 1;
                out.push(LAM);
                self.term(out, binders + 1, nest + 1)
            }
            Some(b'(') => {
                self.i += 1;
                out.push(APP);
                self.term(out, binders, nest + 1)?;
                self.expect(b' ', "a single space between function and argument")?;
                self.term(out, binders, nest + 1)?;
                self.expect(b')', "')'")
            }
            Some(c) if c.is_ascii_digit() => {
                let start = self.i;
                if *c == b'0' && self.b.get(self.i + 1).is_some_and(|d| d.is_ascii_digit()) {
                    return Err(self.err("index with a leading zero".to_string()));
                }
                let mut v: u64 = 0;
                while let Some(d) = self.b.get(self.i).filter(|d| d.is_ascii_digit()) {
                    v = v * 10 + u64::from(d - b'0');
                    if v > u64::from(u32::MAX - VAR0) {
                        return Err(ParseError {
                            pos: start,
                            msg: "index too large".to_string(),
                        });
                    }
                    self.i += 1;
                }
                if !self.allow_open && v as usize >= binders {
                    return Err(ParseError {
                        pos: start,
                        msg: format!("free variable {v} (only {binders} binder(s) in scope); terms must be closed"),
                    });
                }
                out.push(VAR0 + v as Node);
                Ok(())
            }
            _ => Err(self.err(format!(
                "expected '\\', '(' or an index, found {}",
                self.describe()
            ))),
        }
    }
}

/// Append the canonical text of `t` to `out`; `lam` is the text of a lambda
/// (`b"\\"` for plain text, `b"\\\\"` inside a JSON string).
pub fn write_term(t: &[Node], lam: &[u8], out: &mut Vec<u8>) {
    // Iterative printer: the stack holds what to emit when a subterm is complete.
    // 0 = nothing, 1 = " " then the argument, 2 = ")".
    let mut stack: Vec<u8> = Vec::with_capacity(64);
    for &n in t {
        if n == APP {
            out.push(b'(');
            stack.push(2);
            stack.push(1);
        } else if n == LAM {
            out.extend_from_slice(lam);
        } else {
            write_u32(n - VAR0, out);
            // A completed subterm: close finished applications, or move to an argument.
            while let Some(top) = stack.pop() {
                if top == 1 {
                    out.push(b' ');
                    break;
                }
                out.push(b')');
            }
        }
    }
}

#[inline]
fn write_u32(mut v: u32, out: &mut Vec<u8>) {
    if v < 10 {
        out.push(b'0' + v as u8);
        return;
    }
    let mut buf = [0u8; 10];
    let mut i = buf.len();
    while v > 0 {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&buf[i..]);
}

/// Canonical text of a term.
pub fn to_string(t: &[Node]) -> String {
    let mut out = Vec::with_capacity(t.len() * 2);
    write_term(t, b"\\", &mut out);
    String::from_utf8(out).expect("ASCII")
}

/// Readable named form, e.g. `λa. λb. a b` (binders named a, b, ..., z, a1, ...).
pub fn to_named(t: &[Node]) -> String {
    fn name(i: usize) -> String {
        let c = (b'a' + (i % 26) as u8) as char;
        if i < 26 {
            c.to_string()
        } else {
            format!("{c}{}", i / 26)
        }
    }
    fn go(t: &[Node], i: usize, depth: usize, out: &mut String, ctx: u8) -> usize {
        // ctx: 0 = top/body (no parens), 1 = function position, 2 = argument position
        let n = t[i];
        if n == LAM {
            if ctx != 0 {
                out.push('(');
            }
            out.push('λ');
            out.push_str(&name(depth));
            out.push_str(". ");
            let j = go(t, i + 1, depth + 1, out, 0);
            if ctx != 0 {
                out.push(')');
            }
            j
        } else if n == APP {
            if ctx == 2 {
                out.push('(');
            }
            let j = go(t, i + 1, depth, out, 1);
            out.push(' ');
            let k = go(t, j, depth, out, 2);
            if ctx == 2 {
                out.push(')');
            }
            k
        } else {
            let v = (n - VAR0) as usize;
            if v < depth {
                out.push_str(&name(depth - 1 - v));
            } else {
                out.push_str(&format!("free{}", v - depth));
            }
            i + 1
        }
    }
    let mut s = String::new();
    if !t.is_empty() {
        go(t, 0, 0, &mut s, 0);
    }
    s
}

/// Number of nodes (variables, abstractions and applications).
#[inline]
pub fn size(t: &[Node]) -> usize {
    t.len()
}

/// Height of the term tree: a variable has depth 0, `\M` and `(M N)` one more than their
/// deepest child.
pub fn depth(t: &[Node]) -> usize {
    depth_with(t, &mut Vec::new())
}

/// [`depth`] with a caller's scratch stack (no allocation once it has grown).
pub fn depth_with(t: &[Node], pending: &mut Vec<usize>) -> usize {
    // Pre-order walk with a stack of the depths of pending arguments, written without
    // data-dependent branches (node kinds are unpredictable): every node stores `d + 1` at
    // the top, an application keeps it (push), a variable pops the entry below it.  Slot 0
    // is 0, what the last variable pops.
    pending.clear();
    pending.resize(t.len() + 2, 0);
    let st = pending.as_mut_slice();
    let (mut sp, mut d, mut best) = (1usize, 0usize, 0usize);
    for &n in t {
        best = best.max(d);
        st[sp] = d + 1;
        sp += usize::from(n == APP);
        let is_var = n >= VAR0;
        let top = st[sp - 1];
        d = if is_var { top } else { d + 1 };
        sp -= usize::from(is_var);
    }
    best
}

/// Number of abstractions enclosing the node at pre-order index `pos`.
pub fn binders_above(t: &[Node], pos: usize) -> usize {
    let mut pending: Vec<usize> = Vec::with_capacity(32);
    let mut b = 0usize;
    for (i, &n) in t.iter().enumerate() {
        if i == pos {
            return b;
        }
        if n == APP {
            pending.push(b);
        } else if n == LAM {
            b += 1;
        } else if let Some(nb) = pending.pop() {
            b = nb;
        }
    }
    b
}

/// (ancestors, abstractions among them) of the node at pre-order index `pos`, in one pass.
pub fn place_of(t: &[Node], pos: usize) -> (usize, usize) {
    place_of_with(t, pos, &mut Vec::new())
}

/// [`place_of`] with a caller's scratch stack.
pub fn place_of_with(t: &[Node], pos: usize, pending: &mut Vec<(usize, usize)>) -> (usize, usize) {
    // As in [`depth_with`]: branch-free, slot 0 holds what the last variable pops.
    // Past the end: the place of the last node (a variable pops nothing there).
    let end = if pos >= t.len() {
        t.len().saturating_sub(1)
    } else {
        pos
    };
    pending.clear();
    pending.resize(end + 2, (0, 0));
    let st = pending.as_mut_slice();
    let (mut sp, mut d, mut b) = (1usize, 0usize, 0usize);
    for &n in &t[..end] {
        st[sp] = (d + 1, b);
        sp += usize::from(n == APP);
        let is_var = n >= VAR0;
        let is_lam = n == LAM;
        let top = st[sp - 1];
        d = if is_var { top.0 } else { d + 1 };
        b = if is_var {
            top.1
        } else {
            b + usize::from(is_lam)
        };
        sp -= usize::from(is_var);
    }
    (d, b)
}

/// Token ids of the canonical text: `\` 3, `(` 4, `)` 5, space 6, index `i` 7 + i
/// (0, 1, 2 are left for padding, begin and end).  Ids are appended to `out` as JSON
/// numbers separated by commas; returns how many were written.
pub fn write_token_ids(t: &[Node], out: &mut Vec<u8>) -> usize {
    let mut stack: Vec<u8> = Vec::with_capacity(64);
    let mut n_tok = 0usize;
    let mut tok = |id: u32, out: &mut Vec<u8>| {
        if n_tok > 0 {
            out.push(b',');
        }
        write_u32(id, out);
        n_tok += 1;
    };
    for &n in t {
        if n == APP {
            tok(4, out);
            stack.push(2);
            stack.push(1);
        } else if n == LAM {
            tok(3, out);
        } else {
            tok(7 + (n - VAR0), out);
            while let Some(top) = stack.pop() {
                if top == 1 {
                    tok(6, out);
                    break;
                }
                tok(5, out);
            }
        }
    }
    n_tok
}

/// Number of ancestors of the node at pre-order index `pos` (its depth in the tree).
pub fn node_depth(t: &[Node], pos: usize) -> usize {
    let mut pending: Vec<usize> = Vec::with_capacity(32);
    let mut d = 0usize;
    for (i, &n) in t.iter().enumerate() {
        if i == pos {
            return d;
        }
        if n == APP {
            pending.push(d + 1);
            d += 1;
        } else if n == LAM {
            d += 1;
        } else if let Some(nd) = pending.pop() {
            d = nd;
        }
    }
    d
}

/// True if every variable is bound.
pub fn is_closed(t: &[Node]) -> bool {
    let mut pending: Vec<usize> = Vec::with_capacity(32);
    let mut b = 0usize;
    for &n in t {
        if n == APP {
            pending.push(b);
        } else if n == LAM {
            b += 1;
        } else {
            if (n - VAR0) as usize >= b {
                return false;
            }
            if let Some(nb) = pending.pop() {
                b = nb;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for s in [
            "\\0",
            "(\\(0 0) \\(0 0))",
            "\\\\\\((2 0) (1 0))",
            "\\\\(1 \\(12 0))",
        ] {
            let allow = s.contains("12");
            let t = parse_bytes(s.as_bytes(), allow).unwrap();
            assert_eq!(to_string(&t), s);
        }
    }

    #[test]
    fn parse_errors_name_position() {
        let e = parse("(\\0 \\0").unwrap_err();
        assert_eq!(e.pos, 6);
        let e = parse("\\1").unwrap_err();
        assert_eq!(e.pos, 1);
        assert!(e.msg.contains("free variable 1"));
        let e = parse("(\\0  \\0)").unwrap_err();
        assert_eq!(e.pos, 4);
        let e = parse("\\0 ").unwrap_err();
        assert_eq!(e.pos, 2);
        let e = parse("").unwrap_err();
        assert_eq!(e.pos, 0);
        let e = parse("\\01").unwrap_err();
        assert_eq!(e.pos, 1);
    }

    #[test]
    fn depth_and_place_match_a_recursive_walk() {
        // (height, [(ancestors, lambdas above)] per node) by plain recursion.
        fn walk(
            t: &[Node],
            i: usize,
            d: usize,
            b: usize,
            out: &mut Vec<(usize, usize)>,
        ) -> (usize, usize) {
            out.push((d, b));
            match t[i] {
                APP => {
                    let (j, h1) = walk(t, i + 1, d + 1, b, out);
                    let (k, h2) = walk(t, j, d + 1, b, out);
                    (k, 1 + h1.max(h2))
                }
                LAM => {
                    let (j, h) = walk(t, i + 1, d + 1, b + 1, out);
                    (j, 1 + h)
                }
                _ => (i + 1, 0),
            }
        }
        let s = crate::sample::Sampler::new(80, 12);
        let mut rng = crate::rng::Rng::new(9);
        let (mut t, mut st, mut pl) = (Vec::new(), Vec::new(), Vec::new());
        for (size, dmax) in [(1, 0), (2, 1), (7, 4), (30, 8), (80, 12)] {
            for _ in 0..50 {
                if s.sample(size, dmax, &mut rng, &mut t).is_none() {
                    t = parse("\\0").unwrap();
                }
                let mut places = Vec::new();
                let (_, h) = walk(&t, 0, 0, 0, &mut places);
                assert_eq!(depth_with(&t, &mut st), h);
                assert_eq!(depth(&t), h);
                for (pos, want) in places.iter().enumerate() {
                    assert_eq!(place_of_with(&t, pos, &mut pl), *want);
                    assert_eq!(node_depth(&t, pos), want.0);
                    assert_eq!(binders_above(&t, pos), want.1);
                }
            }
        }
    }

    #[test]
    fn measures() {
        let t = parse("(\\(0 0) \\(0 0))").unwrap();
        assert_eq!(size(&t), 9);
        assert_eq!(depth(&t), 3);
        assert_eq!(depth(&parse("\\0").unwrap()), 1);
        assert_eq!(node_depth(&t, 5), 1);
        assert_eq!(node_depth(&t, 4), 3);
        assert_eq!(binders_above(&t, 3), 1);
        assert!(is_closed(&t));
        assert_eq!(to_named(&parse("\\\\(1 0)").unwrap()), "λa. λb. a b");
    }
}
