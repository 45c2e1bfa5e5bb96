//! Arrow IPC files no producer at hand writes, built by hand for tests and fuzz seeds.

use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, WIPOffset};

use super::{ARROW_MAGIC, EOS, frame_metadata};

/// An Arrow IPC file with one non-null `Float64` column `f` of `n` values (`0, 0.5, 1, …`)
/// in one record batch, its buffers LZ4-frame compressed when `lz4`.
pub fn f64_file(n: usize, lz4: bool) -> Vec<u8> {
    use std::sync::Arc;
    let schema = Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
        "f",
        arrow_schema::DataType::Float64,
        false,
    )]));
    let col = arrow_array::Float64Array::from_iter_values((0..n).map(|i| i as f64 * 0.5));
    let batch = arrow_array::RecordBatch::try_new(schema.clone(), vec![Arc::new(col)])
        .expect("a valid batch");
    let opts = arrow_ipc::writer::IpcWriteOptions::default()
        .try_with_compression(lz4.then_some(arrow_ipc::CompressionType::LZ4_FRAME))
        .expect("LZ4 is enabled");
    let mut out = Vec::new();
    let mut w = arrow_ipc::writer::FileWriter::try_new_with_options(&mut out, &schema, opts)
        .expect("writing to memory");
    w.write(&batch).expect("writing to memory");
    w.finish().expect("writing to memory");
    drop(w);
    out
}

/// A big-endian Arrow IPC file (as an s390x machine writes it) with one non-null `Int32`
/// column `v` holding `values`, in one record batch. pyarrow reads it (swapping the bytes);
/// shmframe refuses it.
pub fn big_endian_file(values: &[i32]) -> Vec<u8> {
    let body: Vec<u8> = {
        let mut v: Vec<u8> = values.iter().flat_map(|x| x.to_be_bytes()).collect();
        v.resize(v.len().next_multiple_of(8), 0);
        v
    };
    let schema_msg = message(arrow_ipc::MessageHeader::Schema, 0, |fbb| {
        schema(fbb).as_union_value()
    });
    let batch_msg = message(arrow_ipc::MessageHeader::RecordBatch, body.len(), |fbb| {
        let nodes = fbb.create_vector(&[arrow_ipc::FieldNode::new(values.len() as i64, 0)]);
        let buffers = fbb.create_vector(&[
            arrow_ipc::Buffer::new(0, 0),
            arrow_ipc::Buffer::new(0, (values.len() * 4) as i64),
        ]);
        let mut b = arrow_ipc::RecordBatchBuilder::new(fbb);
        b.add_length(values.len() as i64);
        b.add_nodes(nodes);
        b.add_buffers(buffers);
        b.finish().as_union_value()
    });
    let mut out = Vec::new();
    out.extend_from_slice(ARROW_MAGIC);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&schema_msg);
    let block = arrow_ipc::Block::new(out.len() as i64, batch_msg.len() as i32, body.len() as i64);
    out.extend_from_slice(&batch_msg);
    out.extend_from_slice(&body);
    out.extend_from_slice(&EOS);
    let mut fbb = FlatBufferBuilder::new();
    let s = schema(&mut fbb);
    let dicts = fbb.create_vector::<arrow_ipc::Block>(&[]);
    let recs = fbb.create_vector(&[block]);
    let mut f = arrow_ipc::FooterBuilder::new(&mut fbb);
    f.add_version(arrow_ipc::MetadataVersion::V5);
    f.add_schema(s);
    f.add_dictionaries(dicts);
    f.add_recordBatches(recs);
    let root = f.finish();
    fbb.finish(root, None);
    let footer = fbb.finished_data();
    out.extend_from_slice(footer);
    out.extend_from_slice(&(footer.len() as i32).to_le_bytes());
    out.extend_from_slice(ARROW_MAGIC);
    out
}

fn schema<'a>(fbb: &mut FlatBufferBuilder<'a>) -> WIPOffset<arrow_ipc::Schema<'a>> {
    let name = fbb.create_string("v");
    let int = {
        let mut b = arrow_ipc::IntBuilder::new(fbb);
        b.add_bitWidth(32);
        b.add_is_signed(true);
        b.finish()
    };
    let children = fbb.create_vector::<WIPOffset<arrow_ipc::Field<'_>>>(&[]);
    let field = {
        let mut b = arrow_ipc::FieldBuilder::new(fbb);
        b.add_name(name);
        b.add_nullable(false);
        b.add_type_type(arrow_ipc::Type::Int);
        b.add_type_(int.as_union_value());
        b.add_children(children);
        b.finish()
    };
    let fields = fbb.create_vector(&[field]);
    let mut b = arrow_ipc::SchemaBuilder::new(fbb);
    b.add_endianness(arrow_ipc::Endianness::Big);
    b.add_fields(fields);
    b.finish()
}

/// A framed message of `header_type` whose header `build` makes, announcing `body_len`.
fn message(
    header_type: arrow_ipc::MessageHeader,
    body_len: usize,
    build: impl FnOnce(&mut FlatBufferBuilder<'static>) -> WIPOffset<UnionWIPOffset>,
) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::new();
    let header = build(&mut fbb);
    let mut m = arrow_ipc::MessageBuilder::new(&mut fbb);
    m.add_version(arrow_ipc::MetadataVersion::V5);
    m.add_header_type(header_type);
    m.add_header(header);
    m.add_bodyLength(body_len as i64);
    let root = m.finish();
    fbb.finish(root, None);
    frame_metadata(fbb.finished_data())
}
