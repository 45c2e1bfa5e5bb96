//! Image batch resizing: decode, resize, and optionally encode many images, the pixels landing
//! in a shared `uint8 [H, W, C]` tensor frame. The plan half lays out the output frame and a
//! scratch region of per-image reports; the execute half runs `crate::image::pipeline` over
//! the chunk's images. A bad image fails alone: it is reported, not the job.

use arrow_array::{Array, LargeBinaryArray, StringArray};
use arrow_schema::{DataType, Field, Schema};
use serde::{Deserialize, Serialize};
use shmframe_ipc::arrow::{ColumnPlan, plan_layout};
use shmframe_ipc::{CreateOptions, SegmentName, SharedRegion, matrix};

use super::{Chunk, JobSpec, Mapped, Operation, PlanCtx, Planned, Prepare, WorkerError};
use crate::coordinator::JobStats;
use crate::error::EngineError;
use crate::frame::SharedFrame;
use crate::image::codec::Codec;
use crate::image::files::fill_utf8;
use crate::image::pipeline::{self, BinaryRef, FAILED, OK, ROW_BYTES};
use crate::image::{EncodeSpec, ImageFailure, ImageFormat, ResizeOutput, ResizeSpec, StageTimes};
use crate::protocol::{BufRef, Dtype, Loc, MAX_CHUNKS, OutputDesc};

/// The descriptor of an image job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ResizeOp {
    /// Size, fit, filter, decode choices.
    pub(crate) spec: ResizeSpec,
    /// Output files, if any.
    pub(crate) encode: Option<EncodeSpec>,
    /// The encoded images.
    pub(crate) bytes: BinaryRef,
    /// Their paths, if the frame has them.
    pub(crate) paths: Option<BinaryRef>,
    /// Name of the scratch region (a control-kind segment).
    pub(crate) scratch: String,
}

/// Plans resizing the images of `frame`'s `bytes_column` (named by `path_column`); images in
/// `prefailed` (unreadable files) are reported failed without being tried.
#[allow(clippy::too_many_arguments)] // the public forms in `Engine` take fewer
pub(crate) fn plan(
    cx: &PlanCtx<'_>,
    frame: &SharedFrame,
    bytes_column: &str,
    path_column: Option<&str>,
    spec: &ResizeSpec,
    encode: Option<&EncodeSpec>,
    prefailed: &[ImageFailure],
) -> Result<Planned<ResizeOutput>, EngineError> {
    check_spec(spec, encode)?;
    let rows = frame.num_rows();
    let bytes = binary_ref(frame, bytes_column, false)?;
    let paths = path_column
        .map(|c| binary_ref(frame, c, true))
        .transpose()?;
    let path_strings: Option<Vec<String>> = path_column
        .map(|c| {
            let col = frame.column(c)?;
            let s =
                col.as_any()
                    .downcast_ref::<StringArray>()
                    .ok_or_else(|| EngineError::Input {
                        what: format!("column {c}"),
                        reason: format!("paths must be Utf8, not {}", col.data_type()),
                    })?;
            Ok::<_, EngineError>(s.iter().map(|v| v.unwrap_or("").to_string()).collect())
        })
        .transpose()?;
    // Two inputs that would be written to the same output file are refused up front.
    if let (Some(enc), Some(paths)) = (encode, path_strings.as_deref()) {
        enc.output_paths(paths)?;
    }
    let dir = cx.dir.clone();

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
    let op = ResizeOp {
        spec: spec.clone(),
        encode: encode.cloned(),
        bytes,
        paths,
        scratch: scratch_name.to_string(),
    };
    let output = OutputDesc {
        values: BufRef {
            loc: Loc::Segment(out_name.to_string()),
            offset: image_values.start,
            len: image_values.len(),
        },
        dtype: Dtype::U8,
        row_width: spec.image_bytes(),
        keep_mapping: false,
    };
    let input_bytes = frame_binary_len(frame, bytes_column)?;
    let job = JobSpec {
        op: op.into(),
        rows,
        chunk_rows: Some(rows.div_ceil(MAX_CHUNKS).max(1)),
        output: Some(output),
        input_bytes,
        output_reused: false,
    };
    let finish = move |stats: &JobStats| -> Result<ResizeOutput, EngineError> {
        let label = |row: usize| match &path_strings {
            Some(p) => p[row].clone(),
            None => format!("row {row}"),
        };
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
            stats: stats.clone(),
            stages,
        })
    };
    Ok(Planned {
        job,
        finish: Box::new(finish),
    })
}

/// An image job mapped in a worker.
pub(crate) struct Prepared {
    bytes: [Mapped; 2],
    paths: Option<[Mapped; 2]>,
    scratch: SharedRegion,
}

impl Operation for ResizeOp {
    type Prepared = Prepared;

    fn name(&self) -> String {
        "resize".into()
    }

    fn prepare(&self, cx: &mut Prepare<'_>) -> Result<Prepared, WorkerError> {
        let bytes = [
            cx.maps.map(&self.bytes.offsets)?,
            cx.maps.map(&self.bytes.values)?,
        ];
        let paths = match &self.paths {
            Some(p) => Some([cx.maps.map(&p.offsets)?, cx.maps.map(&p.values)?]),
            None => None,
        };
        let failed = |reason: String| WorkerError::Map {
            loc: Loc::Segment(self.scratch.clone()),
            reason,
        };
        let name = SegmentName::parse(&self.scratch).map_err(|e| failed(e.to_string()))?;
        let scratch =
            SharedRegion::attach(&name, cx.maps.dir()).map_err(|e| failed(e.to_string()))?;
        Ok(Prepared {
            bytes,
            paths,
            scratch,
        })
    }

    fn execute(&self, job: &Prepared, cx: &Chunk<'_>, out: &mut [u8]) -> Result<(), WorkerError> {
        // The codecs are made on a worker's first image job and kept.
        let mut codec = cx
            .locals
            .get(|| Codec::new().map_err(|e| WorkerError::Other(e.to_string())))?;
        let input = pipeline::RowsInput {
            spec: &self.spec,
            encode: self.encode.as_ref(),
            bytes: (job.bytes[0].bytes(), job.bytes[1].bytes(), self.bytes.large),
            paths: match (&job.paths, &self.paths) {
                (Some([o, v]), Some(p)) => Some((o.bytes(), v.bytes(), p.large)),
                _ => None,
            },
            scratch: &job.scratch,
        };
        pipeline::run_rows(&mut codec, &input, out, cx.rows.start, cx.rows.end)
            .map_err(WorkerError::Other)
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
    if let Some(ImageFormat::Jpeg { quality }) = encode.map(|e| e.format)
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
