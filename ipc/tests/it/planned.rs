//! `plan_layout`: metadata written first, buffers filled in place, published, read by others.

use std::ops::Range;
use std::sync::Arc;

use arrow_array::{Array, BinaryArray, FixedSizeListArray, Float32Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use shmframe_ipc::arrow::{ColumnPlan, plan_layout, plan_layout_into, read_ipc_file};
use shmframe_ipc::{
    ArrowSegmentError, CreateOptions, Segment, SegmentDir, SegmentError, SegmentName, matrix,
};

use super::harness::{
    LeakGuard, addr_range, assert_inside, assert_unpublished, child_arg, child_exit, is_child,
    run_child,
};

const ROWS: usize = 5;
const INTS: [Option<i64>; ROWS] = [Some(10), None, Some(30), None, Some(50)];
const BINS: [Option<&[u8]>; ROWS] = [Some(b"ab"), Some(b""), None, Some(b"cde"), Some(b"\0\xff")];

fn schema() -> Schema {
    Schema::new(vec![
        matrix::matrix_field("m", DataType::Float32, 2, false),
        Field::new("i", DataType::Int64, true),
        Field::new("b", DataType::Binary, true),
    ])
}

fn matrix_values() -> Vec<f32> {
    (0..ROWS * 2).map(|v| v as f32 * 0.5).collect()
}

/// The batch the planned segment must decode to, built the ordinary way.
fn expected() -> RecordBatch {
    let m = FixedSizeListArray::new(
        Arc::new(Field::new("item", DataType::Float32, false)),
        2,
        Arc::new(Float32Array::from(matrix_values())),
        None,
    );
    RecordBatch::try_new(
        Arc::new(schema()),
        vec![
            Arc::new(m),
            Arc::new(Int64Array::from(INTS.to_vec())),
            Arc::new(BinaryArray::from(BINS.to_vec())),
        ],
    )
    .unwrap()
}

fn validity(valid: impl Iterator<Item = bool>) -> Vec<u8> {
    let mut bits = vec![0u8; ROWS.div_ceil(8)];
    for (i, v) in valid.enumerate() {
        if v {
            bits[i / 8] |= 1 << (i % 8);
        }
    }
    bits
}

/// The offsets (i32, little-endian) and value bytes of [`BINS`], a null counting as empty.
fn binary_buffers() -> (Vec<u8>, Vec<u8>) {
    let mut offsets = vec![0i32];
    let mut values = Vec::new();
    for v in BINS {
        values.extend_from_slice(v.unwrap_or_default());
        offsets.push(values.len() as i32);
    }
    (
        offsets.iter().flat_map(|v| v.to_le_bytes()).collect(),
        values,
    )
}

/// Plans, fills through `body_mut` and publishes the segment of [`expected`].
fn planned_segment(name: SegmentName) -> Segment {
    let plans = [
        ColumnPlan::default(),
        ColumnPlan {
            null_count: INTS.iter().filter(|v| v.is_none()).count(),
            value_bytes: 0,
        },
        ColumnPlan {
            null_count: BINS.iter().filter(|v| v.is_none()).count(),
            value_bytes: BINS.iter().flatten().map(|b| b.len()).sum(),
        },
    ];
    let mut p = plan_layout(name, &CreateOptions::default(), &schema(), ROWS, &plans).unwrap();
    assert_eq!(p.rows, ROWS);
    let cols = p.columns.clone();
    assert_eq!(
        cols.iter().map(|c| c.value_width).collect::<Vec<_>>(),
        [4, 8, 0]
    );
    for c in &cols {
        for r in [Some(&c.values), c.validity.as_ref(), c.offsets.as_ref()]
            .into_iter()
            .flatten()
        {
            assert_eq!(r.start % 64, 0, "buffer {r:?} is not 64-byte aligned");
        }
    }
    assert!(cols[0].validity.is_none() && cols[0].offsets.is_none());
    let (body, base) = p.segment.body_mut();
    let mut put = |r: &Range<usize>, bytes: &[u8]| {
        assert_eq!(r.len(), bytes.len(), "planned range {r:?}");
        body[r.start - base..r.end - base].copy_from_slice(bytes);
    };
    // m: row-major f32 values.
    let m: Vec<u8> = matrix_values()
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    put(&cols[0].values, &m);
    // i: validity bits and values (null slots are zero).
    put(
        cols[1].validity.as_ref().unwrap(),
        &validity(INTS.iter().map(Option::is_some)),
    );
    let i: Vec<u8> = INTS
        .iter()
        .flat_map(|v| v.unwrap_or(0).to_le_bytes())
        .collect();
    put(&cols[1].values, &i);
    // b: validity bits, offsets, values.
    put(
        cols[2].validity.as_ref().unwrap(),
        &validity(BINS.iter().map(Option::is_some)),
    );
    let (offsets, values) = binary_buffers();
    put(cols[2].offsets.as_ref().unwrap(), &offsets);
    put(&cols[2].values, &values);
    p.segment.publish().unwrap()
}

/// Child: attaches the planned segment `<name>` and compares it with the expected batch.
#[test]
fn child_planned_reader() {
    let Some(name) = child_arg("planned_reader") else {
        return;
    };
    let seg = Segment::attach(&SegmentName::parse(&name).unwrap(), &SegmentDir::Shm).unwrap();
    let file = read_ipc_file(seg, &name).unwrap();
    let ok = file.batches.len() == 1 && file.batches[0] == expected();
    child_exit(ok, format_args!("read {:?}", file.batches))
}

#[test]
fn planned_layout_filled_in_place_is_read_by_a_child() {
    if is_child() {
        return;
    }
    let g = LeakGuard::new("t-plan");
    let seg = planned_segment(g.name());
    run_child(
        crate::test_name!(child_planned_reader),
        "planned_reader",
        seg.name().as_str(),
    )
    .assert_success("the child read other values");
}

#[test]
fn planned_layout_is_zero_copy() {
    if is_child() {
        return;
    }
    let g = LeakGuard::new("t-planzc");
    let owner = planned_segment(g.name());
    let reader = Segment::attach(owner.name(), owner.dir()).unwrap();
    let mapping = addr_range(reader.bytes());
    let file = read_ipc_file(reader, "t-planzc").unwrap();
    assert_eq!(file.batches[0], expected());
    let n = assert_inside(&file.batches, mapping);
    assert!(n >= 6, "only {n} buffers checked");
}

#[test]
fn planned_layout_refusals_leave_nothing() {
    if is_child() {
        return;
    }
    let g = LeakGuard::new("t-planbad");
    // Unpublished: readers refuse it, and dropping it unlinks it.
    let p = plan_layout(
        g.name(),
        &CreateOptions::default(),
        &schema(),
        ROWS,
        &[ColumnPlan::default(); 3],
    )
    .unwrap();
    assert_unpublished(p.segment.name(), &SegmentDir::Shm);
    drop(p);
    // Unsupported types and impossible plans are refused before anything is created.
    let nested = Schema::new(vec![Field::new(
        "l",
        DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
        false,
    )]);
    let e = plan_layout(
        g.name(),
        &CreateOptions::default(),
        &nested,
        3,
        &[ColumnPlan::default()],
    )
    .unwrap_err();
    assert!(matches!(e, ArrowSegmentError::Unsupported { .. }), "{e}");
    let e = plan_layout(
        g.name(),
        &CreateOptions::default(),
        &schema(),
        2,
        &[
            ColumnPlan {
                null_count: 3,
                value_bytes: 0,
            },
            ColumnPlan::default(),
            ColumnPlan::default(),
        ],
    )
    .unwrap_err();
    assert!(matches!(e, ArrowSegmentError::Invalid { .. }), "{e}");
}

#[test]
fn null_count_set_after_filling_is_read_back() {
    if is_child() {
        return;
    }
    let g = LeakGuard::new("t-plannull");
    let schema = Schema::new(vec![
        Field::new("i", DataType::Int64, true),
        Field::new("j", DataType::Int64, false),
    ]);
    // Planned with room for any number of nulls; the real count is known only after filling.
    let mut p = plan_layout(
        g.name(),
        &CreateOptions::default(),
        &schema,
        ROWS,
        &[
            ColumnPlan {
                null_count: ROWS,
                value_bytes: 0,
            },
            ColumnPlan::default(),
        ],
    )
    .unwrap();
    let cols = p.columns.clone();
    {
        let (body, base) = p.segment.body_mut();
        let v = cols[0].validity.clone().unwrap();
        body[v.start - base..v.end - base]
            .copy_from_slice(&validity(INTS.iter().map(Option::is_some)));
        for (k, c) in cols.iter().enumerate() {
            let vals = c.values.start - base;
            for (r, x) in INTS.iter().enumerate() {
                let x = x.unwrap_or(0) + k as i64;
                body[vals + r * 8..vals + (r + 1) * 8].copy_from_slice(&x.to_le_bytes());
            }
        }
    }
    p.set_null_count(0, 2);
    let owner = p.segment.publish().unwrap();
    let reader = Segment::attach(owner.name(), owner.dir()).unwrap();
    let file = read_ipc_file(reader, "t-plannull").unwrap();
    let b = &file.batches[0];
    assert_eq!(b.column(0).null_count(), 2);
    assert_eq!(
        b.column(0).as_any().downcast_ref::<Int64Array>().unwrap(),
        &Int64Array::from(INTS.to_vec())
    );
    assert_eq!(b.column(1).null_count(), 0);
    assert_eq!(
        b.column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(4),
        51
    );
}

/// A published planned segment taken back by its owner (`into_writable`) and planned again
/// in place (`plan_layout_into`): refused to readers while refilled, then read with the new
/// bytes by a new attachment and, through the same mapping, by one made before.
#[test]
fn planned_layout_refilled_in_place() {
    if is_child() {
        return;
    }
    let g = LeakGuard::new("t-planre");
    let owner = planned_segment(g.name());
    let name = owner.name().clone();
    let early = Segment::attach(&name, owner.dir()).unwrap();
    // Only the owner's handle can be made writable.
    let e = Segment::attach(&name, owner.dir())
        .unwrap()
        .into_writable()
        .unwrap_err();
    assert!(matches!(e, SegmentError::NotOwner { .. }), "{e}");
    let seg = owner.into_writable().unwrap();
    assert_unpublished(&name, &SegmentDir::Shm);
    // A layout of another size is refused.
    let one = Schema::new(vec![matrix::matrix_field("m", DataType::Float32, 2, false)]);
    let small = plan_layout_into(seg, &one, ROWS, &[ColumnPlan::default()]).unwrap_err();
    assert!(
        small.to_string().contains("cannot hold the layout"),
        "{small}"
    );
    // Refused and dropped: unlinked.
    assert!(Segment::attach(&name, &SegmentDir::Shm).is_err());
    drop(early);

    // Again, now into a segment of exactly the layout's size, with other values.
    let owner = planned_segment(g.name());
    let name = owner.name().clone();
    let early = Segment::attach(&name, owner.dir()).unwrap();
    let plans = [
        ColumnPlan::default(),
        ColumnPlan {
            null_count: 1,
            value_bytes: 0,
        },
        ColumnPlan {
            null_count: 1,
            value_bytes: BINS.iter().flatten().map(|b| b.len()).sum(),
        },
    ];
    let mut p = plan_layout_into(owner.into_writable().unwrap(), &schema(), ROWS, &plans)
        .unwrap_or_else(|e| panic!("{e}"));
    let cols = p.columns.clone();
    let (body, base) = p.segment.body_mut();
    let mut put = |r: &Range<usize>, bytes: &[u8]| {
        body[r.start - base..r.end - base].copy_from_slice(bytes);
    };
    let m: Vec<u8> = (0..ROWS * 2)
        .flat_map(|v| (v as f32 * -2.0).to_le_bytes())
        .collect();
    put(&cols[0].values, &m);
    put(
        cols[1].validity.as_ref().unwrap(),
        &validity((0..ROWS).map(|r| r != 3)),
    );
    let i: Vec<u8> = (0..ROWS as i64)
        .flat_map(|v| (v * 7).to_le_bytes())
        .collect();
    put(&cols[1].values, &i);
    put(
        cols[2].validity.as_ref().unwrap(),
        &validity((0..ROWS).map(|r| r != 0)),
    );
    let (offsets, values) = binary_buffers();
    put(cols[2].offsets.as_ref().unwrap(), &offsets);
    put(&cols[2].values, &values);
    let owner = p.segment.publish().unwrap();
    let want_m: Vec<f32> = (0..ROWS * 2).map(|v| v as f32 * -2.0).collect();
    let want_i: Vec<Option<i64>> = (0..ROWS as i64)
        .map(|v| (v != 3).then_some(v * 7))
        .collect();
    let want_b: Vec<Option<&[u8]>> = BINS
        .iter()
        .enumerate()
        .map(|(r, v)| (r != 0).then_some(v.unwrap_or_default()))
        .collect();
    for (who, seg) in [
        (
            "new attachment",
            Segment::attach(&name, owner.dir()).unwrap(),
        ),
        ("earlier attachment", early),
    ] {
        let file = read_ipc_file(seg, who).unwrap_or_else(|e| panic!("{who}: {e}"));
        let b = &file.batches[0];
        let m = b
            .column(0)
            .as_any()
            .downcast_ref::<FixedSizeListArray>()
            .unwrap();
        let mv = m.values().as_any().downcast_ref::<Float32Array>().unwrap();
        assert_eq!(mv.values().to_vec(), want_m, "{who}");
        let iv: Vec<Option<i64>> = b
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(iv, want_i, "{who}");
        let bv: Vec<Option<&[u8]>> = b
            .column(2)
            .as_any()
            .downcast_ref::<BinaryArray>()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(bv, want_b, "{who}");
    }
    drop(owner);
    assert!(g.present().is_empty(), "left: {:?}", g.present());
}
