"""Interoperability check of shmframe's .npy reader and writer against real numpy.

Run by the `npy::tests::interoperates_with_real_numpy` unit test (engine/src/npy/tests.rs):

    python npy_numpy.py write DIR   # numpy writes np_*.npy and bad_*.npy files into DIR
    python npy_numpy.py check DIR   # numpy loads the rs_*.npy files shmframe wrote into DIR

Element i (flat, C order) of every test array is a fixed formula of i, the same in
npy/, so each side checks the other's values without exchanging them.
"""

import sys
from pathlib import Path

import numpy as np

DTYPES = {"f32": "<f4", "f64": "<f8", "i32": "<i4", "i64": "<i8", "u8": "|u1"}
SHAPES = {"10": (10,), "5x3": (5, 3), "0": (0,), "0x3": (0, 3)}


def values(dtype, shape):
    """The test array: element i is i*0.5-3 (floats), i*7-100 (ints), i%251 (u8)."""
    dtype = np.dtype(dtype)
    i = np.arange(int(np.prod(shape)), dtype=np.int64)
    if dtype.kind == "f":
        v = i * 0.5 - 3.0
    elif dtype.kind == "u":
        v = i % 251
    else:
        v = i * 7 - 100
    return v.astype(dtype).reshape(shape)


def write_old_style(path, array, align=16):
    """A version 1.0 file padded like numpy < 1.14: data offset a multiple of 16 only."""
    header = f"{{'descr': {array.dtype.str!r}, 'fortran_order': False, 'shape': {array.shape!r}, }}"
    total = 10 + len(header) + 1
    total += -total % align
    if total % 64 == 0:  # make sure the offset is not 64-aligned by accident
        total += align
    dict_len = total - 10
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + dict_len.to_bytes(2, "little"))
        f.write(header.ljust(dict_len - 1).encode("latin1") + b"\n")
        f.write(np.ascontiguousarray(array).tobytes())


def write(d):
    for name, descr in DTYPES.items():
        for sname, shape in SHAPES.items():
            np.save(d / f"np_{name}_{sname}.npy", values(descr, shape))
    a = values("<f8", (6, 2))
    for version in [(2, 0), (3, 0)]:
        with open(d / f"np_f64_v{version[0]}.npy", "wb") as f:
            np.lib.format.write_array(f, a, version=version)
    write_old_style(d / "np_f64_old16.npy", a)
    np.save(d / "bad_fortran.npy", np.asfortranarray(values("<f8", (3, 4))))
    np.save(d / "bad_bigendian.npy", values(">f8", (4,)))
    np.save(d / "bad_object.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
    np.save(d / "bad_0d.npy", np.array(3.0))
    np.save(d / "bad_3d.npy", np.zeros((2, 2, 2)))
    np.save(d / "bad_f16.npy", np.zeros(3, dtype=np.float16))
    np.save(d / "bad_structured.npy", np.zeros(3, dtype=[("a", "<f8"), ("b", "<i4")]))
    # What numpy itself says about alignment, for the record.
    with open(d / "np_f64_10.npy", "rb") as f:
        np.lib.format.read_magic(f)
        np.lib.format.read_array_header_1_0(f)
        print(
            f"numpy {np.__version__}: data offset {f.tell()} (ARRAY_ALIGN {np.lib.format.ARRAY_ALIGN})"
        )


def check(d):
    n = 0
    for name, descr in DTYPES.items():
        for sname, shape in SHAPES.items():
            path = d / f"rs_{name}_{sname}.npy"
            want = values(descr, shape)
            got = np.load(path)
            assert got.dtype == want.dtype, (path, got.dtype, want.dtype)
            assert got.shape == want.shape, (path, got.shape, want.shape)
            assert np.array_equal(got, want), (path, got, want)
            mapped = np.load(path, mmap_mode="r")
            assert np.array_equal(mapped, want), path
            with open(path, "rb") as f:
                version = np.lib.format.read_magic(f)
                assert version == (1, 0), (path, version)
                shape_, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                assert not fortran and shape_ == shape and dtype == want.dtype, path
                assert f.tell() % 64 == 0, (path, f.tell())
            n += 1
    print(f"numpy {np.__version__} read {n} files written by shmframe")


def main():
    mode, d = sys.argv[1], Path(sys.argv[2])
    {"write": write, "check": check}[mode](d)


if __name__ == "__main__":
    main()
