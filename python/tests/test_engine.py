import gc
import subprocess
import sys
import time

import numpy as np
import pytest
import shmframe
from conftest import alive, cmdline, mapped_file_at

RNG = np.random.default_rng(7)


def reference(kernel: str, x: np.ndarray, q: np.ndarray | None = None) -> np.ndarray:
    x = x.astype(np.float64)
    return {
        "l1-norm": lambda: np.abs(x).sum(axis=1),
        "l2-norm": lambda: np.linalg.norm(x, axis=1),
        "linf-norm": lambda: np.abs(x).max(axis=1, initial=0.0),
        "sum": lambda: x.sum(axis=1),
        "mean": lambda: x.mean(axis=1),
        "min": lambda: x.min(axis=1),
        "max": lambda: x.max(axis=1),
        "var": lambda: x.var(axis=1),
        "std": lambda: x.std(axis=1),
        "dot": lambda: x @ q,
        "cosine": lambda: (x @ q) / (np.linalg.norm(x, axis=1) * np.linalg.norm(q)),
        "normalize": lambda: x / np.linalg.norm(x, axis=1)[:, None],
    }[kernel]()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kernel", shmframe.KERNELS)
def test_every_kernel_matches_numpy(engine, kernel, dtype):
    x = RNG.standard_normal((3001, 17)).astype(dtype)
    q = RNG.standard_normal(17) if kernel in ("dot", "cosine") else None
    got = engine.run(kernel, x, query=q)
    want = reference(kernel, x, q)
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("rows", [0, 1])
def test_zero_and_one_row(engine, rows):
    x = RNG.standard_normal((rows, 5))
    got = engine.run("l2-norm", x)
    assert got.shape == (rows,)
    np.testing.assert_allclose(got, np.linalg.norm(x, axis=1))


def test_results_are_read_only_views_that_keep_their_segment(engine, segdir):
    x = RNG.standard_normal((1000, 8))
    n = engine.run("l2-norm", x, inline=False)
    assert not n.flags.writeable
    with pytest.raises(ValueError):
        n[0] = 1.0
    with pytest.raises(ValueError):
        n.flags.writeable = True
    # The view's base holds the output frame, whose segment is in the segment directory.
    frame = n.base.frame
    assert isinstance(frame, shmframe.Frame)
    assert frame.path.startswith(str(segdir))
    segment = frame.path
    del frame
    # Zero copy: the array's memory lies inside this process's mapping of that segment.
    assert mapped_file_at(n.__array_interface__["data"][0]) == segment
    assert (segdir / segment.rsplit("/", 1)[-1]).exists()
    engine.close()
    # The result outlives its engine...
    np.testing.assert_allclose(n, np.linalg.norm(x, axis=1))
    # ...and its segment goes with the last reference.
    del n
    gc.collect()
    assert not any(p.name == segment.rsplit("/", 1)[-1] for p in segdir.iterdir())


def test_non_contiguous_and_fortran_inputs_are_converted(engine):
    x = RNG.standard_normal((500, 12))
    for arr in (x[:, ::2], np.asfortranarray(x), x[::3]):
        np.testing.assert_allclose(engine.run("sum", arr), arr.sum(axis=1), rtol=1e-12)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((2, 3, 4)), "expected a 2-D array"),
        (np.zeros(5), "expected a 2-D array"),
        (np.zeros((4, 3), dtype=np.int64), "expected dtype float32 or float64, got int64"),
        (np.zeros((4, 0)), "at least one column"),
        ([[1.0, 2.0]], "expected a numpy array"),
    ],
)
def test_bad_inputs_are_value_errors_naming_the_problem(engine, bad, message):
    with pytest.raises(ValueError, match=message) as info:
        engine.run("l2-norm", bad)
    assert isinstance(info.value, shmframe.InvalidInput)
    assert isinstance(info.value, shmframe.Error)


def test_unknown_kernel_and_wrong_query(engine):
    x = RNG.standard_normal((10, 3))
    with pytest.raises(shmframe.InvalidInput, match="unknown kernel 'l3-norm'"):
        engine.run("l3-norm", x)
    with pytest.raises(ValueError, match="query"):
        engine.run("dot", x, query=[1.0, 2.0])


def test_missing_file_is_not_found(engine, tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        engine.frame(tmp_path / "nope.npy")
    assert isinstance(info.value, shmframe.NotFound)


def test_files_go_through_the_loaders(engine, tmp_path):
    x = RNG.standard_normal((300, 6))
    np.save(tmp_path / "x.npy", x)
    np.testing.assert_allclose(engine.run("l1-norm", tmp_path / "x.npy"), np.abs(x).sum(axis=1))


def test_workers_are_fresh_interpreters_not_forks(engine):
    pids = engine.worker_pids()
    assert len(pids) == 2
    for pid in pids:
        argv = cmdline(pid)
        assert argv[0] == sys.executable and argv[1:3] == ["-I", "-S"], argv


def test_closing_stops_the_workers(segdir):
    e = shmframe.Engine(workers=2, segment_dir=segdir)
    pids = e.worker_pids()
    e.close()
    e.close()  # idempotent
    assert e.closed
    deadline = time.monotonic() + 5
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(alive(p) for p in pids)
    assert list(segdir.iterdir()) == []
    with pytest.raises(RuntimeError, match="closed"):
        e.worker_pids()


def test_an_engine_let_go_at_exit_leaves_nothing(segdir):
    # A child interpreter makes an engine and a result and exits without closing anything.
    code = (
        "import numpy as np, shmframe, sys\n"
        f"e = shmframe.Engine(workers=2, segment_dir={str(segdir)!r})\n"
        "n = e.run('sum', np.ones((100, 4)))\n"
        "print(' '.join(map(str, e.worker_pids())))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    pids = [int(p) for p in out.stdout.split()]
    deadline = time.monotonic() + 5
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(alive(p) for p in pids)
    assert list(segdir.iterdir()) == []


def test_error_hierarchy_derives_from_the_builtins():
    assert issubclass(shmframe.Timeout, TimeoutError)
    assert issubclass(shmframe.SegmentSpace, MemoryError)
    assert issubclass(shmframe.SegmentSpace, OSError)
    assert issubclass(shmframe.WorkerDied, RuntimeError)
    for cls in (shmframe.Timeout, shmframe.SegmentSpace, shmframe.WorkerDied, shmframe.NotFound):
        assert issubclass(cls, shmframe.Error)
    assert shmframe.Engine.__doc__ and shmframe.Engine.run.__doc__


def test_submit_returns_futures_that_overlap_with_python_work(engine):
    import concurrent.futures

    xs = [RNG.standard_normal((20_000, 16)) for _ in range(4)]
    futures = [engine.submit("l2-norm", x) for x in xs]
    assert all(isinstance(f, concurrent.futures.Future) for f in futures)
    busy = sum(i * i for i in range(10_000))  # Python work while the jobs run
    for f, x in zip(futures, xs, strict=True):
        np.testing.assert_allclose(f.result(timeout=60), np.linalg.norm(x, axis=1))
    assert busy > 0


def test_threads_sharing_one_engine_each_get_their_own_result(engine):
    import threading

    xs = [RNG.standard_normal((5_000 + 7 * i, 9)) for i in range(6)]
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        for _ in range(5):
            results[i] = engine.run("sum", xs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for i, x in enumerate(xs):
        np.testing.assert_allclose(results[i], x.sum(axis=1), rtol=1e-12)


def test_pyarrow_and_polars_in_and_results_out_without_a_copy(engine):
    pa = pytest.importorskip("pyarrow")
    pl = pytest.importorskip("polars")
    x = RNG.standard_normal((2_000, 8))
    table = pa.table({"x": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), 8)})
    n = engine.run("l2-norm", table)
    np.testing.assert_allclose(n, np.linalg.norm(x, axis=1), rtol=1e-12)
    # A polars frame of plain numeric columns: the kernel runs across them per row.
    df = pl.DataFrame({"a": x[:, 0], "b": x[:, 1], "name": [f"r{i}" for i in range(len(x))]})
    s = engine.run("sum", df)
    np.testing.assert_allclose(s, x[:, 0] + x[:, 1], rtol=1e-12)
    # Out: pyarrow and polars wrap the result's memory, no copy.
    arr = pa.array(n)
    assert arr.buffers()[1].address == n.__array_interface__["data"][0]
    series = pl.from_arrow(arr)
    np.testing.assert_allclose(series.to_numpy(), n)


def test_a_worker_killed_mid_job_still_gives_the_exact_result(engine):
    import os
    import signal
    import threading

    x = RNG.standard_normal((400_000, 16))
    want = np.linalg.norm(x, axis=1)
    frame = engine.frame(x)
    victim = engine.worker_pids()[0]

    def kill_soon() -> None:
        time.sleep(0.002)
        os.kill(victim, signal.SIGKILL)

    killer = threading.Thread(target=kill_soon)
    killer.start()
    got = engine.run("l2-norm", frame, chunk_rows=2_000)
    killer.join()
    np.testing.assert_array_equal(got, engine.run("l2-norm", frame))
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert victim not in engine.worker_pids()  # replaced


def test_a_deadline_raises_timeout_and_the_engine_stays_usable(engine):
    x = RNG.standard_normal((2_000_000, 16))
    frame = engine.frame(x)
    with pytest.raises(TimeoutError) as info:
        engine.run("l2-norm", frame, deadline=1e-6, chunk_rows=64)
    assert isinstance(info.value, shmframe.Timeout)
    np.testing.assert_allclose(engine.run("sum", x[:10]), x[:10].sum(axis=1))


def test_ctrl_c_during_a_long_job_raises_keyboard_interrupt_and_the_pool_goes_on(segdir):
    # In a child interpreter, whose main thread gets the SIGINT as a terminal's Ctrl-C does.
    code = f"""
import os, signal, threading, time, numpy as np, shmframe
x = np.random.default_rng(1).standard_normal((2000, 8))
with shmframe.Engine(workers=2, segment_dir={str(segdir)!r}) as e:
    threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
    t = time.monotonic()
    try:
        e.run("l2-norm", x, chunk_rows=10, _test_chunk_sleep_ms=20, inline=False)  # about 2 s
        print("finished")
    except KeyboardInterrupt:
        print("interrupted after", round(time.monotonic() - t, 3))
    n = e.run("l2-norm", x)
    print("after", bool(np.allclose(n, np.linalg.norm(x, axis=1))), len(e.worker_pids()))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("\n")
    assert lines[0].startswith("interrupted after"), out.stdout
    assert float(lines[0].split()[-1]) < 1.0, out.stdout
    assert lines[1] == "after True 2", out.stdout
    assert list(segdir.iterdir()) == []


def test_os_fork_with_a_live_engine_breaks_neither_side(segdir):
    code = f"""
import os, sys, numpy as np, shmframe
x = np.arange(40.0).reshape(10, 4)
e = shmframe.Engine(workers=2, segment_dir={str(segdir)!r})
n = e.run("sum", x, inline=False)
pid = os.fork()
if pid == 0:
    ok = bool(np.array_equal(n, x.sum(axis=1)))  # the parent's result is readable
    try:
        e.run("sum", x, inline=False)
        ok = False
    except RuntimeError as err:
        ok = ok and "os.fork()" in str(err)
    sys.exit(0 if ok else 1)  # runs the child's finalizers: they must spare the parent
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status))
again = e.run("sum", x, inline=False)
print("parent", bool(np.array_equal(again, x.sum(axis=1))), len(e.worker_pids()))
print("result", bool(np.array_equal(n, x.sum(axis=1))))
e.close()
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:3] == ["child 0", "parent True 2", "result True"], out.stdout
    assert list(segdir.iterdir()) == []
