#!/usr/bin/env python3
"""shmframe against the usual Python ways of computing row L2 norms on all cores (issue 6).

Run through `benches/compare/run.sh [--quick]`, which sets up the venv and builds shmframe.
Everything is measured in this one run, on the same data and the same cores, with the
methods interleaved (the order rotates every repetition); figures are medians with min-max.
Every result is checked against numpy's answer before its time counts: a wrong answer
ends the run with exit status 1. The tables go to stdout and, for a complete run, into
docs/BENCHMARKS.md with plots under docs/img/ (nothing there is typed by hand).

Fork rule, Python edition: the multiprocessing pools are started first, while this process
still has a single thread (run.sh sets OPENBLAS_NUM_THREADS=1 so numpy starts none); polars,
Ray and the probe's threads come after.
"""

import os

# Before numpy or polars are imported: no BLAS threads in any process, polars on N threads.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
_NCPU = len(os.sched_getaffinity(0))
os.environ.setdefault("POLARS_MAX_THREADS", str(_NCPU))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DISABLE_DOCKER_CPU_WARNING", "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor  # noqa: E402
from multiprocessing import shared_memory  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
# Ray and loky workers import `workers` by name.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(HERE)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
)
import workers as W  # noqa: E402

SHMFRAME = ROOT / "target" / "release" / "shmframe"
DOC = ROOT / "docs" / "BENCHMARKS.md"
IMG = ROOT / "docs" / "img"
MiB = 1 << 20


class WrongAnswer(Exception):
    """A method returned something other than numpy's answer: the run fails."""


# ----------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------

# key, description, (rows, cols) full, (rows, cols) quick, dtype
SHAPES = [
    ("tall", "tall-skinny", (8 << 20, 16), (2 << 20, 16), np.float64),
    ("emb", "embeddings-like", (1 << 20, 128), (256 << 10, 128), np.float32),
    ("small", "small", (10_000, 16), (10_000, 16), np.float64),
]
RTOL = {np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-12}


def config(quick):
    return {
        "reps_large": 5 if quick else 9,
        "reps_small": 15 if quick else 41,
        "warmup": 1,
        "rtt_n": 2000 if quick else 20000,
        "rtt_n_ray": 500 if quick else 3000,
        "start_reps": 5 if quick else 15,
        "start_reps_ray": 2 if quick else 3,
        "mem_sf_runs": 5,
    }


# ----------------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------------


def median(v):
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def pct(v, p):
    s = sorted(v)
    return s[min(len(s) - 1, max(0, round((len(s) - 1) * p)))]


def fmt_time(s):
    if s is None:
        return "n/a"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.3f} s"


def fmt_range(v):
    return f"{fmt_time(min(v))} – {fmt_time(max(v))}"


def fmt_ratio(a, b):
    if a is None or b is None or b <= 0:
        return "n/a"
    r = a / b
    return f"{r:.2f}×" if r < 100 else f"{r:.0f}×"


def row_bounds(rows, parts):
    edges = np.linspace(0, rows, parts + 1).astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def check(name, got, ref):
    got = np.asarray(got)
    if got.shape != ref.shape:
        raise WrongAnswer(f"{name}: result shape {got.shape}, expected {ref.shape}")
    rtol = RTOL[np.dtype(got.dtype)] if got.dtype in RTOL else 1e-12
    if not np.allclose(got.astype(np.float64, copy=False), ref, rtol=rtol, atol=0.0):
        bad = int(np.argmax(np.abs(got - ref) / np.abs(ref)))
        raise WrongAnswer(
            f"{name}: row {bad} is {got[bad]!r}, numpy says {ref[bad]!r} (rtol {rtol})"
        )


def check_blockwise(name, got, x):
    """check() against numpy's answer computed by small blocks: no big temporaries, so the
    memory children's peak is the method's, not the checker's."""
    got = np.asarray(got)
    if got.shape != (x.shape[0],):
        raise WrongAnswer(f"{name}: result shape {got.shape}, expected {(x.shape[0],)}")
    step = max(1, (1 * MiB) // (x.shape[1] * 8))
    for lo in range(0, x.shape[0], step):
        check(name, got[lo : lo + step], reference(x[lo : lo + step]))


def reference(x):
    """numpy's answer, computed in float64 (for f32 input too), by blocks of rows."""
    out = np.empty(x.shape[0], np.float64)
    step = max(1, (64 * MiB) // (x.shape[1] * 8))
    for lo in range(0, x.shape[0], step):
        out[lo : lo + step] = np.linalg.norm(x[lo : lo + step].astype(np.float64), axis=1)
    return out


def make_data(rows, cols, dtype, seed=42):
    return np.random.default_rng(seed).standard_normal((rows, cols), dtype=dtype)


def run_cmd(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


# ----------------------------------------------------------------------------------------------
# Machine and versions
# ----------------------------------------------------------------------------------------------


def machine_info():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
    except OSError:
        pass
    shm = shutil.disk_usage("/dev/shm") if os.path.exists("/dev/shm") else None
    return {
        "cores": os.cpu_count(),
        "affinity": _NCPU,
        "cpu": cpu,
        "memory": mem,
        "dev_shm": f"{shm.total / (1 << 30):.1f} GiB" if shm else "none",
        "kernel": platform.release(),
    }


def versions():
    v = {"python": platform.python_version()}
    for mod in ("numpy", "pyarrow", "joblib", "ray", "polars", "matplotlib", "psutil"):
        try:
            v[mod] = __import__(mod).__version__
        except Exception as e:  # noqa: BLE001 - any import failure means "not available"
            v[mod] = f"not available ({type(e).__name__}: {e})".splitlines()[0][:120]
    for tool in (["rustc", "--version"], ["cargo", "--version"]):
        try:
            v[tool[0]] = run_cmd(tool).stdout.strip()
        except OSError as e:
            v[tool[0]] = f"not available ({e})"
    try:
        head = run_cmd(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]).stdout.strip()
        dirty = run_cmd(["git", "-C", str(ROOT), "status", "--porcelain", "--", "ipc", "engine"])
        v["shmframe"] = head + (" + uncommitted changes" if dirty.stdout.strip() else "")
    except OSError:
        v["shmframe"] = "?"
    return v


# ----------------------------------------------------------------------------------------------
# Peak memory of a process tree: summed PSS, sampled every 10 ms by a thread
# ----------------------------------------------------------------------------------------------


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def descendants(pid):
    """All descendants of `pid`, from /proc/PID/task/TID/children (cheap enough for 10 ms)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except (OSError, ValueError):
                continue
            out += kids
            todo += kids
    return out


class TreeSampler(threading.Thread):
    """Peak of the summed PSS of `pid` and all its descendants (PSS shares each page among
    the processes mapping it, so the sum counts every resident page once)."""

    def __init__(self, pid, interval=0.01):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_kib, self.samples = 0, 0
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            total = sum(pss_kib(p) for p in [self.pid] + descendants(self.pid))
            self.peak_kib = max(self.peak_kib, total)
            self.samples += 1
            self._halt.wait(self.interval)

    def stop(self):
        self._halt.set()
        self.join()


# ----------------------------------------------------------------------------------------------
# The methods. Each: setup(x) untimed, run() -> result (timed), after() untimed, close().
# ----------------------------------------------------------------------------------------------


class Method:
    key = ""
    label = ""
    checked = True  # its result is compared with numpy's
    unavailable = None  # a reason, when the method cannot run here

    def setup(self, x):
        self.x = x

    def run(self):
        raise NotImplementedError

    def after(self):
        pass

    def close(self):
        self.x = None

    def measure(self):
        """Returns (result, {series: seconds}). The default times run() alone."""
        t = time.perf_counter()
        r = self.run()
        return r, {self.key: time.perf_counter() - t}


class Probe(Method):
    """Memory-read bandwidth: np.add.reduce over a float64 buffer of the input's size, on 1
    thread or split over N threads (numpy releases the GIL inside the reduction). A ceiling,
    so each repetition keeps the best of `passes` back-to-back passes, as STREAM does."""

    checked = False
    passes = 3

    def __init__(self, threads, pool):
        self.threads, self.pool = threads, pool
        self.key = f"probe{threads}"
        what = "1 thread" if threads == 1 else f"{threads} threads"
        self.label = f"memory-read probe, {what} (numpy add.reduce)"

    def setup(self, x):
        self.buf = np.full(x.nbytes // 8, 1.0)
        self.parts = np.array_split(self.buf, self.threads)

    def run(self):
        if self.threads == 1:
            return np.add.reduce(self.buf)
        return sum(self.pool.map(np.add.reduce, self.parts))

    def measure(self):
        best = float("inf")
        for _ in range(self.passes):
            t = time.perf_counter()
            self.run()
            best = min(best, time.perf_counter() - t)
        return None, {self.key: best}

    def close(self):
        self.buf = self.parts = None


class NumpyNorm(Method):
    key, label = "np_norm", "numpy `linalg.norm(x, axis=1)`, 1 process"

    def run(self):
        return np.linalg.norm(self.x, axis=1)


class NumpyEinsum(Method):
    key, label = "np_einsum", "numpy `sqrt(einsum('ij,ij->i'))`, 1 process"

    def run(self):
        return np.sqrt(np.einsum("ij,ij->i", self.x, self.x))


class PoolPickle(Method):
    key = "mp_pickle"

    def __init__(self, pool, n):
        self.pool, self.n = pool, n
        self.label = f"multiprocessing `Pool.map`, pickled chunks (warm pool of {n})"

    def setup(self, x):
        self.x = x
        self.bounds = row_bounds(x.shape[0], 4 * self.n)

    def run(self):
        parts = self.pool.map(W.l2, [self.x[a:b] for a, b in self.bounds], chunksize=1)
        return np.concatenate(parts)


class _Shm:
    """A multiprocessing.shared_memory segment with an ndarray view, unlinked on close."""

    def __init__(self, shape, dtype):
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        self.shm = shared_memory.SharedMemory(create=True, size=max(1, nbytes))
        self.arr = np.ndarray(shape, dtype=dtype, buffer=self.shm.buf)

    def close(self):
        self.arr = None
        self.shm.close()
        self.shm.unlink()


class ShmWarm(Method):
    key = "shm_warm"

    def __init__(self, pool, n):
        self.pool, self.n = pool, n
        self.label = "`multiprocessing.shared_memory` + Pool of numpy views (warm)"

    def setup(self, x):
        self.x = x
        self.inp = _Shm(x.shape, x.dtype)
        self.inp.arr[:] = x
        self.out = _Shm((x.shape[0],), x.dtype)
        self.tasks = [
            (self.inp.shm.name, self.out.shm.name, x.shape, x.dtype.str, a, b, True)
            for a, b in row_bounds(x.shape[0], 4 * self.n)
        ]

    def run(self):
        self.pool.starmap(W.shm_l2, self.tasks, chunksize=1)
        return self.out.arr

    def close(self):
        self.inp.close()
        self.out.close()
        self.x = None


class ShmCopyIn(Method):
    key = "shm_copy"

    def __init__(self, pool, n):
        self.pool, self.n = pool, n
        self.label = "`multiprocessing.shared_memory` + Pool, copy-in included"
        self.out = None

    def run(self):
        x = self.x
        inp = _Shm(x.shape, x.dtype)
        inp.arr[:] = x
        self.out = _Shm((x.shape[0],), x.dtype)
        tasks = [
            (inp.shm.name, self.out.shm.name, x.shape, x.dtype.str, a, b, False)
            for a, b in row_bounds(x.shape[0], 4 * self.n)
        ]
        self.pool.starmap(W.shm_l2, tasks, chunksize=1)
        inp.close()
        return self.out.arr

    def after(self):
        if self.out is not None:
            self.out.close()
            self.out = None

    def close(self):
        self.after()
        self.x = None


class Joblib(Method):
    key = "joblib"

    def __init__(self, n):
        self.n = n
        self.label = f"joblib `Parallel(n_jobs={n})` (loky, automatic memmapping)"
        try:
            import joblib  # noqa: F401
        except ImportError as e:
            self.unavailable = f"joblib not installed ({e})"

    def setup(self, x):
        from joblib import Parallel

        self.x = x
        self.bounds = row_bounds(x.shape[0], 4 * self.n)
        # One Parallel kept open: the loky workers and the memmapping folder stay warm.
        self.par = Parallel(n_jobs=self.n, backend="loky")
        self.par.__enter__()

    def run(self):
        from joblib import delayed

        parts = self.par(delayed(W.l2_range)(self.x, a, b) for a, b in self.bounds)
        return np.concatenate(parts)

    def close(self):
        self.par.__exit__(None, None, None)
        self.x = None


class RayWarm(Method):
    key = "ray_warm"

    def __init__(self, ray, n, put_each_time=False):
        self.ray, self.n, self.put_each_time = ray, n, put_each_time
        if put_each_time:
            self.key = "ray_put"
            self.label = "Ray, `ray.put` included, zero-copy reads"
        else:
            self.label = "Ray, `ray.put` once, zero-copy reads (warm)"
        if ray is None:
            self.unavailable = RAY_MISSING[0]
        else:
            self.remote = ray.remote(W.l2_range)

    def setup(self, x):
        self.x = x
        self.bounds = row_bounds(x.shape[0], 4 * self.n)
        self.ref = None if self.put_each_time else self.ray.put(x)

    def run(self):
        ray = self.ray
        ref = ray.put(self.x) if self.put_each_time else self.ref
        parts = ray.get([self.remote.remote(ref, a, b) for a, b in self.bounds])
        out = np.concatenate(parts)
        del parts, ref
        return out

    def close(self):
        self.ref = None
        self.x = None


class Polars(Method):
    key = "polars"
    label = "polars `sum_horizontal(col**2).sqrt()`, one column per matrix column"

    def __init__(self):
        try:
            import polars  # noqa: F401
        except ImportError as e:
            self.unavailable = f"polars not installed ({e})"

    def setup(self, x):
        import polars as pl

        names = [f"c{j}" for j in range(x.shape[1])]
        self.df = pl.DataFrame({n: x[:, j] for j, n in enumerate(names)})
        self.expr = pl.sum_horizontal([pl.col(c) ** 2 for c in names]).sqrt().alias("norm")

    def run(self):
        return self.df.select(self.expr).to_series().to_numpy()

    def close(self):
        self.df = None


class ShmframeCli(Method):
    """The shmframe command end to end on a .npy written once (numpy.save)."""

    key = "sf_job"
    label = "shmframe"

    def __init__(self, n, tmp):
        self.n, self.tmp = n, Path(tmp)
        if not SHMFRAME.exists():
            self.unavailable = f"{SHMFRAME} not built"

    def cmd(self, *extra):
        return [str(SHMFRAME), "run", "l2-norm", "--input", str(self.npy),
                "--workers", str(self.n), "--json", *extra]  # fmt: skip

    def setup(self, x):
        self.x = x
        self.npy = self.tmp / f"x-{x.shape[0]}x{x.shape[1]}-{x.dtype}.npy"
        np.save(self.npy, x)

    def verify(self, ref):
        """One untimed run with --out: its answer against numpy's."""
        out = self.tmp / "out.npy"
        p = run_cmd(self.cmd("--out", str(out)), timeout=600)
        if p.returncode != 0:
            raise WrongAnswer(f"shmframe run failed ({p.returncode}): {p.stderr.strip()}")
        check("shmframe", np.load(out), ref)
        out.unlink()

    def measure(self):
        t = time.perf_counter()
        p = run_cmd(self.cmd(), timeout=600)
        wall = time.perf_counter() - t
        if p.returncode != 0:
            raise WrongAnswer(f"shmframe run failed ({p.returncode}): {p.stderr.strip()}")
        j = json.loads(p.stdout)
        if j["rows"] != self.x.shape[0] or j["cols"] != self.x.shape[1]:
            raise WrongAnswer(f"shmframe saw {j['rows']} x {j['cols']}, input is {self.x.shape}")
        return None, {"sf_job": j["seconds"], "sf_total": j["total_seconds"], "sf_wall": wall}

    def close(self):
        self.x = None
        if getattr(self, "npy", None) is not None and self.npy.exists():
            self.npy.unlink()


SF_LABELS = {
    "sf_job": "**shmframe** job (`seconds` in its JSON)",
    "sf_total": "**shmframe** command (`total_seconds`: pool start, load, job)",
    "sf_wall": "**shmframe** subprocess wall time (exec to exit)",
}

RAY_MISSING = ["Ray not initialised"]


def start_ray(n):
    """ray.init on loopback only; returns the module or None (RAY_MISSING says why)."""
    try:
        import ray
    except Exception as e:  # noqa: BLE001
        RAY_MISSING[0] = f"Ray cannot be imported here ({type(e).__name__}: {e})"
        return None
    try:
        ray.init(
            num_cpus=n,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            log_to_driver=False,
            configure_logging=False,
        )
    except Exception as e:  # noqa: BLE001
        RAY_MISSING[0] = f"ray.init failed ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
        return None
    return ray


def methods_for(pool, ray, n, tmp, probe_pool):
    return [
        Probe(1, probe_pool),
        Probe(n, probe_pool),
        NumpyNorm(),
        NumpyEinsum(),
        PoolPickle(pool, n),
        ShmCopyIn(pool, n),
        ShmWarm(pool, n),
        Joblib(n),
        RayWarm(ray, n),
        RayWarm(ray, n, put_each_time=True),
        Polars(),
        ShmframeCli(n, tmp),
    ]


# ----------------------------------------------------------------------------------------------
# Row L2 norms: one shape, all methods interleaved
# ----------------------------------------------------------------------------------------------


def bench_shape(spec, quick, cfg, methods, log):
    key, desc, full, small, dtype = spec
    rows, cols = small if quick else full
    reps = cfg["reps_small"] if rows * cols < (1 << 22) else cfg["reps_large"]
    log(f"== {desc} {rows} x {cols} {np.dtype(dtype).name}: generating, {reps} reps")
    x = make_data(rows, cols, dtype)
    ref = reference(x)
    live = [m for m in methods if not m.unavailable]
    for m in live:
        t = time.perf_counter()
        m.setup(x)
        log(f"   setup {m.key}: {time.perf_counter() - t:.2f} s")
    times = {}
    try:
        for m in live:
            if isinstance(m, ShmframeCli):
                m.verify(ref)
        for rep in range(cfg["warmup"] + reps):
            k = rep % len(live)
            for m in live[k:] + live[:k]:  # rotate the order every repetition
                r, t = m.measure()
                if m.checked and r is not None:
                    check(m.label, r, ref)
                m.after()
                if rep >= cfg["warmup"]:
                    for s, v in t.items():
                        times.setdefault(s, []).append(v)
                if cfg.get("verbose"):
                    log("      " + ", ".join(f"{s} {fmt_time(v)}" for s, v in t.items()))
            log(f"   rep {rep + 1 - cfg['warmup']}/{reps} done")
    finally:
        for m in live:
            try:
                m.close()
            except Exception:  # noqa: BLE001 - cleanup of one must not hide another's error
                traceback.print_exc()
        del x
        gc.collect()
    return {
        "key": key,
        "desc": desc,
        "rows": rows,
        "cols": cols,
        "dtype": np.dtype(dtype).name,
        "nbytes": rows * cols * np.dtype(dtype).itemsize,
        "reps": reps,
        "times": times,
    }


# ----------------------------------------------------------------------------------------------
# Pools: empty-task round trip and start time
# ----------------------------------------------------------------------------------------------


def pool_start_times(ctx, n, reps):
    """Constructor called until every worker ran its initializer."""
    out = {"mp_pool": [], "ppe": []}
    for _ in range(reps):
        q = ctx.SimpleQueue()
        t = time.perf_counter()
        p = ctx.Pool(n, initializer=W.report_ready, initargs=(q,))
        for _ in range(n):
            q.get()
        out["mp_pool"].append(time.perf_counter() - t)
        p.terminate()
        p.join()
        t = time.perf_counter()
        ex = ProcessPoolExecutor(n, mp_context=ctx, initializer=W.report_ready, initargs=(q,))
        futs = [ex.submit(W.noop) for _ in range(n)]
        for _ in range(n):
            q.get()
        out["ppe"].append(time.perf_counter() - t)
        for f in futs:
            f.result()
        ex.shutdown()
        q.close()
    return out


def ray_start_times(n, reps, log):
    out = []
    for i in range(reps):
        p = run_cmd(
            [sys.executable, __file__, "--child", "ray-start", "--workers", str(n)], timeout=300
        )
        m = re.search(r"RAY_START ([0-9.eE+-]+)", p.stdout)
        if p.returncode != 0 or not m:
            log(f"   ray start child failed: {p.stderr.strip()[-500:]}")
            return None
        out.append(float(m.group(1)))
        log(f"   ray start {i + 1}/{reps}: {out[-1]:.2f} s")
    return out


def child_ray_start(n):
    t = time.perf_counter()
    ray = start_ray(n)
    if ray is None:
        print(RAY_MISSING[0], file=sys.stderr)
        sys.exit(3)
    noop = ray.remote(W.noop)
    ray.get([noop.remote() for _ in range(n)])
    print(f"RAY_START {time.perf_counter() - t}")
    ray.shutdown()


def round_trips(pool, ppe, ray, cfg, log):
    out = {}

    def timed(fn, n):
        for _ in range(min(200, n)):
            fn()
        v = []
        for _ in range(n):
            t = time.perf_counter()
            fn()
            v.append(time.perf_counter() - t)
        return v

    out["mp_pool"] = timed(lambda: pool.apply(W.noop), cfg["rtt_n"])
    log(f"   Pool.apply: {fmt_time(median(out['mp_pool']))}")
    out["ppe"] = timed(lambda: ppe.submit(W.noop).result(), cfg["rtt_n"])
    log(f"   ProcessPoolExecutor: {fmt_time(median(out['ppe']))}")
    if ray is not None:
        noop = ray.remote(W.noop)
        out["ray"] = timed(lambda: ray.get(noop.remote()), cfg["rtt_n_ray"])
        log(f"   Ray: {fmt_time(median(out['ray']))}")
    return out


# ----------------------------------------------------------------------------------------------
# shmframe's own numbers: `cargo bench -p shmframe --bench pool -- --quick`
# ----------------------------------------------------------------------------------------------


def _parse_time(s):
    m = re.match(r"\s*([0-9.]+)\s*(us|µs|ms|s|ns)\s*$", s)
    if not m:
        return None
    return float(m.group(1)) * {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}[m.group(2)]


def cargo_bench(log):
    log("== cargo bench -p shmframe --bench pool -- --quick")
    p = run_cmd(
        ["cargo", "bench", "--quiet", "-p", "shmframe", "--bench", "pool", "--", "--quick"],
        cwd=ROOT,
        timeout=1200,
    )
    res = {"ok": p.returncode == 0, "stdout": p.stdout, "stderr": p.stderr[-2000:]}
    for line in p.stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3:
            continue
        if cells[0].startswith("empty-job round trip"):
            res["rtt_median"], res["rtt_p99"] = _parse_time(cells[1]), _parse_time(cells[2])
        elif cells[0].startswith("pool start"):
            res["start_median"], res["start_p99"] = _parse_time(cells[1]), _parse_time(cells[2])
        elif cells[0].startswith("read-bandwidth probe"):
            res.setdefault("probes", []).append((cells[0], cells[2]))
    if not res["ok"] or "rtt_median" not in res or "start_median" not in res:
        log(f"   cargo bench failed or its table changed:\n{p.stdout[-1500:]}\n{p.stderr[-1500:]}")
        res["ok"] = False
    return res


# ----------------------------------------------------------------------------------------------
# Peak memory on the largest shape: each method alone in a child process tree
# ----------------------------------------------------------------------------------------------

MEM_METHODS = [
    ("baseline", "python + numpy with the matrix loaded, no work (reference)"),
    ("np_norm", NumpyNorm.label),
    ("np_einsum", NumpyEinsum.label),
    ("mp_pickle", "multiprocessing `Pool.map`, pickled chunks"),
    ("shm_copy", "`multiprocessing.shared_memory` + Pool, copy-in included"),
    ("shm_warm", "`multiprocessing.shared_memory` + Pool of numpy views (warm)"),
    ("joblib", "joblib `Parallel` (loky, automatic memmapping)"),
    ("ray_warm", "Ray, `ray.put` once, zero-copy reads"),
    ("polars", Polars.label),
    ("shmframe", "**shmframe** command (maps the .npy in place)"),
]


def child_mem(key, npy, n):
    """Loads the matrix, sets the method up, runs it twice (checked), exits."""
    x = np.load(npy)
    if key == "baseline":
        time.sleep(0.2)
        return
    ctx = mp.get_context("fork")
    pool = ctx.Pool(n, initializer=W.init_shm_worker) if key in ("mp_pickle", "shm_copy", "shm_warm") else None
    ray = start_ray(n) if key.startswith("ray") else None
    if key.startswith("ray") and ray is None:
        print(RAY_MISSING[0], file=sys.stderr)
        sys.exit(3)
    m = {
        "np_norm": lambda: NumpyNorm(),
        "np_einsum": lambda: NumpyEinsum(),
        "mp_pickle": lambda: PoolPickle(pool, n),
        "shm_copy": lambda: ShmCopyIn(pool, n),
        "shm_warm": lambda: ShmWarm(pool, n),
        "joblib": lambda: Joblib(n),
        "ray_warm": lambda: RayWarm(ray, n),
        "polars": lambda: Polars(),
    }[key]()
    m.setup(x)
    for _ in range(2):
        r = m.run()
        check_blockwise(m.label, r, x)
        del r
        m.after()
    m.close()
    if pool is not None:
        pool.terminate()
        pool.join()
    if ray is not None:
        ray.shutdown()


def peak_memory(npy, n, has_ray, sf_runs, log):
    """Peak PSS of each method's process tree. The shmframe command lives for only a few
    10 ms samples, so it runs `sf_runs` times and the largest peak counts."""
    out = {}
    for key, _ in MEM_METHODS:
        if key == "ray_warm" and not has_ray:
            continue
        if key == "shmframe":
            if not SHMFRAME.exists():
                continue
            cmd = [str(SHMFRAME), "run", "l2-norm", "--input", str(npy), "--workers", str(n), "--json"]
        else:
            cmd = [sys.executable, __file__, "--child", "mem", "--method", key,
                   "--npy", str(npy), "--workers", str(n)]  # fmt: skip
        peak, samples = 0, 0
        for _ in range(sf_runs if key == "shmframe" else 1):
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            sampler = TreeSampler(proc.pid)
            sampler.start()
            try:
                so, se = proc.communicate(timeout=600)
            finally:
                sampler.stop()
            if proc.returncode != 0:
                raise WrongAnswer(f"memory child {key} failed ({proc.returncode}): {se.strip()[-800:]}")
            peak, samples = max(peak, sampler.peak_kib), samples + sampler.samples
        out[key] = (peak * 1024, samples)
        log(f"   {key}: peak {peak / 1024:.0f} MiB ({samples} samples)")
    return out


# ----------------------------------------------------------------------------------------------
# TODO(image issue): image-resize comparisons (Pillow, vipsthumbnail) go here, with their own
# checked answers, once shmframe has its image kernel. No rows until then.
# ----------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------
# Report: markdown tables (stdout and docs/BENCHMARKS.md) and plots (docs/img/)
# ----------------------------------------------------------------------------------------------


def label_of(methods, s):
    if s in SF_LABELS:
        return SF_LABELS[s]
    for m in methods:
        if m.key == s:
            return m.label
    return s


def shape_table(res, methods, n):
    t = res["times"]
    nb = res["nbytes"]
    job = median(t["sf_job"]) if "sf_job" in t else None
    wall = median(t["sf_wall"]) if "sf_wall" in t else None
    lines = [
        f"| method | median | min – max | GB/s | ÷ shmframe job | ÷ shmframe command wall |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    order = [m.key for m in methods] + ["sf_total", "sf_wall"]
    for m in methods:
        if m.unavailable:
            lines.append(f"| {m.label} | unavailable: {m.unavailable} | | | | |")
    for s in order:
        if s not in t:
            continue
        v = t[s]
        md = median(v)
        lines.append(
            f"| {label_of(methods, s)} | {fmt_time(md)} | {fmt_range(v)} | {nb / md / 1e9:.2f} "
            f"| {fmt_ratio(md, job)} | {fmt_ratio(md, wall)} |"
        )
    if job and f"probe{n}" in t:
        pb = median(t[f"probe{n}"])
        p1 = median(t["probe1"])
        lines.append("")
        lines.append(
            f"shmframe's job runs at **{(nb / job) / (nb / pb) * 100:.0f}%** of the {n}-thread "
            f"read bandwidth measured on this shape ({nb / pb / 1e9:.2f} GB/s; "
            f"{(nb / job) / (nb / p1) * 100:.0f}% of the 1-thread figure, {nb / p1 / 1e9:.2f} GB/s)."
        )
    return "\n".join(lines)


def pool_table(rtt, starts, cb, ray_missing, n):
    sf_rtt = cb.get("rtt_median") if cb.get("ok") else None
    sf_start = cb.get("start_median") if cb.get("ok") else None
    lines = [
        "| pool | empty-task round trip: median | min – max | p99 | ÷ shmframe "
        "| pool start: median | min – max | ÷ shmframe |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    names = {
        "mp_pool": f"multiprocessing `Pool({n})`: `pool.apply(noop)`",
        "ppe": f"`ProcessPoolExecutor({n})`: `submit(noop).result()`",
        "ray": f"Ray (`num_cpus={n}`): `ray.get(noop.remote())`; start = `ray.init` + {n} tasks",
    }
    for k, name in names.items():
        if k == "ray" and k not in rtt:
            lines.append(f"| {name} | unavailable: {ray_missing} | | | | | | |")
            continue
        r = rtt[k]
        s = starts.get(k)
        rm = median(r)
        cells = [fmt_time(rm), fmt_range(r), fmt_time(pct(r, 0.99)), fmt_ratio(rm, sf_rtt)]
        if s:
            sm = median(s)
            cells += [fmt_time(sm), fmt_range(s), fmt_ratio(sm, sf_start)]
        else:
            cells += ["n/a", "", ""]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if cb.get("ok"):
        lines.append(
            f"| **shmframe** ({n} workers; from `cargo bench`): empty job "
            f"| {fmt_time(sf_rtt)} | n/a | {fmt_time(cb.get('rtt_p99'))} | 1.00× "
            f"| {fmt_time(sf_start)} | n/a (p99 {fmt_time(cb.get('start_p99'))}) | 1.00× |"
        )
    else:
        why = cb.get("why", "`cargo bench` failed")
        lines.append(f"| **shmframe** | unavailable: {why} | | | | | | |")
    return "\n".join(lines)


def mem_table(mem, nbytes):
    sf = mem["shmframe"][0] if "shmframe" in mem else None
    lines = [
        "| method | peak PSS of the process tree | ÷ input size | ÷ shmframe | samples |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, name in MEM_METHODS:
        if key not in mem:
            continue
        v, samples = mem[key]
        lines.append(
            f"| {name} | {v / MiB:.0f} MiB | {v / nbytes:.2f} | {fmt_ratio(v, sf)} | {samples} |"
        )
    return "\n".join(lines)


def plots(shapes, methods_by_shape, rtt, cb, n):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401 - used through matplotlib.ticker

    IMG.mkdir(parents=True, exist_ok=True)
    files = {}
    short = {
        "probe1": "probe, 1 thread",
        f"probe{n}": f"probe, {n} threads",
        "np_norm": "numpy linalg.norm",
        "np_einsum": "numpy einsum",
        "mp_pickle": "Pool.map, pickled",
        "shm_copy": "shared_memory, copy-in",
        "shm_warm": "shared_memory, warm",
        "joblib": "joblib loky",
        "ray_warm": "Ray, warm",
        "ray_put": "Ray, put included",
        "polars": "polars",
        "sf_job": "shmframe job",
        "sf_total": "shmframe command",
        "sf_wall": "shmframe subprocess",
    }
    for res in shapes:
        t, nb = res["times"], res["nbytes"]
        keys = [k for k in short if k in t]
        med = [nb / median(t[k]) / 1e9 for k in keys]
        lo = [m - nb / max(t[k]) / 1e9 for m, k in zip(med, keys)]
        hi = [nb / min(t[k]) / 1e9 - m for m, k in zip(med, keys)]
        colors = [
            "#999999" if k.startswith("probe") else "#d62728" if k.startswith("sf_") else "#1f77b4"
            for k in keys
        ]
        fig, ax = plt.subplots(figsize=(6.4, 0.28 * len(keys) + 1.1), dpi=100)
        y = np.arange(len(keys))[::-1]
        ax.barh(y, med, xerr=[lo, hi], color=colors, capsize=2)
        ax.set_yticks(y, [short[k] for k in keys], fontsize=8)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel("GB/s of input (log scale; median, bars: min–max)", fontsize=8)
        ax.set_title(
            f"Row L2 norms, {res['desc']} {res['rows']:,} x {res['cols']} {res['dtype']}, {n} cores",
            fontsize=9,
        )
        ax.tick_params(axis="x", labelsize=8)
        fig.tight_layout()
        f = IMG / f"compare-throughput-{res['key']}.png"
        fig.savefig(f)
        plt.close(fig)
        files[res["key"]] = f
    fig, ax = plt.subplots(figsize=(6.4, 2.8), dpi=100)
    names = {"mp_pool": "Pool.apply", "ppe": "ProcessPoolExecutor", "ray": "Ray"}
    data = [(names[k], np.array(v) * 1e6) for k, v in rtt.items()]
    for lab, v in data:
        s = np.sort(v)
        ax.plot(s, np.arange(1, len(s) + 1) / len(s), label=f"{lab} (n={len(s)})")
    if cb.get("ok"):
        ax.axvline(cb["rtt_median"] * 1e6, color="#d62728", label="shmframe median")
        ax.axvline(cb["rtt_p99"] * 1e6, color="#d62728", ls="--", label="shmframe p99")
    ax.set_xscale("log")
    ax.set_xlabel("empty-task round trip, µs (log scale)", fontsize=8)
    ax.set_ylabel("fraction of tasks", fontsize=8)
    ax.set_title(f"Empty-task round trip on a warm pool, {n} workers (CDF)", fontsize=9)
    ax.legend(fontsize=7)
    ax.tick_params(labelsize=8)
    fig.tight_layout()
    f = IMG / "compare-roundtrip.png"
    fig.savefig(f)
    plt.close(fig)
    files["rtt"] = f
    return files


NOTES = """\
What each row measures (all on the same matrix, standard normal values, seed 42):

* **memory-read probe**: `np.add.reduce` over a float64 buffer of the input's size, on one
  thread, or split in N parts over N threads of a `ThreadPoolExecutor` (numpy releases the
  GIL inside the reduction). It only reads, so it is the ceiling for a row kernel over the
  same bytes; being a ceiling, each repetition keeps the best of 3 back-to-back passes (as
  STREAM does), while every other row is one pass per repetition. shmframe has its own probe in Rust (`cargo bench`, below); this one is in
  Python because shmframe does not expose its probe. For the small shape the buffer fits in
  cache, so the figure is cache bandwidth plus thread hand-off, not memory bandwidth.
* **numpy**: one process, one thread.
* **Pool.map, pickled**: `multiprocessing.Pool` (fork, started before the run, reused), the
  rows in 4N chunks pickled to the workers, results pickled back and concatenated.
* **shared_memory, copy-in included**: each repetition creates a `SharedMemory` segment,
  copies the matrix in, has the pool's workers attach and write norms into a shared output
  segment, and unlinks the input. **warm**: the segments exist before the timing and each
  worker keeps its mappings.
* **joblib**: one `Parallel(n_jobs=N)` (loky backend) kept open; the full matrix and a row
  range are passed to each of 4N tasks, and joblib's automatic memmapping (arrays over 1 MB)
  hands the matrix to the workers as a memmap (hashing it each call to find the dump).
* **Ray**: `ray.init(num_cpus=N, include_dashboard=False)` on 127.0.0.1; 4N tasks each read
  a row range of an object in the object store (zero-copy, read-only numpy view). **warm**:
  the `ray.put` happened before the timing; **put included**: each repetition puts the matrix.
* **polars**: a DataFrame with one column per matrix column (built before the timing), and
  `pl.sum_horizontal([pl.col(c)**2 ...]).sqrt()` on polars' own N threads.
* **shmframe**: `target/release/shmframe run l2-norm --input X.npy --workers N --json` on a
  `.npy` written once by `numpy.save` (in the page cache). `seconds` is the job alone on the
  pool the command just started; `total_seconds` is the whole command as the command itself
  measures it (pool start, mapping the file, job); the subprocess wall time adds exec, exit
  and cleanup. Its answer is checked in one extra untimed run with `--out out.npy`.

Every Python result is compared with numpy's answer (`np.linalg.norm` in float64, rtol
1e-12 for f64 input, 1e-6 for f32) in every repetition before its time is kept. Ratios are
medians divided by shmframe's median: above 1 means slower than shmframe.
"""


def write_doc(ctx, shapes, methods_by_shape, rtt, starts, cb, mem, mem_shape, files, n, mem_runs):
    mi, vers = ctx["machine"], ctx["versions"]
    L = []
    L.append("# Benchmarks: shmframe against Python's usual tools")
    L.append("")
    L.append(
        "<!-- Generated by benches/compare/compare.py: do not edit by hand; rerun "
        "`benches/compare/run.sh` instead. -->"
    )
    L.append("")
    L.append(
        f"Run on {ctx['date']} with `benches/compare/run.sh{' --quick' if ctx['quick'] else ''}` "
        f"({'quick sizes' if ctx['quick'] else 'full sizes'}; {ctx['elapsed']:.0f} s in all). "
        "Reproduce with `benches/compare/run.sh` (full sizes) or `benches/compare/run.sh --quick` "
        "(under 5 minutes on 2 cores once the venv and the build exist). All figures come from "
        "one run: methods interleaved, the order rotating every repetition."
    )
    L.append("")
    L.append("## Machine")
    L.append("")
    L.append("| | |")
    L.append("|---|---|")
    L.append(f"| cores | {mi['affinity']} usable ({mi['cores']} online); every method uses {n} |")
    L.append(f"| CPU | {mi['cpu']} |")
    L.append(f"| memory | {mi['memory']}; /dev/shm {mi['dev_shm']} |")
    L.append(f"| kernel | Linux {mi['kernel']} |")
    for res in shapes:
        t = res["times"]
        if "probe1" in t and f"probe{n}" in t:
            p1, pn = median(t["probe1"]), median(t[f"probe{n}"])
            L.append(
                f"| read bandwidth, numpy probe over {res['nbytes'] / MiB:.0f} MiB | "
                f"{res['nbytes'] / p1 / 1e9:.2f} GB/s on 1 thread, "
                f"{res['nbytes'] / pn / 1e9:.2f} GB/s on {n} threads |"
            )
    if cb.get("ok"):
        for name, gbs in cb.get("probes", []):
            L.append(f"| {name} (Rust, `cargo bench`) | {gbs} GB/s |")
    L.append("")
    L.append("## Versions")
    L.append("")
    L.append("| | |")
    L.append("|---|---|")
    for k, v in vers.items():
        L.append(f"| {k} | {v} |")
    L.append("")
    L.append("## Row L2 norms")
    L.append("")
    L.append(NOTES)
    for res in shapes:
        L.append(
            f"### {res['desc']}: {res['rows']:,} x {res['cols']} {res['dtype']} "
            f"({res['nbytes'] / MiB:.1f} MiB), {res['reps']} repetitions"
        )
        L.append("")
        L.append(shape_table(res, methods_by_shape[res["key"]], n))
        L.append("")
        if res["key"] in files:
            L.append(f"![throughput, {res['desc']}](img/{files[res['key']].name})")
            L.append("")
    L.append("## Pools: empty-task round trip and start")
    L.append("")
    L.append(
        "Round trip: one empty task after another on a warm pool "
        f"({len(rtt.get('mp_pool', []))} for multiprocessing and the executor, "
        f"{len(rtt.get('ray', []))} for Ray, after 200 untimed). Start: constructor until every "
        "worker has run its initializer (multiprocessing, fork) or until Ray's first "
        f"{n} tasks are done (a fresh process per repetition). shmframe's figures are the "
        "`empty-job round trip` and `pool start` rows of its own benchmark, "
        "`cargo bench -p shmframe --bench pool -- --quick`, run by this script in the same "
        "session; that benchmark prints median and p99, not min and max."
    )
    L.append("")
    L.append(pool_table(rtt, starts, cb, RAY_MISSING[0], n))
    L.append("")
    if "rtt" in files:
        L.append(f"![round-trip distribution](img/{files['rtt'].name})")
        L.append("")
    L.append(
        f"## Peak memory, {mem_shape['desc']} {mem_shape['rows']:,} x {mem_shape['cols']} "
        f"{mem_shape['dtype']} ({mem_shape['nbytes'] / MiB:.0f} MiB)"
    )
    L.append("")
    L.append(
        "Each method alone in a fresh process: it loads the matrix from the `.npy` "
        "(`np.load`, a private copy), sets up (pool, segments, DataFrame, `ray.put`), runs "
        "twice, exits. A sampler thread sums `Pss` from `/proc/PID/smaps_rollup` over the "
        "process and all its descendants (Ray's raylet, GCS and workers included) every 10 ms; "
        "the table shows the peak and how many samples were taken. The Python children check "
        "their answer by small blocks, so the checker adds no big temporaries. shmframe is the "
        "command alone: it maps the `.npy` (page cache, counted in its PSS) instead of copying "
        "it; it lives for only a few samples, so it runs "
        f"{mem_runs} times and the largest peak counts. Segment pages in `/dev/shm` that no "
        "process maps at a sampling instant are not counted."
    )
    L.append("")
    L.append(mem_table(mem, mem_shape["nbytes"]))
    L.append("")
    L.append("## shmframe's own benchmark")
    L.append("")
    if cb.get("ok"):
        L.append("`cargo bench -p shmframe --bench pool -- --quick`, as printed in this run:")
        L.append("")
        L.append(cb["stdout"].strip())
    else:
        L.append("`cargo bench -p shmframe --bench pool -- --quick` failed in this run.")
    L.append("")
    L.append("## Not compared yet")
    L.append("")
    L.append(
        "* Image resize against Pillow and vipsthumbnail: comes with the image issue "
        "(a marked TODO section in `benches/compare/compare.py`)."
    )
    L.append("")
    DOC.write_text("\n".join(L))


# ----------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller matrices, fewer repetitions")
    ap.add_argument("--workers", type=int, default=_NCPU, help="processes/threads per method")
    ap.add_argument("--only", choices=[s[0] for s in SHAPES], action="append",
                    help="run only this shape (repeatable; no docs are written)")  # fmt: skip
    ap.add_argument("--no-ray", action="store_true", help="leave Ray out (its rows say so)")
    ap.add_argument("--verbose", action="store_true", help="log every measurement")
    ap.add_argument("--no-docs", action="store_true", help="print only; leave docs/ alone")
    ap.add_argument("--skip-cargo-bench", action="store_true", help="(no docs are written)")
    ap.add_argument("--skip-memory", action="store_true", help="(no docs are written)")
    # A Ray that cannot be installed or started still gives a complete run (its rows say
    # why); --no-ray is a choice, so no docs then.
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--method", help=argparse.SUPPRESS)
    ap.add_argument("--npy", help=argparse.SUPPRESS)
    a = ap.parse_args()
    n = a.workers

    if a.child == "ray-start":
        return child_ray_start(n)
    if a.child == "mem":
        return child_mem(a.method, a.npy, n)

    started = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)

    complete = not (a.only or a.skip_cargo_bench or a.skip_memory or a.no_ray)
    cfg = config(a.quick)
    cfg["verbose"] = a.verbose
    ctx = {
        "quick": a.quick,
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "machine": machine_info(),
        "versions": versions(),
    }
    log(f"machine: {ctx['machine']}")

    # 1. shmframe's own benchmark first, while nothing of ours runs.
    cb = {"ok": False, "why": "skipped (--skip-cargo-bench)"}
    if not a.skip_cargo_bench:
        cb = cargo_bench(log)
        if not cb["ok"]:
            log("cargo bench failed: shmframe's round trip and pool start will be missing")
        else:
            log(f"   round trip {fmt_time(cb['rtt_median'])}, pool start {fmt_time(cb['start_median'])}")

    # 2. Pools, forked while this process has one thread.
    fork = mp.get_context("fork")
    log("== pool start times")
    starts = pool_start_times(fork, n, cfg["start_reps"])
    pool = fork.Pool(n, initializer=W.init_shm_worker)
    ppe = ProcessPoolExecutor(n, mp_context=fork)
    for f in [ppe.submit(W.noop) for _ in range(n)]:
        f.result()

    tmp = tempfile.mkdtemp(prefix="shmframe-compare-")
    ray = None
    failed = None
    try:
        if not SHMFRAME.exists():
            log(f"{SHMFRAME} missing: build it with `cargo build --release -p shmframe`")
        log("== ray.init")
        if a.no_ray:
            RAY_MISSING[0] = "left out with --no-ray"
        else:
            ray = start_ray(n)
        if ray is None:
            log(f"Ray rows skipped: {RAY_MISSING[0]}")
        probe_pool = ThreadPoolExecutor(n)

        shapes, methods_by_shape = [], {}
        for spec in SHAPES:
            if a.only and spec[0] not in a.only:
                continue
            methods = methods_for(pool, ray, n, tmp, probe_pool)
            shapes.append(bench_shape(spec, a.quick, cfg, methods, log))
            methods_by_shape[spec[0]] = methods

        log("== empty-task round trips")
        rtt = round_trips(pool, ppe, ray, cfg, log)
        if ray is not None:
            ray.shutdown()
            ray = None
        probe_pool.shutdown()
        pool.terminate()
        pool.join()
        ppe.shutdown()
        log("== Ray start times (a fresh process each)")
        if "ray" in rtt:
            rs = ray_start_times(n, cfg["start_reps_ray"], log)
            if rs:
                starts["ray"] = rs

        mem, mem_shape = {}, None
        if not a.skip_memory:
            spec = SHAPES[0]
            rows, cols = spec[3] if a.quick else spec[2]
            log(f"== peak memory, {rows} x {cols}")
            x = make_data(rows, cols, spec[4])
            npy = Path(tmp) / "mem.npy"
            np.save(npy, x)
            mem_shape = {"desc": spec[1], "rows": rows, "cols": cols,
                         "dtype": np.dtype(spec[4]).name, "nbytes": x.nbytes}  # fmt: skip
            del x
            gc.collect()
            mem = peak_memory(npy, n, "ray" in rtt, cfg["mem_sf_runs"], log)
            npy.unlink()
    except WrongAnswer as e:
        failed = e
    finally:
        if ray is not None:
            ray.shutdown()
        pool.terminate()
        ppe.shutdown(cancel_futures=True)
        shutil.rmtree(tmp, ignore_errors=True)
    if failed is not None:
        print(f"WRONG ANSWER: {failed}", file=sys.stderr)
        print("compare.py: the run failed; no timing of it is reported.", file=sys.stderr)
        return 1

    ctx["elapsed"] = time.perf_counter() - started
    # 3. The report.
    out = []
    for res in shapes:
        out.append(
            f"\n### {res['desc']}: {res['rows']:,} x {res['cols']} {res['dtype']} "
            f"({res['nbytes'] / MiB:.1f} MiB), {res['reps']} reps\n"
        )
        out.append(shape_table(res, methods_by_shape[res["key"]], n))
    out.append("\n### pools\n")
    out.append(pool_table(rtt, starts, cb, RAY_MISSING[0], n))
    if mem:
        out.append(f"\n### peak memory, {mem_shape['desc']} ({mem_shape['nbytes'] / MiB:.0f} MiB)\n")
        out.append(mem_table(mem, mem_shape["nbytes"]))
    print("\n".join(out))

    if complete and not a.no_docs:
        files = plots(shapes, methods_by_shape, rtt, cb, n)
        write_doc(ctx, shapes, methods_by_shape, rtt, starts, cb, mem, mem_shape, files, n, cfg["mem_sf_runs"])
        log(f"wrote {DOC.relative_to(ROOT)} and {len(files)} plots in {IMG.relative_to(ROOT)}")
    elif not a.no_docs:
        log("partial run (--only/--skip-*): docs/BENCHMARKS.md left as it was")
    log(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
