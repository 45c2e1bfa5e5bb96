//! Test images: generated source pixels and their encodings (JPEG through TurboJPEG, PNG
//! and WebP through the `image` crate, a hand-written palette PNG, EXIF blocks).

use crate::common::{Rng, png};
use image::ImageEncoder;

// Source images (row-major, interleaved channels).

/// A smooth RGB gradient: red along x, green along y, blue along the diagonal.
pub(crate) fn gradient(w: u32, h: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let fx = x as f32 / (w - 1).max(1) as f32;
            let fy = y as f32 / (h - 1).max(1) as f32;
            v.push((40.0 + 180.0 * fx).round() as u8);
            v.push((30.0 + 190.0 * fy).round() as u8);
            v.push((200.0 - 150.0 * (fx + fy) / 2.0).round() as u8);
        }
    }
    v
}

pub(crate) fn flat(w: u32, h: u32, colour: &[u8]) -> Vec<u8> {
    colour.repeat((w * h) as usize)
}

/// Four quadrants of different colours (red, green / blue, yellow): any rotation or flip
/// moves them somewhere else.
pub(crate) const QUAD: [[u8; 3]; 4] = [[220, 30, 30], [30, 200, 40], [30, 40, 220], [230, 220, 30]];

pub(crate) fn quadrants(w: u32, h: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let q = usize::from(x >= w / 2) + 2 * usize::from(y >= h / 2);
            v.extend_from_slice(&QUAD[q]);
        }
    }
    v
}

/// Three vertical bands (red, green, blue) of equal width.
pub(crate) const BANDS: [[u8; 3]; 3] = [[200, 20, 20], [20, 180, 30], [20, 30, 210]];

pub(crate) fn bands(w: u32, h: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity((w * h * 3) as usize);
    for _ in 0..h {
        for x in 0..w {
            v.extend_from_slice(&BANDS[(x * 3 / w) as usize]);
        }
    }
    v
}

/// The same bands along y: a tall image whose bands survive a fit along the other axis.
pub(crate) fn hbands(w: u32, h: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for _ in 0..w {
            v.extend_from_slice(&BANDS[(y * 3 / h) as usize]);
        }
    }
    v
}

/// Photo-like content: value noise over four octaves (smooth areas and fine detail), hard-
/// edged shapes, and sensor-like grain.
pub(crate) fn texture(w: u32, h: u32, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let (wu, hu) = (w as usize, h as usize);
    let mut acc = vec![0f32; wu * hu * 3];
    let smooth = |t: f32| t * t * (3.0 - 2.0 * t);
    for (cell, amp) in [(331usize, 70f32), (89, 40.0), (23, 22.0), (5, 10.0)] {
        let (gw, gh) = (wu / cell + 2, hu / cell + 2);
        let grid: Vec<f32> = (0..gw * gh * 3).map(|_| rng.unit() * 2.0 - 1.0).collect();
        let tx: Vec<f32> = (0..wu)
            .map(|x| smooth((x % cell) as f32 / cell as f32))
            .collect();
        // Per row: the lattice interpolated along y, then one lerp along x per sample.
        let mut line = vec![0f32; gw * 3];
        for y in 0..hu {
            let (gy, ty) = (y / cell, smooth((y % cell) as f32 / cell as f32));
            let (top, bot) = (&grid[gy * gw * 3..], &grid[(gy + 1) * gw * 3..]);
            for i in 0..gw * 3 {
                line[i] = amp * (top[i] + (bot[i] - top[i]) * ty);
            }
            let row = &mut acc[y * wu * 3..(y + 1) * wu * 3];
            for x in 0..wu {
                let g = (x / cell) * 3;
                let t = tx[x];
                for c in 0..3 {
                    let (a, b) = (line[g + c], line[g + 3 + c]);
                    row[x * 3 + c] += a + (b - a) * t;
                }
            }
        }
    }
    let mut v: Vec<u8> = acc
        .iter()
        .map(|a| (128.0 + a + (rng.unit() - 0.5) * 12.0).clamp(0.0, 255.0) as u8)
        .collect();
    draw_shapes(&mut v, w, h, &mut rng);
    v
}

/// Discs and rectangles of random colours: hard edges.
pub(crate) fn draw_shapes(v: &mut [u8], w: u32, h: u32, rng: &mut Rng) {
    let wu = w as usize;
    for _ in 0..12 {
        let colour = [
            rng.below(256) as u8,
            rng.below(256) as u8,
            rng.below(256) as u8,
        ];
        let (cx, cy) = (
            rng.below(u64::from(w)) as i64,
            rng.below(u64::from(h)) as i64,
        );
        let r = (rng.below(u64::from(w / 8)) + 10) as i64;
        let disc = rng.below(2) == 0;
        for y in (cy - r).max(0)..(cy + r).min(i64::from(h)) {
            for x in (cx - r).max(0)..(cx + r).min(i64::from(w)) {
                if !disc || (x - cx).pow(2) + (y - cy).pow(2) <= r * r {
                    let i = (y as usize * wu + x as usize) * 3;
                    v[i..i + 3].copy_from_slice(&colour);
                }
            }
        }
    }
}

/// `px` as the display shows it under EXIF orientation `o` (1 to 8), computed here
/// independently of the engine: (pixels, width, height).
pub(crate) fn orient(px: &[u8], w: u32, h: u32, c: usize, o: u8) -> (Vec<u8>, u32, u32) {
    let (dw, dh) = if o >= 5 { (h, w) } else { (w, h) };
    let mut out = vec![0u8; px.len()];
    for yd in 0..dh {
        for xd in 0..dw {
            let (xs, ys) = match o {
                1 => (xd, yd),
                2 => (w - 1 - xd, yd), // mirrored
                3 => (w - 1 - xd, h - 1 - yd),
                4 => (xd, h - 1 - yd),         // flipped
                5 => (yd, xd),                 // transposed
                6 => (yd, h - 1 - xd),         // 90 degrees clockwise
                7 => (w - 1 - yd, h - 1 - xd), // transversed
                8 => (w - 1 - yd, xd),         // 90 degrees counter-clockwise
                _ => panic!("orientation {o} is not an EXIF value"),
            };
            let (d, s) = (((yd * dw + xd) as usize) * c, ((ys * w + xs) as usize) * c);
            out[d..d + c].copy_from_slice(&px[s..s + c]);
        }
    }
    (out, dw, dh)
}

/// Box-filter downscale by an integer factor: an independent reference for smooth content.
pub(crate) fn box_down(px: &[u8], w: u32, h: u32, c: usize, f: u32) -> Vec<u8> {
    let (ow, oh) = (w / f, h / f);
    let mut out = Vec::with_capacity((ow * oh) as usize * c);
    for oy in 0..oh {
        for ox in 0..ow {
            for ch in 0..c {
                let mut sum = 0u32;
                for y in oy * f..(oy + 1) * f {
                    for x in ox * f..(ox + 1) * f {
                        sum += u32::from(px[((y * w + x) as usize) * c + ch]);
                    }
                }
                out.push(((sum + f * f / 2) / (f * f)) as u8);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Encoders.

#[derive(Clone, Copy)]
pub(crate) struct Jpeg {
    pub(crate) quality: i32,
    pub(crate) subsamp: turbojpeg::Subsamp,
    pub(crate) progressive: bool,
}

pub(crate) const JPEG_444: Jpeg = Jpeg {
    quality: 95,
    subsamp: turbojpeg::Subsamp::None,
    progressive: false,
};

/// A JPEG of RGB (`c == 3`) or grayscale (`c == 1`) pixels, through TurboJPEG.
pub(crate) fn jpeg(px: &[u8], w: u32, h: u32, c: usize, j: Jpeg) -> Vec<u8> {
    let mut comp = turbojpeg::Compressor::new().expect("compressor");
    comp.set_quality(j.quality).unwrap();
    comp.set_subsamp(if c == 1 {
        turbojpeg::Subsamp::Gray
    } else {
        j.subsamp
    })
    .unwrap();
    comp.set_progressive(j.progressive).unwrap();
    let image = turbojpeg::Image {
        pixels: px,
        width: w as usize,
        pitch: w as usize * c,
        height: h as usize,
        format: if c == 1 {
            turbojpeg::PixelFormat::GRAY
        } else {
            turbojpeg::PixelFormat::RGB
        },
    };
    comp.compress_to_vec(image).expect("jpeg encode")
}

/// Whether a JPEG has a progressive (SOF2) frame header.
pub(crate) fn is_progressive(j: &[u8]) -> bool {
    j.windows(2).any(|m| m == [0xFF, 0xC2])
}

/// A little-endian TIFF block holding one IFD entry: orientation `o`.
pub(crate) fn exif_tiff(o: u8) -> Vec<u8> {
    let mut t = b"II*\0".to_vec();
    t.extend_from_slice(&8u32.to_le_bytes());
    t.extend_from_slice(&1u16.to_le_bytes());
    t.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
    t.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(&u16::from(o).to_le_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    t
}

/// `j` with an APP1 `Exif` segment holding orientation `o` right after SOI, as cameras write.
pub(crate) fn with_exif(j: &[u8], o: u8) -> Vec<u8> {
    let tiff = exif_tiff(o);
    let mut out = j[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((2 + 6 + tiff.len()) as u16).to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(&tiff);
    out.extend_from_slice(&j[2..]);
    out
}

pub(crate) fn png_with_exif(px: &[u8], w: u32, h: u32, o: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = image::codecs::png::PngEncoder::new(&mut out);
    enc.set_exif_metadata(exif_tiff(o)).expect("exif");
    enc.write_image(px, w, h, image::ExtendedColorType::Rgb8)
        .expect("png encode");
    out
}

/// An RGB PNG with its eXIf chunk after the image data (exiftool and others put it there;
/// a reader that stops at IDAT misses it).
pub(crate) fn png_with_exif_after_idat(px: &[u8], w: u32, h: u32, o: u8) -> Vec<u8> {
    let plain = png(px, w, h, image::ExtendedColorType::Rgb8);
    let iend = plain.len() - 12;
    let mut out = plain[..iend].to_vec();
    png_chunk(&mut out, b"eXIf", &exif_tiff(o));
    out.extend_from_slice(&plain[iend..]);
    out
}

/// A lossless WebP (extended format: VP8X, VP8L, then the EXIF chunk) with orientation `o`.
pub(crate) fn webp_with_exif(px: &[u8], w: u32, h: u32, o: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = image::codecs::webp::WebPEncoder::new_lossless(&mut out);
    enc.set_exif_metadata(exif_tiff(o)).expect("exif");
    enc.write_image(px, w, h, image::ExtendedColorType::Rgb8)
        .expect("webp encode");
    out
}

/// 16-bit RGB or gray PNG: `v` holds the 16-bit samples.
pub(crate) fn png16(v: &[u16], w: u32, h: u32, color: image::ExtendedColorType) -> Vec<u8> {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_ne_bytes()).collect();
    png(&bytes, w, h, color)
}

pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

pub(crate) fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// An indexed-colour PNG, written by hand (the `image` crate writes none): `depth` bits per
/// index, an optional tRNS alpha per palette entry, zlib with stored blocks.
pub(crate) fn palette_png(
    w: u32,
    h: u32,
    depth: u8,
    palette: &[[u8; 3]],
    trns: Option<&[u8]>,
    idx: &[u8],
) -> Vec<u8> {
    let per_byte = 8 / depth as usize;
    let row_bytes = (w as usize).div_ceil(per_byte);
    let mut raw = Vec::new();
    for y in 0..h as usize {
        raw.push(0); // filter: none
        let mut row = vec![0u8; row_bytes];
        for x in 0..w as usize {
            let shift = 8 - depth as usize * (x % per_byte + 1);
            row[x / per_byte] |= idx[y * w as usize + x] << shift;
        }
        raw.extend_from_slice(&row);
    }
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, b) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        z.extend_from_slice(&(b.len() as u16).to_le_bytes());
        z.extend_from_slice(&(!(b.len() as u16)).to_le_bytes());
        z.extend_from_slice(b);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[depth, 3, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(&mut out, b"PLTE", &palette.concat());
    if let Some(t) = trns {
        png_chunk(&mut out, b"tRNS", t);
    }
    png_chunk(&mut out, b"IDAT", &z);
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// Composites a straight-alpha pixel over white, as the engine documents for `Alpha::Flatten`.
pub(crate) fn over_white(c: u8, a: u8) -> u8 {
    let (c, a) = (u32::from(c), u32::from(a));
    ((c * a + 255 * (255 - a) + 127) / 255) as u8
}
