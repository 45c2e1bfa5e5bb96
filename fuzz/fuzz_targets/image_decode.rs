//! Decoding and resizing hostile image bytes exactly as a worker does for each image of a job
//! (`shmframe::image::resize_image`): format sniffing, the pixel limit, JPEG header, EXIF
//! orientation, reduced DCT decode and the first-scan reader of progressive JPEGs, PNG (every colour type and depth), WebP, alpha, and
//! the resize into a small tensor with every fit and filter. Must never panic or crash,
//! whatever the bytes; a refused image is an `ImageError` with a message.
//!
//! Input: two bytes choosing the spec, then the file. Byte 0: fit (`% 3`), filter (`/ 3 % 4`),
//! alpha kept (`0x40`), full decode (`0x80`, else the default 2x oversampling); byte 1: width
//! `1 + low nibble`, height `1 + high nibble` (1 to 16).
#![no_main]

use libfuzzer_sys::fuzz_target;
use shmframe::image::{Alpha, Filter, Fit, ResizeSpec, resize_image};

fuzz_target!(|data: &[u8]| {
    let [a, b, bytes @ ..] = data else { return };
    let spec = ResizeSpec {
        fit: [Fit::Exact, Fit::Contain, Fit::Cover][usize::from(a % 3)],
        filter: [
            Filter::Lanczos3,
            Filter::Bicubic,
            Filter::Bilinear,
            Filter::Nearest,
        ][usize::from(a / 3 % 4)],
        alpha: if a & 0x40 != 0 {
            Alpha::Keep
        } else {
            Alpha::Flatten
        },
        max_pixels: 1 << 20,
        min_oversample: if a & 0x80 != 0 { 0.0 } else { 2.0 },
        ..ResizeSpec::new(1 + u32::from(b & 15), 1 + u32::from(b >> 4))
    };
    match resize_image(bytes, &spec) {
        Ok((pixels, (w, h))) => {
            assert_eq!(pixels.len(), spec.image_bytes());
            assert!(w > 0 && h > 0 && u64::from(w) * u64::from(h) <= spec.max_pixels);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
