//! Entropy-coded data: the bit reader (byte stuffing, markers, restart intervals, Huffman
//! codes) and the scans it reads, DC scans (first and refinement) and first AC scans. The
//! reader's methods are called for every coefficient: they live in the module of the scan loops
//! that call them.

use super::huffman::{FAST_BITS, Huffman};
use super::idct::sample_weights;
use super::parse::{Component, Parser};

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
    #[inline]
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

    #[inline]
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
    #[inline]
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
    #[inline]
    fn new(interval: usize) -> Self {
        Restarts {
            interval,
            todo: interval,
        }
    }

    /// Called before each unit: whether a restart marker comes first.
    #[inline]
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

impl Parser<'_> {
    /// One scan: decodes it when it carries DC coefficients, or (above 1/8 scale) when it is
    /// a first AC scan; otherwise moves past its data.
    #[inline]
    pub(super) fn scan(&mut self, b: &[u8]) -> Option<()> {
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
}

/// JPEG's sign extension of an `s`-bit magnitude category value.
pub(super) fn extend(v: u32, s: u32) -> i32 {
    if s == 0 {
        0
    } else if v < 1 << (s - 1) {
        v as i32 - (1 << s) + 1
    } else {
        v as i32
    }
}
