//! Image batch resizing on the worker pool: decode, resize, and optionally encode many images,
//! with the pixels landing in a shared `arrow.fixed_shape_tensor` frame.
//!
//! The data's path (see `docs/ARCHITECTURE.md`, "Image jobs"):
//!
//! 1. The coordinator puts the encoded files into an input segment: a `path` (`Utf8`) and a
//!    `bytes` (`LargeBinary`) column, each file read straight into the mapping (no heap copy).
//!    [`crate::Engine::resize_frame`] takes any frame with a binary column instead.
//! 2. It plans the output segment (`path`, `image` as `uint8 [H, W, C]` tensors, source sizes)
//!    and a scratch region of per-image status words, timings and error messages.
//! 3. Workers claim images (chunks of rows) with the pool's atomic counter, decode (JPEG at a
//!    reduced DCT scale when the target is at least 2x smaller), apply the EXIF orientation,
//!    resize with SIMD convolution straight into their rows of the output, encode to a
//!    temporary file and rename it when an output folder is given, then mark the image done.
//! 4. After the job the coordinator turns failed images into nulls (validity bitmap and null
//!    count) and publishes the output frame; failures come back as [`ImageFailure`]s.
//!
//! A bad image (corrupt, truncated, empty, not an image, unsupported, over the pixel limit)
//! fails alone: every other image is still done.

pub(crate) mod codec;
pub(crate) mod files;
mod jpeg_reduced;
mod orientation;
pub(crate) mod pipeline;
mod report;

use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::EngineError;

pub use codec::{ImageError, encode_image, resize_image};
pub use files::list_image_files;
pub use report::{ImageFailure, ResizeOutput, StageTimes};

/// How the source is fitted into the target size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Fit {
    /// Stretched to exactly the target size; the aspect ratio is not kept.
    #[default]
    Exact,
    /// Scaled to fit inside the target, centred, the rest padded (black, or transparent
    /// with [`Alpha::Keep`]).
    Contain,
    /// Scaled to fill the target, centred, the overflow cropped.
    Cover,
}

/// The resampling filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Filter {
    /// Lanczos, 3 lobes: the sharpest, the default.
    #[default]
    Lanczos3,
    /// Bicubic (Catmull-Rom).
    Bicubic,
    /// Bilinear (triangle).
    Bilinear,
    /// Nearest neighbour: no filtering at all.
    Nearest,
}

/// What happens to an alpha channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Alpha {
    /// Composited over white at full size, then resampled: RGB out, 3 channels.
    #[default]
    Flatten,
    /// Kept: RGBA out, 4 channels (opaque sources get alpha 255), resampled with
    /// premultiplied alpha (the colour of transparent pixels does not bleed; a fully
    /// transparent output pixel is `0,0,0,0`; [`Filter::Nearest`] copies pixels as they are).
    /// JPEG has no alpha: JPEG files get the pixels composited over white.
    Keep,
}

/// File format of encoded outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageFormat {
    /// JPEG (TurboJPEG), 4:2:0, at the quality given; RGBA pixels are composited over white.
    Jpeg {
        /// 1-100.
        quality: u8,
    },
    /// PNG, 8 bits per channel.
    Png,
    /// WebP, lossless.
    WebP,
}

impl ImageFormat {
    /// The file extension written, without the dot.
    pub fn extension(&self) -> &'static str {
        match self {
            ImageFormat::Jpeg { .. } => "jpg",
            ImageFormat::Png => "png",
            ImageFormat::WebP => "webp",
        }
    }
}

/// What an image job makes of each image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResizeSpec {
    /// Output width in pixels.
    pub width: u32,
    /// Output height in pixels.
    pub height: u32,
    /// How the source fits the target.
    pub fit: Fit,
    /// The resampling filter.
    pub filter: Filter,
    /// Alpha handling (decides the channel count: 3 or 4).
    pub alpha: Alpha,
    /// Images with more source pixels than this are refused before decoding (decompression
    /// bombs). Default 100 megapixels.
    pub max_pixels: u64,
    /// JPEG only: the DCT-domain reduction is chosen so that the decoded image keeps at least
    /// this many source pixels per output pixel along each axis (default 2.0; 1.0 is what
    /// Pillow's `draft` does; 0 disables the reduced decode).
    pub min_oversample: f32,
    /// JPEG only: progressive JPEGs are decoded by shmframe's own reader of their first scans
    /// (`image/jpeg_reduced/`) instead of by libjpeg, which must decode every scan first, at
    /// the smallest scale (1/8, 1/4, 1/2) that keeps at least this many decoded pixels per
    /// resampled pixel along each axis (default 1.0, Pillow `draft`'s rule):
    /// - at 1/8, from the DC scans alone: the same luma as libjpeg's 1/8-scale decode;
    /// - at 1/4 or 1/2, from the DC and first AC scans, skipping the AC refinement scans:
    ///   each decoded pixel is the mean of the full-size pixels it covers, short of the AC
    ///   coefficients' last one or two bits (about one grey level).
    ///
    /// On the 31 photographs of `docs/BENCHMARKS.md` the default 1.0 is about 1.3x faster
    /// than 2.0, for about 1.2 dB less mean PSNR. 0 (or a scale that works out to 1, or
    /// `min_oversample` 0) leaves every JPEG to libjpeg.
    pub progressive_oversample: f32,
}

impl ResizeSpec {
    /// A spec for `width` x `height` with the defaults: exact fit, Lanczos3, alpha flattened,
    /// 100 MP limit, 2x oversampling before the final resize (1x for progressive JPEGs).
    pub fn new(width: u32, height: u32) -> Self {
        ResizeSpec {
            width,
            height,
            fit: Fit::Exact,
            filter: Filter::Lanczos3,
            alpha: Alpha::Flatten,
            max_pixels: 100_000_000,
            min_oversample: 2.0,
            progressive_oversample: 1.0,
        }
    }

    /// Channels per output pixel: 3 (RGB) or 4 (RGBA).
    pub fn channels(&self) -> usize {
        match self.alpha {
            Alpha::Flatten => 3,
            Alpha::Keep => 4,
        }
    }

    /// Bytes of one output image.
    pub fn image_bytes(&self) -> usize {
        self.width as usize * self.height as usize * self.channels()
    }
}

impl EncodeSpec {
    /// The file a resize job writes for each of `paths` (relative to
    /// [`EncodeSpec::strip_prefix`], with the format's extension, below [`EncodeSpec::dir`]).
    /// Two inputs with one output are refused, as the job refuses them before it starts: the
    /// error names both and, when keeping the source extensions would separate them, says so.
    pub fn output_paths(&self, paths: &[String]) -> Result<Vec<PathBuf>, EngineError> {
        let mut seen: HashMap<PathBuf, usize> = HashMap::with_capacity(paths.len());
        let mut out = Vec::with_capacity(paths.len());
        for (row, p) in paths.iter().enumerate() {
            let dest = pipeline::output_path(self, Some(p), row);
            if let Some(first) = seen.insert(dest.clone(), row) {
                let first = &paths[first];
                // The way through, when there is one: keeping the source extensions.
                let keep = EncodeSpec {
                    keep_extension: true,
                    ..self.clone()
                };
                let kept = [first.as_str(), p.as_str()]
                    .map(|q| pipeline::output_path(&keep, Some(q), row));
                let hint = if !self.keep_extension && kept[0] != kept[1] {
                    format!(
                        "; to keep both, keep the source extensions in the output names with \
                         --keep-extension (EncodeSpec::keep_extension): {} and {}",
                        kept[0].display(),
                        kept[1].display()
                    )
                } else {
                    "; rename one of them".to_string()
                };
                return Err(EngineError::Input {
                    what: format!("{first} and {p}"),
                    reason: format!("both would be written to {}{hint}", dest.display()),
                });
            }
            out.push(dest);
        }
        Ok(out)
    }
}

/// The temporary file a resize job writes `dest` through before renaming it into place, when
/// the job's coordinator is process `coordinator`. A worker killed between the two leaves it
/// behind; whoever redoes the image (the same coordinator's next worker, or a caller cleaning
/// up after a lost coordinator) finds it under this name.
pub fn temporary_path(dest: &std::path::Path, coordinator: u32) -> PathBuf {
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    let dir = dest.parent().unwrap_or(std::path::Path::new("."));
    dir.join(format!(".{name}.shmframe-tmp.{coordinator}"))
}

/// Where and how the resized images are also written as files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncodeSpec {
    /// The output folder (created if missing). Output names mirror the input paths relative
    /// to [`EncodeSpec::strip_prefix`], with the format's extension.
    pub dir: PathBuf,
    /// The format.
    pub format: ImageFormat,
    /// The input folder: removed from the front of each input path to make the output name.
    /// Paths outside it keep only their file name.
    pub strip_prefix: Option<PathBuf>,
    /// Keep the source's extension in the output name and add the format's after it
    /// (`a.png` -> `a.png.jpg`) instead of replacing it (`a.jpg`): `a.jpg` and `a.png` in one
    /// folder then get two outputs instead of being refused as a collision before the job
    /// starts. `--keep-extension` of `shmframe resize`.
    #[serde(default)]
    pub keep_extension: bool,
}
