//! Zero-copy reading of an Arrow IPC file from a mapping.

use std::ops::Range;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::FileDecoder;
use arrow_schema::SchemaRef;

use super::ArrowSegmentError;

/// The decoded content of an Arrow IPC file whose buffers point into a mapping.
#[derive(Debug, Clone)]
pub struct IpcFile {
    /// The file's schema.
    pub schema: SchemaRef,
    /// Its record batches, zero-copy.
    pub batches: Vec<RecordBatch>,
    /// The whole mapping as an Arrow buffer (keeps it alive).
    pub buffer: Buffer,
}

/// Decodes the Arrow IPC file held by `owner` (a mapped segment or file) without copying:
/// the path is `owner -> bytes::Bytes::from_owner -> Buffer -> FileDecoder`, with validation
/// on and alignment required, so every array buffer points into the mapping.
///
/// Block offsets in the footer are absolute within `owner`'s bytes. Every block is checked to
/// lie inside the bytes before it is decoded. `label` names the source in errors.
///
/// Hostile bytes never panic: arrow-rs itself can panic on some corrupt inputs (found by the
/// `segment_attach` fuzz target: an overflowing fixed-size-list length), so decoding runs under
/// `catch_unwind` and such a panic becomes [`ArrowSegmentError::Invalid`].
pub fn read_ipc_file<T>(owner: T, label: &str) -> Result<IpcFile, ArrowSegmentError>
where
    T: AsRef<[u8]> + Send + Sync + 'static,
{
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode(owner, label))).unwrap_or_else(
        |p| {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(ArrowSegmentError::Invalid {
                name: label.to_string(),
                reason: format!("arrow panicked while decoding: {what}"),
            })
        },
    )
}

fn decode<T>(owner: T, label: &str) -> Result<IpcFile, ArrowSegmentError>
where
    T: AsRef<[u8]> + Send + Sync + 'static,
{
    let invalid = |reason: String| ArrowSegmentError::Invalid {
        name: label.to_string(),
        reason,
    };
    let arrow = |source| ArrowSegmentError::Arrow {
        name: label.to_string(),
        source,
    };
    let buffer = Buffer::from(bytes::Bytes::from_owner(owner));
    let len = buffer.len();
    if len < 10 + 8 {
        return Err(invalid(format!(
            "{len} bytes is too short for an Arrow IPC file"
        )));
    }
    if &buffer[0..6] != super::ARROW_MAGIC {
        return Err(invalid("missing leading ARROW1 magic".into()));
    }
    let trailer: [u8; 10] = buffer[len - 10..].try_into().expect("10 bytes");
    let footer_len = arrow_ipc::reader::read_footer_length(trailer).map_err(arrow)?;
    let footer_start = (len - 10)
        .checked_sub(footer_len)
        .filter(|s| *s >= 8)
        .ok_or_else(|| {
            invalid(format!(
                "footer length {footer_len} exceeds the file ({len} bytes)"
            ))
        })?;
    let footer = arrow_ipc::root_as_footer(&buffer[footer_start..len - 10])
        .map_err(|e| invalid(format!("footer is not a valid flatbuffer: {e}")))?;
    let fb_schema = footer
        .schema()
        .ok_or_else(|| invalid("footer has no schema".into()))?;
    let schema = Arc::new(arrow_ipc::convert::try_fb_to_schema(fb_schema).map_err(arrow)?);
    let mut decoder =
        FileDecoder::new(schema.clone(), footer.version()).with_require_alignment(true);
    let block_slice = |b: &arrow_ipc::Block| -> Result<Buffer, ArrowSegmentError> {
        let off = usize::try_from(b.offset())
            .map_err(|_| invalid(format!("negative block offset {}", b.offset())))?;
        let meta = usize::try_from(b.metaDataLength())
            .map_err(|_| invalid(format!("negative metadata length {}", b.metaDataLength())))?;
        let body = usize::try_from(b.bodyLength())
            .map_err(|_| invalid(format!("negative body length {}", b.bodyLength())))?;
        let end = off
            .checked_add(meta)
            .and_then(|e| e.checked_add(body))
            .filter(|e| *e <= footer_start)
            .ok_or_else(|| {
                invalid(format!(
                    "block at {off} (+{meta}+{body}) lies outside the file"
                ))
            })?;
        if meta < 8 {
            return Err(invalid(format!(
                "block at {off}: metadata length {meta} too small"
            )));
        }
        Ok(buffer.slice_with_length(off, end - off))
    };
    if let Some(dicts) = footer.dictionaries() {
        for b in dicts.iter() {
            let data = block_slice(b)?;
            decoder.read_dictionary(b, &data).map_err(arrow)?;
        }
    }
    let mut batches = Vec::new();
    if let Some(recs) = footer.recordBatches() {
        for b in recs.iter() {
            let data = block_slice(b)?;
            precheck_batch(&data, b, &schema).map_err(invalid)?;
            if let Some(batch) = decoder.read_record_batch(b, &data).map_err(arrow)? {
                batches.push(batch);
            }
        }
    }
    Ok(IpcFile {
        schema,
        batches,
        buffer,
    })
}

/// Checks what arrow-rs's decoder trusts and would panic on (found by fuzzing): every buffer
/// lies inside the message body, and every field node has sane, non-overflowing lengths.
fn precheck_batch(
    data: &[u8],
    block: &arrow_ipc::Block,
    schema: &arrow_schema::Schema,
) -> Result<(), String> {
    let meta_len = block.metaDataLength() as usize;
    let body_len = block.bodyLength() as u64;
    let start = if data.get(0..4) == Some(&[0xff; 4][..]) {
        8
    } else {
        4
    };
    let meta = data
        .get(start..meta_len)
        .ok_or_else(|| format!("block metadata of {meta_len} bytes is too short"))?;
    let msg = arrow_ipc::root_as_message(meta)
        .map_err(|e| format!("message is not a valid flatbuffer: {e}"))?;
    let Some(rb) = msg.header_as_record_batch() else {
        return Ok(()); // the decoder reports a wrong message type itself
    };
    if rb.length() < 0 {
        return Err(format!("negative row count {}", rb.length()));
    }
    for b in rb.buffers().iter().flatten() {
        let ok = b.offset() >= 0
            && b.length() >= 0
            && (b.offset() as u64)
                .checked_add(b.length() as u64)
                .is_some_and(|e| e <= body_len);
        if !ok {
            return Err(format!(
                "buffer at {} (+{}) lies outside the {body_len} byte body",
                b.offset(),
                b.length()
            ));
        }
    }
    if let Some(nodes) = rb.nodes() {
        let mut it = nodes.iter();
        for f in schema.fields() {
            check_node(f.data_type(), &mut it)?;
        }
    }
    Ok(())
}

fn check_node<'a>(
    dt: &arrow_schema::DataType,
    nodes: &mut impl Iterator<Item = &'a arrow_ipc::FieldNode>,
) -> Result<(), String> {
    use arrow_schema::DataType as D;
    let Some(n) = nodes.next() else {
        return Ok(()); // too few nodes: the decoder reports it
    };
    if n.length() < 0 || n.null_count() < 0 || n.null_count() > n.length() {
        return Err(format!(
            "field node length {} / null count {} is invalid",
            n.length(),
            n.null_count()
        ));
    }
    match dt {
        D::FixedSizeList(child, size) => {
            if (n.length() as u64)
                .checked_mul((*size).max(0) as u64)
                .is_none_or(|v| v > isize::MAX as u64)
            {
                return Err(format!(
                    "fixed-size list of {} rows x {size} overflows",
                    n.length()
                ));
            }
            check_node(child.data_type(), nodes)
        }
        D::List(c) | D::LargeList(c) | D::ListView(c) | D::LargeListView(c) | D::Map(c, _) => {
            check_node(c.data_type(), nodes)
        }
        D::Struct(fields) => fields
            .iter()
            .try_for_each(|f| check_node(f.data_type(), nodes)),
        D::Union(fields, _) => fields
            .iter()
            .try_for_each(|(_, f)| check_node(f.data_type(), nodes)),
        D::RunEndEncoded(a, b) => {
            check_node(a.data_type(), nodes)?;
            check_node(b.data_type(), nodes)
        }
        _ => Ok(()),
    }
}

/// The byte range of `inner` within `outer` (both Arrow buffers), or `None` if `inner` does
/// not point into `outer`: how the engine turns a zero-copy array into offsets a worker can
/// find in its own mapping of the same object.
pub fn buffer_range_in(outer: &[u8], inner: &[u8]) -> Option<Range<usize>> {
    let o = outer.as_ptr() as usize;
    let i = inner.as_ptr() as usize;
    if i >= o && i + inner.len() <= o + outer.len() {
        Some(i - o..i - o + inner.len())
    } else {
        None
    }
}
