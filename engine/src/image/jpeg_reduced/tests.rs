//! End-to-end tests of [`decode_reduced`](super::decode_reduced), against libjpeg.

use super::{Scratch, decode_dc, decode_reduced};
use turbojpeg::{Decompressor, PixelFormat, ScalingFactor, Subsamp};

/// Fixtures made with libjpeg-turbo's `cjpeg` (see `engine/tests/data/README.md`): DC
/// scans one component at a time with a restart every 3 blocks, and a 4:2:2 file with a
/// restart every MCU row.
const SEPARATE_DC: &[u8] =
    include_bytes!("../../../tests/data/progressive-420-separate-dc-restart3.jpg");
const RESTART_ROWS: &[u8] = include_bytes!("../../../tests/data/progressive-422-restart-rows.jpg");

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
                    if let Some((w, h)) = decode_reduced(&bad, denom, 3, &mut out, &mut scratch) {
                        assert_eq!(out.len(), w as usize * h as usize * 3);
                    }
                }
            }
        }
    }
}
