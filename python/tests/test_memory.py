"""Where the data lives: arrays born in shared memory, inline jobs, workers' private memory,
Arrow objects of every shape."""

import gc
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import shmframe
from conftest import mapped_file_at

RNG = np.random.default_rng(11)


def segments(d) -> set[str]:
    return {p.name for p in d.iterdir() if ".ctl" not in p.name}


def test_empty_is_a_writable_array_in_a_segment_used_without_a_copy(engine, segdir):
    a = engine.empty((5_000, 12))
    assert a.flags.writeable and a.flags.c_contiguous
    assert a.dtype == np.float64 and a.shape == (5_000, 12)
    assert not a.any()  # fresh pages are zeros
    where = mapped_file_at(a.__array_interface__["data"][0])
    assert where is not None and where.startswith(str(segdir))
    x = RNG.standard_normal(a.shape)
    np.copyto(a, x)
    before = segments(segdir)
    frame = engine.frame(a)
    assert segments(segdir) == before  # no new segment: the frame is the array's own
    assert frame.path == where
    np.testing.assert_array_equal(engine.run("l2-norm", a), engine.run("l2-norm", x, inline=False))
    # A later write is what the next job reads.
    a[0] = 0.0
    assert engine.run("l2-norm", frame)[0] == 0.0
    # A slice is not the whole frame: it is copied, and still right.
    np.testing.assert_allclose(engine.run("sum", a[10:20], inline=False), a[10:20].sum(axis=1))


def test_an_empty_array_keeps_its_segment_alive_exactly_as_long_as_it_lives(segdir):
    with shmframe.Engine(workers=1, segment_dir=segdir) as e:
        a = e.empty((100, 3), np.float32)
        assert a.dtype == np.float32
        name = mapped_file_at(a.__array_interface__["data"][0]).rsplit("/", 1)[-1]
    assert name in segments(segdir)  # the engine is closed; the array is still valid
    a[:] = 2.0
    assert a.sum() == 600.0
    del a
    gc.collect()
    assert name not in segments(segdir)


@pytest.mark.parametrize(
    ("shape", "dtype", "message"),
    [
        ((3, 0), np.float64, "cols >= 1"),
        ((3,), np.float64, "expected a shape"),
        ((3, 2), np.int32, "expected dtype float32 or float64, got int32"),
        ((10, 2**31), np.float64, "at most 2147483647 columns"),
        ((2**62, 2**20), np.float64, "too large to address"),
    ],
)
def test_empty_refuses_other_shapes_and_dtypes(engine, shape, dtype, message):
    with pytest.raises(ValueError, match=message):
        engine.empty(shape, dtype)


def test_an_empty_array_larger_than_the_segment_directory_is_a_space_error(engine):
    with pytest.raises(shmframe.SegmentSpace) as info:
        engine.empty((2**40, 8))  # 8 TiB
    assert isinstance(info.value, MemoryError) and "not enough space" in str(info.value)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kernel", shmframe.KERNELS)
def test_inline_jobs_give_the_pools_bits(engine, kernel, dtype):
    x = RNG.standard_normal((3_001, 16)).astype(dtype)
    q = RNG.standard_normal(16) if kernel in ("dot", "cosine") else None
    small = engine.run(kernel, x, query=q)  # below INLINE_BYTES: computed in this process
    pooled = engine.run(kernel, x, query=q, inline=False)
    assert x.nbytes <= shmframe.INLINE_BYTES
    assert small.base is None or not isinstance(small.base, shmframe._shmframe.ColumnView)
    assert not small.flags.writeable
    assert (small.dtype, small.shape) == (pooled.dtype, pooled.shape)
    np.testing.assert_array_equal(small, pooled)


def test_ordinary_arrays_go_to_the_pool_only_when_it_can_win(engine, monkeypatch):
    assert not engine.pool_can_win(shmframe.INLINE_BYTES)
    monkeypatch.setattr("shmframe._engine._cores", lambda: 8)
    # 4 KiB pages: the copy-in alone costs more than computing here, whatever the cores.
    monkeypatch.setattr(engine, "_huge_pages", False)
    assert not engine.pool_can_win(1 << 30)
    # 2 MiB pages: 8 threads copy 1 GiB faster than one core computes on it.
    monkeypatch.setattr(engine, "_huge_pages", True)
    assert engine.pool_can_win(1 << 30)
    assert not engine.pool_can_win(100 << 20)  # 1 thread's share: no
    x = np.ones(((1 << 30) // 8 // 16, 16))
    n = engine.run("l2-norm", x)  # the pool's result: a view of an output segment
    assert isinstance(n.base, shmframe._shmframe.ColumnView)
    monkeypatch.setattr(engine, "_huge_pages", False)
    assert not isinstance(engine.run("l2-norm", x).base, shmframe._shmframe.ColumnView)


def test_inline_refuses_what_the_pool_refuses(engine):
    with pytest.raises(ValueError, match="needs a query"):
        engine.run("dot", np.ones((4, 2)))
    with pytest.raises(ValueError, match="takes no query"):
        engine.run("sum", np.ones((4, 2)), query=[1.0, 2.0])
    with pytest.raises(ValueError):
        engine.run("cosine", np.ones((4, 2)), query=[1.0, 2.0, 3.0])


def private_dirty_kib(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Private_Dirty:"):
                return int(line.split()[1])
    raise AssertionError(f"no Private_Dirty for {pid}")


def test_workers_copy_nothing_their_private_dirty_memory_stays_under_1_percent(engine):
    # 512 MiB of input with few rows, so the output (one float64 per row, written by the
    # workers into a segment only they have mapped, which smaps counts as private) is small.
    rows, cols = 1 << 17, 512
    a = engine.empty((rows, cols))
    a[:] = 1.0
    frame = engine.frame(a)
    engine.run("l2-norm", frame)  # warm: the workers have mapped everything once
    pids = engine.worker_pids()
    before = {p: private_dirty_kib(p) for p in pids}
    peak = dict(before)
    job = engine.submit("l2-norm", frame, chunk_rows=1_024, _test_chunk_sleep_ms=8)
    while not job.done():
        for p in pids:
            peak[p] = max(peak[p], private_dirty_kib(p))
        time.sleep(0.01)
    np.testing.assert_array_equal(job.result(), np.full(rows, np.sqrt(cols)))
    input_kib = a.nbytes // 1024
    for p in pids:
        grown = peak[p] - before[p]
        assert grown < input_kib / 100, (p, before[p], peak[p], input_kib)


def test_arrow_arrays_chunked_arrays_and_series_go_in(engine):
    pa = pytest.importorskip("pyarrow")
    pl = pytest.importorskip("polars")
    x = RNG.standard_normal((300, 4))
    fsl = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), 4)
    want = np.linalg.norm(x, axis=1)
    for obj in (fsl, pa.record_batch({"x": fsl}), pa.chunked_array([fsl[:100], fsl[100:]])):
        np.testing.assert_allclose(engine.run("l2-norm", obj), want, rtol=1e-12)
    np.testing.assert_allclose(engine.run("sum", pa.array(x[:, 0])), x[:, 0])
    np.testing.assert_allclose(engine.run("sum", pl.Series("v", x[:, 1])), x[:, 1])


def test_polars_goes_in_without_pyarrow(segdir):
    code = f"""
import sys
sys.modules["pyarrow"] = None  # any import of pyarrow now fails
import numpy as np, polars as pl, shmframe
df = pl.DataFrame({{"a": [3.0, 0.0], "b": [4.0, 1.0]}})
with shmframe.Engine(workers=1, segment_dir={str(segdir)!r}) as e:
    print(e.run("l2-norm", df).tolist(), e.run("sum", pl.Series([1.0, 2.0])).tolist())
print("pyarrow" in sys.modules and sys.modules["pyarrow"] is not None)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["[5.0, 1.0] [1.0, 2.0]", "False"], out.stdout


def os_threads() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Threads:"))


def test_large_arrays_are_copied_by_several_threads_to_the_same_values(engine):
    # Above the 64 MiB share: the copy into the segment is split over threads.
    x = RNG.standard_normal((600_000, 32))  # 146 MiB
    seen = os_threads()
    frame = engine.frame(x)
    # The copy's threads are joined before it returns; a joined thread may still be counted
    # for a moment while the kernel finishes its exit (fork_worker allows for it too).
    deadline = time.monotonic() + 1.0
    while os_threads() != seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert os_threads() == seen
    np.testing.assert_array_equal(frame.to_numpy(), x)


def test_sweep_stale_removes_only_dead_owners_segments(tmp_path):
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                           capture_output=True, text=True)  # fmt: skip
    dead = int(child.stdout)
    with open("/proc/self/stat") as f:
        me = (os.getpid(), int(f.read().rsplit(")", 1)[1].split()[19]))
    names = {
        "dead": f"shmframe.{dead}.1.7.frame",
        "mine": f"shmframe.{me[0]}.{me[1]}.7.frame",
        "loaded": "shmframe.keepme",
    }
    for n in names.values():
        (tmp_path / n).write_bytes(b"x")
        (tmp_path / n).chmod(0o600)
    assert shmframe.sweep_stale(tmp_path) == [names["dead"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([names["mine"], names["loaded"]])
