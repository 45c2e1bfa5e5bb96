//! A planned Arrow IPC layout whose buffers are filled in place.

use std::ops::Range;

use arrow_schema::{DataType, Schema};

use super::ArrowSegmentError;
use super::{EOS, footer_bytes, frame_metadata, schema_message};
use crate::header::{ContentKind, HEADER_LEN};
use crate::name::SegmentName;
use crate::segment::{CreateOptions, SegmentMut};

/// What the planner needs to know about one column beyond its type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ColumnPlan {
    /// Null rows (a validity bitmap is laid out when this is non-zero).
    pub null_count: usize,
    /// For binary/string columns: total bytes of all values.
    pub value_bytes: usize,
}

/// Absolute byte ranges (within the segment object) of one column's buffers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnBuffers {
    /// Validity bitmap, if the column has nulls.
    pub validity: Option<Range<usize>>,
    /// Offsets (binary/string columns).
    pub offsets: Option<Range<usize>>,
    /// Values (for fixed-size lists: the child's values, row-major).
    pub values: Range<usize>,
    /// Bytes per element of `values` (0 for bit-packed booleans and variable-length bytes).
    pub value_width: usize,
}

/// A segment holding Arrow metadata (schema, batch message, footer) whose buffers are still to
/// be filled. Publish it with [`SegmentMut::publish`] once every buffer is written.
#[derive(Debug)]
pub struct PlannedSegment {
    /// The segment (header unpublished).
    pub segment: SegmentMut,
    /// Buffer ranges per column, in schema order.
    pub columns: Vec<ColumnBuffers>,
    /// Row count.
    pub rows: usize,
    /// What it takes to rewrite the record batch message (null counts known only later).
    message: BatchMessage,
}

/// The record batch message of a planned segment and where it sits.
#[derive(Debug)]
struct BatchMessage {
    /// Absolute offset of the framed message in the segment.
    at: usize,
    nodes: Vec<arrow_ipc::FieldNode>,
    buffers: Vec<arrow_ipc::Buffer>,
    body_len: usize,
    /// Index in `nodes` of each top-level column's node.
    column_nodes: Vec<usize>,
}

impl BatchMessage {
    fn encode(&self, rows: usize) -> Vec<u8> {
        let mut fbb = flatbuffers::FlatBufferBuilder::new();
        let nodes = fbb.create_vector(&self.nodes);
        let buffers = fbb.create_vector(&self.buffers);
        let mut rb = arrow_ipc::RecordBatchBuilder::new(&mut fbb);
        rb.add_length(rows as i64);
        rb.add_nodes(nodes);
        rb.add_buffers(buffers);
        let rb = rb.finish();
        let mut m = arrow_ipc::MessageBuilder::new(&mut fbb);
        m.add_version(arrow_ipc::MetadataVersion::V5);
        m.add_header_type(arrow_ipc::MessageHeader::RecordBatch);
        m.add_header(rb.as_union_value());
        m.add_bodyLength(self.body_len as i64);
        let m = m.finish();
        fbb.finish(m, None);
        frame_metadata(fbb.finished_data())
    }
}

impl PlannedSegment {
    /// Sets the null count of column `column` once it is known (e.g. after workers reported
    /// which rows failed), rewriting the record batch message in place.
    ///
    /// The column must have been planned with a validity bitmap (a non-zero
    /// [`ColumnPlan::null_count`]), whose bits the caller fills to match: readers that
    /// validate (arrow-rs) refuse a count that disagrees with the bitmap.
    ///
    /// # Panics
    /// If the column has no validity bitmap or `nulls` exceeds the row count.
    pub fn set_null_count(&mut self, column: usize, nulls: usize) {
        assert!(
            self.columns[column].validity.is_some(),
            "column {column} was planned without a validity bitmap"
        );
        assert!(nulls <= self.rows, "{nulls} nulls in {} rows", self.rows);
        let node = self.message.column_nodes[column];
        let length = self.message.nodes[node].length();
        self.message.nodes[node] = arrow_ipc::FieldNode::new(length, nulls as i64);
        let bytes = self.message.encode(self.rows);
        let (body, base) = self.segment.body_mut();
        let at = self.message.at - base;
        // The message only holds fixed-size structs whose values changed: same length.
        let old_len = u32::from_le_bytes(body[at + 4..at + 8].try_into().expect("4 bytes"));
        assert_eq!(
            bytes.len(),
            old_len as usize + 8,
            "record batch message changed length"
        );
        body[at..at + bytes.len()].copy_from_slice(&bytes);
    }
}

fn prim_width(dt: &DataType) -> Option<usize> {
    dt.primitive_width()
}

struct Planner {
    nodes: Vec<arrow_ipc::FieldNode>,
    buffers: Vec<arrow_ipc::Buffer>,
    body_len: usize,
}

impl Planner {
    fn buffer(&mut self, len: usize) -> Range<usize> {
        let start = self.body_len;
        self.buffers
            .push(arrow_ipc::Buffer::new(start as i64, len as i64));
        self.body_len = (start + len).next_multiple_of(super::ALIGN);
        start..start + len
    }

    fn validity(&mut self, rows: usize, nulls: usize) -> Option<Range<usize>> {
        if nulls > 0 {
            Some(self.buffer(rows.div_ceil(8)))
        } else {
            self.buffer(0);
            None
        }
    }
}

fn overflow(name: &SegmentName) -> ArrowSegmentError {
    ArrowSegmentError::Invalid {
        name: name.to_string(),
        reason: "layout size overflows".into(),
    }
}

/// Creates a segment with the Arrow IPC layout of one record batch of `rows` rows of `schema`,
/// writes all metadata, and returns the buffer ranges for the caller to fill.
///
/// Supported column types: primitive numbers, booleans, `FixedSizeList` of a primitive
/// (including `arrow.fixed_shape_tensor` storage), `Binary`/`Utf8` and their `Large` forms.
/// Nested lists and dictionaries go through [`super::write_batches`] instead.
pub fn plan_layout(
    name: SegmentName,
    opts: &CreateOptions,
    schema: &Schema,
    rows: usize,
    plans: &[ColumnPlan],
) -> Result<PlannedSegment, ArrowSegmentError> {
    let layout = Layout::compute(&name, schema, rows, plans)?;
    let opts = CreateOptions {
        kind: ContentKind::ArrowFile,
        ..opts.clone()
    };
    let segment = SegmentMut::create(name, layout.total - HEADER_LEN, &opts)?;
    Ok(layout.place(segment))
}

/// As [`plan_layout`], into `segment`, a segment this process owns (typically a job output
/// taken back with [`crate::Segment::into_writable`]) whose size is exactly the layout's.
/// Every metadata byte and the padding after each buffer are rewritten; the buffers keep
/// their old bytes, and the caller must overwrite every one of them before publishing.
///
/// A segment of another size or kind is refused (and dropped, so unlinked).
pub fn plan_layout_into(
    segment: SegmentMut,
    schema: &Schema,
    rows: usize,
    plans: &[ColumnPlan],
) -> Result<PlannedSegment, ArrowSegmentError> {
    let layout = Layout::compute(segment.name(), schema, rows, plans)?;
    let (have, kind) = (segment.bytes().len(), segment.header().kind);
    if have != layout.total || kind != ContentKind::ArrowFile {
        return Err(ArrowSegmentError::Invalid {
            name: segment.name().to_string(),
            reason: format!(
                "cannot hold the layout: {have} bytes of {kind:?}, the layout needs {} bytes of \
                 an Arrow file",
                layout.total
            ),
        });
    }
    Ok(layout.place(segment))
}

/// Where everything of a planned Arrow file goes, before a segment holds it.
struct Layout {
    /// Buffer ranges per column, relative to the body.
    rel: Vec<ColumnBuffers>,
    message: BatchMessage,
    schema_msg: Vec<u8>,
    batch_meta: Vec<u8>,
    footer: Vec<u8>,
    msg_off: usize,
    body_off: usize,
    /// Bytes of the whole object, header included.
    total: usize,
    rows: usize,
}

impl Layout {
    fn compute(
        name: &SegmentName,
        schema: &Schema,
        rows: usize,
        plans: &[ColumnPlan],
    ) -> Result<Layout, ArrowSegmentError> {
        assert_eq!(
            plans.len(),
            schema.fields().len(),
            "one ColumnPlan per field"
        );
        let mut p = Planner {
            nodes: Vec::new(),
            buffers: Vec::new(),
            body_len: 0,
        };
        let mut rel = Vec::with_capacity(plans.len());
        let mut column_nodes = Vec::with_capacity(plans.len());
        for (field, plan) in schema.fields().iter().zip(plans) {
            let unsupported = |reason| ArrowSegmentError::Unsupported {
                column: field.name().clone(),
                data_type: field.data_type().clone(),
                reason,
            };
            if plan.null_count > rows {
                return Err(ArrowSegmentError::Invalid {
                    name: name.to_string(),
                    reason: format!(
                        "column {}: {} nulls in {rows} rows",
                        field.name(),
                        plan.null_count
                    ),
                });
            }
            column_nodes.push(p.nodes.len());
            p.nodes.push(arrow_ipc::FieldNode::new(
                rows as i64,
                plan.null_count as i64,
            ));
            let dt = field.data_type();
            let bufs = match dt {
                DataType::Boolean => {
                    let validity = p.validity(rows, plan.null_count);
                    let values = p.buffer(rows.div_ceil(8));
                    ColumnBuffers {
                        validity,
                        offsets: None,
                        values,
                        value_width: 0,
                    }
                }
                DataType::FixedSizeList(child, size) => {
                    let w = prim_width(child.data_type())
                        .ok_or_else(|| unsupported("fixed-size lists of primitives only"))?;
                    let size =
                        usize::try_from(*size).map_err(|_| unsupported("negative list size"))?;
                    let validity = p.validity(rows, plan.null_count);
                    let n = rows.checked_mul(size).ok_or_else(|| overflow(name))?;
                    p.nodes.push(arrow_ipc::FieldNode::new(n as i64, 0));
                    p.buffer(0); // child validity: none
                    let values = p.buffer(n.checked_mul(w).ok_or_else(|| overflow(name))?);
                    ColumnBuffers {
                        validity,
                        offsets: None,
                        values,
                        value_width: w,
                    }
                }
                DataType::Binary | DataType::Utf8 | DataType::LargeBinary | DataType::LargeUtf8 => {
                    let ow = if matches!(dt, DataType::Binary | DataType::Utf8) {
                        4
                    } else {
                        8
                    };
                    if ow == 4 && plan.value_bytes > i32::MAX as usize {
                        return Err(unsupported("over 2 GiB of values: use LargeBinary"));
                    }
                    let validity = p.validity(rows, plan.null_count);
                    let offsets =
                        Some(p.buffer((rows + 1).checked_mul(ow).ok_or_else(|| overflow(name))?));
                    let values = p.buffer(plan.value_bytes);
                    ColumnBuffers {
                        validity,
                        offsets,
                        values,
                        value_width: 0,
                    }
                }
                dt => {
                    let w = prim_width(dt)
                        .ok_or_else(|| unsupported("not a fixed-width or binary type"))?;
                    let validity = p.validity(rows, plan.null_count);
                    let values = p.buffer(rows.checked_mul(w).ok_or_else(|| overflow(name))?);
                    ColumnBuffers {
                        validity,
                        offsets: None,
                        values,
                        value_width: w,
                    }
                }
            };
            rel.push(bufs);
        }
        let message = BatchMessage {
            at: 0,
            nodes: p.nodes,
            buffers: p.buffers,
            body_len: p.body_len,
            column_nodes,
        };
        let batch_meta = message.encode(rows);

        let schema_msg = schema_message(
            schema,
            &mut arrow_ipc::writer::DictionaryTracker::new(false),
        );
        let msg_off = HEADER_LEN + schema_msg.len();
        let body_off = msg_off + batch_meta.len();
        let block = arrow_ipc::Block::new(
            msg_off as i64,
            batch_meta.len() as i32,
            message.body_len as i64,
        );
        let footer = footer_bytes(schema, &[], &[block]);
        let total = body_off
            .checked_add(message.body_len)
            .and_then(|t| t.checked_add(EOS.len() + footer.len()))
            .ok_or_else(|| overflow(name))?;
        Ok(Layout {
            rel,
            message,
            schema_msg,
            batch_meta,
            footer,
            msg_off,
            body_off,
            total,
            rows,
        })
    }

    /// Writes the metadata into `segment` (exactly `total` bytes) and zeroes each buffer's
    /// padding.
    fn place(self, mut segment: SegmentMut) -> PlannedSegment {
        let (msg_off, body_off) = (self.msg_off, self.body_off);
        let (body, base) = segment.body_mut();
        let at = |abs: usize| abs - base;
        body[at(HEADER_LEN)..at(msg_off)].copy_from_slice(&self.schema_msg);
        body[at(msg_off)..at(body_off)].copy_from_slice(&self.batch_meta);
        for b in &self.message.buffers {
            let end = body_off + (b.offset() + b.length()) as usize;
            body[at(end)..at(end.next_multiple_of(super::ALIGN))].fill(0);
        }
        let tail = body_off + self.message.body_len;
        body[at(tail)..at(tail + EOS.len())].copy_from_slice(&EOS);
        body[at(tail + EOS.len())..].copy_from_slice(&self.footer);
        let shift = |r: Range<usize>| r.start + body_off..r.end + body_off;
        let columns = self
            .rel
            .into_iter()
            .map(|c| ColumnBuffers {
                validity: c.validity.map(shift),
                offsets: c.offsets.map(shift),
                values: shift(c.values),
                value_width: c.value_width,
            })
            .collect();
        PlannedSegment {
            segment,
            columns,
            rows: self.rows,
            message: BatchMessage {
                at: msg_off,
                ..self.message
            },
        }
    }
}
