//! Reading Arrow IPC data (the file format and the stream format) from a mapping, with every
//! offset, length and size checked before arrow-rs decodes it.

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

/// How [`read_ipc_with`] decodes, and how much it may produce.
///
/// The default is the zero-copy reading of a segment or a mapped file: buffers must be
/// aligned and uncompressed, so every array points into the mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// Refuse a buffer that is not aligned for its type (when `false`, arrow-rs copies it).
    pub require_alignment: bool,
    /// Decompress LZ4-frame and ZSTD buffers (when `false`, a compressed batch is refused
    /// with [`ArrowSegmentError::Compressed`]).
    pub decompress: bool,
    /// The most bytes the batches may add up to once decoded: every message body counts (a
    /// footer that lists one block a million times counts it a million times), and a
    /// compressed buffer counts with the size it claims uncompressed. Checked before anything
    /// is decoded or allocated.
    pub max_decoded_bytes: u64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            require_alignment: true,
            decompress: false,
            max_decoded_bytes: u64::MAX,
        }
    }
}

/// Decodes the Arrow IPC file held by `owner` (a mapped segment or file) without copying:
/// [`read_ipc_with`] with the default (zero-copy) [`ReadOptions`].
pub fn read_ipc_file<T>(owner: T, label: &str) -> Result<IpcFile, ArrowSegmentError>
where
    T: AsRef<[u8]> + Send + Sync + 'static,
{
    read_ipc_with(owner, label, &ReadOptions::default())
}

/// Decodes the Arrow IPC data held by `owner`: the file format (leading `ARROW1`, footer) or
/// the stream format (a schema message first; also the legacy framing without the
/// continuation marker). The path is `owner -> bytes::Bytes::from_owner -> Buffer ->
/// FileDecoder` with validation on, so with the default options every array buffer points
/// into `owner`.
///
/// Block offsets in a file's footer are absolute within `owner`'s bytes. Before arrow-rs sees
/// a message, this checks what arrow-rs trusts: every block and every buffer lies inside the
/// bytes, field nodes have sane lengths, the data is little-endian, compression is allowed
/// and the claimed uncompressed sizes fit [`ReadOptions::max_decoded_bytes`]. `label` names
/// the source in errors.
///
/// Hostile bytes never panic: arrow-rs itself can panic on corrupt input that the checks do
/// not foresee, so decoding also runs under `catch_unwind` and such a panic becomes
/// [`ArrowSegmentError::Invalid`].
pub fn read_ipc_with<T>(
    owner: T,
    label: &str,
    opts: &ReadOptions,
) -> Result<IpcFile, ArrowSegmentError>
where
    T: AsRef<[u8]> + Send + Sync + 'static,
{
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Reader::new(label, opts).read(owner)
    }))
    .unwrap_or_else(|p| {
        let what = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(ArrowSegmentError::Invalid {
            name: label.to_string(),
            reason: format!("arrow panicked while decoding: {what}"),
        })
    })
}

/// One decoding: the label for errors, the options, and the bytes decoded so far.
struct Reader<'a> {
    label: &'a str,
    opts: &'a ReadOptions,
    decoded: std::cell::Cell<u64>,
}

impl<'a> Reader<'a> {
    fn new(label: &'a str, opts: &'a ReadOptions) -> Self {
        Self {
            label,
            opts,
            decoded: std::cell::Cell::new(0),
        }
    }

    fn invalid(&self, reason: impl Into<String>) -> ArrowSegmentError {
        ArrowSegmentError::Invalid {
            name: self.label.to_string(),
            reason: reason.into(),
        }
    }

    fn arrow(&self, source: arrow_schema::ArrowError) -> ArrowSegmentError {
        ArrowSegmentError::Arrow {
            name: self.label.to_string(),
            source,
        }
    }

    fn read<T>(self, owner: T) -> Result<IpcFile, ArrowSegmentError>
    where
        T: AsRef<[u8]> + Send + Sync + 'static,
    {
        let buffer = Buffer::from(bytes::Bytes::from_owner(owner));
        if buffer.starts_with(super::ARROW_MAGIC) {
            self.read_file(buffer)
        } else {
            self.read_stream(buffer)
        }
    }

    /// The file format: magic, messages, footer, `footer length`, magic.
    fn read_file(&self, buffer: Buffer) -> Result<IpcFile, ArrowSegmentError> {
        let len = buffer.len();
        if len < 10 + 8 {
            return Err(self.invalid(format!("{len} bytes is too short for an Arrow IPC file")));
        }
        let trailer: [u8; 10] = buffer[len - 10..].try_into().expect("10 bytes");
        let footer_len =
            arrow_ipc::reader::read_footer_length(trailer).map_err(|e| self.arrow(e))?;
        let footer_start = (len - 10)
            .checked_sub(footer_len)
            .filter(|s| *s >= 8)
            .ok_or_else(|| {
                self.invalid(format!(
                    "footer length {footer_len} exceeds the file ({len} bytes)"
                ))
            })?;
        let footer = arrow_ipc::root_as_footer(&buffer[footer_start..len - 10])
            .map_err(|e| self.invalid(format!("footer is not a valid flatbuffer: {e}")))?;
        let fb_schema = footer
            .schema()
            .ok_or_else(|| self.invalid("footer has no schema"))?;
        let schema = self.schema(fb_schema)?;
        let mut file_decoder = decoder(schema.clone(), self.opts);
        let block_slice = |b: &arrow_ipc::Block| -> Result<Buffer, ArrowSegmentError> {
            let off = usize::try_from(b.offset())
                .map_err(|_| self.invalid(format!("negative block offset {}", b.offset())))?;
            let meta = usize::try_from(b.metaDataLength()).map_err(|_| {
                self.invalid(format!("negative metadata length {}", b.metaDataLength()))
            })?;
            let body = usize::try_from(b.bodyLength())
                .map_err(|_| self.invalid(format!("negative body length {}", b.bodyLength())))?;
            let end = off
                .checked_add(meta)
                .and_then(|e| e.checked_add(body))
                .filter(|e| *e <= footer_start)
                .ok_or_else(|| {
                    self.invalid(format!(
                        "block at {off} (+{meta}+{body}) lies outside the file"
                    ))
                })?;
            if meta < 8 {
                return Err(
                    self.invalid(format!("block at {off}: metadata length {meta} too small"))
                );
            }
            Ok(buffer.slice_with_length(off, end - off))
        };
        let mut batches = Vec::new();
        for b in footer.dictionaries().iter().flatten() {
            let data = block_slice(b)?;
            self.precheck(&data, b, &schema)?;
            file_decoder
                .read_dictionary(b, &data)
                .map_err(|e| self.arrow(e))?;
        }
        for b in footer.recordBatches().iter().flatten() {
            let data = block_slice(b)?;
            self.precheck(&data, b, &schema)?;
            if let Some(batch) = file_decoder
                .read_record_batch(b, &data)
                .map_err(|e| self.arrow(e))?
            {
                batches.push(batch);
            }
        }
        Ok(IpcFile {
            schema,
            batches,
            buffer,
        })
    }

    /// The stream format: a schema message, then dictionary and record batch messages, each
    /// `[0xFFFFFFFF] length metadata body`, until an end marker or the end of the bytes.
    fn read_stream(&self, buffer: Buffer) -> Result<IpcFile, ArrowSegmentError> {
        let mut at = 0usize;
        let mut state: Option<(FileDecoder, SchemaRef)> = None;
        let mut batches = Vec::new();
        while at < buffer.len() {
            let Some((block, body_start)) = self.next_message(&buffer, at)? else {
                break; // end-of-stream marker
            };
            let meta_len = body_start - at;
            let end = body_start + block.bodyLength() as usize;
            let data = buffer.slice_with_length(at, end - at);
            let msg = message_of(&data, meta_len).map_err(|e| self.invalid(e))?;
            match (&mut state, msg.header_type()) {
                (None, arrow_ipc::MessageHeader::Schema) => {
                    let fb = msg
                        .header_as_schema()
                        .ok_or_else(|| self.invalid("schema message without a schema"))?;
                    let schema = self.schema(fb)?;
                    let d = decoder(schema.clone(), self.opts);
                    state = Some((d, schema));
                }
                (None, other) => {
                    return Err(self.invalid(if at == 0 {
                        "neither an Arrow IPC file (no ARROW1 magic) nor a stream (no schema message first)".to_string()
                    } else {
                        format!("stream message at {at} is {other:?} before any schema")
                    }));
                }
                (Some(_), arrow_ipc::MessageHeader::Schema) => {
                    return Err(self.invalid(format!("second schema message at {at}")));
                }
                (Some((d, schema)), arrow_ipc::MessageHeader::DictionaryBatch) => {
                    self.precheck(&data, &block, schema)?;
                    d.read_dictionary(&block, &data)
                        .map_err(|e| self.arrow(e))?;
                }
                (Some((d, schema)), _) => {
                    self.precheck(&data, &block, schema)?;
                    if let Some(batch) = d
                        .read_record_batch(&block, &data)
                        .map_err(|e| self.arrow(e))?
                    {
                        batches.push(batch);
                    }
                }
            }
            at = end;
        }
        let (_, schema) = state.ok_or_else(|| {
            self.invalid("neither an Arrow IPC file (no ARROW1 magic) nor a stream with a schema")
        })?;
        Ok(IpcFile {
            schema,
            batches,
            buffer,
        })
    }

    /// The stream message at `at`: its block (offset 0, metadata length including the
    /// framing, body length) and where its body starts, or `None` at an end-of-stream marker.
    fn next_message(
        &self,
        buffer: &Buffer,
        at: usize,
    ) -> Result<Option<(arrow_ipc::Block, usize)>, ArrowSegmentError> {
        let word = |i: usize| -> Result<i32, ArrowSegmentError> {
            buffer
                .get(i..i + 4)
                .map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")))
                .ok_or_else(|| self.invalid(format!("stream cut short at byte {i}")))
        };
        let (prefix, len) = match word(at)? {
            -1 => (8, word(at + 4)?),
            len => (4, len), // legacy framing (before Arrow 0.15)
        };
        if len == 0 {
            return Ok(None);
        }
        let len = usize::try_from(len)
            .map_err(|_| self.invalid(format!("negative message length {len} at byte {at}")))?;
        let meta_end = at
            .checked_add(prefix + len)
            .filter(|e| *e <= buffer.len())
            .ok_or_else(|| {
                self.invalid(format!(
                    "message at byte {at} claims {len} bytes of metadata; the stream has {}",
                    buffer.len()
                ))
            })?;
        let msg = message_of(&buffer[at..meta_end], prefix + len).map_err(|e| self.invalid(e))?;
        let body = u64::try_from(msg.bodyLength())
            .ok()
            .filter(|b| {
                (meta_end as u64)
                    .checked_add(*b)
                    .is_some_and(|e| e <= buffer.len() as u64)
            })
            .ok_or_else(|| {
                self.invalid(format!(
                    "message at byte {at} claims a body of {} bytes; the stream has {}",
                    msg.bodyLength(),
                    buffer.len()
                ))
            })?;
        let meta = i32::try_from(prefix + len)
            .map_err(|_| self.invalid(format!("message at byte {at}: metadata too long")))?;
        let block = arrow_ipc::Block::new(0, meta, body as i64);
        Ok(Some((block, meta_end)))
    }

    /// The schema of a flatbuffer, refused when its data is big-endian (arrow-rs's decoder
    /// would read the values with the wrong byte order).
    fn schema(&self, fb: arrow_ipc::Schema<'_>) -> Result<SchemaRef, ArrowSegmentError> {
        if fb.endianness() != arrow_ipc::Endianness::Little {
            return Err(ArrowSegmentError::BigEndian {
                name: self.label.to_string(),
            });
        }
        Ok(Arc::new(
            arrow_ipc::convert::try_fb_to_schema(fb).map_err(|e| self.arrow(e))?,
        ))
    }

    /// Checks what arrow-rs's decoder trusts and would panic on or allocate from (found by
    /// fuzzing): every buffer lies inside the message body, field nodes have sane,
    /// non-overflowing lengths, and what decoding produces fits the budget.
    fn precheck(
        &self,
        data: &[u8],
        block: &arrow_ipc::Block,
        schema: &arrow_schema::Schema,
    ) -> Result<(), ArrowSegmentError> {
        let meta_len = block.metaDataLength() as usize;
        let body = &data[meta_len..];
        let msg = message_of(data, meta_len).map_err(|e| self.invalid(e))?;
        if msg.version() < arrow_ipc::MetadataVersion::V4 {
            return Err(self.invalid(format!(
                "metadata version {:?} (Arrow before 0.8) is not supported",
                msg.version()
            )));
        }
        let (rb, nodes_of_schema) = if let Some(rb) = msg.header_as_record_batch() {
            (rb, true)
        } else if let Some(db) = msg.header_as_dictionary_batch() {
            let rb = db
                .data()
                .ok_or_else(|| self.invalid("dictionary batch without data"))?;
            (rb, false)
        } else {
            return Ok(()); // the decoder reports a wrong message type itself
        };
        if rb.length() < 0 {
            return Err(self.invalid(format!("negative row count {}", rb.length())));
        }
        let body_len = body.len() as u64;
        let mut produced = body_len.max(64);
        let compressed = rb.compression().is_some();
        if compressed && !self.opts.decompress {
            return Err(ArrowSegmentError::Compressed {
                name: self.label.to_string(),
            });
        }
        for b in rb.buffers().iter().flatten() {
            let ok = b.offset() >= 0
                && b.length() >= 0
                && (b.offset() as u64)
                    .checked_add(b.length() as u64)
                    .is_some_and(|e| e <= body_len);
            if !ok {
                return Err(self.invalid(format!(
                    "buffer at {} (+{}) lies outside the {body_len} byte body",
                    b.offset(),
                    b.length()
                )));
            }
            if compressed && b.length() > 0 {
                let at = b.offset() as usize;
                let claimed = body
                    .get(at..at + 8)
                    .map(|p| i64::from_le_bytes(p.try_into().expect("8 bytes")))
                    .ok_or_else(|| {
                        self.invalid(format!(
                            "compressed buffer at {at} of {} bytes has no length prefix",
                            b.length()
                        ))
                    })?;
                match claimed {
                    -1 => {}
                    n if n < 0 => {
                        return Err(self.invalid(format!("compressed buffer at {at}: length {n}")));
                    }
                    n => produced = produced.saturating_add(n as u64),
                }
            }
        }
        // The types whose nodes and buffers this message holds: the schema's fields, or for
        // a dictionary batch the value type of the dictionary it fills.
        let types: Vec<arrow_schema::DataType> = if nodes_of_schema {
            schema
                .fields()
                .iter()
                .map(|f| f.data_type().clone())
                .collect()
        } else {
            let id = msg
                .header_as_dictionary_batch()
                .map(|d| d.id())
                .unwrap_or_default();
            // arrow-rs looks the dictionary up the same (deprecated) way.
            #[allow(deprecated)]
            let fields = schema.fields_with_dict_id(id);
            match fields.first().map(|f| f.data_type()) {
                Some(arrow_schema::DataType::Dictionary(_, v)) => vec![v.as_ref().clone()],
                _ => Vec::new(), // the decoder reports an unknown dictionary itself
            }
        };
        let lengths = rb
            .buffers()
            .iter()
            .flatten()
            .map(|b| {
                let (at, len) = (b.offset() as usize, b.length() as u64);
                if !compressed || len == 0 {
                    return len;
                }
                // Checked above: every non-empty compressed buffer has its 8-byte prefix.
                match i64::from_le_bytes(body[at..at + 8].try_into().expect("8 bytes")) {
                    -1 => len - 8,
                    n => n as u64,
                }
            })
            .collect();
        let mut walk = Walk {
            nodes: rb.nodes().map(|n| n.iter().collect()).unwrap_or_default(),
            next_node: 0,
            buffers: lengths,
            next_buffer: 0,
            variadic: rb
                .variadicBufferCounts()
                .map(|v| v.iter().collect())
                .unwrap_or_default(),
            next_variadic: 0,
            v4: msg.version() < arrow_ipc::MetadataVersion::V5,
        };
        for dt in &types {
            if !walk.field(dt).map_err(|e| self.invalid(e))? {
                break; // ran out of nodes or buffers: the decoder reports it
            }
        }
        self.decoded
            .set(self.decoded.get().saturating_add(produced));
        if self.decoded.get() > self.opts.max_decoded_bytes {
            return Err(ArrowSegmentError::TooLarge {
                name: self.label.to_string(),
                limit: self.opts.max_decoded_bytes,
            });
        }
        Ok(())
    }
}

/// A decoder of messages of any supported metadata version. The file's version is not
/// passed: pyarrow writes V4 messages under a V5 footer when asked for V4, which arrow-rs
/// refuses as a mismatch (`V1` turns that comparison off); each message is decoded by its
/// own version, and [`Reader::precheck`] refuses versions before V4.
fn decoder(schema: SchemaRef, opts: &ReadOptions) -> FileDecoder {
    FileDecoder::new(schema, arrow_ipc::MetadataVersion::V1)
        .with_require_alignment(opts.require_alignment)
}

/// The message flatbuffer of a framed block (`[0xFFFFFFFF] length metadata`), `meta_len`
/// bytes including the framing.
fn message_of(data: &[u8], meta_len: usize) -> Result<arrow_ipc::Message<'_>, String> {
    let start = if data.get(0..4) == Some(&[0xff; 4][..]) {
        8
    } else {
        4
    };
    let meta = data
        .get(start..meta_len)
        .ok_or_else(|| format!("message metadata of {meta_len} bytes is too short"))?;
    arrow_ipc::root_as_message(meta).map_err(|e| format!("message is not a valid flatbuffer: {e}"))
}

fn check_counts(n: &arrow_ipc::FieldNode) -> Result<(), String> {
    if n.length() < 0 || n.null_count() < 0 || n.null_count() > n.length() {
        return Err(format!(
            "field node length {} / null count {} is invalid",
            n.length(),
            n.null_count()
        ));
    }
    Ok(())
}

/// The nodes and buffers of one message, taken in the order arrow-rs's `RecordBatchDecoder`
/// takes them (`create_array`), so each buffer can be checked for what the decoder will do
/// with it: field nodes with sane lengths, offsets and views in whole elements (arrow-rs's
/// `typed_data` asserts that), union type ids and offsets long enough for the node
/// (`slice_with_length` asserts that). Lengths are the uncompressed ones.
struct Walk<'a> {
    nodes: Vec<&'a arrow_ipc::FieldNode>,
    next_node: usize,
    buffers: Vec<u64>,
    next_buffer: usize,
    variadic: Vec<i64>,
    next_variadic: usize,
    /// Metadata before V5: unions carry a validity buffer.
    v4: bool,
}

impl Walk<'_> {
    fn node(&mut self) -> Result<Option<u64>, String> {
        let Some(n) = self.nodes.get(self.next_node) else {
            return Ok(None);
        };
        self.next_node += 1;
        check_counts(n)?;
        Ok(Some(n.length() as u64))
    }

    /// The next buffer's length, which must be whole `width`-byte elements.
    fn buffer(&mut self, width: u64, what: &str) -> Result<Option<u64>, String> {
        let Some(&len) = self.buffers.get(self.next_buffer) else {
            return Ok(None);
        };
        self.next_buffer += 1;
        if width > 1 && !len.is_multiple_of(width) {
            return Err(format!(
                "{what} buffer of {len} bytes is not whole {width}-byte elements"
            ));
        }
        Ok(Some(len))
    }

    /// Checks one field; `false` once the nodes or buffers run out.
    fn field(&mut self, dt: &arrow_schema::DataType) -> Result<bool, String> {
        use arrow_schema::DataType as D;
        let Some(len) = self.node()? else {
            return Ok(false);
        };
        let some = |b: Option<u64>| b.is_some();
        Ok(match dt {
            D::Null => true,
            D::Utf8 | D::Binary | D::LargeUtf8 | D::LargeBinary => {
                let w = if matches!(dt, D::LargeUtf8 | D::LargeBinary) {
                    8
                } else {
                    4
                };
                some(self.buffer(1, "validity")?)
                    && some(self.buffer(w, "offsets")?)
                    && some(self.buffer(1, "data")?)
            }
            D::Utf8View | D::BinaryView => {
                let Some(&count) = self.variadic.get(self.next_variadic) else {
                    return Ok(false);
                };
                self.next_variadic += 1;
                let count =
                    usize::try_from(count).map_err(|_| format!("variadic buffer count {count}"))?;
                if count > self.buffers.len() {
                    return Err(format!("{count} variadic buffers claimed"));
                }
                if !(some(self.buffer(1, "validity")?) && some(self.buffer(16, "views")?)) {
                    return Ok(false);
                }
                for _ in 0..count {
                    if !some(self.buffer(1, "variadic data")?) {
                        return Ok(false);
                    }
                }
                true
            }
            D::List(c) | D::Map(c, _) | D::LargeList(c) => {
                let w = if matches!(dt, D::LargeList(_)) { 8 } else { 4 };
                some(self.buffer(1, "validity")?)
                    && some(self.buffer(w, "offsets")?)
                    && self.field(c.data_type())?
            }
            D::ListView(c) | D::LargeListView(c) => {
                let w = if matches!(dt, D::LargeListView(_)) {
                    8
                } else {
                    4
                };
                some(self.buffer(1, "validity")?)
                    && some(self.buffer(w, "offsets")?)
                    && some(self.buffer(w, "sizes")?)
                    && self.field(c.data_type())?
            }
            D::FixedSizeList(c, size) => {
                if len
                    .checked_mul((*size).max(0) as u64)
                    .is_none_or(|v| v > isize::MAX as u64)
                {
                    return Err(format!("fixed-size list of {len} rows x {size} overflows"));
                }
                some(self.buffer(1, "validity")?) && self.field(c.data_type())?
            }
            D::Struct(fields) => {
                if !some(self.buffer(1, "validity")?) {
                    return Ok(false);
                }
                for f in fields {
                    if !self.field(f.data_type())? {
                        return Ok(false);
                    }
                }
                true
            }
            D::RunEndEncoded(a, b) => self.field(a.data_type())? && self.field(b.data_type())?,
            D::Dictionary(key, _) => {
                let w = key.primitive_width().unwrap_or(1) as u64;
                some(self.buffer(1, "validity")?) && some(self.buffer(w, "indices")?)
            }
            D::Union(fields, mode) => {
                if self.v4 && !some(self.buffer(1, "validity")?) {
                    return Ok(false);
                }
                let Some(ids) = self.buffer(1, "type ids")? else {
                    return Ok(false);
                };
                if ids < len {
                    return Err(format!("union of {len} rows has {ids} type ids"));
                }
                if *mode == arrow_schema::UnionMode::Dense {
                    let Some(offsets) = self.buffer(4, "union offsets")? else {
                        return Ok(false);
                    };
                    if offsets < len.saturating_mul(4) {
                        return Err(format!(
                            "dense union of {len} rows has {offsets} offset bytes"
                        ));
                    }
                }
                for (_, f) in fields.iter() {
                    if !self.field(f.data_type())? {
                        return Ok(false);
                    }
                }
                true
            }
            // Every other type: validity and values (arrow-rs's default case).
            _ => some(self.buffer(1, "validity")?) && some(self.buffer(1, "values")?),
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Float64Array;
    use arrow_schema::{DataType, Field, Schema};

    fn sample() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("f", DataType::Float64, false)]));
        let col = Float64Array::from_iter_values((0..1000).map(|i| i as f64 * 0.5));
        RecordBatch::try_new(schema, vec![Arc::new(col)]).expect("batch")
    }

    fn encode(stream: bool, compression: Option<arrow_ipc::CompressionType>) -> Vec<u8> {
        let b = sample();
        let opts = arrow_ipc::writer::IpcWriteOptions::default()
            .try_with_compression(compression)
            .expect("options");
        let mut out = Vec::new();
        if stream {
            let mut w =
                arrow_ipc::writer::StreamWriter::try_new_with_options(&mut out, &b.schema(), opts)
                    .expect("writer");
            w.write(&b).expect("write");
            w.finish().expect("finish");
        } else {
            let mut w =
                arrow_ipc::writer::FileWriter::try_new_with_options(&mut out, &b.schema(), opts)
                    .expect("writer");
            w.write(&b).expect("write");
            w.finish().expect("finish");
        }
        out
    }

    fn decoding(limit: u64) -> ReadOptions {
        ReadOptions {
            require_alignment: false,
            decompress: true,
            max_decoded_bytes: limit,
        }
    }

    #[test]
    fn files_and_streams_read_the_same_values() {
        for stream in [false, true] {
            let f = read_ipc_file(encode(stream, None), "t").expect("read");
            assert_eq!(f.batches, vec![sample()], "stream={stream}");
        }
    }

    #[test]
    fn compressed_buffers_are_refused_in_place_and_decoded_on_request() {
        for c in [
            arrow_ipc::CompressionType::LZ4_FRAME,
            arrow_ipc::CompressionType::ZSTD,
        ] {
            let bytes = encode(false, Some(c));
            let e = read_ipc_file(bytes.clone(), "t").unwrap_err();
            assert!(matches!(e, ArrowSegmentError::Compressed { .. }), "{e}");
            let f = read_ipc_with(bytes.clone(), "t", &decoding(1 << 20)).expect("decode");
            assert_eq!(f.batches, vec![sample()]);
            // 8000 bytes of values claimed uncompressed: a smaller limit refuses up front.
            let e = read_ipc_with(bytes, "t", &decoding(4000)).unwrap_err();
            assert!(matches!(e, ArrowSegmentError::TooLarge { .. }), "{e}");
        }
    }

    #[test]
    fn a_huge_claimed_uncompressed_length_is_refused_before_any_allocation() {
        let mut bytes = encode(false, Some(arrow_ipc::CompressionType::LZ4_FRAME));
        // The values buffer's 8-byte prefix is its uncompressed length (8000): claim 1 TiB.
        // arrow-rs would allocate that much before decompressing (an abort); the budget,
        // checked first, refuses it.
        let at = bytes
            .windows(8)
            .position(|w| w == 8000i64.to_le_bytes())
            .expect("length prefix");
        bytes[at..at + 8].copy_from_slice(&(1i64 << 40).to_le_bytes());
        let e = read_ipc_with(bytes, "t", &decoding(16 << 30)).unwrap_err();
        assert!(matches!(e, ArrowSegmentError::TooLarge { .. }), "{e}");
    }

    #[test]
    fn a_block_claiming_more_than_the_file_is_refused() {
        let mut bytes = encode(false, None);
        // The footer's block: (offset i64, metaDataLength i32, pad, bodyLength i64 = 8000).
        let at = bytes
            .windows(8)
            .rposition(|w| w == 8000i64.to_le_bytes())
            .expect("body length in the footer");
        bytes[at..at + 8].copy_from_slice(&(8i64 << 30).to_le_bytes());
        let e = read_ipc_file(bytes, "t").unwrap_err();
        assert!(e.to_string().contains("lies outside the file"), "{e}");
    }

    #[test]
    fn big_endian_data_is_refused_not_misread() {
        let bytes = super::super::testing::big_endian_file(&[1, 2, 3]);
        for opts in [ReadOptions::default(), decoding(1 << 20)] {
            let e = read_ipc_with(bytes.clone(), "be.arrow", &opts).unwrap_err();
            assert!(matches!(e, ArrowSegmentError::BigEndian { .. }), "{e}");
            assert!(e.to_string().starts_with("be.arrow: big-endian"), "{e}");
        }
    }
}
