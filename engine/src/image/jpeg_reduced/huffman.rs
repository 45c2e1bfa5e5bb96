//! Huffman tables (DHT segments) as canonical codes, with lookups of the short codes that the
//! bit reader in [`entropy`](super::entropy) decodes with.

use super::entropy::extend;

/// A Huffman table as canonical codes: for each code length the largest code and the offset
/// of its symbols, plus a lookup of the first FAST_BITS bits for the short codes (all that
/// DC tables use in practice, and most AC symbols).
#[derive(Clone)]
pub(super) struct Huffman {
    /// `(length << 8) | symbol` for each FAST_BITS-bit prefix, 0 when the code is longer.
    pub(super) fast: Vec<u16>,
    /// For AC tables: for each FAST_BITS-bit prefix that holds a whole coefficient (code and
    /// magnitude bits), `value << 16 | run << 8 | bits used`; 0 otherwise.
    pub(super) fast_ac: Vec<i32>,
    /// Largest code of each length 1..=16 (-1 when none), index = length.
    pub(super) maxcode: [i32; 17],
    /// `symbols index - first code` of each length.
    pub(super) valoff: [i32; 17],
    pub(super) symbols: Vec<u8>,
}

pub(super) const FAST_BITS: u32 = 11;

impl Huffman {
    #[inline]
    pub(super) fn new(counts: &[u8; 16], symbols: &[u8]) -> Option<Self> {
        let mut fast = vec![0u16; 1 << FAST_BITS];
        let mut maxcode = [-1i32; 17];
        let mut valoff = [0i32; 17];
        let mut code: i32 = 0;
        let mut k = 0usize;
        for len in 1..=16usize {
            let n = usize::from(counts[len - 1]);
            valoff[len] = k as i32 - code;
            for _ in 0..n {
                // A prefix code has at most 2^len codes of a length.
                if code >= 1 << len {
                    return None;
                }
                if len as u32 <= FAST_BITS {
                    let shift = FAST_BITS - len as u32;
                    let first = (code as usize) << shift;
                    for e in &mut fast[first..first + (1 << shift)] {
                        *e = ((len as u16) << 8) | u16::from(symbols[k]);
                    }
                }
                code += 1;
                k += 1;
            }
            if n > 0 {
                maxcode[len] = code - 1;
            }
            code <<= 1;
        }
        Some(Huffman {
            fast,
            fast_ac: Vec::new(),
            maxcode,
            valoff,
            symbols: symbols.to_vec(),
        })
    }

    /// Fills `fast_ac` (an AC table's coefficient lookup, stb_image's idea).
    #[inline]
    pub(super) fn with_fast_ac(mut self) -> Self {
        self.fast_ac = (0..1usize << FAST_BITS)
            .map(|prefix| {
                let e = self.fast[prefix];
                let (len, rs) = (u32::from(e >> 8), e as u8);
                let (run, size) = (i32::from(rs >> 4), u32::from(rs & 15));
                if e == 0 || size == 0 || len + size > FAST_BITS {
                    return 0;
                }
                let magnitude = (prefix as u32 >> (FAST_BITS - len - size)) & ((1 << size) - 1);
                (extend(magnitude, size) << 16) | (run << 8) | (len + size) as i32
            })
            .collect();
        self
    }
}
