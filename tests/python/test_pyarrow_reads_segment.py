"""pyarrow opens a segment written by Rust (shmframe-ipc's sample batch) and checks schema,
values and zero copy. Run by ipc/tests/tests.rs::pyarrow_reads_our_segment with the path."""
import sys

import pyarrow as pa


def check(path: str) -> None:
    before = pa.total_allocated_bytes()
    table = pa.ipc.open_file(pa.memory_map(path)).read_all()
    assert pa.total_allocated_bytes() == before, "pyarrow allocated: not zero-copy"
    assert table.column_names == ["x", "img", "id", "s"], table.column_names
    assert table.schema.field("x").type == pa.list_(pa.field("item", pa.float64(), nullable=False), 3)
    img_type = table.schema.field("img").type
    assert isinstance(img_type, pa.FixedShapeTensorType), img_type
    assert img_type.shape == [2, 2, 3] and img_type.value_type == pa.uint8()
    assert table.column("x").to_pylist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]
    tensors = table.column("img").chunk(0).to_numpy_ndarray()
    assert tensors.shape == (3, 2, 2, 3) and int(tensors[2, 1, 1, 2]) == 35
    assert table.column("id").to_pylist() == [7, None, -3]
    assert table.column("s").to_pylist() == ["a", "bé", None]


def test_segment(path: str = "") -> None:  # pytest entry point when a path is given via env
    import os

    p = path or os.environ.get("SHMFRAME_SEGMENT_PATH", "")
    if not p:
        import pytest

        pytest.skip("run from ipc/tests/tests.rs, which writes the segment")
    check(p)


if __name__ == "__main__":
    check(sys.argv[1])
    print("ok")
