//! The inverse DCT at reduced scale: what each coefficient adds to each of a block's `n x n`
//! samples, and a component's samples from its decoded coefficients.

use super::Scratch;
use super::parse::Component;

/// Zigzag position -> natural (row-major) position in the 8x8 block.
const ZIGZAG: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// The `cw x ch` samples of component `c`, `n x n` per block, level-shifted (0..=255
/// nominal, not yet clamped).
///
/// At 1/8 scale a sample is libjpeg's 1x1 inverse DCT, `(dc * q) / 8` rounded. Above it,
/// sample `(i, j)` of a block is the mean of the `m x m` pixels it covers (`m = 8 / n`):
/// the inverse DCT is linear, so that mean is `sum over (u, v) of a[i][u] a[j][v] F(u, v)`
/// with `a[i][u]` the mean of the DCT basis function `u` over those `m` pixels.
#[inline]
pub(super) fn plane(
    c: &Component,
    q: &[u16; 64],
    n: usize,
    cw: usize,
    ch: usize,
    scratch: &mut Scratch,
) -> Vec<f32> {
    let mut plane = scratch.f32s(cw * ch);
    if n == 1 {
        let q = i64::from(q[0]);
        let level = |dc: i32| ((i64::from(dc) * q + 4) >> 3) as f32 + 128.0;
        for y in 0..ch {
            let row = &mut plane[y * cw..y * cw + cw];
            for (o, &d) in row.iter_mut().zip(&c.dc[y * c.bw..y * c.bw + cw]) {
                *o = level(d);
            }
        }
        return plane;
    }
    let nn = n * n;
    // The DC coefficient weighs 1/8 in every sample (see sample_weights).
    let q0 = f32::from(q[0]) / 8.0;
    let blocks_x = cw.div_ceil(n);
    for (y, row) in plane.chunks_exact_mut(cw).enumerate() {
        let (by, i) = (y / n, y % n);
        let blocks = &c.ac[by * c.bw * nn..(by * c.bw + blocks_x) * nn];
        let dcs = &c.dc[by * c.bw..by * c.bw + blocks_x];
        for ((out, block), &dc) in row.chunks_mut(n).zip(blocks.chunks_exact(nn)).zip(dcs) {
            let level = 128.0 + dc as f32 * q0;
            for (o, &a) in out.iter_mut().zip(&block[i * n..i * n + n]) {
                *o = level + a;
            }
        }
    }
    plane
}

/// The weight of each zigzag coefficient (dequantised by `q`) in each of a block's `n x n`
/// samples, `n * n` per coefficient: sample `(i, j)` is the mean of the `m x m` pixels it
/// covers (`m = 8 / n`), and the inverse DCT being linear, that mean is
/// `sum over (u, v) of a[i][v] a[j][u] F(v, u)` with `a[i][u]` the mean of the 1-D DCT basis
/// function `u` over those `m` pixels. `a[i][0]` is `1 / sqrt(8)` for every `i`, so the DC
/// coefficient weighs `1/8` everywhere.
#[inline]
pub(super) fn sample_weights(n: usize, q: &[u16; 64]) -> Vec<f32> {
    use std::f64::consts::{FRAC_1_SQRT_2, PI};
    let m = 8 / n;
    let a = |i: usize, u: usize| -> f64 {
        let scale = if u == 0 { 0.5 * FRAC_1_SQRT_2 } else { 0.5 };
        let sum: f64 = (i * m..(i + 1) * m)
            .map(|x| (((2 * x + 1) * u) as f64 * PI / 16.0).cos())
            .sum();
        scale * sum / m as f64
    };
    let nn = n * n;
    let mut weights = vec![0f32; 64 * nn];
    for (k, &pos) in ZIGZAG.iter().enumerate() {
        let (row, col) = (usize::from(pos) / 8, usize::from(pos) % 8);
        for i in 0..n {
            for j in 0..n {
                weights[k * nn + i * n + j] = (a(i, row) * a(j, col) * f64::from(q[k])) as f32;
            }
        }
    }
    weights
}
