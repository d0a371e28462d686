//! Untyped lambda calculus with de Bruijn indices: canonical text, normal-order
//! reduction traces, a uniform sampler of closed terms by size and depth bound, and a
//! parallel, deterministic shard writer for training datasets.
//!
//! Pure Rust; the Python bindings live in `packages/lambdagen`.

pub mod perm;
pub mod printed;
pub mod reduce;
pub mod rng;
pub mod sample;
pub mod schedule;
pub mod split;
pub mod term;
pub mod writer;
