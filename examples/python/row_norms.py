"""Row L2 norms of a large numpy array: the multiprocessing way, then shmframe, in one run.

The multiprocessing way is the usual recipe: copy the array into a ``shared_memory`` block,
hand each ``Pool`` worker a range of rows by name, collect the partial results. shmframe's
``engine.run(kernel, x)`` does the same job, but for a one-off call on an ordinary array it
first asks whether its pool can win: copying the array into shared memory costs more than the
kernel itself unless the machine has many cores and huge pages, so on a small machine it
computes in this process (the workers' own code, same results). Sending it to the workers
anyway (``engine.frame(x)``: a copy by several threads) is timed too; the pool wins once the
data is in shared memory: a frame used again, or an array produced there (``engine.empty``).

Run: ``python examples/python/row_norms.py [ROWS] [COLS] [WORKERS]`` (default 4,000,000 x 32,
about 1 GiB, and 2 workers). Prints each way's time for a fresh array (everything included),
for a warm call, and for an array produced in shared memory (``engine.empty``), and checks
that the results agree.
"""

import sys
import time
from multiprocessing import Pool, resource_tracker, shared_memory

import numpy as np

import shmframe


def _norms(args):
    name, shape, lo, hi = args
    shm = shared_memory.SharedMemory(name=name)
    # Python before 3.13 registers an attached block with the resource tracker as if this
    # process had made it (cpython#82300): unregister, or the tracker warns at the unlink.
    resource_tracker.unregister(shm._name, "shared_memory")
    try:
        x = np.ndarray(shape, dtype=np.float64, buffer=shm.buf)
        return lo, np.sqrt(np.einsum("ij,ij->i", x[lo:hi], x[lo:hi]))
    finally:
        del x
        shm.close()


def with_multiprocessing(pool, x, workers):
    """Copy into shared memory, then norms of row ranges in the pool."""
    shm = shared_memory.SharedMemory(create=True, size=x.nbytes)
    try:
        view = np.ndarray(x.shape, dtype=x.dtype, buffer=shm.buf)
        view[:] = x
        del view
        bounds = np.linspace(0, len(x), workers * 4 + 1, dtype=int)
        tasks = [(shm.name, x.shape, lo, hi) for lo, hi in zip(bounds, bounds[1:], strict=False)]
        out = np.empty(len(x))
        for lo, part in pool.imap_unordered(_norms, tasks):
            out[lo : lo + len(part)] = part
        return out
    finally:
        shm.close()
        shm.unlink()


def main():
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 4_000_000
    cols = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    x = np.random.default_rng(0).standard_normal((rows, cols))
    print(f"{rows} x {cols} float64 ({x.nbytes / 2**30:.2f} GiB), {workers} workers")
    with Pool(workers) as pool, shmframe.Engine(workers=workers) as engine:
        t = time.perf_counter()
        a = with_multiprocessing(pool, x, workers)
        t_mp = time.perf_counter() - t
        t = time.perf_counter()
        b = engine.run("l2-norm", x)  # inline unless engine.pool_can_win(x.nbytes)
        where = "the pool" if engine.pool_can_win(x.nbytes) else "inline here"
        t_sf = time.perf_counter() - t
        t = time.perf_counter()
        frame = engine.frame(x)  # to the workers: one copy into shared memory
        engine.run("l2-norm", frame)
        t_sf_pool = time.perf_counter() - t
        t = time.perf_counter()
        engine.run("l2-norm", frame)  # already in shared memory: the warm case
        t_sf_warm = time.perf_counter() - t
        # Data produced straight into shared memory is never copied: engine.empty gives the
        # array to fill (here a copy stands for whatever produces the data).
        born = engine.empty(x.shape)
        np.copyto(born, x)
        t = time.perf_counter()
        c = engine.run("l2-norm", born)
        t_sf_born = time.perf_counter() - t
    assert np.allclose(a, b, rtol=1e-12) and np.array_equal(b, c)
    print(f"multiprocessing (shared_memory + Pool), array to norms: {t_mp:8.3f} s")
    print(f"{f'shmframe, array to norms ({where}):':56s}{t_sf:8.3f} s")
    print(f"shmframe, array copied to the workers, then norms:      {t_sf_pool:8.3f} s")
    print(f"shmframe, frame already in shared memory:               {t_sf_warm:8.3f} s")
    print(f"shmframe, array born in shared memory (engine.empty):   {t_sf_born:8.3f} s")
    print(f"speed-up, array to norms: {t_mp / t_sf:.2f}x")


if __name__ == "__main__":
    main()
