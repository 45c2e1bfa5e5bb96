//! What an image job returns: the tensor frame, the images that failed, and where the time
//! went.

use crate::coordinator::JobStats;
use crate::frame::SharedFrame;

/// One image that could not be done.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageFailure {
    /// Its row in the input (and output) frame.
    pub row: usize,
    /// Its path (or `row N` for a frame without a path column).
    pub path: String,
    /// Why, e.g. `corrupt or truncated JPEG: Premature end of JPEG file`.
    pub error: String,
}

/// Where the time of an image job went, in seconds (worker stages summed over workers).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct StageTimes {
    /// Coordinator: reading the files into the input segment (wall time; 0 for frames).
    pub read: f64,
    /// Workers: decoding (including the reduced DCT decode and orientation).
    pub decode: f64,
    /// Workers: resampling into the output tensor.
    pub resize: f64,
    /// Workers: encoding output files.
    pub encode: f64,
    /// Workers: writing and renaming output files.
    pub write: f64,
}

/// The result of an image job.
#[derive(Debug)]
pub struct ResizeOutput {
    /// `path` (when the input had paths), `image` (`arrow.fixed_shape_tensor` of `uint8`
    /// `[height, width, channels]`, null for failed images), `source_width`, `source_height`
    /// (0 for failed images). One row per input image, in input order.
    pub frame: SharedFrame,
    /// Images that failed, in row order.
    pub failed: Vec<ImageFailure>,
    /// Statistics of the job (`seconds`: from posting the job to its completion).
    pub stats: JobStats,
    /// Where the time went.
    pub stages: StageTimes,
}

impl ResizeOutput {
    /// Images in the job.
    pub fn images(&self) -> usize {
        self.frame.num_rows()
    }
}
