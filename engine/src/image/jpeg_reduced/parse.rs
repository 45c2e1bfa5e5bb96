//! The marker stream: the frame header (the components and their grid of blocks), the
//! quantisation and Huffman tables and the restart interval, read marker after marker; each
//! scan is handed to [`entropy`](super::entropy), or stepped over to the next marker.

use super::Scratch;
use super::huffman::Huffman;

/// A component of the frame and the DC values decoded so far.
pub(super) struct Component {
    pub(super) id: u8,
    pub(super) h: usize,
    pub(super) v: usize,
    /// Quantisation table index.
    pub(super) tq: usize,
    /// Blocks per row and rows of blocks, padded to whole MCUs.
    pub(super) bw: usize,
    bh: usize,
    /// Quantised DC value of each block, row-major `bh x bw`.
    pub(super) dc: Vec<i32>,
    /// Above 1/8 scale: the AC coefficients' share of each block's `n x n` samples, summed as
    /// they are decoded (the inverse DCT is linear), `n * n` per block, blocks row-major.
    pub(super) ac: Vec<f32>,
    /// Weight of each zigzag coefficient in each sample, dequantisation included (`n * n` per
    /// coefficient); made at the component's first AC scan.
    pub(super) weights: Vec<f32>,
    /// Whether a first DC scan covered this component.
    pub(super) seen: bool,
}

pub(super) struct Parser<'a> {
    pub(super) data: &'a [u8],
    pub(super) pos: usize,
    pub(super) width: usize,
    pub(super) height: usize,
    pub(super) comps: Vec<Component>,
    pub(super) hmax: usize,
    pub(super) vmax: usize,
    pub(super) mcux: usize,
    pub(super) mcuy: usize,
    /// Output pixels per block along each axis: 1, 2 or 4 (scale 1/8, 1/4, 1/2).
    pub(super) n: usize,
    /// Each quantisation table, in zigzag order.
    pub(super) q: [Option<[u16; 64]>; 4],
    pub(super) dc_tables: [Option<Huffman>; 4],
    pub(super) ac_tables: [Option<Huffman>; 4],
    pub(super) restart_interval: usize,
    pub(super) scratch: Scratch,
}

impl<'a> Parser<'a> {
    #[inline]
    pub(super) fn new(data: &'a [u8], n: usize, scratch: Scratch) -> Self {
        Parser {
            data,
            pos: 2,
            width: 0,
            height: 0,
            comps: Vec::new(),
            hmax: 1,
            vmax: 1,
            mcux: 0,
            mcuy: 0,
            n,
            q: [None; 4],
            dc_tables: [None, None, None, None],
            ac_tables: [None, None, None, None],
            restart_interval: 0,
            scratch,
        }
    }

    /// Hands the working buffers back.
    #[inline]
    pub(super) fn recycle(mut self) -> Scratch {
        for c in std::mem::take(&mut self.comps) {
            self.scratch.keep_i32s(c.dc);
            self.scratch.keep_f32s(c.ac);
        }
        self.scratch
    }

    #[inline]
    fn u16_at(&self, at: usize) -> Option<usize> {
        let b = self.data.get(at..at + 2)?;
        Some(usize::from(b[0]) << 8 | usize::from(b[1]))
    }

    /// Walks the markers, decoding DC scans and stepping over everything else.
    #[inline]
    pub(super) fn run(&mut self) -> Option<()> {
        loop {
            // Markers may be preceded by fill bytes (FF).
            if *self.data.get(self.pos)? != 0xFF {
                return None;
            }
            while *self.data.get(self.pos + 1)? == 0xFF {
                self.pos += 1;
            }
            let marker = self.data[self.pos + 1];
            self.pos += 2;
            match marker {
                0xD9 => break,
                0xD0..=0xD7 | 0x01 => continue,
                _ => {}
            }
            let len = self.u16_at(self.pos)?;
            let body = self.data.get(self.pos + 2..self.pos + len)?;
            let next = self.pos + len;
            match marker {
                0xC2 => self.frame(body)?,
                // Baseline, extended sequential, lossless, arithmetic, hierarchical: not ours.
                0xC0 | 0xC1 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
                0xC4 => self.huffman_tables(body)?,
                0xDB => self.quant_tables(body)?,
                0xDD => {
                    self.restart_interval =
                        usize::from(*body.first()?) << 8 | usize::from(*body.get(1)?)
                }
                // Adobe's colour transform flag (RGB or YCCK data): leave it to libjpeg.
                0xEE if body.starts_with(b"Adobe") => return None,
                0xDA => {
                    self.pos = next;
                    self.scan(body)?;
                    continue;
                }
                _ => {}
            }
            self.pos = next;
        }
        self.comps.iter().all(|c| c.seen).then_some(())
    }

    #[inline]
    fn frame(&mut self, b: &[u8]) -> Option<()> {
        if !self.comps.is_empty() || b.len() < 6 || b[0] != 8 {
            return None;
        }
        self.height = usize::from(b[1]) << 8 | usize::from(b[2]);
        self.width = usize::from(b[3]) << 8 | usize::from(b[4]);
        let n = usize::from(b[5]);
        if self.width == 0 || self.height == 0 || !(n == 1 || n == 3) || b.len() < 6 + 3 * n {
            return None;
        }
        for c in b[6..6 + 3 * n].chunks_exact(3) {
            let (h, v, tq) = (
                usize::from(c[1] >> 4),
                usize::from(c[1] & 15),
                usize::from(c[2]),
            );
            if !(1..=4).contains(&h) || !(1..=4).contains(&v) || tq > 3 {
                return None;
            }
            // Component ids 'R', 'G', 'B' mean RGB data, not YCbCr.
            if n == 3 && c[0] == b'R' {
                return None;
            }
            self.comps.push(Component {
                id: c[0],
                h,
                v,
                tq,
                bw: 0,
                bh: 0,
                dc: Vec::new(),
                ac: Vec::new(),
                weights: Vec::new(),
                seen: false,
            });
        }
        self.hmax = self.comps.iter().map(|c| c.h).max()?;
        self.vmax = self.comps.iter().map(|c| c.v).max()?;
        self.mcux = self.width.div_ceil(8 * self.hmax);
        self.mcuy = self.height.div_ceil(8 * self.vmax);
        for c in &mut self.comps {
            c.bw = self.mcux * c.h;
            c.bh = self.mcuy * c.v;
            c.dc = self.scratch.i32s(c.bw * c.bh);
            if self.n > 1 {
                c.ac = self.scratch.f32s(c.bw * c.bh * self.n * self.n);
            }
        }
        Some(())
    }

    #[inline]
    fn huffman_tables(&mut self, mut b: &[u8]) -> Option<()> {
        while !b.is_empty() {
            let (class, id) = (b[0] >> 4, usize::from(b[0] & 15));
            let counts: &[u8; 16] = b.get(1..17)?.try_into().ok()?;
            let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
            let symbols = b.get(17..17 + total)?;
            if id > 3 || class > 1 {
                return None;
            }
            let table = Huffman::new(counts, symbols)?;
            if class == 0 {
                self.dc_tables[id] = Some(table);
            } else {
                self.ac_tables[id] = Some(table.with_fast_ac());
            }
            b = &b[17 + total..];
        }
        Some(())
    }

    #[inline]
    fn quant_tables(&mut self, mut b: &[u8]) -> Option<()> {
        while !b.is_empty() {
            let (precision, id) = (b[0] >> 4, usize::from(b[0] & 15));
            if id > 3 || precision > 1 {
                return None;
            }
            let size = if precision == 0 { 64 } else { 128 };
            let t = b.get(1..1 + size)?;
            let mut table = [0u16; 64];
            for (k, e) in table.iter_mut().enumerate() {
                *e = if precision == 0 {
                    u16::from(t[k])
                } else {
                    u16::from(t[2 * k]) << 8 | u16::from(t[2 * k + 1])
                };
            }
            self.q[id] = Some(table);
            b = &b[1 + size..];
        }
        Some(())
    }

    /// Moves `pos` to the next marker that is not a restart marker or stuffed `FF 00`.
    pub(super) fn skip_entropy_data(&mut self) {
        let d = self.data;
        let mut i = self.pos;
        while let Some(off) = d.get(i..).and_then(|r| memchr::memchr(0xFF, r)) {
            i += off;
            match d.get(i + 1) {
                Some(0x00) | Some(0xD0..=0xD7) | Some(0xFF) => i += 1,
                _ => break,
            }
        }
        self.pos = i.min(d.len());
    }
}
