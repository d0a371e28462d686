//! Train/val/test assignment, bit for bit the same as `datacore.split_of`.
//!
//! `bucket = xxh64(salt_utf8 + key_utf8, seed=0) % 1000`; `train` if `bucket < t1`,
//! `val` if `bucket < t2`, else `test`, with `t1 = round(1000*r_train)` and
//! `t2 = round(1000*(r_train + r_val))` computed on the Python side.

use xxhash_rust::xxh64::Xxh64;

/// Index of each split in arrays: train, val, test.
pub const SPLITS: [&str; 3] = ["train", "val", "test"];

/// The thresholds and salt of a split assignment.
#[derive(Clone, Debug)]
pub struct Splitter {
    pub t1: u32,
    pub t2: u32,
    pub salt: Vec<u8>,
}

impl Splitter {
    /// Bucket in [0, 1000) of a key.
    pub fn bucket(&self, key: &[u8]) -> u32 {
        let mut h = Xxh64::new(0);
        h.update(&self.salt);
        h.update(key);
        (h.digest() % 1000) as u32
    }

    /// Split index (0 train, 1 val, 2 test) of a key.
    pub fn split(&self, key: &[u8]) -> usize {
        let b = self.bucket(key);
        if b < self.t1 {
            0
        } else if b < self.t2 {
            1
        } else {
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // xxh64 of the empty input with seed 0 is 0xEF46DB3751D8E999 (reference vector).
        let s = Splitter {
            t1: 800,
            t2: 900,
            salt: vec![],
        };
        assert_eq!(s.bucket(b""), (0xEF46_DB37_51D8_E999u64 % 1000) as u32);
        let salted = Splitter {
            t1: 800,
            t2: 900,
            salt: b"ab".to_vec(),
        };
        assert_eq!(salted.bucket(b"c"), s.bucket(b"abc"));
    }
}
