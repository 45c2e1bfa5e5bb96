//! The output pixels: each component's plane, subsampled chroma interpolated to the luma grid,
//! then colour conversion to RGB(A).

use super::Scratch;
use super::idct::plane;
use super::parse::Parser;

impl Parser<'_> {
    /// The reduced-scale pixels: each component drawn at its own resolution (see
    /// `idct::plane`), subsampled components interpolated to full size, then YCbCr to RGB
    /// (JFIF).
    #[inline]
    pub(super) fn render(&mut self, channels: usize, out: &mut Vec<u8>) -> Option<(u32, u32)> {
        let (w, h) = (
            (self.width * self.n).div_ceil(8),
            (self.height * self.n).div_ceil(8),
        );
        let mut planes = Vec::with_capacity(self.comps.len());
        for c in &self.comps {
            // This component's samples cover (hmax / h) x (vmax / v) output pixels each.
            let (cw, ch) = ((w * c.h).div_ceil(self.hmax), (h * c.v).div_ceil(self.vmax));
            let q = self.q[c.tq]?;
            let src = plane(c, &q, self.n, cw, ch, &mut self.scratch);
            planes.push(if (cw, ch) == (w, h) {
                src
            } else {
                let full = upsample(&src, cw, ch, w, h, &mut self.scratch);
                self.scratch.keep_f32s(src);
                full
            });
        }
        out.clear();
        out.resize(w * h * channels, 255);
        match (&planes[..], channels) {
            ([y], 3) => grey::<3>(y, out),
            ([y], _) => grey::<4>(y, out),
            ([y, cb, cr], 3) => ycbcr_to_rgb::<3>(y, cb, cr, out),
            ([y, cb, cr], _) => ycbcr_to_rgb::<4>(y, cb, cr, out),
            _ => return None,
        }
        for p in planes {
            self.scratch.keep_f32s(p);
        }
        Some((w as u32, h as u32))
    }
}

/// Float to integer casts saturate: this rounds and clamps to 0..=255.
#[inline]
fn clamp(v: f32) -> u8 {
    (v + 0.5) as u8
}

/// Grey samples into `C`-channel pixels (`out` already sized; alpha already 255).
#[inline]
fn grey<const C: usize>(y: &[f32], out: &mut [u8]) {
    for (px, &v) in out.chunks_exact_mut(C).zip(y) {
        let g = clamp(v);
        px[..3].copy_from_slice(&[g, g, g]);
    }
}

/// JFIF YCbCr to `C`-channel RGB(A) pixels (`out` already sized; alpha already 255).
#[inline]
fn ycbcr_to_rgb<const C: usize>(y: &[f32], cb: &[f32], cr: &[f32], out: &mut [u8]) {
    for (((px, &yy), &b), &r) in out.chunks_exact_mut(C).zip(y).zip(cb).zip(cr) {
        let (b, r) = (b - 128.0, r - 128.0);
        px[..3].copy_from_slice(&[
            clamp(yy + 1.402 * r),
            clamp(yy - 0.344_136 * b - 0.714_136 * r),
            clamp(yy + 1.772 * b),
        ]);
    }
}

/// Bilinear resampling of a `sw x sh` plane to `dw x dh`, sample centres aligned (the
/// triangle filter libjpeg's "fancy" upsampling uses for 2x). Separable: each source row is
/// resampled once, then output rows blend two of those.
#[inline]
fn upsample(
    src: &[f32],
    sw: usize,
    sh: usize,
    dw: usize,
    dh: usize,
    scratch: &mut Scratch,
) -> Vec<f32> {
    let taps = |d: usize, s: usize| -> Vec<(usize, usize, f32)> {
        (0..d)
            .map(|x| {
                let pos = ((x as f32 + 0.5) * s as f32 / d as f32 - 0.5).clamp(0.0, (s - 1) as f32);
                let i = pos.floor() as usize;
                (i, (i + 1).min(s - 1), pos - i as f32)
            })
            .collect()
    };
    let (tx, ty) = (taps(dw, sw), taps(dh, sh));
    let mut wide = scratch.f32s(dw * sh);
    for (w, r) in wide.chunks_exact_mut(dw).zip(src.chunks_exact(sw)) {
        for (o, &(x0, x1, fx)) in w.iter_mut().zip(&tx) {
            *o = r[x0] + (r[x1] - r[x0]) * fx;
        }
    }
    let mut out = scratch.f32s(dw * dh);
    for (row, &(y0, y1, fy)) in out.chunks_exact_mut(dw).zip(&ty) {
        let (r0, r1) = (&wide[y0 * dw..(y0 + 1) * dw], &wide[y1 * dw..(y1 + 1) * dw]);
        for ((o, &a), &b) in row.iter_mut().zip(r0).zip(r1) {
            *o = a + (b - a) * fy;
        }
    }
    scratch.keep_f32s(wide);
    out
}
