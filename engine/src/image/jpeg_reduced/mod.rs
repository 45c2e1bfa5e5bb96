//! Reduced-scale images of progressive JPEGs from their first scans.
//!
//! A progressive JPEG sends its DCT coefficients in several scans: first the DC coefficient
//! of every block (each block's mean), then bands of AC coefficients at reduced precision,
//! then *refinement* scans that add the low-order bits of what was sent before. libjpeg
//! entropy-decodes every scan into a whole-image coefficient buffer before it can draw
//! anything, even at 1/8 scale, and the refinement scans are the costly ones (in `perf`, 46%
//! of libjpeg's time on our 4 MP progressive photographs goes to `decode_mcu_AC_refine`).
//!
//! This module draws the image at a reduced scale (1/8, 1/4 or 1/2 of each dimension) from the
//! scans that matter at that scale, stepping over the others by a byte search for the next
//! marker:
//!
//! - **1/8**: every 8x8 block becomes one pixel, its mean: the DC coefficient, which is all
//!   libjpeg's 1x1 inverse DCT reads. Only the DC scans are decoded; luma is exactly
//!   libjpeg's 1/8-scale luma. About 7x faster than libjpeg's 1/8 decode+resize on a 10.7 MP
//!   photo and 14x on a synthetic 9.4 MP image (`benches/micro.rs`).
//! - **1/4 and 1/2**: every block becomes 2x2 or 4x4 pixels, each the exact mean of the 4x4 or
//!   2x2 full-resolution pixels it covers (a box filter computed in the DCT domain). The DC
//!   scans and the *first* AC scans are decoded; the AC refinement scans are skipped, so AC
//!   coefficients miss the low bits those scans would add (`Al` bits: 1 or 2 in libjpeg's
//!   default script). A nonzero coefficient sent without them is moved toward the middle of
//!   the interval they allow (by `(2^Al - 1) / 2`, rounded down). That is the one
//!   approximation: at these scales it costs about one grey level (see the tests). On five
//!   4 MP progressive photos the decode at 1/4 took 6-20 ms, libjpeg's at 1/2 23-84 ms.
//!
//! Chroma is drawn at its own resolution and interpolated to the luma grid (libjpeg's
//! "fancy" triangle filter for 2x). The module only handles what it can do as specified (ITU
//! T.81 G.1.2: 8-bit Huffman progressive, one or three components in YCbCr); for anything
//! else, or any inconsistency in the data, it returns `None` and the caller decodes with
//! libjpeg, which also reports the errors.

mod entropy;
mod huffman;
mod idct;
mod parse;
mod render;

// Each function that the compiler inlined into `decode_reduced` when this module was one file
// is `#[inline]`. A codegen unit holds whole modules, so without the attribute these functions
// no longer shared `decode_reduced`'s unit, LLVM stopped inlining them, and a 4 MP photo took
// 3% to 17% more instructions. The functions it kept out of line have no attribute:
// `Bits::fill`, `decode` and `restart`, `ac_first_scan`, `blocks_of`, `skip_entropy_data` and
// `Scratch::keep_f32s`.

use parse::Parser;

/// Decodes a progressive JPEG at 1/`denom` scale (`denom` 2, 4 or 8) into `out` as RGB (3
/// channels) or RGBA (4, alpha 255), `ceil(width / denom) x ceil(height / denom)` pixels,
/// row-major (libjpeg's scaled size). Returns that size, or `None` when the file is not a
/// progressive JPEG this decoder handles (see the module doc); `out` is then unspecified.
pub(crate) fn decode_reduced(
    bytes: &[u8],
    denom: usize,
    channels: usize,
    out: &mut Vec<u8>,
    scratch: &mut Scratch,
) -> Option<(u32, u32)> {
    if ![2, 4, 8].contains(&denom) || bytes.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut p = Parser::new(bytes, 8 / denom, std::mem::take(scratch));
    let result = p.run().and_then(|()| p.render(channels, out));
    *scratch = p.recycle();
    result
}

/// [`decode_reduced`] at 1/8 scale: the DC scans alone.
#[cfg(test)]
fn decode_dc(bytes: &[u8], channels: usize, out: &mut Vec<u8>) -> Option<(u32, u32)> {
    decode_reduced(bytes, 8, channels, out, &mut Scratch::default())
}

/// Working buffers kept from one image to the next (so a worker holds those of the largest
/// image it decoded). A 4 MP photo at 1/2 scale needs about 30 MiB of them; allocated afresh
/// for each image, their first touch (page faults) took a quarter or more of the decode time
/// on our test machine.
#[derive(Default)]
pub(crate) struct Scratch {
    f32s: Vec<Vec<f32>>,
    i32s: Vec<Vec<i32>>,
}

impl Scratch {
    /// At most this many buffers of each type are kept.
    const KEEP: usize = 12;

    #[inline]
    fn f32s(&mut self, len: usize) -> Vec<f32> {
        let mut v = self.f32s.pop().unwrap_or_default();
        v.clear();
        v.resize(len, 0.0);
        v
    }

    #[inline]
    fn i32s(&mut self, len: usize) -> Vec<i32> {
        let mut v = self.i32s.pop().unwrap_or_default();
        v.clear();
        v.resize(len, 0);
        v
    }

    fn keep_f32s(&mut self, v: Vec<f32>) {
        if self.f32s.len() < Self::KEEP && v.capacity() > 0 {
            self.f32s.push(v);
        }
    }

    #[inline]
    fn keep_i32s(&mut self, v: Vec<i32>) {
        if self.i32s.len() < Self::KEEP && v.capacity() > 0 {
            self.i32s.push(v);
        }
    }
}

#[cfg(test)]
mod tests;
