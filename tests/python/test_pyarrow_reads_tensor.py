"""pyarrow reads the pixels of an image job: the `--tensor-out` Arrow file of `shmframe
resize`, and the job's live output segment in /dev/shm, in place.

Driven by `engine/tests/images.rs` (`cargo test -p shmframe-cli --test images -- pyarrow`), which
resizes the same images in process (keeping the output frames alive) and through the command,
then runs this file under pytest with

    SHMFRAME_TENSOR_FILE=/tmp/.../tensor.arrow          (shmframe resize --tensor-out)
    SHMFRAME_TENSOR_SEGMENT=/dev/shm/shmframe.…         (live output frame, one failed row)
    SHMFRAME_TENSOR_GOOD_SEGMENT=/dev/shm/shmframe.…    (live output frame, no failed row)
    SHMFRAME_TENSOR_EXPECTED_NPY=/tmp/.../expected.npy  (uint8 [N, H*W*C] Rust produced)
    SHMFRAME_TENSOR_GOOD_NPY=/tmp/.../expected_good.npy
    SHMFRAME_TENSOR_EXPECTED='{"shape": [H, W, C], "paths": [...], "null_rows": [...],
                               "flat_row": R, "flat_colour": [r, g, b], "sources": [...]}'

Checks: the `image` column is the canonical `arrow.fixed_shape_tensor` extension type with
shape [H, W, C] (as pyarrow's type, and as raw field metadata `ARROW:extension:name` /
`ARROW:extension:metadata` seen with the type unregistered), the null rows are the failed images, the
pixels are numpy views of the mapped bytes (no copy) equal to what Rust produced, and a
flat-colour image is that colour.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest


def _env(name):
    v = os.environ.get(name)
    if not v:
        pytest.skip(
            f"{name} unset: run `cargo test -p shmframe-cli --test images -- pyarrow`, which makes "
            "the frames and runs this file"
        )
    return v


def _expected():
    return json.loads(_env("SHMFRAME_TENSOR_EXPECTED"))


def _open(path):
    """The table and the address range of its memory map."""
    source = pa.memory_map(path)
    whole = source.read_buffer(source.size())  # zero-copy: its address is the map's
    lo, hi = whole.address, whole.address + whole.size
    source.seek(0)
    reader = pa.ipc.open_file(source)
    before = pa.total_allocated_bytes()
    table = reader.read_all()
    grew = pa.total_allocated_bytes() - before
    assert grew == 0, f"reading {path} allocated {grew} bytes: not zero-copy"
    return reader.schema, table, (lo, hi)


def _check_schema(schema, table, exp):
    """The tensor column is pyarrow's canonical extension type with shape [H, W, C]."""
    shape = exp["shape"]
    assert table.column_names == ["path", "image", "source_width", "source_height"]
    t = schema.field("image").type
    assert isinstance(t, pa.FixedShapeTensorType), t
    assert t.extension_name == "arrow.fixed_shape_tensor"
    assert list(t.shape) == shape, t.shape
    assert t.value_type == pa.uint8()
    assert t.dim_names is None and t.permutation is None
    assert t.storage_type.list_size == int(np.prod(shape)), t.storage_type
    assert schema.field("source_width").type == pa.uint32()


_RAW_METADATA = """
import json, sys
import pyarrow as pa
pa.unregister_extension_type("arrow.fixed_shape_tensor")
f = pa.ipc.open_file(pa.memory_map(sys.argv[1])).schema.field("image")
md = {k.decode(): v.decode() for k, v in (f.metadata or {}).items()}
print(json.dumps({"type": str(f.type), "metadata": md}))
"""


def _raw_field(path):
    """The image field as a reader that does not know the extension type sees it: storage type
    and field metadata. In a child process: unregistering the type is global."""
    out = subprocess.run(
        [sys.executable, "-c", _RAW_METADATA, path], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout)


def _check_raw_metadata(path, exp):
    raw = _raw_field(path)
    n = int(np.prod(exp["shape"]))
    assert raw["type"] in (
        f"fixed_size_list<item: uint8 not null>[{n}]",
        f"fixed_size_list<item: uint8>[{n}]",
    ), raw
    assert raw["metadata"]["ARROW:extension:name"] == "arrow.fixed_shape_tensor", raw
    assert json.loads(raw["metadata"]["ARROW:extension:metadata"]) == {"shape": exp["shape"]}, raw


def _load_expected(path, exp):
    """Rust's pixels: a [images, H*W*C] uint8 .npy, as [images, H, W, C]."""
    want = np.load(path)
    assert want.dtype == np.uint8 and want.shape[1] == int(np.prod(exp["shape"])), want.shape
    return want.reshape((want.shape[0], *exp["shape"]))


def _pixels_zero_copy(chunk, n, shape, lo, hi):
    """The chunk's pixels as an [n, H, W, C] numpy view of the mapped bytes."""
    flat = chunk.storage.values  # the FixedSizeList's child uint8 array
    start = chunk.storage.offset * int(np.prod(shape))
    arr = flat.to_numpy(zero_copy_only=True)[start : start + n * int(np.prod(shape))]
    pixels = arr.reshape((n, *shape))
    assert lo <= pixels.ctypes.data < hi, "the numpy view is not inside the memory map"
    assert not pixels.flags.owndata
    return pixels


def _check_frame(path, expected_npy, exp, null_rows):
    schema, table, (lo, hi) = _open(path)
    _check_schema(schema, table, exp)
    _check_raw_metadata(path, exp)
    n = table.num_rows
    assert table.column("image").num_chunks == 1
    chunk = table.column("image").chunk(0)
    assert chunk.null_count == len(null_rows), chunk.null_count
    assert [i for i in range(n) if not chunk[i].is_valid] == null_rows
    want = _load_expected(expected_npy, exp)
    assert want.shape[0] == n, want.shape
    got = _pixels_zero_copy(chunk, n, exp["shape"], lo, hi)
    valid = [i for i in range(n) if i not in null_rows]
    assert np.array_equal(got[valid], want[valid]), "pixels differ from what Rust produced"
    return table, got, (lo, hi)


def test_tensor_file_from_the_command():
    exp = _expected()
    table, got, _ = _check_frame(
        _env("SHMFRAME_TENSOR_FILE"), _env("SHMFRAME_TENSOR_EXPECTED_NPY"), exp, exp["null_rows"]
    )
    assert table.column("path").to_pylist() == exp["paths"]
    sources = list(zip(table.column("source_width").to_pylist(), table.column("source_height").to_pylist()))
    assert [list(s) for s in sources] == exp["sources"], sources
    # The flat-colour image is that colour where the image lies (contain pads the rest).
    flat = got[exp["flat_row"]]
    inner = flat[flat.any(axis=2)]
    assert inner.shape[0] > 0
    assert np.abs(inner.astype(int) - np.array(exp["flat_colour"])).max() <= 1, inner[:3]


def test_live_segment_with_a_failed_row():
    exp = _expected()
    path = _env("SHMFRAME_TENSOR_SEGMENT")
    assert path.startswith("/dev/shm/shmframe."), path
    table, got, _ = _check_frame(path, _env("SHMFRAME_TENSOR_EXPECTED_NPY"), exp, exp["null_rows"])
    assert table.column("path").to_pylist() == exp["paths"]
    # The failed row: null, and reported with no source size.
    for r in exp["null_rows"]:
        assert table.column("source_width")[r].as_py() == 0


def test_live_segment_to_numpy_ndarray():
    exp = _expected()
    path = _env("SHMFRAME_TENSOR_GOOD_SEGMENT")
    schema, table, (lo, hi) = _open(path)
    _check_schema(schema, table, exp)
    chunk = table.column("image").chunk(0)
    assert chunk.null_count == 0
    nd = chunk.to_numpy_ndarray()  # the canonical tensor conversion, zero-copy
    assert nd.dtype == np.uint8 and nd.shape == (table.num_rows, *exp["shape"]), nd.shape
    assert lo <= nd.ctypes.data < hi, "to_numpy_ndarray copied"
    want = _load_expected(_env("SHMFRAME_TENSOR_GOOD_NPY"), exp)
    assert np.array_equal(nd, want)
