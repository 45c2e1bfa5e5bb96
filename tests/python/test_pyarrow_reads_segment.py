"""pyarrow reads a segment written by Rust (shmframe-ipc), in place.

Driven by `ipc/tests/it/pyarrow.rs` (`cargo test -p shmframe-ipc --test tests pyarrow`), which
writes the segment, then runs this file under pytest with

    SHMFRAME_SEGMENT_PATH=/dev/shm/shmframe.NAME
    SHMFRAME_SEGMENT_EXPECTED='{"x": ..., "img": ..., "id": ..., "s": ...}'

or, without pytest, as a script: `python test_pyarrow_reads_segment.py PATH EXPECTED_JSON`.

Checks: the schema (the tensor column is the canonical `arrow.fixed_shape_tensor` extension
type with its shape), every value, and zero copy: reading allocates nothing from pyarrow's
memory pool and every buffer of every column lies inside the memory map.
"""

import json
import os
import sys

import pyarrow as pa


def _buffers(arr):
    """Every buffer of `arr`, children included (extension arrays: their storage)."""
    if isinstance(arr, pa.ExtensionArray):
        arr = arr.storage
    return [b for b in arr.buffers() if b is not None]


def check(path, expected):
    source = pa.memory_map(path)
    whole = source.read_buffer(source.size())  # zero-copy: its address is the map's
    lo, hi = whole.address, whole.address + whole.size
    source.seek(0)

    before = pa.total_allocated_bytes()
    reader = pa.ipc.open_file(source)
    table = reader.read_all()
    grew = pa.total_allocated_bytes() - before
    assert grew == 0, f"reading allocated {grew} bytes: not zero-copy"

    # Schema.
    assert table.column_names == ["x", "img", "id", "s"], table.column_names
    x_type = table.schema.field("x").type
    item = pa.field("item", pa.float64(), nullable=False)
    assert x_type == pa.list_(item, expected["x"]["list_size"]), x_type
    img_type = table.schema.field("img").type
    assert isinstance(img_type, pa.FixedShapeTensorType), img_type
    assert img_type.extension_name == "arrow.fixed_shape_tensor"
    assert list(img_type.shape) == expected["img"]["shape"], img_type.shape
    assert img_type.value_type == pa.uint8(), img_type.value_type
    assert table.schema.field("id").type == pa.int32()
    assert table.schema.field("id").nullable
    assert table.schema.field("s").type == pa.string()

    # Values.
    assert table.num_rows == len(expected["id"])
    assert table.column("x").to_pylist() == expected["x"]["rows"]
    tensors = table.column("img").chunk(0).to_numpy_ndarray()
    shape = expected["img"]["shape"]
    assert tensors.shape == (table.num_rows, *shape), tensors.shape
    assert tensors.ravel().tolist() == expected["img"]["values"]
    assert lo <= tensors.ctypes.data < hi, "the numpy tensor view was copied"
    assert table.column("id").to_pylist() == expected["id"]
    assert table.column("s").to_pylist() == expected["s"]

    # Zero copy: every buffer of every column points into the mapping.
    checked = 0
    for column in table.columns:
        for chunk in column.chunks:
            for b in _buffers(chunk):
                assert lo <= b.address and b.address + b.size <= hi, (
                    f"column buffer at {b.address:#x}+{b.size} is outside the map "
                    f"{lo:#x}..{hi:#x}: copied"
                )
                checked += 1
    assert checked >= 7, checked
    return checked


def test_pyarrow_reads_segment():
    path = os.environ.get("SHMFRAME_SEGMENT_PATH")
    expected = os.environ.get("SHMFRAME_SEGMENT_EXPECTED")
    if not path or not expected:
        import pytest

        pytest.skip(
            "needs a segment: run `cargo test -p shmframe-ipc --test tests pyarrow`, "
            "which writes one and runs this file"
        )
    check(path, json.loads(expected))


if __name__ == "__main__":
    n = check(sys.argv[1], json.loads(sys.argv[2]))
    print(f"ok: schema, values and {n} zero-copy buffers")
