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

    fn f32s(&mut self, len: usize) -> Vec<f32> {
        let mut v = self.f32s.pop().unwrap_or_default();
        v.clear();
        v.resize(len, 0.0);
        v
    }

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

    fn keep_i32s(&mut self, v: Vec<i32>) {
        if self.i32s.len() < Self::KEEP && v.capacity() > 0 {
            self.i32s.push(v);
        }
    }
}

/// Zigzag position -> natural (row-major) position in the 8x8 block.
const ZIGZAG: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// A component of the frame and the DC values decoded so far.
struct Component {
    id: u8,
    h: usize,
    v: usize,
    /// Quantisation table index.
    tq: usize,
    /// Blocks per row and rows of blocks, padded to whole MCUs.
    bw: usize,
    bh: usize,
    /// Quantised DC value of each block, row-major `bh x bw`.
    dc: Vec<i32>,
    /// Above 1/8 scale: the AC coefficients' share of each block's `n x n` samples, summed as
    /// they are decoded (the inverse DCT is linear), `n * n` per block, blocks row-major.
    ac: Vec<f32>,
    /// Weight of each zigzag coefficient in each sample, dequantisation included (`n * n` per
    /// coefficient); made at the component's first AC scan.
    weights: Vec<f32>,
    /// Whether a first DC scan covered this component.
    seen: bool,
}

/// A Huffman table as canonical codes: for each code length the largest code and the offset
/// of its symbols, plus a lookup of the first FAST_BITS bits for the short codes (all that
/// DC tables use in practice, and most AC symbols).
#[derive(Clone)]
struct Huffman {
    /// `(length << 8) | symbol` for each FAST_BITS-bit prefix, 0 when the code is longer.
    fast: Vec<u16>,
    /// For AC tables: for each FAST_BITS-bit prefix that holds a whole coefficient (code and
    /// magnitude bits), `value << 16 | run << 8 | bits used`; 0 otherwise.
    fast_ac: Vec<i32>,
    /// Largest code of each length 1..=16 (-1 when none), index = length.
    maxcode: [i32; 17],
    /// `symbols index - first code` of each length.
    valoff: [i32; 17],
    symbols: Vec<u8>,
}

const FAST_BITS: u32 = 11;

impl Huffman {
    fn new(counts: &[u8; 16], symbols: &[u8]) -> Option<Self> {
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
    fn with_fast_ac(mut self) -> Self {
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

/// Reads the bits of one scan's entropy-coded data: removes byte stuffing (`FF 00`) and stops
/// at the first marker, after which it reads zeros and says so.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u64,
    /// Valid bits in `acc`, from the top.
    n: u32,
    /// A marker (or the end of the data) was reached; `pos` is at its `FF`.
    at_marker: bool,
    /// Zero bits appended to `acc` after the marker: reading into them means the scan's data
    /// ended early.
    phantom: u32,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        Bits {
            data,
            pos,
            acc: 0,
            n: 0,
            at_marker: false,
            phantom: 0,
        }
    }

    fn fill(&mut self) {
        // Fast path: the next 8 bytes hold no FF (no stuffing, no marker), so the whole bytes
        // that fit are taken at once.
        if let Some(next) = self.data.get(self.pos..self.pos + 8) {
            let chunk = u64::from_be_bytes(next.try_into().expect("8 bytes"));
            let inverted = !chunk;
            let has_ff =
                inverted.wrapping_sub(0x0101_0101_0101_0101) & !inverted & 0x8080_8080_8080_8080;
            if !self.at_marker && has_ff == 0 && self.n <= 56 {
                let take = (64 - self.n) / 8;
                let filled = self.n + 8 * take;
                let keep = if filled == 64 {
                    u64::MAX
                } else {
                    !(u64::MAX >> filled)
                };
                self.acc |= (chunk >> self.n) & keep;
                self.n = filled;
                self.pos += take as usize;
                return;
            }
        }
        while self.n <= 56 {
            let mut byte = 0u8;
            if !self.at_marker {
                match self.data.get(self.pos) {
                    Some(&0xFF) => {
                        if self.data.get(self.pos + 1) == Some(&0) {
                            self.pos += 2;
                            byte = 0xFF;
                        } else {
                            self.at_marker = true;
                        }
                    }
                    Some(&b) => {
                        self.pos += 1;
                        byte = b;
                    }
                    None => self.at_marker = true,
                }
            }
            if self.at_marker {
                self.phantom += 8;
            }
            self.acc |= u64::from(byte) << (56 - self.n);
            self.n += 8;
        }
    }

    fn bits(&mut self, k: u32) -> u32 {
        if k == 0 {
            return 0;
        }
        if self.n < k {
            self.fill();
        }
        let v = (self.acc >> (64 - k)) as u32;
        self.acc <<= k;
        self.n -= k;
        v
    }

    fn decode(&mut self, t: &Huffman) -> Option<u8> {
        if self.n < 16 {
            self.fill();
        }
        let e = t.fast[(self.acc >> (64 - FAST_BITS)) as usize];
        if e != 0 {
            let len = u32::from(e >> 8);
            self.acc <<= len;
            self.n -= len;
            return Some(e as u8);
        }
        // A code longer than FAST_BITS: the canonical code of each longer length in turn.
        let peek = (self.acc >> 48) as i32;
        for len in FAST_BITS as usize + 1..=16 {
            let code = peek >> (16 - len);
            if code <= t.maxcode[len] {
                self.acc <<= len;
                self.n -= len as u32;
                return t.symbols.get((code + t.valoff[len]) as usize).copied();
            }
        }
        None
    }

    /// Whether the reader has handed out bits past the end of the scan's data.
    fn overrun(&self) -> bool {
        self.n < self.phantom
    }

    /// Drops the padding bits of the interval that ended and reads the restart marker that
    /// must follow.
    fn restart(&mut self) -> Option<()> {
        if self.overrun() {
            return None;
        }
        // fill() never reads past a marker, so what is left in the accumulator is the
        // interval's padding (or, in a damaged file, data nobody will read).
        self.acc = 0;
        self.n = 0;
        self.phantom = 0;
        if !self.at_marker {
            while self.data.get(self.pos) != Some(&0xFF) || self.data.get(self.pos + 1) == Some(&0)
            {
                if self.pos >= self.data.len() {
                    return None;
                }
                self.pos += if self.data[self.pos] == 0xFF { 2 } else { 1 };
            }
        }
        match self.data.get(self.pos + 1) {
            Some(0xD0..=0xD7) => {
                self.pos += 2;
                self.at_marker = false;
                Some(())
            }
            _ => None,
        }
    }
}

/// Counts a scan's units (MCUs, or blocks in a one-component scan) between restart markers.
struct Restarts {
    interval: usize,
    todo: usize,
}

impl Restarts {
    fn new(interval: usize) -> Self {
        Restarts {
            interval,
            todo: interval,
        }
    }

    /// Called before each unit: whether a restart marker comes first.
    fn due(&mut self) -> bool {
        if self.interval == 0 {
            return false;
        }
        let due = self.todo == 0;
        if due {
            self.todo = self.interval;
        }
        self.todo -= 1;
        due
    }
}

struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
    width: usize,
    height: usize,
    comps: Vec<Component>,
    hmax: usize,
    vmax: usize,
    mcux: usize,
    mcuy: usize,
    /// Output pixels per block along each axis: 1, 2 or 4 (scale 1/8, 1/4, 1/2).
    n: usize,
    /// Each quantisation table, in zigzag order.
    q: [Option<[u16; 64]>; 4],
    dc_tables: [Option<Huffman>; 4],
    ac_tables: [Option<Huffman>; 4],
    restart_interval: usize,
    scratch: Scratch,
}

impl<'a> Parser<'a> {
    fn new(data: &'a [u8], n: usize, scratch: Scratch) -> Self {
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
    fn recycle(mut self) -> Scratch {
        for c in std::mem::take(&mut self.comps) {
            self.scratch.keep_i32s(c.dc);
            self.scratch.keep_f32s(c.ac);
        }
        self.scratch
    }

    fn u16_at(&self, at: usize) -> Option<usize> {
        let b = self.data.get(at..at + 2)?;
        Some(usize::from(b[0]) << 8 | usize::from(b[1]))
    }

    /// Walks the markers, decoding DC scans and stepping over everything else.
    fn run(&mut self) -> Option<()> {
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

    /// One scan: decodes it when it carries DC coefficients, or (above 1/8 scale) when it is
    /// a first AC scan; otherwise moves past its data.
    fn scan(&mut self, b: &[u8]) -> Option<()> {
        if self.comps.is_empty() {
            return None;
        }
        let ns = usize::from(*b.first()?);
        if ns == 0 || ns > 4 || b.len() < 1 + 2 * ns + 3 {
            return None;
        }
        let (ss, se, ah, al) = (
            b[1 + 2 * ns],
            b[2 + 2 * ns],
            b[3 + 2 * ns] >> 4,
            u32::from(b[3 + 2 * ns] & 15),
        );
        if ss != 0 {
            if self.n == 1 || ah != 0 {
                self.skip_entropy_data();
                return Some(());
            }
            // An AC scan has one component (T.81 G.1.1.1.1).
            if ns != 1 || se > 63 || ss > se || al > 13 {
                return None;
            }
            let ci = self.comps.iter().position(|c| c.id == b[1])?;
            let ta = usize::from(b[2] & 15);
            return self.ac_first_scan(ci, ta, usize::from(ss), usize::from(se), al);
        }
        if se != 0 || al > 13 {
            return None;
        }
        // Components of the scan, by index, with their DC table.
        let mut members = Vec::with_capacity(ns);
        for s in b[1..1 + 2 * ns].chunks_exact(2) {
            let ci = self.comps.iter().position(|c| c.id == s[0])?;
            let td = usize::from(s[1] >> 4);
            if td > 3 || members.iter().any(|&(i, _)| i == ci) {
                return None;
            }
            members.push((ci, td));
        }
        if ns > 1
            && members
                .iter()
                .map(|&(i, _)| self.comps[i].h * self.comps[i].v)
                .sum::<usize>()
                > 10
        {
            return None;
        }
        let refine = ah != 0;
        if !refine {
            for &(ci, td) in &members {
                self.dc_tables[td].as_ref()?;
                self.comps[ci].seen = true;
            }
        } else if members.iter().any(|&(ci, _)| !self.comps[ci].seen) {
            return None;
        }

        // The block order: one block per MCU in a one-component scan (over the component's
        // own extent), else each component's h x v blocks per MCU of the frame.
        let (units_x, units_y) = if ns == 1 {
            self.blocks_of(&self.comps[members[0].0])
        } else {
            (self.mcux, self.mcuy)
        };
        let mut bits = Bits::new(self.data, self.pos);
        let mut pred = [0i32; 4];
        let mut restarts = Restarts::new(self.restart_interval);
        for uy in 0..units_y {
            for ux in 0..units_x {
                if restarts.due() {
                    bits.restart()?;
                    pred = [0; 4];
                }
                for (k, &(ci, td)) in members.iter().enumerate() {
                    let (h, v) = if ns == 1 {
                        (1, 1)
                    } else {
                        (self.comps[ci].h, self.comps[ci].v)
                    };
                    for by in 0..v {
                        for bx in 0..h {
                            let c = &self.comps[ci];
                            let at = (uy * v + by) * c.bw + ux * h + bx;
                            let value = if refine {
                                (c.dc[at] as u32 | (bits.bits(1) << al)) as i32
                            } else {
                                let table = self.dc_tables[td].as_ref()?;
                                let s = u32::from(bits.decode(table)?);
                                if s > 15 {
                                    return None;
                                }
                                pred[k] = pred[k].wrapping_add(extend(bits.bits(s), s));
                                pred[k].wrapping_shl(al)
                            };
                            self.comps[ci].dc[at] = value;
                        }
                    }
                }
                if bits.overrun() {
                    // The data ended before the scan's last block.
                    return None;
                }
            }
        }
        self.pos = bits.pos;
        self.skip_entropy_data();
        Some(())
    }

    /// A first AC scan (T.81 G.1.2.2) of component `ci`: coefficients `ss..=se` of each block,
    /// scaled by `2^al`, moved toward the middle of the interval their missing low bits allow,
    /// and added to the block's samples.
    fn ac_first_scan(&mut self, ci: usize, ta: usize, ss: usize, se: usize, al: u32) -> Option<()> {
        let table = self.ac_tables.get(ta)?.as_ref()?;
        let n = self.n;
        let nn = n * n;
        let (units_x, units_y) = self.blocks_of(&self.comps[ci]);
        let c = &mut self.comps[ci];
        if c.weights.is_empty() {
            c.weights = sample_weights(n, &self.q[c.tq]?);
        }
        // A nonzero coefficient sent without its low `al` bits lies in [m << al, (m + 1) << al):
        // it is moved toward the middle by `half`.
        let half = ((1i32 << al) - 1) / 2;
        let mut bits = Bits::new(self.data, self.pos);
        let mut eobrun = 0u32;
        let mut restarts = Restarts::new(self.restart_interval);
        for uy in 0..units_y {
            for ux in 0..units_x {
                if restarts.due() {
                    bits.restart()?;
                    eobrun = 0;
                }
                if eobrun > 0 {
                    // This block has no coefficient in the band.
                    eobrun -= 1;
                    continue;
                }
                let at = uy * c.bw + ux;
                let samples = &mut c.ac[at * nn..at * nn + nn];
                let mut k = ss;
                while k <= se {
                    if bits.n < FAST_BITS {
                        bits.fill();
                    }
                    let e = table.fast_ac[(bits.acc >> (64 - FAST_BITS)) as usize];
                    if e != 0 {
                        let used = (e & 0xFF) as u32;
                        bits.acc <<= used;
                        bits.n -= used;
                        k += ((e >> 8) & 0xFF) as usize;
                        if k > se {
                            return None;
                        }
                        let v = e >> 16;
                        let value = (((v.abs() << al) + half) * v.signum()) as f32;
                        for (s, w) in samples.iter_mut().zip(&c.weights[k * nn..k * nn + nn]) {
                            *s += value * w;
                        }
                        k += 1;
                        continue;
                    }
                    let rs = bits.decode(table)?;
                    let (r, size) = (usize::from(rs >> 4), u32::from(rs & 15));
                    if size == 0 {
                        if r < 15 {
                            // End of band, here and in the next `eobrun` blocks.
                            eobrun = (1 << r) - 1 + bits.bits(r as u32);
                            break;
                        }
                        k += 16;
                        continue;
                    }
                    k += r;
                    if k > se || size > 11 {
                        return None;
                    }
                    let v = extend(bits.bits(size), size);
                    let value = (((v.abs() << al) + half) * v.signum()) as f32;
                    for (s, w) in samples.iter_mut().zip(&c.weights[k * nn..k * nn + nn]) {
                        *s += value * w;
                    }
                    k += 1;
                }
                if bits.overrun() {
                    return None;
                }
            }
        }
        self.pos = bits.pos;
        self.skip_entropy_data();
        Some(())
    }

    /// The blocks of component `c` that a one-component scan codes, across and down: its own
    /// extent, not padded to whole MCUs.
    fn blocks_of(&self, c: &Component) -> (usize, usize) {
        (
            (self.width * c.h).div_ceil(self.hmax).div_ceil(8),
            (self.height * c.v).div_ceil(self.vmax).div_ceil(8),
        )
    }

    /// Moves `pos` to the next marker that is not a restart marker or stuffed `FF 00`.
    fn skip_entropy_data(&mut self) {
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

    /// The reduced-scale pixels: each component drawn at its own resolution (see
    /// [`Parser::plane`]), subsampled components interpolated to full size, then YCbCr to RGB
    /// (JFIF).
    fn render(&mut self, channels: usize, out: &mut Vec<u8>) -> Option<(u32, u32)> {
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
fn clamp(v: f32) -> u8 {
    (v + 0.5) as u8
}

/// Grey samples into `C`-channel pixels (`out` already sized; alpha already 255).
fn grey<const C: usize>(y: &[f32], out: &mut [u8]) {
    for (px, &v) in out.chunks_exact_mut(C).zip(y) {
        let g = clamp(v);
        px[..3].copy_from_slice(&[g, g, g]);
    }
}

/// JFIF YCbCr to `C`-channel RGB(A) pixels (`out` already sized; alpha already 255).
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

/// The `cw x ch` samples of component `c`, `n x n` per block, level-shifted (0..=255
/// nominal, not yet clamped).
///
/// At 1/8 scale a sample is libjpeg's 1x1 inverse DCT, `(dc * q) / 8` rounded. Above it,
/// sample `(i, j)` of a block is the mean of the `m x m` pixels it covers (`m = 8 / n`):
/// the inverse DCT is linear, so that mean is `sum over (u, v) of a[i][u] a[j][v] F(u, v)`
/// with `a[i][u]` the mean of the DCT basis function `u` over those `m` pixels.
fn plane(
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
fn sample_weights(n: usize, q: &[u16; 64]) -> Vec<f32> {
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
/// JPEG's sign extension of an `s`-bit magnitude category value.
fn extend(v: u32, s: u32) -> i32 {
    if s == 0 {
        0
    } else if v < 1 << (s - 1) {
        v as i32 - (1 << s) + 1
    } else {
        v as i32
    }
}

/// Bilinear resampling of a `sw x sh` plane to `dw x dh`, sample centres aligned (the
/// triangle filter libjpeg's "fancy" upsampling uses for 2x). Separable: each source row is
/// resampled once, then output rows blend two of those.
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

#[cfg(test)]
mod tests {
    use super::{Scratch, decode_dc, decode_reduced};
    use turbojpeg::{Decompressor, PixelFormat, ScalingFactor, Subsamp};

    /// Fixtures made with libjpeg-turbo's `cjpeg` (see `engine/tests/data/README.md`): DC
    /// scans one component at a time with a restart every 3 blocks, and a 4:2:2 file with a
    /// restart every MCU row.
    const SEPARATE_DC: &[u8] =
        include_bytes!("../../tests/data/progressive-420-separate-dc-restart3.jpg");
    const RESTART_ROWS: &[u8] = include_bytes!("../../tests/data/progressive-422-restart-rows.jpg");

    /// Photo-like pixels: gradients, waves and noise, within 30..225 so that no colour
    /// conversion clamps.
    fn pixels(w: usize, h: usize, c: usize) -> Vec<u8> {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        (0..w * h * c)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let (x, y, k) = ((i / c) % w, (i / c) / w, i % c);
                let wave = 40.0 * ((x as f64 / 9.0 + k as f64).sin() + (y as f64 / 13.0).cos());
                let v = 127.0 + wave * 0.9 + (state % 31) as f64 - 15.0;
                v.clamp(30.0, 225.0) as u8
            })
            .collect()
    }

    fn progressive(w: usize, h: usize, subsamp: Subsamp) -> Vec<u8> {
        let c = if subsamp == Subsamp::Gray { 1 } else { 3 };
        let px = pixels(w, h, c);
        let mut comp = turbojpeg::Compressor::new().unwrap();
        comp.set_quality(88).unwrap();
        comp.set_subsamp(subsamp).unwrap();
        comp.set_progressive(true).unwrap();
        let format = if c == 1 {
            PixelFormat::GRAY
        } else {
            PixelFormat::RGB
        };
        let image = turbojpeg::Image {
            pixels: &px[..],
            width: w,
            pitch: w * c,
            height: h,
            format,
        };
        comp.compress_to_vec(image).unwrap()
    }

    /// libjpeg's own decode at 1/8 scale, RGB.
    fn libjpeg_eighth(bytes: &[u8]) -> (Vec<u8>, usize, usize) {
        let mut d = Decompressor::new().unwrap();
        let scale = ScalingFactor::ONE_EIGHTH;
        d.set_scaling_factor(scale).unwrap();
        let header = d.read_header(bytes).unwrap().scaled(scale);
        let mut px = vec![0u8; header.width * header.height * 3];
        let image = turbojpeg::Image {
            pixels: &mut px[..],
            width: header.width,
            pitch: header.width * 3,
            height: header.height,
            format: PixelFormat::RGB,
        };
        d.decompress(bytes, image).unwrap();
        (px, header.width, header.height)
    }

    fn luma(p: &[u8]) -> f64 {
        0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])
    }

    /// Compares the DC decode with libjpeg's: the largest difference of any RGB value and of
    /// luma, and the PSNR.
    fn compare(bytes: &[u8]) -> (u8, f64, f64) {
        let mut ours = Vec::new();
        let (w, h) = decode_dc(bytes, 3, &mut ours).expect("a progressive JPEG decodes");
        let (theirs, tw, th) = libjpeg_eighth(bytes);
        assert_eq!((w as usize, h as usize), (tw, th), "1/8-scale size");
        assert_eq!(ours.len(), theirs.len());
        let max_rgb = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap_or(0);
        let max_luma = ours
            .chunks_exact(3)
            .zip(theirs.chunks_exact(3))
            .map(|(a, b)| (luma(a) - luma(b)).abs())
            .fold(0.0, f64::max);
        let mse = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
            .sum::<f64>()
            / ours.len() as f64;
        let psnr = if mse == 0.0 {
            99.0
        } else {
            10.0 * (255.0f64 * 255.0 / mse).log10()
        };
        (max_rgb, max_luma, psnr)
    }

    #[test]
    fn grey_and_444_are_libjpegs_eighth_scale() {
        // Without subsampled chroma libjpeg's 1/8 scale reads the DC coefficients only too:
        // the same pixels, up to the rounding of the colour conversion.
        for (w, h) in [(203, 157), (64, 64), (9, 17), (1, 1), (8, 8), (17, 200)] {
            let (max, _, _) = compare(&progressive(w, h, Subsamp::Gray));
            assert_eq!(max, 0, "grey {w}x{h}");
            let (max, _, _) = compare(&progressive(w, h, Subsamp::None));
            assert!(max <= 1, "4:4:4 {w}x{h}: off by {max}");
        }
    }

    #[test]
    fn subsampled_chroma_keeps_libjpegs_luma() {
        let cases = [
            ("4:2:0 203x157", progressive(203, 157, Subsamp::Sub2x2)),
            ("4:2:2 203x157", progressive(203, 157, Subsamp::Sub2x1)),
            ("4:4:0 99x61", progressive(99, 61, Subsamp::Sub1x2)),
            ("4:2:0 9x17", progressive(9, 17, Subsamp::Sub2x2)),
            ("separate DC scans, restarts", SEPARATE_DC.to_vec()),
            ("restart every row", RESTART_ROWS.to_vec()),
        ];
        for (name, bytes) in cases {
            let (_, max_luma, psnr) = compare(&bytes);
            // Luma is libjpeg's; chroma is interpolated where libjpeg runs a 2x2 IDCT, which
            // on these strongly coloured waves costs a few dB (wrong chroma would be < 20).
            assert!(max_luma <= 2.5, "{name}: luma off by {max_luma:.2}");
            assert!(psnr >= 28.0, "{name}: PSNR {psnr:.1} dB against libjpeg");
        }
    }

    #[test]
    fn alpha_is_opaque() {
        let bytes = progressive(40, 24, Subsamp::Sub2x2);
        let (mut rgb, mut rgba) = (Vec::new(), Vec::new());
        assert_eq!(decode_dc(&bytes, 3, &mut rgb), Some((5, 3)));
        assert_eq!(decode_dc(&bytes, 4, &mut rgba), Some((5, 3)));
        for (a, b) in rgb.chunks_exact(3).zip(rgba.chunks_exact(4)) {
            assert_eq!((a, b[3]), (&b[..3], 255));
        }
    }

    /// libjpeg's full-size decode, RGB.
    fn libjpeg_full(bytes: &[u8]) -> (Vec<u8>, usize, usize) {
        let image = turbojpeg::decompress(bytes, PixelFormat::RGB).unwrap();
        (image.pixels, image.width, image.height)
    }

    /// PSNR of the reduced decode at 1/`denom` against the mean of each `denom x denom` cell
    /// of libjpeg's full-size decode, over the cells inside the image, for luma and for RGB.
    fn against_box_means(bytes: &[u8], denom: usize, scratch: &mut Scratch) -> (f64, f64) {
        let mut ours = Vec::new();
        let (w, h) = decode_reduced(bytes, denom, 3, &mut ours, scratch).expect("decodes");
        let (full, fw, fh) = libjpeg_full(bytes);
        assert_eq!(
            (w as usize, h as usize),
            (fw.div_ceil(denom), fh.div_ceil(denom)),
            "libjpeg's scaled size"
        );
        let (mut se_luma, mut se_rgb, mut cells) = (0.0, 0.0, 0usize);
        for cy in 0..fh / denom {
            for cx in 0..fw / denom {
                let mut mean = [0f64; 3];
                for y in cy * denom..(cy + 1) * denom {
                    for x in cx * denom..(cx + 1) * denom {
                        for (m, &v) in mean.iter_mut().zip(&full[(y * fw + x) * 3..]) {
                            *m += f64::from(v) / (denom * denom) as f64;
                        }
                    }
                }
                let px = &ours[(cy * w as usize + cx) * 3..][..3];
                let rgb: Vec<f64> = px.iter().map(|&v| f64::from(v)).collect();
                let luma = |p: &[f64]| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
                se_luma += (luma(&rgb) - luma(&mean)).powi(2);
                se_rgb += rgb
                    .iter()
                    .zip(&mean)
                    .map(|(a, b)| (a - b).powi(2))
                    .sum::<f64>()
                    / 3.0;
                cells += 1;
            }
        }
        let psnr = |se: f64| 10.0 * (255.0f64.powi(2) / (se / cells as f64).max(1e-9)).log10();
        (psnr(se_luma), psnr(se_rgb))
    }

    #[test]
    fn first_scans_give_the_box_means_of_the_full_image() {
        // turbojpeg's progressive script is libjpeg's default: AC bands sent 1 or 2 bits
        // short, then refined. Those refinement scans are skipped at 1/4 and 1/2 scale: the
        // means differ from the full decode's by the missing low bits only.
        let mut scratch = Scratch::default();
        let cases = [
            ("grey 203x157", progressive(203, 157, Subsamp::Gray)),
            ("4:4:4 160x96", progressive(160, 96, Subsamp::None)),
            ("4:2:0 203x157", progressive(203, 157, Subsamp::Sub2x2)),
            ("4:2:2 128x64", progressive(128, 64, Subsamp::Sub2x1)),
            ("4:2:0 9x17", progressive(9, 17, Subsamp::Sub2x2)),
            ("separate DC scans, restarts", SEPARATE_DC.to_vec()),
            ("restart every row", RESTART_ROWS.to_vec()),
        ];
        for (name, bytes) in &cases {
            for denom in [4, 2] {
                let (luma, rgb) = against_box_means(bytes, denom, &mut scratch);
                // Measured: luma 45-52 dB at 1/4, 37-40 at 1/2 (the noise in these images
                // is in the high frequencies whose low bits are skipped); RGB 34-47 (chroma
                // is interpolated where libjpeg upsamples before its colour conversion). With
                // rows and columns of the coefficients swapped: 28 dB.
                let (min_luma, min_rgb) = if denom == 4 {
                    (44.0, 33.0)
                } else {
                    (36.0, 34.0)
                };
                assert!(
                    luma >= min_luma && rgb >= min_rgb,
                    "{name} at 1/{denom}: PSNR luma {luma:.1} dB, RGB {rgb:.1} dB"
                );
            }
        }
    }

    #[test]
    fn scratch_buffers_carry_nothing_over() {
        // The same file decodes to the same pixels whatever the scratch held before.
        let (a, b) = (
            progressive(203, 157, Subsamp::Sub2x2),
            progressive(64, 48, Subsamp::Gray),
        );
        for denom in [8, 4, 2] {
            let (mut fresh, mut reused) = (Vec::new(), Vec::new());
            decode_reduced(&b, denom, 3, &mut fresh, &mut Scratch::default()).unwrap();
            let mut scratch = Scratch::default();
            decode_reduced(&a, denom, 3, &mut reused, &mut scratch).unwrap();
            decode_reduced(&b, denom, 3, &mut reused, &mut scratch).unwrap();
            assert_eq!(fresh, reused, "1/{denom}");
        }
    }

    #[test]
    fn everything_else_is_left_to_libjpeg() {
        let mut out = Vec::new();
        let mut baseline = turbojpeg::Compressor::new().unwrap();
        baseline.set_subsamp(Subsamp::Sub2x2).unwrap();
        let px = pixels(32, 32, 3);
        let image = turbojpeg::Image {
            pixels: &px[..],
            width: 32,
            pitch: 96,
            height: 32,
            format: PixelFormat::RGB,
        };
        let baseline = baseline.compress_to_vec(image).unwrap();
        assert_eq!(decode_dc(&baseline, 3, &mut out), None, "baseline");
        assert_eq!(decode_dc(b"\x89PNG\r\n\x1a\n", 3, &mut out), None, "PNG");
        assert_eq!(decode_dc(b"", 3, &mut out), None, "empty");
        let good = progressive(64, 48, Subsamp::Sub2x2);
        // Truncated anywhere (no EOI): libjpeg decides what a partial file gives.
        let mut scratch = Scratch::default();
        for cut in 0..good.len() - 2 {
            for denom in [8, 4, 2] {
                let got = decode_reduced(&good[..cut], denom, 3, &mut out, &mut scratch);
                assert_eq!(got, None, "cut at {cut}, 1/{denom}");
            }
        }
    }

    #[test]
    fn damaged_bytes_never_panic() {
        // Every byte of two files set to three values: a panic or a hang fails the test; any
        // result is allowed (damaged entropy data still decodes, like in libjpeg).
        let (mut out, mut scratch) = (Vec::new(), Scratch::default());
        for file in [progressive(40, 24, Subsamp::Sub2x2), SEPARATE_DC.to_vec()] {
            for i in 0..file.len() {
                for v in [0x00, 0xFF, file[i] ^ 0x5A] {
                    let mut bad = file.clone();
                    bad[i] = v;
                    for denom in [8, 4, 2] {
                        if let Some((w, h)) = decode_reduced(&bad, denom, 3, &mut out, &mut scratch)
                        {
                            assert_eq!(out.len(), w as usize * h as usize * 3);
                        }
                    }
                }
            }
        }
    }
}
