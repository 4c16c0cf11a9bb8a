//! A split-block Bloom filter (the layout Parquet uses): each key sets one bit in each of
//! the eight 32-bit words of one 256-bit block, so a lookup touches one cache line.

/// Odd constants that spread a key's 32 hash bits over the eight words (Parquet's salts).
const SALT: [u32; 8] = [
    0x47b6137b, 0x44974d91, 0x8824ad5b, 0xa2b7289d, 0x705495c7, 0x2df1424b, 0x9efc4947, 0x5c6bfb31,
];

pub struct Bloom {
    blocks: Vec<[u32; 8]>,
}

impl Bloom {
    /// Room for `keys` keys at about `bits_per_key` bits each (10 bits: about 1% false
    /// positives).
    pub fn new(keys: u64, bits_per_key: u64) -> Bloom {
        let blocks = (keys * bits_per_key).div_ceil(256).max(1) as usize;
        Bloom {
            blocks: vec![[0; 8]; blocks],
        }
    }

    fn block(&self, hash: u64) -> usize {
        (((hash >> 32) * self.blocks.len() as u64) >> 32) as usize
    }

    pub fn insert(&mut self, hash: u64) {
        let b = self.block(hash);
        let block = &mut self.blocks[b];
        for (w, salt) in block.iter_mut().zip(SALT) {
            *w |= 1 << ((hash as u32).wrapping_mul(salt) >> 27);
        }
    }

    pub fn may_contain(&self, hash: u64) -> bool {
        let block = &self.blocks[self.block(hash)];
        block
            .iter()
            .zip(SALT)
            .all(|(w, salt)| w & (1 << ((hash as u32).wrapping_mul(salt) >> 27)) != 0)
    }

    pub fn bytes(&self) -> usize {
        self.blocks.len() * 32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn no_false_negatives_and_about_one_percent_false_positives() {
        let h = foldhash::quality::FixedState::with_seed(1);
        let mut b = Bloom::new(100_000, 10);
        for i in 0..100_000u32 {
            b.insert(h.hash_one(i.to_le_bytes()));
        }
        assert!((0..100_000u32).all(|i| b.may_contain(h.hash_one(i.to_le_bytes()))));
        let fp = (100_000..200_000u32)
            .filter(|i| b.may_contain(h.hash_one(i.to_le_bytes())))
            .count();
        assert!(fp < 2_000, "{fp} false positives in 100,000");
    }
}
