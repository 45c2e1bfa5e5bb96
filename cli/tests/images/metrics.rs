//! Comparing pixels: error and PSNR measures, and decoding files and bytes to compare.

use crate::s;
use std::path::Path;

// Comparing pixels.

pub(crate) fn mae(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "compared images differ in size");
    let sum: u64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.len().max(1) as f64
}

pub(crate) fn max_diff(a: &[u8], b: &[u8]) -> u8 {
    assert_eq!(a.len(), b.len(), "compared images differ in size");
    a.iter()
        .zip(b)
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

pub(crate) fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "compared images differ in size");
    let se: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum();
    let mse = se / a.len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

/// The pixel at (x, y) of a `w`-wide image with `c` channels.
pub(crate) fn at(px: &[u8], w: u32, c: usize, x: u32, y: u32) -> &[u8] {
    let i = ((y * w + x) as usize) * c;
    &px[i..i + c]
}

pub(crate) fn near(got: &[u8], want: &[u8], tol: u8) -> bool {
    got.len() == want.len() && got.iter().zip(want).all(|(g, w)| g.abs_diff(*w) <= tol)
}

/// Decodes an output file: JPEG with TurboJPEG, PNG and WebP with `image`; RGB or RGBA.
pub(crate) fn decode_file(path: &Path, channels: usize) -> Result<(Vec<u8>, u32, u32), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    decode_bytes(&bytes, channels).map_err(|e| format!("{}: {e}", path.display()))
}

pub(crate) fn decode_bytes(bytes: &[u8], channels: usize) -> Result<(Vec<u8>, u32, u32), String> {
    if bytes.starts_with(&[0xFF, 0xD8]) {
        let fmt = if channels == 4 {
            turbojpeg::PixelFormat::RGBA
        } else {
            turbojpeg::PixelFormat::RGB
        };
        let img = turbojpeg::decompress(bytes, fmt).map_err(s)?;
        return Ok((img.pixels, img.width as u32, img.height as u32));
    }
    let img = image::load_from_memory(bytes).map_err(s)?;
    let (w, h) = (img.width(), img.height());
    let px = if channels == 4 {
        img.to_rgba8().into_raw()
    } else {
        img.to_rgb8().into_raw()
    };
    Ok((px, w, h))
}
