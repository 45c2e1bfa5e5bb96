//! Decoding, orienting, resizing and encoding one image. Pure functions of bytes: no shared
//! memory, no files; [`super::pipeline`] drives them inside a worker.

use fast_image_resize as fir;
use image::metadata::Orientation;
use turbojpeg::{Decompressor, PixelFormat, ScalingFactor};

use super::{Alpha, Filter, Fit, ImageFormat, ResizeSpec};

/// Why one image could not be done. The message is what users see next to the path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The file has no bytes.
    #[error("empty file")]
    Empty,
    /// The bytes are no image format shmframe knows.
    #[error("not an image (unrecognised content)")]
    NotAnImage,
    /// A known image format that shmframe does not decode.
    #[error("unsupported format: {0} (supported: JPEG, PNG, WebP)")]
    Unsupported(&'static str),
    /// More pixels than the configured limit.
    #[error(
        "{width}x{height} = {pixels} pixels exceeds the limit of {limit} (decompression bomb?)"
    )]
    TooLarge {
        /// Source width.
        width: u64,
        /// Source height.
        height: u64,
        /// `width * height`.
        pixels: u64,
        /// The limit ([`super::ResizeSpec::max_pixels`]).
        limit: u64,
    },
    /// The decoder refused the data (corrupt, truncated, or a variant it cannot decode).
    #[error("corrupt or truncated {format}: {message}")]
    Corrupt {
        /// `JPEG`, `PNG`, `WebP`.
        format: &'static str,
        /// The decoder's message.
        message: String,
    },
    /// Resampling failed.
    #[error("resize failed: {0}")]
    Resize(String),
    /// Encoding the output failed.
    #[error("{format} encoding failed: {message}")]
    Encode {
        /// The output format.
        format: &'static str,
        /// The encoder's message.
        message: String,
    },
}

/// Decodes and resizes one image in this process, exactly as a worker does for each image of
/// a job: returns the pixels (`[height, width, channels]` of `spec`) and the source size in
/// display orientation.
///
/// ```no_run
/// use shmframe::image::{ResizeSpec, resize_image};
/// let bytes = std::fs::read("photo.jpg")?;
/// let (pixels, (w, h)) = resize_image(&bytes, &ResizeSpec::new(256, 256))?;
/// assert_eq!(pixels.len(), 256 * 256 * 3);
/// # let _ = (w, h);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn resize_image(bytes: &[u8], spec: &ResizeSpec) -> Result<(Vec<u8>, (u32, u32)), ImageError> {
    let mut codec = Codec::new()?;
    let d = codec.decode(bytes, spec)?;
    let mut out = vec![0u8; spec.image_bytes()];
    codec.resize_into(&d, spec, &mut out)?;
    Ok((out, d.source))
}

/// Encodes pixels (`[height, width, channels]` of `spec`) as `format`: what a job writes.
/// JPEG has no alpha: RGBA pixels are composited over white first.
pub fn encode_image(
    pixels: &[u8],
    spec: &ResizeSpec,
    format: ImageFormat,
) -> Result<Vec<u8>, ImageError> {
    if pixels.len() != spec.image_bytes() {
        return Err(ImageError::Encode {
            format: "image",
            message: format!(
                "{} bytes given for a {}x{}x{} image",
                pixels.len(),
                spec.width,
                spec.height,
                spec.channels()
            ),
        });
    }
    Codec::new()?.encode(pixels, spec, format)
}

/// Formats by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sniffed {
    Jpeg,
    Png,
    WebP,
}

pub(crate) fn sniff(bytes: &[u8]) -> Result<Sniffed, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    let starts = |m: &[u8]| bytes.starts_with(m);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        Ok(Sniffed::Jpeg)
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Ok(Sniffed::Png)
    } else if starts(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        Ok(Sniffed::WebP)
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Err(ImageError::Unsupported("GIF"))
    } else if starts(b"BM") {
        Err(ImageError::Unsupported("BMP"))
    } else if starts(b"II*\0") || starts(b"MM\0*") {
        Err(ImageError::Unsupported("TIFF"))
    } else if bytes.get(4..8) == Some(b"ftyp") {
        Err(ImageError::Unsupported("HEIF/AVIF"))
    } else {
        Err(ImageError::NotAnImage)
    }
}

/// A decoded image: `width * height * channels` bytes in the codec's buffer, already in
/// display orientation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decoded {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) channels: usize,
    /// The source's size in display orientation (before any reduced decode).
    pub(crate) source: (u32, u32),
}

/// One worker's codec state, reused across images (handles, buffers, resizer tables).
pub(crate) struct Codec {
    jpeg: Decompressor,
    jpeg_out: Option<turbojpeg::Compressor>,
    resizer: fir::Resizer,
    /// Decoded pixels.
    buf: Vec<u8>,
    /// Resized pixels for `contain` (then padded into the output) and for encoding.
    tmp: Vec<u8>,
    /// Working buffers of the progressive-JPEG reader, kept between images.
    jpeg_scratch: super::jpeg_reduced::Scratch,
}

impl Codec {
    pub(crate) fn new() -> Result<Self, ImageError> {
        Ok(Codec {
            jpeg: Decompressor::new().map_err(|e| ImageError::Corrupt {
                format: "JPEG",
                message: format!("cannot create a decompressor: {e}"),
            })?,
            jpeg_out: None,
            resizer: fir::Resizer::new(),
            buf: Vec::new(),
            tmp: Vec::new(),
            jpeg_scratch: Default::default(),
        })
    }

    /// Decodes `bytes` into the codec's buffer, RGB or RGBA as `spec` asks, oriented for
    /// display, reduced in the DCT domain (JPEG) when the target allows it.
    pub(crate) fn decode(
        &mut self,
        bytes: &[u8],
        spec: &ResizeSpec,
    ) -> Result<Decoded, ImageError> {
        match sniff(bytes)? {
            Sniffed::Jpeg => self.decode_jpeg(bytes, spec),
            Sniffed::Png => self.decode_generic(bytes, image::ImageFormat::Png, "PNG", spec),
            Sniffed::WebP => self.decode_generic(bytes, image::ImageFormat::WebP, "WebP", spec),
        }
    }

    fn decode_jpeg(&mut self, bytes: &[u8], spec: &ResizeSpec) -> Result<Decoded, ImageError> {
        let result = self.decode_jpeg_with_handle(bytes, spec);
        if result.is_err() {
            // TurboJPEG's handle does not recover from an error in a header: every later call
            // repeats it ("Bogus marker length" for every JPEG after one corrupt file, in this
            // worker, for all later jobs). A fresh handle keeps one bad file from failing others.
            if let Ok(fresh) = Decompressor::new() {
                self.jpeg = fresh;
            }
        }
        result
    }

    fn decode_jpeg_with_handle(
        &mut self,
        bytes: &[u8],
        spec: &ResizeSpec,
    ) -> Result<Decoded, ImageError> {
        let corrupt = |e: turbojpeg::Error| ImageError::Corrupt {
            format: "JPEG",
            message: e.to_string(),
        };
        let header = self.jpeg.read_header(bytes).map_err(corrupt)?;
        check_pixels(header.width as u64, header.height as u64, spec.max_pixels)?;
        let orientation = super::orientation::jpeg(bytes);
        let swaps = swaps_axes(orientation);
        // The target in the source's own (stored) orientation.
        let (sw, sh) = (header.width as u32, header.height as u32);
        let (need_w, need_h) = {
            let (dw, dh) = if swaps { (sh, sw) } else { (sw, sh) };
            let (nw, nh) = resampled_size(dw, dh, spec);
            if swaps { (nh, nw) } else { (nw, nh) }
        };
        let (format, channels) = match spec.alpha {
            Alpha::Flatten => (PixelFormat::RGB, 3),
            Alpha::Keep => (PixelFormat::RGBA, 4),
        };
        let source = if swaps { (sh, sw) } else { (sw, sh) };
        let reduced = jpeg_scale(sw, sh, need_w, need_h, spec.progressive_oversample);
        let denom = reduced.denom() / reduced.num();
        if spec.min_oversample > 0.0 && denom > 1 {
            // Not progressive, or anything this reader does not handle: libjpeg below.
            if let Some((width, height)) = super::jpeg_reduced::decode_reduced(
                bytes,
                denom,
                channels,
                &mut self.buf,
                &mut self.jpeg_scratch,
            ) {
                let d = Decoded {
                    width,
                    height,
                    channels,
                    source,
                };
                return Ok(self.orient(d, orientation));
            }
        }
        let scale = jpeg_scale(sw, sh, need_w, need_h, spec.min_oversample);
        self.jpeg.set_scaling_factor(scale).map_err(corrupt)?;
        let scaled = header.scaled(scale);
        let len = scaled.width * scaled.height * channels;
        self.buf.clear();
        self.buf.resize(len, 0);
        let image = turbojpeg::Image {
            pixels: &mut self.buf[..len],
            width: scaled.width,
            pitch: scaled.width * channels,
            height: scaled.height,
            format,
        };
        self.jpeg.decompress(bytes, image).map_err(corrupt)?;
        let d = Decoded {
            width: scaled.width as u32,
            height: scaled.height as u32,
            channels,
            source,
        };
        Ok(self.orient(d, orientation))
    }

    fn decode_generic(
        &mut self,
        bytes: &[u8],
        format: image::ImageFormat,
        name: &'static str,
        spec: &ResizeSpec,
    ) -> Result<Decoded, ImageError> {
        use image::ImageDecoder;
        let corrupt = |e: image::ImageError| ImageError::Corrupt {
            format: name,
            message: e.to_string(),
        };
        let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
        let mut limits = image::Limits::default();
        // Dimensions are checked against max_pixels below; this bounds the decoder's own
        // allocations (16-bit RGBA at the pixel limit).
        limits.max_alloc = Some(spec.max_pixels.saturating_mul(8).max(1 << 20));
        reader.limits(limits);
        let decoder = reader.into_decoder().map_err(corrupt)?;
        let (w, h) = decoder.dimensions();
        check_pixels(u64::from(w), u64::from(h), spec.max_pixels)?;
        // Read from the file's bytes, not from the decoder: `image` misses an eXIf chunk
        // after the image data, an `Exif\0\0` header, the text chunks and XMP.
        let orientation = if format == image::ImageFormat::Png {
            super::orientation::png(bytes)
        } else {
            super::orientation::webp(bytes)
        };
        let img = image::DynamicImage::from_decoder(decoder).map_err(corrupt)?;
        let channels = spec.channels();
        let (w, h) = (img.width(), img.height());
        self.buf.clear();
        match spec.alpha {
            Alpha::Keep => self.buf.extend_from_slice(img.to_rgba8().as_raw()),
            Alpha::Flatten if img.color().has_alpha() => {
                let rgba = img.to_rgba8();
                self.buf.reserve(w as usize * h as usize * 3);
                for p in rgba.as_raw().chunks_exact(4) {
                    for &c in &p[..3] {
                        self.buf.push(over_white(c, p[3]));
                    }
                }
            }
            Alpha::Flatten => self.buf.extend_from_slice(img.to_rgb8().as_raw()),
        }
        let swaps = swaps_axes(orientation);
        let d = Decoded {
            width: w,
            height: h,
            channels,
            source: if swaps { (h, w) } else { (w, h) },
        };
        Ok(self.orient(d, orientation))
    }

    /// Applies an EXIF orientation to the decoded buffer (image's own transforms).
    fn orient(&mut self, d: Decoded, o: Orientation) -> Decoded {
        if o == Orientation::NoTransforms {
            return d;
        }
        let len = d.width as usize * d.height as usize * d.channels;
        let mut raw = std::mem::take(&mut self.buf);
        raw.truncate(len);
        let mut img = if d.channels == 3 {
            image::DynamicImage::ImageRgb8(
                image::RgbImage::from_raw(d.width, d.height, raw).expect("buffer fits"),
            )
        } else {
            image::DynamicImage::ImageRgba8(
                image::RgbaImage::from_raw(d.width, d.height, raw).expect("buffer fits"),
            )
        };
        img.apply_orientation(o);
        let (width, height) = (img.width(), img.height());
        self.buf = img.into_bytes();
        Decoded { width, height, ..d }
    }

    /// Resizes the decoded image into `out` (`spec.image_bytes()` bytes, row-major
    /// `[height, width, channels]`), fitted as `spec` says.
    pub(crate) fn resize_into(
        &mut self,
        d: &Decoded,
        spec: &ResizeSpec,
        out: &mut [u8],
    ) -> Result<(), ImageError> {
        let err = |e: &dyn std::fmt::Display| ImageError::Resize(e.to_string());
        let pt = match d.channels {
            3 => fir::PixelType::U8x3,
            _ => fir::PixelType::U8x4,
        };
        let src_len = d.width as usize * d.height as usize * d.channels;
        let src = fir::images::ImageRef::new(d.width, d.height, &self.buf[..src_len], pt)
            .map_err(|e| err(&e))?;
        let alg = match spec.filter {
            Filter::Lanczos3 => fir::ResizeAlg::Convolution(fir::FilterType::Lanczos3),
            Filter::Bicubic => fir::ResizeAlg::Convolution(fir::FilterType::CatmullRom),
            Filter::Bilinear => fir::ResizeAlg::Convolution(fir::FilterType::Bilinear),
            Filter::Nearest => fir::ResizeAlg::Nearest,
        };
        let mut opts = fir::ResizeOptions::new().resize_alg(alg);
        match spec.fit {
            Fit::Exact | Fit::Cover => {
                if spec.fit == Fit::Cover {
                    opts = opts.fit_into_destination(Some((0.5, 0.5)));
                }
                let mut dst = fir::images::Image::from_slice_u8(spec.width, spec.height, out, pt)
                    .map_err(|e| err(&e))?;
                self.resizer
                    .resize(&src, &mut dst, &opts)
                    .map_err(|e| err(&e))
            }
            Fit::Contain => {
                let (iw, ih) = resampled_size(d.width, d.height, spec);
                let c = d.channels;
                self.tmp.clear();
                self.tmp.resize(iw as usize * ih as usize * c, 0);
                let mut dst = fir::images::Image::from_slice_u8(iw, ih, &mut self.tmp, pt)
                    .map_err(|e| err(&e))?;
                self.resizer
                    .resize(&src, &mut dst, &opts)
                    .map_err(|e| err(&e))?;
                // Pad: black (opaque) for RGB, transparent for RGBA.
                out.fill(0);
                let (ox, oy) = (
                    ((spec.width - iw) / 2) as usize,
                    ((spec.height - ih) / 2) as usize,
                );
                let row = iw as usize * c;
                for y in 0..ih as usize {
                    let t = ((oy + y) * spec.width as usize + ox) * c;
                    out[t..t + row].copy_from_slice(&self.tmp[y * row..(y + 1) * row]);
                }
                Ok(())
            }
        }
    }

    /// Encodes `pixels` (`spec.width x spec.height`, `spec.channels()`) as `format`.
    pub(crate) fn encode(
        &mut self,
        pixels: &[u8],
        spec: &ResizeSpec,
        format: ImageFormat,
    ) -> Result<Vec<u8>, ImageError> {
        let (w, h, c) = (spec.width, spec.height, spec.channels());
        match format {
            ImageFormat::Jpeg { quality } => {
                let enc_err = |e: turbojpeg::Error| ImageError::Encode {
                    format: "JPEG",
                    message: e.to_string(),
                };
                if self.jpeg_out.is_none() {
                    let mut comp = turbojpeg::Compressor::new().map_err(enc_err)?;
                    comp.set_subsamp(turbojpeg::Subsamp::Sub2x2)
                        .map_err(enc_err)?;
                    self.jpeg_out = Some(comp);
                }
                let comp = self.jpeg_out.as_mut().expect("set above");
                comp.set_quality(i32::from(quality.clamp(1, 100)))
                    .map_err(enc_err)?;
                // JPEG has no alpha: RGBA is composited over white, as `Alpha::Flatten` does
                // before resizing (libjpeg would drop alpha and show the colour stored under
                // transparent pixels: black after a premultiplied resize).
                let rgb = if c == 4 {
                    self.tmp.clear();
                    self.tmp.extend(
                        pixels
                            .chunks_exact(4)
                            .flat_map(|p| [0, 1, 2].map(|k| over_white(p[k], p[3]))),
                    );
                    &self.tmp[..]
                } else {
                    pixels
                };
                let image = turbojpeg::Image {
                    pixels: rgb,
                    width: w as usize,
                    pitch: w as usize * 3,
                    height: h as usize,
                    format: PixelFormat::RGB,
                };
                comp.compress_to_vec(image).map_err(enc_err)
            }
            ImageFormat::Png | ImageFormat::WebP => {
                use image::ImageEncoder;
                let color = if c == 3 {
                    image::ExtendedColorType::Rgb8
                } else {
                    image::ExtendedColorType::Rgba8
                };
                let mut out = Vec::new();
                let (name, r) = if format == ImageFormat::Png {
                    (
                        "PNG",
                        image::codecs::png::PngEncoder::new(&mut out)
                            .write_image(pixels, w, h, color),
                    )
                } else {
                    (
                        "WebP",
                        image::codecs::webp::WebPEncoder::new_lossless(&mut out)
                            .write_image(pixels, w, h, color),
                    )
                };
                r.map_err(|e| ImageError::Encode {
                    format: name,
                    message: e.to_string(),
                })?;
                Ok(out)
            }
        }
    }
}

/// A colour channel of a straight-alpha pixel composited over white: `c * a + 255 * (1 - a)`,
/// rounded.
fn over_white(c: u8, a: u8) -> u8 {
    let a = u32::from(a);
    ((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8
}

fn check_pixels(width: u64, height: u64, limit: u64) -> Result<(), ImageError> {
    let pixels = width.saturating_mul(height);
    if pixels > limit {
        return Err(ImageError::TooLarge {
            width,
            height,
            pixels,
            limit,
        });
    }
    if pixels == 0 {
        return Err(ImageError::Corrupt {
            format: "image",
            message: "zero width or height".into(),
        });
    }
    Ok(())
}

fn swaps_axes(o: Orientation) -> bool {
    matches!(
        o,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// The size the whole source (`w x h`, display orientation) is resampled to: the target for
/// `exact`; fitted inside it for `contain`; filling it (before the crop) for `cover`.
pub(crate) fn resampled_size(w: u32, h: u32, spec: &ResizeSpec) -> (u32, u32) {
    let (tw, th) = (f64::from(spec.width), f64::from(spec.height));
    let (sx, sy) = (tw / f64::from(w.max(1)), th / f64::from(h.max(1)));
    let s = match spec.fit {
        Fit::Exact => return (spec.width, spec.height),
        Fit::Contain => sx.min(sy),
        Fit::Cover => sx.max(sy),
    };
    let fit = |v: u32, t: u32| ((f64::from(v) * s).round() as u32).clamp(1, t.max(1));
    match spec.fit {
        Fit::Contain => (fit(w, spec.width), fit(h, spec.height)),
        _ => (
            ((f64::from(w) * s).round() as u32).max(spec.width),
            ((f64::from(h) * s).round() as u32).max(spec.height),
        ),
    }
}

/// The smallest DCT scale (1/8, 1/4, 1/2, 1) that keeps at least `oversample` decoded pixels
/// per resampled pixel along both axes.
pub(crate) fn jpeg_scale(
    w: u32,
    h: u32,
    need_w: u32,
    need_h: u32,
    oversample: f32,
) -> ScalingFactor {
    if oversample <= 0.0 {
        return ScalingFactor::ONE;
    }
    for denom in [8usize, 4, 2] {
        let f = ScalingFactor::new(1, denom);
        let (sw, sh) = (f.scale(w as usize), f.scale(h as usize));
        if sw as f64 >= f64::from(oversample) * f64::from(need_w)
            && sh as f64 >= f64::from(oversample) * f64::from(need_h)
        {
            return f;
        }
    }
    ScalingFactor::ONE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_names_what_it_refuses() {
        assert!(matches!(sniff(b""), Err(ImageError::Empty)));
        assert!(matches!(sniff(b"hello"), Err(ImageError::NotAnImage)));
        assert!(matches!(
            sniff(b"GIF89a..."),
            Err(ImageError::Unsupported("GIF"))
        ));
        assert!(matches!(
            sniff(b"\0\0\0\x18ftypavif"),
            Err(ImageError::Unsupported(_))
        ));
        assert_eq!(sniff(b"\xff\xd8\xff\xe0").unwrap(), Sniffed::Jpeg);
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 ").unwrap(), Sniffed::WebP);
    }

    #[test]
    fn dct_scale_keeps_the_oversampling() {
        // 4000x3000 to 256x256: 1/8 gives 500x375, under 2x in height; 1/4 gives 1000x750.
        assert_eq!(jpeg_scale(4000, 3000, 256, 256, 2.0).denom(), 4);
        assert_eq!(jpeg_scale(4000, 3000, 256, 256, 1.0).denom(), 8);
        assert_eq!(jpeg_scale(600, 400, 256, 256, 2.0).denom(), 1);
        assert_eq!(jpeg_scale(4000, 3000, 256, 256, 0.0).denom(), 1);
    }

    #[test]
    fn fits_resample_to_the_right_sizes() {
        let mut s = ResizeSpec::new(256, 256);
        assert_eq!(resampled_size(4000, 2000, &s), (256, 256));
        s.fit = Fit::Contain;
        assert_eq!(resampled_size(4000, 2000, &s), (256, 128));
        s.fit = Fit::Cover;
        assert_eq!(resampled_size(4000, 2000, &s), (512, 256));
    }
}
