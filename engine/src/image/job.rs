//! The coordinator's side of an image job: the input frame of encoded files, the output
//! frame of tensors, the job itself, and the report.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow_array::{Array, LargeBinaryArray, StringArray};
use arrow_schema::{DataType, Field, Schema};
use shmframe_ipc::arrow::{ColumnPlan, PlannedSegment, plan_layout};
use shmframe_ipc::{CreateOptions, SegmentName, SharedRegion, matrix};

use super::pipeline::{self, BinaryRef, FAILED, OK, ROW_BYTES, ResizeDesc};
use super::{EncodeSpec, ResizeSpec};
use crate::control::{BufRef, Dtype, JobDesc, Loc, MAX_CHUNKS, Op};
use crate::{Engine, EngineError, JobStats, RunOptions, SharedFrame};

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

/// The files in `dir` (and below it with `recursive`), sorted, hidden ones skipped. Symbolic
/// links to files count as files; links to folders are not followed.
pub fn list_image_files(dir: &Path, recursive: bool) -> Result<Vec<PathBuf>, EngineError> {
    let io = |p: &Path, e: std::io::Error| EngineError::Io {
        path: p.display().to_string(),
        source: e,
    };
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| io(&d, e))? {
            let entry = entry.map_err(|e| io(&d, e))?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let ft = entry.file_type().map_err(|e| io(&entry.path(), e))?;
            if ft.is_dir() {
                if recursive {
                    stack.push(entry.path());
                }
            } else if ft.is_file() {
                out.push(entry.path());
            } else if ft.is_symlink() {
                // A link to a file is an image to do; a dangling link too (its read fails and
                // is reported); links to folders are not followed (no cycles).
                if !std::fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()) {
                    out.push(entry.path());
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

impl Engine {
    /// Reads image files into a shared frame: `path` (`Utf8`) and `bytes` (`LargeBinary`),
    /// each file read straight into the segment. Files that cannot be read get empty bytes and
    /// are returned as failures (row, path, error) instead of failing the whole load.
    pub fn frame_from_image_files(
        &self,
        paths: &[PathBuf],
    ) -> Result<(SharedFrame, Vec<ImageFailure>), EngineError> {
        let mut sizes = Vec::with_capacity(paths.len());
        let mut failed = Vec::new();
        for (row, p) in paths.iter().enumerate() {
            match std::fs::metadata(p) {
                Ok(m) if m.is_file() => sizes.push(m.len() as usize),
                Ok(_) => {
                    failed.push(failure(row, p, "not a regular file".into()));
                    sizes.push(0);
                }
                Err(e) => {
                    failed.push(failure(row, p, format!("cannot read: {e}")));
                    sizes.push(0);
                }
            }
        }
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        let schema = Schema::new(vec![
            Field::new("path", DataType::Utf8, false),
            Field::new("bytes", DataType::LargeBinary, false),
        ]);
        let create = CreateOptions {
            dir: self.segment_dir(),
            ..Default::default()
        };
        let mut planned = plan_layout(
            SegmentName::owned("images")?,
            &create,
            &schema,
            paths.len(),
            &[
                ColumnPlan {
                    null_count: 0,
                    value_bytes: names.iter().map(String::len).sum(),
                },
                ColumnPlan {
                    null_count: 0,
                    value_bytes: sizes.iter().sum(),
                },
            ],
        )?;
        let cols = planned.columns.clone();
        fill_utf8(&mut planned, 0, &names);
        let (body, base) = planned.segment.body_mut();
        let slice = |r: &std::ops::Range<usize>| r.start - base..r.end - base;
        let n = names.len();
        // File bytes, read in place.
        let (bo, bv) = (
            slice(cols[1].offsets.as_ref().expect("binary")),
            slice(&cols[1].values),
        );
        let mut at = 0usize;
        for (row, p) in paths.iter().enumerate() {
            body[bo.start + row * 8..bo.start + row * 8 + 8]
                .copy_from_slice(&(at as i64).to_le_bytes());
            let want = sizes[row];
            if want > 0 {
                let dst = &mut body[bv.start + at..bv.start + at + want];
                let read = std::fs::File::open(p).and_then(|mut f| {
                    f.read_exact(dst)?;
                    // A file that grew since it was measured is read short: refuse it.
                    let mut one = [0u8; 1];
                    match f.read(&mut one)? {
                        0 => Ok(()),
                        _ => Err(std::io::Error::other("file changed while being read")),
                    }
                });
                if let Err(e) = read {
                    failed.push(failure(row, p, format!("cannot read: {e}")));
                    // The row is marked failed before the job, so no worker decodes it.
                    dst.fill(0);
                }
            }
            at += want;
        }
        body[bo.start + n * 8..bo.start + n * 8 + 8].copy_from_slice(&(at as i64).to_le_bytes());
        failed.sort_by_key(|f| f.row);
        let seg = planned.segment.publish()?;
        Ok((SharedFrame::from_segment(seg)?, failed))
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
    /// };
    /// let out = engine.resize_paths(&files, &ResizeSpec::new(256, 256), Some(&enc), &Default::default())?;
    /// println!("{} images, {} failed", out.images(), out.failed.len());
    /// # Ok::<(), shmframe::EngineError>(())
    /// ```
    pub fn resize_paths(
        &self,
        paths: &[PathBuf],
        spec: &ResizeSpec,
        encode: Option<&EncodeSpec>,
        opts: &RunOptions,
    ) -> Result<ResizeOutput, EngineError> {
        let t = Instant::now();
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
        prefailed: &[ImageFailure],
    ) -> Result<ResizeOutput, EngineError> {
        check_spec(spec, encode)?;
        let rows = frame.num_rows();
        let bytes = binary_ref(frame, bytes_column, false)?;
        let paths = path_column
            .map(|c| binary_ref(frame, c, true))
            .transpose()?;
        let path_strings: Option<Vec<String>> = path_column
            .map(|c| {
                let col = frame.column(c)?;
                let s = col.as_any().downcast_ref::<StringArray>().ok_or_else(|| {
                    EngineError::Input {
                        what: format!("column {c}"),
                        reason: format!("paths must be Utf8, not {}", col.data_type()),
                    }
                })?;
                Ok::<_, EngineError>(s.iter().map(|v| v.unwrap_or("").to_string()).collect())
            })
            .transpose()?;
        let label = |row: usize| match &path_strings {
            Some(p) => p[row].clone(),
            None => format!("row {row}"),
        };
        if let Some(enc) = encode {
            check_collisions(enc, path_strings.as_deref(), rows)?;
        }
        let dir = self.segment_dir();

        // Output frame: path, image tensor (validity filled after the job), source sizes.
        let shape = [spec.height as usize, spec.width as usize, spec.channels()];
        let mut fields = Vec::new();
        let mut plans = Vec::new();
        if let Some(p) = &path_strings {
            fields.push(Field::new("path", DataType::Utf8, false));
            plans.push(ColumnPlan {
                null_count: 0,
                value_bytes: p.iter().map(String::len).sum(),
            });
        }
        let image_col = fields.len();
        fields.push(matrix::tensor_field("image", DataType::UInt8, &shape, true));
        plans.push(ColumnPlan {
            null_count: rows, // room for a bitmap; the real count is set after the job
            value_bytes: 0,
        });
        fields.push(Field::new("source_width", DataType::UInt32, false));
        fields.push(Field::new("source_height", DataType::UInt32, false));
        plans.push(ColumnPlan::default());
        plans.push(ColumnPlan::default());
        let schema = Schema::new(fields);
        let out_name = SegmentName::owned("resized")?;
        let create = CreateOptions {
            dir: dir.clone(),
            ..Default::default()
        };
        let mut planned = plan_layout(out_name.clone(), &create, &schema, rows, &plans)?;
        let cols = planned.columns.clone();
        if let Some(p) = &path_strings {
            fill_utf8(&mut planned, 0, p);
        }

        // Scratch: status, timings, errors per image; failures known before the job first.
        let scratch_name = SegmentName::owned("imgscratch")?;
        let scratch = SharedRegion::create(scratch_name.clone(), (rows * ROW_BYTES).max(64), &dir)?;
        for f in prefailed {
            pipeline::record_failure(&scratch, f.row, &f.error);
        }

        let image_values = cols[image_col].values.clone();
        let desc = JobDesc {
            seq: 0,
            op: Op::Resize(Box::new(ResizeDesc {
                spec: spec.clone(),
                encode: encode.cloned(),
                bytes,
                paths,
                scratch: scratch_name.to_string(),
            })),
            rows,
            chunk_rows: 1,
            input: None,
            query: None,
            output: Some((
                BufRef {
                    loc: Loc::Segment(out_name.to_string()),
                    offset: image_values.start,
                    len: image_values.len(),
                },
                Dtype::U8,
                spec.image_bytes(),
            )),
            keep_output: false,
            hooks: Default::default(),
        };
        let chunk_rows = opts
            .chunk_rows
            .unwrap_or_else(|| rows.div_ceil(MAX_CHUNKS).max(1))
            .max(1);
        let input_bytes = frame_binary_len(frame, bytes_column)?;
        let stats = self.execute_job(desc, chunk_rows, opts, "resize")?;

        // Read the reports; failed images become nulls.
        let mut failed = Vec::new();
        let mut stages = StageTimes::default();
        let mut valid = vec![0u8; rows.div_ceil(8)];
        let mut sources = Vec::with_capacity(rows);
        for row in 0..rows {
            let r = pipeline::read_report(&scratch, row);
            stages.decode += f64::from(r.micros[0]) / 1e6;
            stages.resize += f64::from(r.micros[1]) / 1e6;
            stages.encode += f64::from(r.micros[2]) / 1e6;
            stages.write += f64::from(r.micros[3]) / 1e6;
            match r.status {
                OK => {
                    valid[row / 8] |= 1 << (row % 8);
                    sources.push(r.source);
                }
                FAILED => {
                    failed.push(ImageFailure {
                        row,
                        path: label(row),
                        error: r.error,
                    });
                    sources.push((0, 0));
                }
                other => {
                    return Err(EngineError::Broken(format!(
                        "image job: row {row} ({}) has status {other} after completion",
                        label(row)
                    )));
                }
            }
        }
        drop(scratch);
        {
            let (body, base) = planned.segment.body_mut();
            if let Some(v) = &cols[image_col].validity {
                body[v.start - base..v.end - base].copy_from_slice(&valid);
            }
            for (k, r) in [(image_col + 1, 0usize), (image_col + 2, 1)] {
                let at = cols[k].values.start - base;
                for (row, s) in sources.iter().enumerate() {
                    let x = if r == 0 { s.0 } else { s.1 };
                    body[at + row * 4..at + row * 4 + 4].copy_from_slice(&x.to_le_bytes());
                }
            }
        }
        if cols[image_col].validity.is_some() {
            planned.set_null_count(image_col, failed.len());
        }
        let seg = planned.segment.publish()?;
        let frame = SharedFrame::from_segment(seg)?;
        Ok(ResizeOutput {
            frame,
            failed,
            stats: JobStats {
                input_bytes,
                ..stats
            },
            stages,
        })
    }
}

/// Writes `strings` into the offsets and values of planned `Utf8` column `column`.
fn fill_utf8(planned: &mut PlannedSegment, column: usize, strings: &[String]) {
    let o = planned.columns[column]
        .offsets
        .clone()
        .expect("a Utf8 column");
    let v = planned.columns[column].values.start;
    let (body, base) = planned.segment.body_mut();
    let (o, v) = (o.start - base, v - base);
    let mut at = 0usize;
    for (row, s) in strings.iter().enumerate() {
        body[o + row * 4..o + row * 4 + 4].copy_from_slice(&(at as i32).to_le_bytes());
        body[v + at..v + at + s.len()].copy_from_slice(s.as_bytes());
        at += s.len();
    }
    let n = strings.len();
    body[o + n * 4..o + n * 4 + 4].copy_from_slice(&(at as i32).to_le_bytes());
}

fn failure(row: usize, p: &Path, error: String) -> ImageFailure {
    ImageFailure {
        row,
        path: p.display().to_string(),
        error,
    }
}

fn check_spec(spec: &ResizeSpec, encode: Option<&EncodeSpec>) -> Result<(), EngineError> {
    let bad = |what: &str, reason: String| EngineError::Input {
        what: what.into(),
        reason,
    };
    if spec.width == 0 || spec.height == 0 || spec.width > 16384 || spec.height > 16384 {
        return Err(bad(
            "size",
            format!(
                "{}x{}: width and height must be 1 to 16384",
                spec.width, spec.height
            ),
        ));
    }
    if let Some(super::ImageFormat::Jpeg { quality }) = encode.map(|e| e.format)
        && !(1..=100).contains(&quality)
    {
        return Err(bad("quality", format!("{quality}: must be 1 to 100")));
    }
    if !spec.min_oversample.is_finite() || spec.min_oversample < 0.0 {
        return Err(bad(
            "min_oversample",
            format!("{}: must be a finite number >= 0", spec.min_oversample),
        ));
    }
    Ok(())
}

/// Two inputs that would be written to the same output file are refused up front.
fn check_collisions(
    enc: &EncodeSpec,
    paths: Option<&[String]>,
    rows: usize,
) -> Result<(), EngineError> {
    let Some(paths) = paths else { return Ok(()) };
    let mut seen: HashMap<PathBuf, usize> = HashMap::with_capacity(rows);
    for (row, p) in paths.iter().enumerate() {
        let dest = pipeline::output_path(enc, Some(p), row);
        if let Some(first) = seen.insert(dest.clone(), row) {
            return Err(EngineError::Input {
                what: format!("{} and {p}", paths[first]),
                reason: format!("both would be written to {}", dest.display()),
            });
        }
    }
    Ok(())
}

/// Offsets and values of a binary (or, with `utf8`, string) column as buffer references.
fn binary_ref(frame: &SharedFrame, column: &str, utf8: bool) -> Result<BinaryRef, EngineError> {
    let col = frame.column(column)?;
    let large = match col.data_type() {
        DataType::Binary if !utf8 => false,
        DataType::LargeBinary if !utf8 => true,
        DataType::Utf8 if utf8 => false,
        DataType::LargeUtf8 if utf8 => true,
        other => {
            return Err(EngineError::Input {
                what: format!("column {column}"),
                reason: format!(
                    "{other} is not a {} column",
                    if utf8 {
                        "Utf8"
                    } else {
                        "Binary or LargeBinary"
                    }
                ),
            });
        }
    };
    let data = col.to_data();
    let ow = if large { 8 } else { 4 };
    let offsets =
        &data.buffers()[0].as_slice()[data.offset() * ow..(data.offset() + data.len() + 1) * ow];
    let values = data.buffers()[1].as_slice();
    Ok(BinaryRef {
        offsets: frame.buf_ref(offsets, &format!("column {column} offsets"))?,
        values: frame.buf_ref(values, &format!("column {column} values"))?,
        large,
    })
}

fn frame_binary_len(frame: &SharedFrame, column: &str) -> Result<usize, EngineError> {
    let col = frame.column(column)?;
    if let Some(a) = col.as_any().downcast_ref::<LargeBinaryArray>() {
        let o = a.value_offsets();
        return Ok((o[o.len() - 1] - o[0]) as usize);
    }
    let data = col.to_data();
    Ok(data.buffers().get(1).map_or(0, |b| b.len()))
}
