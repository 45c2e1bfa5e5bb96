//! The 1/8-scale image of a progressive JPEG from its DC scans alone.
//!
//! At 1/8 scale every 8x8 block becomes one pixel, the block's mean, which is its DC
//! coefficient: libjpeg's 1x1 inverse DCT reads nothing else. A progressive JPEG stores all DC
//! coefficients first, in one or two small scans (plus a one-bit refinement scan later),
//! and the AC coefficients in later scans that hold 80-90% of the bytes and cost most of the
//! decoding time. Reading only the DC scans and stepping over the others (a byte search for
//! the next marker) makes decode+resize to 256x256 about 7x faster than through libjpeg on a
//! 10.7 MP photo and 14x on a synthetic 9.4 MP image (`benches/micro.rs`); libjpeg must
//! entropy-decode every scan into a whole-image coefficient buffer first.
//!
//! Luma is exactly libjpeg's 1/8-scale luma. Chroma differs slightly: libjpeg decodes
//! subsampled chroma at 1/4 scale (a 2x2 inverse DCT, three AC coefficients) where this
//! interpolates the chroma DC values linearly. The function only handles what it can do
//! exactly as specified (ITU T.81 G.1.2.1: 8-bit Huffman progressive, one or three
//! components in YCbCr); for anything else, or any inconsistency in the data, it returns
//! `None` and the caller decodes with libjpeg, which also reports the errors.

/// Decodes the DC scans of a progressive JPEG into `out` as RGB (3 channels) or RGBA
/// (4, alpha 255), `ceil(width / 8) x ceil(height / 8)` pixels, row-major. Returns that size,
/// or `None` when the file is not a progressive JPEG this decoder handles (see the module
/// doc); `out` is then unspecified.
pub(crate) fn decode_dc(bytes: &[u8], channels: usize, out: &mut Vec<u8>) -> Option<(u32, u32)> {
    let mut p = Parser::new(bytes)?;
    p.run()?;
    p.render(channels, out)
}

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
    /// Whether a first DC scan covered this component.
    seen: bool,
}

/// A Huffman table as canonical codes: for each code length the largest code and the offset
/// of its symbols, plus a 9-bit lookup for the short codes (all that DC tables use in
/// practice).
#[derive(Clone)]
struct Huffman {
    /// `(length << 8) | symbol` for each 9-bit prefix, 0 when the code is longer.
    fast: Vec<u16>,
    /// Largest code of each length 1..=16 (-1 when none), index = length.
    maxcode: [i32; 17],
    /// `symbols index - first code` of each length.
    valoff: [i32; 17],
    symbols: Vec<u8>,
}

const FAST_BITS: u32 = 9;

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
            maxcode,
            valoff,
            symbols: symbols.to_vec(),
        })
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
        let mut code = 0i32;
        for len in 1..=16usize {
            code = (code << 1) | self.bits(1) as i32;
            if code <= t.maxcode[len] {
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
    /// DC entry (the first, in zigzag order) of each quantisation table.
    q0: [Option<u16>; 4],
    dc_tables: [Option<Huffman>; 4],
    restart_interval: usize,
}

impl<'a> Parser<'a> {
    fn new(data: &'a [u8]) -> Option<Self> {
        if data.get(..2)? != [0xFF, 0xD8] {
            return None;
        }
        Some(Parser {
            data,
            pos: 2,
            width: 0,
            height: 0,
            comps: Vec::new(),
            hmax: 1,
            vmax: 1,
            mcux: 0,
            mcuy: 0,
            q0: [None; 4],
            dc_tables: [None, None, None, None],
            restart_interval: 0,
        })
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
            c.dc = vec![0; c.bw * c.bh];
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
            if class == 0 {
                self.dc_tables[id] = Some(Huffman::new(counts, symbols)?);
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
            self.q0[id] = Some(if precision == 0 {
                u16::from(t[0])
            } else {
                u16::from(t[0]) << 8 | u16::from(t[1])
            });
            b = &b[1 + size..];
        }
        Some(())
    }

    /// One scan: decodes it when it carries DC coefficients, otherwise moves past its data.
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
            self.skip_entropy_data();
            return Some(());
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
            let c = &self.comps[members[0].0];
            (
                (self.width * c.h).div_ceil(self.hmax).div_ceil(8),
                (self.height * c.v).div_ceil(self.vmax).div_ceil(8),
            )
        } else {
            (self.mcux, self.mcuy)
        };
        let mut bits = Bits::new(self.data, self.pos);
        let mut pred = [0i32; 4];
        let mut todo = self.restart_interval;
        for uy in 0..units_y {
            for ux in 0..units_x {
                if self.restart_interval > 0 {
                    if todo == 0 {
                        bits.restart()?;
                        pred = [0; 4];
                        todo = self.restart_interval;
                    }
                    todo -= 1;
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

    /// The 1/8-scale pixels: each component's dequantised DC value as the block's mean,
    /// subsampled components interpolated to full size, then YCbCr to RGB (JFIF).
    fn render(&self, channels: usize, out: &mut Vec<u8>) -> Option<(u32, u32)> {
        let (w, h) = (self.width.div_ceil(8), self.height.div_ceil(8));
        let mut planes = Vec::with_capacity(self.comps.len());
        for c in &self.comps {
            let q = i64::from(self.q0[c.tq]?);
            // libjpeg's 1x1 inverse DCT: (dc * q) / 8 rounded, plus the 128 level shift.
            let level = |dc: i32| ((i64::from(dc) * q + 4) >> 3) as f32 + 128.0;
            let plane: Vec<f32> = if c.h == self.hmax && c.v == self.vmax {
                let mut p = Vec::with_capacity(w * h);
                for y in 0..h {
                    p.extend(c.dc[y * c.bw..y * c.bw + w].iter().map(|&d| level(d)));
                }
                p
            } else {
                // This component's samples cover (hmax / h) x (vmax / v) output pixels each.
                let (cw, ch) = ((w * c.h).div_ceil(self.hmax), (h * c.v).div_ceil(self.vmax));
                let src: Vec<f32> = (0..ch)
                    .flat_map(|y| c.dc[y * c.bw..y * c.bw + cw].iter().map(|&d| level(d)))
                    .collect();
                upsample(&src, cw, ch, w, h)
            };
            planes.push(plane);
        }
        out.clear();
        out.reserve(w * h * channels);
        // Float to integer casts saturate: this rounds and clamps to 0..=255.
        let clamp = |v: f32| (v + 0.5) as u8;
        if let [y] = &planes[..] {
            for &v in y {
                let g = clamp(v);
                out.extend_from_slice(&[g, g, g, 255][..channels]);
            }
        } else {
            let [y, cb, cr] = &planes[..] else {
                return None;
            };
            for i in 0..w * h {
                let (yy, b, r) = (y[i], cb[i] - 128.0, cr[i] - 128.0);
                out.extend_from_slice(
                    &[
                        clamp(yy + 1.402 * r),
                        clamp(yy - 0.344_136 * b - 0.714_136 * r),
                        clamp(yy + 1.772 * b),
                        255,
                    ][..channels],
                );
            }
        }
        Some((w as u32, h as u32))
    }
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
/// triangle filter libjpeg's "fancy" upsampling uses for 2x).
fn upsample(src: &[f32], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<f32> {
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
    let mut out = Vec::with_capacity(dw * dh);
    for &(y0, y1, fy) in &ty {
        let (r0, r1) = (&src[y0 * sw..(y0 + 1) * sw], &src[y1 * sw..(y1 + 1) * sw]);
        for &(x0, x1, fx) in &tx {
            let top = r0[x0] + (r0[x1] - r0[x0]) * fx;
            let bottom = r1[x0] + (r1[x1] - r1[x0]) * fx;
            out.push(top + (bottom - top) * fy);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::decode_dc;
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
        for cut in 0..good.len() - 2 {
            assert_eq!(decode_dc(&good[..cut], 3, &mut out), None, "cut at {cut}");
        }
    }

    #[test]
    fn damaged_bytes_never_panic() {
        // Every byte of two files set to three values: a panic or a hang fails the test; any
        // result is allowed (damaged entropy data still decodes, like in libjpeg).
        let mut out = Vec::new();
        for file in [progressive(40, 24, Subsamp::Sub2x2), SEPARATE_DC.to_vec()] {
            for i in 0..file.len() {
                for v in [0x00, 0xFF, file[i] ^ 0x5A] {
                    let mut bad = file.clone();
                    bad[i] = v;
                    if let Some((w, h)) = decode_dc(&bad, 3, &mut out) {
                        assert_eq!(out.len(), w as usize * h as usize * 3);
                    }
                }
            }
        }
    }
}
