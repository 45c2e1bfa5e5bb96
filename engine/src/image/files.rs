//! Image files on disk: finding them in a folder, and reading them into a shared frame of
//! `path` and `bytes` columns (each file read straight into the segment).

use std::io::Read;
use std::path::{Path, PathBuf};

use arrow_schema::{DataType, Field, Schema};
use shmframe_ipc::arrow::{ColumnPlan, PlannedSegment, plan_layout};
use shmframe_ipc::{CreateOptions, SegmentDir, SegmentName};

use super::ImageFailure;
use crate::error::EngineError;
use crate::frame::SharedFrame;

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

/// Reads image files into a shared frame: `path` (`Utf8`) and `bytes` (`LargeBinary`),
/// each file read straight into the segment. Files that cannot be read get empty bytes and
/// are returned as failures (row, path, error) instead of failing the whole load.
pub(crate) fn frame_from_image_files(
    dir: &SegmentDir,
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
        dir: dir.clone(),
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

/// Writes `strings` into the offsets and values of planned `Utf8` column `column`.
pub(crate) fn fill_utf8(planned: &mut PlannedSegment, column: usize, strings: &[String]) {
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
