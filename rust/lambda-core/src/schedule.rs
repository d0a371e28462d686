//! The (size, depth bound) cells start terms are drawn from, and their weights.

use crate::sample::Sampler;

/// One cell: start terms of exactly `size` nodes and depth at most `depth`, drawn with
/// probability proportional to `weight`.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    pub size: usize,
    pub depth: usize,
    pub weight: f64,
}

/// The seed's ten complexity cycles (chunk_id % 10 -> depth, size), in cycle order.
pub const SEED_CYCLES: [(usize, usize); 10] = [
    (80, 6),
    (100, 7),
    (120, 8),
    (140, 9),
    (160, 10),
    (180, 11),
    (200, 12),
    (150, 13),
    (130, 14),
    (110, 15),
];

/// The default schedule: the seed's ten cycles, equal weights.
///
/// With depth = tree height (a variable has depth 0) every cycle is feasible: the largest
/// closed term of depth 6 has 95 nodes.  Infeasible cells in a user schedule are refused
/// by [`infeasible`], never changed.
pub fn seed_schedule() -> Vec<Cell> {
    SEED_CYCLES
        .iter()
        .map(|&(size, depth)| Cell {
            size,
            depth,
            weight: 1.0,
        })
        .collect()
}

/// For each cell that holds no closed term, a message saying why (empty if all are fine).
pub fn infeasible(cells: &[Cell]) -> Vec<String> {
    let max_size = cells.iter().map(|c| c.size).max().unwrap_or(1);
    let max_depth = cells.iter().map(|c| c.depth).max().unwrap_or(0);
    let s = Sampler::shared(max_size, max_depth);
    cells
        .iter()
        .filter(|c| c.size == 0 || s.count(c.size, c.depth) == num_bigint::BigUint::from(0u8))
        .map(|c| {
            let m = s.max_feasible_size(c.depth);
            format!(
                "cell size={} depth={} holds no closed term: the largest closed term of depth <= {} has {} node(s)",
                c.size, c.depth, c.depth, m
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_schedule_is_feasible_and_bad_cells_are_named() {
        let cells = seed_schedule();
        assert_eq!(cells.len(), 10);
        assert!(infeasible(&cells).is_empty());
        let bad = infeasible(&[
            Cell {
                size: 100,
                depth: 6,
                weight: 1.0,
            },
            Cell {
                size: 90,
                depth: 6,
                weight: 1.0,
            },
        ]);
        assert_eq!(bad.len(), 1);
        assert!(bad[0].contains("size=100 depth=6"), "{}", bad[0]);
        assert!(bad[0].contains("95"), "{}", bad[0]);
    }
}
