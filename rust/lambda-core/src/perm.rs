//! A keyed pseudo-random permutation of `[0, n)` for any `n < 2^126`: a balanced Feistel
//! network over the smallest even-bit power of two >= n, with cycle walking.
//!
//! Drawing `perm(key)` for distinct keys gives distinct, uniformly spread ranks: the
//! sampler uses it to draw start terms of small cells *without replacement* across shards.

use xxhash_rust::xxh64::xxh64;

const ROUNDS: u32 = 8;

/// A permutation of `[0, n)` chosen by `key`.
#[derive(Clone, Debug)]
pub struct Perm {
    n: u128,
    half: u32,
    mask: u128,
    key: u64,
}

impl Perm {
    /// The permutation of `[0, n)` selected by `key` (n >= 1).
    pub fn new(n: u128, key: u64) -> Perm {
        assert!((1..(1u128 << 126)).contains(&n));
        let bits = (128 - (n - 1).leading_zeros()).max(2);
        let half = bits.div_ceil(2);
        Perm {
            n,
            half,
            mask: (1u128 << half) - 1,
            key,
        }
    }

    fn round(&self, i: u32, x: u128) -> u128 {
        let mut b = [0u8; 20];
        b[..16].copy_from_slice(&x.to_le_bytes());
        b[16..].copy_from_slice(&i.to_le_bytes());
        let lo = xxh64(&b, self.key) as u128;
        let hi = if self.half > 64 {
            (xxh64(&b, self.key ^ 0x9E37_79B9_7F4A_7C15) as u128) << 64
        } else {
            0
        };
        (hi | lo) & self.mask
    }

    fn feistel(&self, x: u128) -> u128 {
        let (mut l, mut r) = (x >> self.half, x & self.mask);
        for i in 0..ROUNDS {
            let t = l ^ self.round(i, r);
            l = r;
            r = t;
        }
        (l << self.half) | r
    }

    /// The image of `x` (< n): walk the cycle until the value falls back inside `[0, n)`.
    pub fn apply(&self, x: u128) -> u128 {
        assert!(x < self.n);
        let mut y = self.feistel(x);
        while y >= self.n {
            y = self.feistel(y);
        }
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_a_permutation() {
        for n in [1u128, 2, 3, 7, 100, 1000, 4097] {
            let p = Perm::new(n, 42);
            let mut seen = vec![false; n as usize];
            for x in 0..n {
                let y = p.apply(x);
                assert!(!seen[y as usize]);
                seen[y as usize] = true;
            }
        }
        let big = Perm::new(1u128 << 100, 7);
        assert!(big.apply(5) < (1u128 << 100));
        assert_ne!(Perm::new(1000, 1).apply(3), Perm::new(1000, 2).apply(3));
    }
}
