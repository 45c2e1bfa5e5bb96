//! Writing arbitrary record batches into a segment.

use arrow_array::RecordBatch;
use arrow_ipc::writer::{DictionaryTracker, IpcDataGenerator, IpcWriteContext};

use super::ArrowSegmentError;
use super::{EOS, footer_bytes, frame_metadata, schema_message, write_options};
use crate::header::{ContentKind, HEADER_LEN};
use crate::name::SegmentName;
use crate::segment::{CreateOptions, Segment, SegmentMut};

/// Writes `batches` (all with `schema`) into a new segment as an Arrow IPC file and publishes
/// it. Any Arrow type works (dictionaries included); the data is encoded by arrow-ipc and
/// copied into the segment once.
pub fn write_batches(
    name: SegmentName,
    opts: &CreateOptions,
    schema: &arrow_schema::Schema,
    batches: &[RecordBatch],
) -> Result<Segment, ArrowSegmentError> {
    let arrow_err = |source| ArrowSegmentError::Arrow {
        name: name.to_string(),
        source,
    };
    let generator = IpcDataGenerator::default();
    let mut tracker = DictionaryTracker::new(false);
    let wopts = write_options();
    let mut ctx = IpcWriteContext::default();
    let schema_msg = schema_message(schema, &mut tracker);
    // (framed metadata, body, is_dictionary)
    let mut messages: Vec<(Vec<u8>, Vec<u8>, bool)> = Vec::new();
    for b in batches {
        if b.schema().fields() != schema.fields() {
            return Err(ArrowSegmentError::Invalid {
                name: name.to_string(),
                reason: "record batch schema differs from the file schema".into(),
            });
        }
        let (dicts, enc) = generator
            .encode(b, &mut tracker, &wopts, &mut ctx)
            .map_err(arrow_err)?;
        for d in dicts {
            messages.push((frame_metadata(&d.ipc_message), d.arrow_data, true));
        }
        messages.push((frame_metadata(&enc.ipc_message), enc.arrow_data, false));
    }
    // Lay out with absolute offsets: the file starts at offset 0 of the object.
    let mut off = HEADER_LEN + schema_msg.len();
    let mut dict_blocks = Vec::new();
    let mut rec_blocks = Vec::new();
    for (meta, body, is_dict) in &messages {
        let block = arrow_ipc::Block::new(off as i64, meta.len() as i32, body.len() as i64);
        if *is_dict {
            dict_blocks.push(block);
        } else {
            rec_blocks.push(block);
        }
        off += meta.len() + body.len();
    }
    let footer = footer_bytes(schema, &dict_blocks, &rec_blocks);
    let total = off + EOS.len() + footer.len();
    let opts = CreateOptions {
        kind: ContentKind::ArrowFile,
        ..opts.clone()
    };
    let mut seg = SegmentMut::create(name, total - HEADER_LEN, &opts)?;
    let (body, base) = seg.body_mut();
    let mut cursor = 0usize;
    let mut put = |bytes: &[u8]| {
        body[cursor..cursor + bytes.len()].copy_from_slice(bytes);
        cursor += bytes.len();
    };
    put(&schema_msg);
    for (meta, data, _) in &messages {
        put(meta);
        put(data);
    }
    put(&EOS);
    put(&footer);
    debug_assert_eq!(base + cursor, total);
    Ok(seg.publish()?)
}
