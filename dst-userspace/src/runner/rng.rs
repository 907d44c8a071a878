//! The run's seeded random stream: every random choice of a run (op mix, keys, pacing, nemesis
//! targets) comes from here, so the same seed replays the same decisions.

use dst_common::net::draw;

/// A counter-based stream over the shared splitmix draw function.
pub struct Rng {
    seed: u64,
    n: u64,
}

impl Rng {
    /// A stream for `seed`, forked by `stream` so independent users do not share draws.
    pub fn new(seed: u64, stream: u64) -> Self {
        Self {
            seed: seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F),
            n: 0,
        }
    }

    /// Next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        self.n += 1;
        draw(self.seed, self.n)
    }

    /// Uniform in 0..1.
    pub fn unit(&mut self) -> f64 {
        f64::from(self.next_u32()) / (f64::from(u32::MAX) + 1.0)
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let a: Vec<u32> = {
            let mut r = Rng::new(5, 1);
            (0..10).map(|_| r.next_u32()).collect()
        };
        let b: Vec<u32> = {
            let mut r = Rng::new(5, 1);
            (0..10).map(|_| r.next_u32()).collect()
        };
        let c: Vec<u32> = {
            let mut r = Rng::new(5, 2);
            (0..10).map(|_| r.next_u32()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut r = Rng::new(1, 0);
        assert!((0..1000).all(|_| r.below(3) < 3));
    }
}
