//! The worker's side of an image job: one image after another through decode, resize, encode
//! and write, with per-image status, timings and errors in a shared scratch region.
//!
//! Scratch layout: [`ROW_BYTES`] per image, row `i` at `i * ROW_BYTES`:
//!
//! ```text
//! word 0  status: PENDING, OK or FAILED (stored last, Release; loaded with Acquire)
//! word 1  source width     word 2  source height
//! word 3  decode µs        word 4  resize µs      word 5  encode µs     word 6  write µs
//! word 7  error length     bytes 32..ROW_BYTES: the error message (UTF-8, truncated)
//! ```
//!
//! Only the worker that holds the image's chunk writes its row; the coordinator reads the rows
//! after the job. A redone chunk (its worker died) skips images already marked OK or FAILED,
//! so an image's file is written once, except when the worker died between the rename and the
//! status store: then the same bytes are renamed over it again, never a half-written file.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use shmframe_ipc::SharedRegion;
use shmframe_ipc::sync::atomic::Ordering;

use super::codec::{Codec, ImageError};
use super::{EncodeSpec, ResizeSpec};
use crate::protocol::BufRef;

/// Bytes of scratch per image.
pub(crate) const ROW_BYTES: usize = 256;
const MSG_OFF: usize = 32;
/// Image not done yet.
pub(crate) const PENDING: u32 = 0;
/// Image done: pixels (and file) written.
pub(crate) const OK: u32 = 1;
/// Image failed; the message is in the scratch row.
pub(crate) const FAILED: u32 = 2;

/// A variable-length binary or string column as workers see it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BinaryRef {
    pub(crate) offsets: BufRef,
    pub(crate) values: BufRef,
    /// 64-bit offsets (`LargeBinary`/`LargeUtf8`) rather than 32-bit.
    pub(crate) large: bool,
}

/// Value `row` of a binary column given its offsets and values bytes.
pub(crate) fn binary_value<'a>(
    offsets: &[u8],
    values: &'a [u8],
    large: bool,
    row: usize,
) -> Result<&'a [u8], String> {
    let at = |i: usize| -> Option<usize> {
        if large {
            let b = offsets.get(i * 8..i * 8 + 8)?;
            usize::try_from(i64::from_le_bytes(b.try_into().ok()?)).ok()
        } else {
            let b = offsets.get(i * 4..i * 4 + 4)?;
            usize::try_from(i32::from_le_bytes(b.try_into().ok()?)).ok()
        }
    };
    let (s, e) = at(row)
        .zip(at(row + 1))
        .ok_or_else(|| format!("row {row}: offsets out of range"))?;
    values
        .get(s..e)
        .ok_or_else(|| format!("row {row}: value {s}..{e} outside {} bytes", values.len()))
}

/// Writes a failure into image `row`'s scratch row and marks it failed.
pub(crate) fn record_failure(scratch: &SharedRegion, row: usize, message: &str) {
    let base = row * ROW_BYTES;
    let mut msg = message.as_bytes();
    if msg.len() > ROW_BYTES - MSG_OFF {
        let mut cut = ROW_BYTES - MSG_OFF;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        msg = &msg[..cut];
    }
    scratch.write_bytes(base + MSG_OFF, msg);
    let words = scratch.u32s(base, 8);
    words[7].store(msg.len() as u32, Ordering::Relaxed);
    // SYNC POINT: the message is written before the status says so.
    words[0].store(FAILED, Ordering::Release);
}

/// What the coordinator reads back for one image.
#[derive(Debug, Clone, Default)]
pub(crate) struct RowReport {
    pub(crate) status: u32,
    pub(crate) source: (u32, u32),
    /// Decode, resize, encode, write, in µs.
    pub(crate) micros: [u32; 4],
    pub(crate) error: String,
}

pub(crate) fn read_report(scratch: &SharedRegion, row: usize) -> RowReport {
    let base = row * ROW_BYTES;
    let w = scratch.u32s(base, 8);
    let status = w[0].load(Ordering::Acquire);
    let len = (w[7].load(Ordering::Relaxed) as usize).min(ROW_BYTES - MSG_OFF);
    let mut msg = vec![0u8; len];
    scratch.read_bytes(base + MSG_OFF, &mut msg);
    RowReport {
        status,
        source: (w[1].load(Ordering::Relaxed), w[2].load(Ordering::Relaxed)),
        micros: [
            w[3].load(Ordering::Relaxed),
            w[4].load(Ordering::Relaxed),
            w[5].load(Ordering::Relaxed),
            w[6].load(Ordering::Relaxed),
        ],
        error: String::from_utf8_lossy(&msg).into_owned(),
    }
}

/// The output file of an image: its path relative to the input folder (or its file name, or
/// its row number when it has no path), with the format's extension in place of its own, or
/// after it with [`EncodeSpec::keep_extension`].
pub(crate) fn output_path(enc: &EncodeSpec, path: Option<&str>, row: usize) -> PathBuf {
    let ext = enc.format.extension();
    let rel = match path {
        Some(p) => {
            let p = Path::new(p);
            let rel = enc
                .strip_prefix
                .as_deref()
                .and_then(|pre| p.strip_prefix(pre).ok())
                .filter(|r| !r.as_os_str().is_empty())
                .map(Path::to_path_buf)
                .or_else(|| p.file_name().map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from(format!("{row:08}")));
            if enc.keep_extension {
                let mut name = rel.into_os_string();
                name.push(".");
                name.push(ext);
                PathBuf::from(name)
            } else {
                rel.with_extension(ext)
            }
        }
        None => PathBuf::from(format!("{row:08}.{ext}")),
    };
    enc.dir.join(rel)
}

/// Writes `bytes` to `dest` through a temporary file in the same folder and a rename, so a
/// crash leaves the old file or the new one, never half of one.
///
/// The temporary name carries the coordinator's pid (this worker's parent), not the worker's:
/// a worker killed between creating it and the rename leaves it behind, and the worker that
/// redoes the image must write and rename that same name, or it stays forever. Only one live
/// worker holds an image at a time (two rows never share an output: refused up front), and
/// other coordinators writing into the same folder have other pids.
fn write_atomically(dest: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = super::temporary_path(dest, std::os::unix::process::parent_id());
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        std::fs::rename(&tmp, dest)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Everything a worker needs for rows of one image job.
pub(crate) struct RowsInput<'a> {
    /// Size, fit, filter.
    pub(crate) spec: &'a ResizeSpec,
    /// Output files, if any.
    pub(crate) encode: Option<&'a EncodeSpec>,
    /// Offsets and values bytes of the encoded images, and whether the offsets are 64-bit.
    pub(crate) bytes: (&'a [u8], &'a [u8], bool),
    /// Offsets and values bytes of the paths, if any, and whether the offsets are 64-bit.
    pub(crate) paths: Option<(&'a [u8], &'a [u8], bool)>,
    pub(crate) scratch: &'a SharedRegion,
}

/// Processes images `r0..r1`; `out` holds exactly their output pixels. An image that fails is
/// recorded in the scratch region and does not fail the chunk; `Err` is for a broken job
/// (offsets out of range).
pub(crate) fn run_rows(
    codec: &mut Codec,
    input: &RowsInput<'_>,
    out: &mut [u8],
    r0: usize,
    r1: usize,
) -> Result<(), String> {
    let spec = input.spec;
    let per = spec.image_bytes();
    for row in r0..r1 {
        let base = row * ROW_BYTES;
        let words = input.scratch.u32s(base, 8);
        if words[0].load(Ordering::Acquire) != PENDING {
            continue; // done before this chunk was redone (or failed at load time)
        }
        let bytes = binary_value(input.bytes.0, input.bytes.1, input.bytes.2, row)?;
        let path = match input.paths {
            Some((o, v, large)) => {
                Some(String::from_utf8_lossy(binary_value(o, v, large, row)?).into_owned())
            }
            None => None,
        };
        let pixels = &mut out[(row - r0) * per..(row - r0 + 1) * per];
        let t0 = Instant::now();
        let result = one_image(codec, spec, bytes, pixels);
        let t_decoded_resized = t0.elapsed();
        let (dec_us, res_us, source) = match &result {
            Ok((d, r, s)) => (*d, *r, *s),
            Err(_) => (t_decoded_resized.as_micros() as u32, 0, (0, 0)),
        };
        words[1].store(source.0, Ordering::Relaxed);
        words[2].store(source.1, Ordering::Relaxed);
        words[3].store(dec_us, Ordering::Relaxed);
        words[4].store(res_us, Ordering::Relaxed);
        if let Err(e) = result {
            record_failure(input.scratch, row, &e.to_string());
            continue;
        }
        if let Some(enc) = input.encode {
            let t1 = Instant::now();
            let encoded = match codec.encode(pixels, spec, enc.format) {
                Ok(b) => b,
                Err(e) => {
                    record_failure(input.scratch, row, &e.to_string());
                    continue;
                }
            };
            let t2 = Instant::now();
            let dest = output_path(enc, path.as_deref(), row);
            if let Err(e) = write_atomically(&dest, &encoded) {
                record_failure(
                    input.scratch,
                    row,
                    &format!("cannot write {}: {e}", dest.display()),
                );
                continue;
            }
            words[5].store((t2 - t1).as_micros() as u32, Ordering::Relaxed);
            words[6].store(t2.elapsed().as_micros() as u32, Ordering::Relaxed);
        }
        // SYNC POINT: pixels, file and timings are written before the image is marked done.
        words[0].store(OK, Ordering::Release);
    }
    Ok(())
}

/// Decode and resize one image into `pixels`; returns decode and resize µs and the source size.
fn one_image(
    codec: &mut Codec,
    spec: &ResizeSpec,
    bytes: &[u8],
    pixels: &mut [u8],
) -> Result<(u32, u32, (u32, u32)), ImageError> {
    let t0 = Instant::now();
    let d = codec.decode(bytes, spec)?;
    let t1 = Instant::now();
    codec.resize_into(&d, spec, pixels)?;
    Ok((
        (t1 - t0).as_micros() as u32,
        t1.elapsed().as_micros() as u32,
        d.source,
    ))
}
