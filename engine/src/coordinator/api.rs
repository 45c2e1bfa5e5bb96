//! [`Engine`]: the public API. Each method hands its operation's plan half
//! (`crate::ops::*::plan`) to the shared job loop and returns what the plan's `finish` makes
//! of the output.

use std::sync::{Arc, Mutex, MutexGuard};

use shmframe_ipc::{SegmentDir, SegmentName};

use super::builder::EngineBuilder;
use super::options::{JobStats, Kernel, RunOptions, WorkerDeath};
use super::pool::Pool;
use crate::error::EngineError;
use crate::frame::SharedFrame;
#[cfg(feature = "image")]
use crate::image::{EncodeSpec, ResizeOutput, ResizeSpec};
use crate::ops::{self, PlanCtx, Planned, RowOutputs};

/// The coordinator of a persistent pool of worker processes.
///
/// ```no_run
/// use shmframe::{Engine, RowKernel, SharedFrame};
/// let engine = Engine::builder().workers(2).build()?;
/// let frame = engine.frame_from_npy("x.npy")?;
/// let norms = engine.run(RowKernel::L2, &frame, "x")?;
/// let unit = engine.run(RowKernel::NormalizeL2, &frame, "x")?;
/// let cos = engine.run_with_query(RowKernel::Cosine, &unit, "x", &[1.0, 0.0, 0.0])?;
/// # Ok::<(), shmframe::EngineError>(())
/// ```
///
/// Jobs from several threads are run one after another (the pool runs one job at a time).
pub struct Engine {
    pool: Mutex<Pool>,
    /// The settings it was built with.
    pub(crate) cfg: Arc<EngineBuilder>,
    /// Row-job outputs, and the dropped ones kept for reuse (see `crate::recycle`).
    outputs: RowOutputs,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("workers", &self.workers())
            .finish()
    }
}

impl Engine {
    pub(crate) fn new(pool: Pool, cfg: Arc<EngineBuilder>, outputs: RowOutputs) -> Self {
        Engine {
            pool: Mutex::new(pool),
            cfg,
            outputs,
        }
    }

    /// A builder with the defaults.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    fn pool(&self) -> MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the operations' plan halves are given.
    fn plan_ctx(&self) -> PlanCtx<'_> {
        PlanCtx {
            dir: &self.cfg.dir,
            registry: &self.cfg.registry,
            outputs: &self.outputs,
        }
    }

    /// Runs a planned job through the shared job loop, then its `finish`.
    fn run_planned<T>(
        &self,
        planned: Planned<T>,
        opts: &RunOptions,
    ) -> Result<(T, JobStats), EngineError> {
        let stats = self.pool().execute(planned.job, opts)?;
        let out = (planned.finish)(&stats)?;
        Ok((out, stats))
    }

    /// Worker processes in the pool.
    pub fn workers(&self) -> usize {
        self.cfg.workers
    }

    /// Pids of the live workers.
    pub fn worker_pids(&self) -> Vec<u32> {
        self.pool()
            .live_pids()
            .iter()
            .map(|p| p.as_raw() as u32)
            .collect()
    }

    /// The segment directory.
    pub fn segment_dir(&self) -> SegmentDir {
        self.cfg.dir.clone()
    }

    /// The name of the control segment.
    pub fn control_segment(&self) -> SegmentName {
        self.pool().control_name.clone()
    }

    /// Every worker death seen so far.
    pub fn worker_deaths(&self) -> Vec<WorkerDeath> {
        self.pool().log.clone()
    }

    /// Runs `kernel` on column `column` of `frame`; returns a new shared frame.
    pub fn run(
        &self,
        kernel: impl Into<Kernel>,
        frame: &SharedFrame,
        column: &str,
    ) -> Result<SharedFrame, EngineError> {
        self.run_full(
            kernel.into(),
            frame,
            &[column],
            None,
            &RunOptions::default(),
        )
        .map(|(f, _)| f)
    }

    /// Runs a kernel that takes a query vector (`dot`, `cosine`).
    pub fn run_with_query(
        &self,
        kernel: impl Into<Kernel>,
        frame: &SharedFrame,
        column: &str,
        query: &[f64],
    ) -> Result<SharedFrame, EngineError> {
        self.run_full(
            kernel.into(),
            frame,
            &[column],
            Some(query),
            &RunOptions::default(),
        )
        .map(|(f, _)| f)
    }

    /// Runs a row kernel across several primitive columns (dataframe style: "the norm across
    /// columns x, y, z"). The output is `f64`.
    pub fn run_columns(
        &self,
        kernel: impl Into<Kernel>,
        frame: &SharedFrame,
        columns: &[&str],
    ) -> Result<SharedFrame, EngineError> {
        self.run_full(kernel.into(), frame, columns, None, &RunOptions::default())
            .map(|(f, _)| f)
    }

    /// The general form: any kernel, one matrix column or several primitive columns, an
    /// optional query, options; returns the output frame and the job's statistics.
    pub fn run_full(
        &self,
        kernel: Kernel,
        frame: &SharedFrame,
        columns: &[&str],
        query: Option<&[f64]>,
        opts: &RunOptions,
    ) -> Result<(SharedFrame, JobStats), EngineError> {
        let cx = self.plan_ctx();
        let planned = match kernel {
            Kernel::Row(k) => ops::plan_row(&cx, k, frame, columns, query, opts)?,
            Kernel::User(name) => {
                ops::require_columns(columns)?;
                if query.is_some() {
                    return Err(EngineError::Input {
                        what: format!("kernel {name}"),
                        reason: "takes no query vector".into(),
                    });
                }
                ops::plan_user(&cx, &name, frame, columns, opts)?
            }
        };
        self.run_planned(planned, opts)
    }

    /// The number of non-zero values in each row of the matrix column `column` (any
    /// primitive element type; NaN counts as non-zero), as a `UInt64` column named
    /// `count_nonzero` (or `opts.output_name`). Null rows stay null.
    pub fn count_nonzero(
        &self,
        frame: &SharedFrame,
        column: &str,
        opts: &RunOptions,
    ) -> Result<(SharedFrame, JobStats), EngineError> {
        let planned = ops::plan_count_nonzero(&self.plan_ctx(), frame, column, opts)?;
        self.run_planned(planned, opts)
    }

    /// Unlinks the dropped job outputs this engine keeps for reuse (see
    /// [`EngineBuilder::recycle_outputs`]); returns the bytes released.
    pub fn release_recycled(&self) -> u64 {
        let b = self.outputs.bytes();
        self.outputs.clear();
        b
    }

    /// Posts an empty job (no rows) that every worker wakes for and acknowledges: the
    /// round-trip benchmark of the pool itself.
    pub fn run_empty(&self) -> Result<JobStats, EngineError> {
        self.run_planned(ops::plan_empty(), &RunOptions::default())
            .map(|(_, s)| s)
    }

    /// Stops the workers (polite, then SIGTERM, then SIGKILL after the grace period) and
    /// removes the control segment. Dropping the engine does the same.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.pool().shutdown();
    }
}

/// Image jobs (the `image` feature): the plan and execute halves are `crate::ops::resize`.
#[cfg(feature = "image")]
impl Engine {
    /// Reads image files into a shared frame: `path` (`Utf8`) and `bytes` (`LargeBinary`),
    /// each file read straight into the segment. Files that cannot be read get empty bytes and
    /// are returned as failures (row, path, error) instead of failing the whole load.
    pub fn frame_from_image_files(
        &self,
        paths: &[std::path::PathBuf],
    ) -> Result<(SharedFrame, Vec<crate::image::ImageFailure>), EngineError> {
        crate::image::files::frame_from_image_files(&self.cfg.dir, paths)
    }

    /// Resizes image files: reads them into shared memory, then runs
    /// [`Engine::resize_frame`]. Unreadable files are failures of the job, not errors.
    ///
    /// ```no_run
    /// use shmframe::{Engine, image::{EncodeSpec, ImageFormat, ResizeSpec, list_image_files}};
    /// let engine = Engine::builder().workers(2).build()?;
    /// let files = list_image_files("photos".as_ref(), true)?;
    /// let enc = EncodeSpec {
    ///     dir: "thumbs".into(),
    ///     format: ImageFormat::Jpeg { quality: 90 },
    ///     strip_prefix: Some("photos".into()),
    ///     keep_extension: false,
    /// };
    /// let out = engine.resize_paths(&files, &ResizeSpec::new(256, 256), Some(&enc), &Default::default())?;
    /// println!("{} images, {} failed", out.images(), out.failed.len());
    /// # Ok::<(), shmframe::EngineError>(())
    /// ```
    pub fn resize_paths(
        &self,
        paths: &[std::path::PathBuf],
        spec: &ResizeSpec,
        encode: Option<&EncodeSpec>,
        opts: &RunOptions,
    ) -> Result<ResizeOutput, EngineError> {
        let t = std::time::Instant::now();
        let (frame, failed) = self.frame_from_image_files(paths)?;
        let read = t.elapsed().as_secs_f64();
        let mut out =
            self.resize_inner(&frame, "bytes", Some("path"), spec, encode, opts, &failed)?;
        out.stages.read = read;
        Ok(out)
    }

    /// Resizes the encoded images of a frame's `Binary`/`LargeBinary` column into a tensor
    /// frame (and files when `encode` is given). `path_column` (a `Utf8` column) names the
    /// images in failures and output files.
    pub fn resize_frame(
        &self,
        frame: &SharedFrame,
        bytes_column: &str,
        path_column: Option<&str>,
        spec: &ResizeSpec,
        encode: Option<&EncodeSpec>,
        opts: &RunOptions,
    ) -> Result<ResizeOutput, EngineError> {
        self.resize_inner(frame, bytes_column, path_column, spec, encode, opts, &[])
    }

    #[allow(clippy::too_many_arguments)] // internal: the public forms above take fewer
    fn resize_inner(
        &self,
        frame: &SharedFrame,
        bytes_column: &str,
        path_column: Option<&str>,
        spec: &ResizeSpec,
        encode: Option<&EncodeSpec>,
        opts: &RunOptions,
        prefailed: &[crate::image::ImageFailure],
    ) -> Result<ResizeOutput, EngineError> {
        let planned = crate::ops::resize::plan(
            &self.plan_ctx(),
            frame,
            bytes_column,
            path_column,
            spec,
            encode,
            prefailed,
        )?;
        self.run_planned(planned, opts).map(|(out, _)| out)
    }
}
