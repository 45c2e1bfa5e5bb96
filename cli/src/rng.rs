//! A counter-based random generator for `gen`: each element's value depends only on the seed
//! and the element's index, so blocks can be filled in parallel, in any order, and the file
//! is the same bytes whatever the thread count.

use crate::cli::Dist;

/// SplitMix64's finaliser: a bijective 64-bit mix.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// A SplitMix64 stream.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix64(self.0)
    }

    /// Uniform in [0, 1) with 53 random bits.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in (0, 1].
    fn next_f64_open0(&mut self) -> f64 {
        1.0 - self.next_f64()
    }
}

/// The generator of one matrix: element `i` (row-major) of a matrix with seed `seed`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MatrixRng {
    key: u64,
    dist: Dist,
}

impl MatrixRng {
    pub(crate) fn new(seed: u64, dist: Dist) -> Self {
        MatrixRng {
            key: mix64(seed ^ 0x5348_4d46_5241_4d45),
            dist,
        }
    }

    /// The value of element `i` (row `i / cols`, column `i % cols`).
    pub(crate) fn value(&self, i: u64) -> f64 {
        let mut s = SplitMix64(mix64(self.key ^ i.wrapping_mul(GOLDEN)));
        match self.dist {
            Dist::Gaussian => gaussian(&mut s),
            Dist::Unit => 2.0 * s.next_f64() - 1.0,
            Dist::Heavy => {
                let g = gaussian(&mut s);
                g / s.next_f64_open0().sqrt()
            }
        }
    }

    /// Fills `out` with elements `first..first + out.len()`.
    pub(crate) fn fill_f64(&self, first: u64, out: &mut [f64]) {
        for (k, o) in out.iter_mut().enumerate() {
            *o = self.value(first + k as u64);
        }
    }

    /// Fills `out` with elements `first..`, rounded to f32.
    pub(crate) fn fill_f32(&self, first: u64, out: &mut [f32]) {
        for (k, o) in out.iter_mut().enumerate() {
            *o = self.value(first + k as u64) as f32;
        }
    }
}

/// One standard normal by Box-Muller (the cosine branch).
fn gaussian(s: &mut SplitMix64) -> f64 {
    let u1 = s.next_f64_open0();
    let u2 = s.next_f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_order_free() {
        let r = MatrixRng::new(7, Dist::Gaussian);
        let mut a = vec![0.0; 100];
        r.fill_f64(0, &mut a);
        let mut b = vec![0.0; 50];
        r.fill_f64(50, &mut b);
        assert_eq!(&a[50..], &b[..]);
        assert_ne!(MatrixRng::new(8, Dist::Gaussian).value(3), r.value(3));
    }

    #[test]
    fn gaussian_moments() {
        let r = MatrixRng::new(1, Dist::Gaussian);
        let n = 200_000u64;
        let (mut s, mut s2) = (0.0, 0.0);
        for i in 0..n {
            let v = r.value(i);
            s += v;
            s2 += v * v;
        }
        let mean = s / n as f64;
        let var = s2 / n as f64 - mean * mean;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "var {var}");
    }

    #[test]
    fn unit_range() {
        let r = MatrixRng::new(1, Dist::Unit);
        assert!(
            (0..10_000)
                .map(|i| r.value(i))
                .all(|v| (-1.0..1.0).contains(&v))
        );
    }
}
