#!/usr/bin/env python3
"""The Python package (issue 17), side by side in one run: shmframe called from Python against
the Rust API on the same segment, numpy, multiprocessing, joblib and Ray.

Run through `benches/compare/package.sh [--quick] [--no-docs]`, which sets up the venv,
installs the package (release build) and builds the Rust pieces. Sections:

* warm: row L2 norms of a 1 GiB float64 matrix already in place (a frame; a warm
  `shared_memory` block; a Ray object; joblib's memmap), and the Rust API's job on the very
  segment the Python frame lives in (`cargo bench --bench api_norms`, a second process).
* first: an ordinary numpy array (private memory) to its norms, everything included, every way
  of getting it to the workers, with where the time goes. `package.sh` runs this section a
  second time with /dev/shm on 2 MiB pages (`benches/on_huge_shm.sh`, root only).
* small: 10,000 x 16, where the engine computes in the calling process; and the sizes around
  `shmframe.INLINE_BYTES`, inline against the pool.
* rtt: the empty job's round trip from Python against `Pool.apply` of a no-op; engine start.
* resize: the photo set from Python against the command.

Methods are interleaved (the order rotates every repetition); figures are medians with the
min-max range. Every result is checked against numpy's before its time counts; a wrong answer
ends the run with exit status 1. Tables go to stdout and, unless --no-docs, into the
"Python package" section of docs/BENCHMARKS.md (between markers that compare.py keeps).
"""

import sys
from pathlib import Path

# compare.py, imported first, sets the BLAS and Ray environment before numpy loads.
sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare as C  # noqa: E402, I001

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import shmframe  # noqa: E402
import workers as W  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DOC = ROOT / "docs" / "BENCHMARKS.md"
PHOTOS = ROOT / "datasets" / "photos"
GiB = 1 << 30


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def interleave(methods, reps, warmup=1):
    """Runs each method's measure() `warmup` + `reps` times, rotating the order; returns
    {series: [seconds]} of the timed repetitions."""
    out = {}
    for rep in range(warmup + reps):
        k = rep % len(methods)
        for m in methods[k:] + methods[:k]:
            series = m.measure()
            if rep >= warmup:
                for s, v in series.items():
                    out.setdefault(s, []).append(v)
    return out


def row(label, v, ref=None):
    """A table row; the last column is how many times faster than `ref` this is."""
    ratio = "" if ref is None else f"{C.median(ref) / C.median(v):.2f}x"
    return f"| {label} | {C.fmt_time(C.median(v))} | {C.fmt_range(v)} | {ratio} |"


# ----------------------------------------------------------------------------------------------
# Warm: the matrix is already where the workers read it
# ----------------------------------------------------------------------------------------------


class Checked:
    """A compare.py method, its result checked against numpy's on every repetition."""

    def __init__(self, method, ref, key=None):
        self.m, self.ref = method, ref
        self.key = key or method.key
        self.label = method.label

    def measure(self):
        r, series = self.m.measure()
        C.check(self.label, np.asarray(r), self.ref)
        del r
        return {self.key: series[self.m.key]}


class PyFrame:
    key, label = "sf_py", "shmframe from Python: `engine.run('l2-norm', frame)`"

    def __init__(self, engine, frame, ref):
        self.engine, self.frame, self.ref = engine, frame, ref

    def measure(self):
        t = time.perf_counter()
        r = self.engine.run("l2-norm", self.frame)
        dt = time.perf_counter() - t
        C.check(self.label, r, self.ref)
        del r
        return {self.key: dt}


class RustApi:
    """`Engine::run_full` from Rust, in another process, on the Python frame's own segment.
    Each repetition runs the bench binary once (not timed: its start and attach) and keeps
    the median of its `per` timed calls after one warm-up."""

    key, label = "sf_rust", "shmframe from Rust: `Engine::run_full` on the same segment"

    def __init__(self, segment, n, per):
        self.cmd = [
            "cargo", "bench", "-q", "-p", "shmframe", "--bench", "api_norms", "--",
            f"shm:{segment}", str(per), str(n),
        ]  # fmt: skip
        self.job = []

    def measure(self):
        p = subprocess.run(self.cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise C.WrongAnswer(f"api_norms failed: {p.stderr[-800:]}")
        lines = [tuple(map(float, ln.split())) for ln in p.stdout.split("\n") if ln.strip()]
        if not lines:
            raise C.WrongAnswer(f"api_norms printed nothing: {p.stderr[-800:]}")
        self.job.append(C.median([j for _, j in lines]))
        return {self.key: C.median([c for c, _ in lines])}


def section_warm(engine, pool, ray, n, quick, reps):
    rows = (2 << 20) if quick else (8 << 20)
    x = C.make_data(rows, 16, np.float64)
    ref = C.reference(x)
    frame = engine.frame(x)
    segment = Path(frame.path).name
    methods = [
        PyFrame(engine, frame, ref),
        RustApi(segment, n, per=3),
        Checked(C.NumpyEinsum(), ref),
        Checked(C.ShmWarm(pool, n), ref),
        Checked(C.Joblib(n), ref),
        Checked(C.RayWarm(ray, n), ref),
    ]
    methods = [m for m in methods if getattr(getattr(m, "m", m), "unavailable", None) is None]
    for m in methods:
        if isinstance(m, Checked):
            m.m.setup(x)
    log(f"== warm: {x.nbytes / GiB:.2f} GiB, {len(methods)} methods, {reps} repetitions")
    try:
        res = interleave(methods, reps)
    finally:
        for m in methods:
            if isinstance(m, Checked):
                m.m.close()
    rust = next(m for m in methods if isinstance(m, RustApi))
    res["sf_rust_job"] = rust.job
    return {"bytes": x.nbytes, "shape": x.shape, "labels": labels(methods), "res": res}


def labels(methods):
    return {m.key: m.label for m in methods}


# ----------------------------------------------------------------------------------------------
# First call: an ordinary array to its norms, everything included
# ----------------------------------------------------------------------------------------------


class MpCopyIn:
    key = "mp"
    label = "multiprocessing: `shared_memory` + copy-in + `Pool`"

    def __init__(self, pool, n, x, ref):
        self.pool, self.n, self.x, self.ref = pool, n, x, ref

    def measure(self):
        x = self.x
        t0 = time.perf_counter()
        inp = C._Shm(x.shape, x.dtype)
        inp.arr[:] = x
        out = C._Shm((x.shape[0],), x.dtype)
        t1 = time.perf_counter()
        tasks = [
            (inp.shm.name, out.shm.name, x.shape, x.dtype.str, a, b, False)
            for a, b in C.row_bounds(x.shape[0], 4 * self.n)
        ]
        self.pool.starmap(W.shm_l2, tasks, chunksize=1)
        t2 = time.perf_counter()
        C.check(self.label, out.arr, self.ref)
        inp.close()
        out.close()
        return {"mp": t2 - t0, "mp_copy": t1 - t0, "mp_pool": t2 - t1}


class SfCopy:
    """The array copied into shared memory by `put(engine, x)` (timed), then the pool's job."""

    def __init__(self, key, label, put, engine, x, ref):
        self.key, self.label, self.put = key, label, put
        self.engine, self.x, self.ref = engine, x, ref

    def measure(self):
        t0 = time.perf_counter()
        f = self.put(self.engine, self.x)
        t1 = time.perf_counter()
        r = self.engine.run("l2-norm", f)
        t2 = time.perf_counter()
        C.check(self.label, r, self.ref)
        del r, f
        k = self.key
        return {k: t2 - t0, f"{k}_in": t1 - t0, f"{k}_job": t2 - t1}


def threads_copy(engine, x):
    """`frame(x)`: the engine's copy-in, split over threads."""
    return engine.frame(x)


def one_thread_copy(engine, x):
    """`engine.empty` + `np.copyto`: one thread faults and fills the segment."""
    a = engine.empty(x.shape)
    np.copyto(a, x)
    return a


class SfBorn:
    """The array is produced in shared memory (here: a copy of the data, not timed, standing
    for whatever produces it), then used where it is: the job is the only cost."""

    key = "sf_born"
    label = "shmframe: array born in shared memory (`engine.empty`), `run` only"

    def __init__(self, engine, x, ref, segdir):
        self.engine, self.x, self.ref, self.segdir = engine, x, ref, segdir

    def measure(self):
        a = self.engine.empty(self.x.shape)
        np.copyto(a, self.x)
        before = segment_bytes(self.segdir)
        t0 = time.perf_counter()
        r = self.engine.run("l2-norm", a)
        t1 = time.perf_counter()
        copied = segment_bytes(self.segdir) - before - r.nbytes
        if copied > 1 << 20:
            raise C.WrongAnswer(f"{self.label}: {copied} bytes of new segments besides the output")
        C.check(self.label, r, self.ref)
        del r, a
        return {"sf_born": t1 - t0}


def segment_bytes(d):
    return sum(p.stat().st_size for p in Path(d).glob("shmframe.*"))


class SfDefault:
    key = "sf_default"

    def __init__(self, engine, x, ref):
        self.engine, self.x, self.ref = engine, x, ref
        where = "the pool" if engine.pool_can_win(x.nbytes) else "inline: no workers"
        self.label = f"shmframe default: `engine.run('l2-norm', x)` (here: {where})"

    def measure(self):
        t0 = time.perf_counter()
        r = self.engine.run("l2-norm", self.x)
        t1 = time.perf_counter()
        C.check(self.label, r, self.ref)
        return {"sf_default": t1 - t0}


def section_first(engine, pool, n, quick, reps, segdir):
    rows = (2 << 20) if quick else (8 << 20)
    x = C.make_data(rows, 16, np.float64)
    ref = C.reference(x)
    methods = [
        MpCopyIn(pool, n, x, ref),
        SfCopy(
            "sf_copy",
            "shmframe, to the workers: `frame(x)` (copy-in by threads) + `run(frame)`",
            threads_copy,
            engine,
            x,
            ref,
        ),
        SfCopy(
            "sf_copy1",
            "shmframe: `engine.empty` + `np.copyto` (one thread) + `run`",
            one_thread_copy,
            engine,
            x,
            ref,
        ),
        SfBorn(engine, x, ref, segdir),
        SfDefault(engine, x, ref),
        Checked(C.NumpyEinsum(), ref),
    ]
    methods[-1].m.setup(x)
    log(f"== first call: {x.nbytes / GiB:.2f} GiB, {reps} repetitions, segments in {segdir}")
    res = interleave(methods, reps)
    return {
        "bytes": x.nbytes,
        "labels": labels(methods),
        "res": res,
        "pages": page_kind(segdir),
    }


def page_kind(d):
    """How the segment directory's file system is mounted (huge= option)."""
    best = ("?", "")
    with open("/proc/self/mounts") as f:
        for line in f:
            dev, mnt, fs, opts = line.split()[:4]
            if str(d).startswith(mnt) and len(mnt) >= len(best[0]):
                huge = [o for o in opts.split(",") if o.startswith("huge=")]
                best = (mnt, f"{fs}, {huge[0] if huge else 'huge=never'}")
    return best[1]


# ----------------------------------------------------------------------------------------------
# Small arrays, and where inline stops paying
# ----------------------------------------------------------------------------------------------


class Fn:
    def __init__(self, key, label, fn, ref):
        self.key, self.label, self.fn, self.ref = key, label, fn, ref

    def measure(self):
        t = time.perf_counter()
        r = self.fn()
        dt = time.perf_counter() - t
        C.check(self.label, np.asarray(r), self.ref)
        return {self.key: dt}


def section_small(engine, reps):
    x = C.make_data(10_000, 16, np.float64)
    ref = C.reference(x)
    frame = engine.frame(x)
    methods = [
        Fn("np_einsum", "numpy `sqrt(einsum('ij,ij->i'))`, this process",
           lambda: np.sqrt(np.einsum("ij,ij->i", x, x)), ref),
        Fn("sf_default", "shmframe `engine.run('l2-norm', x)` (default: inline here)",
           lambda: engine.run("l2-norm", x), ref),
        Fn("sf_pool", "shmframe `run(x, inline=False)`: copy-in + the pool's job",
           lambda: engine.run("l2-norm", x, inline=False), ref),
        Fn("sf_frame", "shmframe `run(frame)`: the pool's job on a frame",
           lambda: engine.run("l2-norm", frame), ref),
    ]  # fmt: skip
    log(f"== small: 10,000 x 16, {reps} repetitions")
    res = interleave(methods, reps, warmup=20)
    return {"labels": labels(methods), "res": res}


def section_crossover(engine, quick):
    out = []
    sizes = [(10_000, 16), (100_000, 16), (1 << 17, 16), (1 << 18, 16), (1 << 20, 16)]
    if not quick:
        sizes.append((4 << 20, 16))
    for rows, cols in sizes:
        x = C.make_data(rows, cols, np.float64)
        ref = C.reference(x)
        methods = [
            Fn("inline", "inline", lambda x=x: engine.run("l2-norm", x, inline=True), ref),
            Fn("pool", "pool", lambda x=x: engine.run("l2-norm", x, inline=False), ref),
        ]
        reps = 41 if x.nbytes < (64 << 20) else 7
        res = interleave(methods, reps, warmup=3)
        out.append({"bytes": x.nbytes, "res": res})
        log(f"   {x.nbytes / (1 << 20):7.1f} MiB: inline {C.fmt_time(C.median(res['inline']))}, "
            f"pool {C.fmt_time(C.median(res['pool']))}")  # fmt: skip
    return out


# ----------------------------------------------------------------------------------------------
# Round trips and start
# ----------------------------------------------------------------------------------------------


def section_rtt(engine, pool, n, quick, segdir):
    count = 2_000 if quick else 20_000

    def timed(fn):
        for _ in range(200):
            fn()
        v = []
        for _ in range(count):
            t = time.perf_counter()
            fn()
            v.append(time.perf_counter() - t)
        return v

    res = {}
    # Interleaved in halves, so drift hits both.
    for _ in range(2):
        res.setdefault("sf_ping", []).extend(timed(engine.ping))
        res.setdefault("mp_apply", []).extend(timed(lambda: pool.apply(W.noop)))
    starts = []
    for _ in range(5 if quick else 15):
        t = time.perf_counter()
        e = shmframe.Engine(workers=n, segment_dir=segdir)
        starts.append(time.perf_counter() - t)
        e.close()
    res["sf_start"] = starts
    log(f"== rtt: ping {C.fmt_time(C.median(res['sf_ping']))}, Pool.apply "
        f"{C.fmt_time(C.median(res['mp_apply']))}, start {C.fmt_time(C.median(starts))}")  # fmt: skip
    return {"res": res, "count": count}


# ----------------------------------------------------------------------------------------------
# Resize: the photo set, Python against the command
# ----------------------------------------------------------------------------------------------


def section_resize(n, reps, segdir):
    exe = ROOT / "target" / "release" / "shmframe"
    photos = sorted(p for p in PHOTOS.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not exe.exists() or not photos:
        return {"missing": f"{exe} or {PHOTOS} (datasets/photos.sh) missing"}
    tmp = Path(tempfile.mkdtemp(prefix="sf-pkg-resize-"))
    src = tmp / "in"  # the photos only (the folder also holds MANIFEST.tsv and README)
    src.mkdir()
    for p in photos:
        shutil.copy2(p, src / p.name)
    args = dict(size=(256, 256), fit="exact", filter="lanczos3", format="jpeg", quality=90)

    class Cmd:
        key = "cmd"

        def measure(self):
            out = tmp / "cmd"
            shutil.rmtree(out, ignore_errors=True)
            cmd = [str(exe), "resize", str(src), str(out), "--size", "256x256",
                   "--fit", "exact", "--filter", "lanczos3", "--format", "jpeg",
                   "--quality", "90", "--workers", str(n), "--json"]  # fmt: skip
            t = time.perf_counter()
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            wall = time.perf_counter() - t
            j = json.loads(p.stdout)
            if p.returncode != 0 or j.get("failed") or j.get("images") != len(photos):
                raise C.WrongAnswer(f"shmframe resize: {p.stderr[-500:]} {j.get('failed')}")
            return {"cmd": wall, "cmd_job": float(j["seconds"])}

    class Py:
        key = "py"

        def measure(self):
            out = tmp / "py"
            shutil.rmtree(out, ignore_errors=True)
            t = time.perf_counter()
            with shmframe.Engine(workers=n, segment_dir=segdir) as e:
                r = e.resize(src, out_dir=out, **args)
                wall = time.perf_counter() - t
                if r.failures or len(r.paths) != len(photos):
                    raise C.WrongAnswer(f"engine.resize: {r.failures[:3]}")
                del r
            return {"py": wall}

    class PyWarm:
        key = "py_warm"

        def __init__(self):
            self.e = shmframe.Engine(workers=n, segment_dir=segdir)

        def measure(self):
            out = tmp / "warm"
            shutil.rmtree(out, ignore_errors=True)
            t = time.perf_counter()
            r = self.e.resize(src, out_dir=out, **args)
            wall = time.perf_counter() - t
            job = r.seconds
            del r
            return {"py_warm": wall, "py_warm_job": job}

    warm = PyWarm()
    try:
        log(f"== resize: {len(photos)} photos, {reps} repetitions")
        res = interleave([Cmd(), Py(), warm], reps)
        same = sorted(os.listdir(tmp / "cmd")) == sorted(os.listdir(tmp / "py"))
        if not same:
            raise C.WrongAnswer("the command and the package wrote different file sets")
    finally:
        warm.e.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return {"images": len(photos), "res": res}


# ----------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------

BEGIN, END = C.PACKAGE_BEGIN, C.PACKAGE_END


def report(r, n):
    L = [BEGIN, "## Python package", ""]
    L.append(
        f"`benches/compare/package.sh{' --quick' if r['quick'] else ''}`, {r['when']}, "
        f"{n} workers, {r['machine']}. Medians (min-max) of interleaved repetitions in one "
        "run; every result checked against numpy's. The package is the release build "
        "(`pip install ./python`)."
    )
    if "warm" in r:
        w = r["warm"]
        res, lab = w["res"], w["labels"]
        L += ["", f"### Warm: row L2 norms of a {w['bytes'] / GiB:.2f} GiB float64 matrix "
              f"({w['shape'][0]:,} x {w['shape'][1]}) already in place, "
              f"{len(res['sf_py'])} repetitions", "",
              "| method | median | range | speed against shmframe from Python |",
              "|---|---|---|---|"]  # fmt: skip
        for k in ["sf_py", "sf_rust", "np_einsum", "shm_warm", "joblib", "ray_warm"]:
            if k in res:
                L.append(row(lab[k], res[k], res["sf_py"]))
        py, rust = C.median(res["sf_py"]), C.median(res["sf_rust"])
        L += ["", f"Python against the Rust API on the same segment: **{rust / py:.2f}x** the "
              f"Rust call's throughput (goal: at least 0.95x). Each Rust figure is the median "
              f"of 3 calls after a warm-up in its own process (job alone, as the engine times "
              f"it: {C.fmt_time(C.median(res['sf_rust_job']))})."]  # fmt: skip
        for k in ["np_einsum", "shm_warm", "joblib", "ray_warm"]:
            if k in res:
                L.append(f"- against {lab[k]}: {C.median(res[k]) / py:.2f}x faster")
    for key, title in (("first", "4 KiB pages"), ("first_huge", "2 MiB pages")):
        if key not in r:
            continue
        f = r[key]
        res, lab = f["res"], f["labels"]
        mp_ = res["mp"]
        L += ["", f"### First call: an ordinary {f['bytes'] / GiB:.2f} GiB numpy array to its "
              f"norms, everything included ({title}: segments on {f['pages']}), "
              f"{len(mp_)} repetitions", "",
              "| method | median | range | speed against multiprocessing |",
              "|---|---|---|---|"]  # fmt: skip
        for k in ["mp", "sf_default", "sf_copy", "sf_copy1", "sf_born", "np_einsum"]:
            L.append(row(lab[k], res[k], mp_))
        L += ["", "Where the time goes (medians):", "",
              f"- multiprocessing: create + copy-in {C.fmt_time(C.median(res['mp_copy']))}, "
              f"the pool's work {C.fmt_time(C.median(res['mp_pool']))};",
              f"- shmframe, threads copy: `frame(x)` {C.fmt_time(C.median(res['sf_copy_in']))}, "
              f"the job {C.fmt_time(C.median(res['sf_copy_job']))};",
              f"- shmframe, one thread: `empty` + `copyto` "
              f"{C.fmt_time(C.median(res['sf_copy1_in']))}, the job "
              f"{C.fmt_time(C.median(res['sf_copy1_job']))}."]  # fmt: skip
        L.append(
            f"\nGoal: at least 5x faster than multiprocessing. The default call: "
            f"**{C.median(mp_) / C.median(res['sf_default']):.2f}x**; to the workers with the "
            f"threads' copy: **{C.median(mp_) / C.median(res['sf_copy']):.2f}x**; born in "
            f"shared memory (no copy): **{C.median(mp_) / C.median(res['sf_born']):.2f}x**."
        )
    if "small" in r:
        s = r["small"]
        res, lab = s["res"], s["labels"]
        L += ["", f"### Small: 10,000 x 16 float64, {len(res['np_einsum'])} repetitions", "",
              "| method | median | range | speed against numpy |", "|---|---|---|---|"]  # fmt: skip
        for k in ["np_einsum", "sf_default", "sf_pool", "sf_frame"]:
            L.append(row(lab[k], res[k], res["np_einsum"]))
    if "crossover" in r:
        L += ["", "Inline against the pool (copy-in included) by size, medians; "
              f"`INLINE_BYTES` is {shmframe.INLINE_BYTES >> 20} MiB:", "",
              "| array | inline | pool | pool / inline |", "|---|---|---|---|"]  # fmt: skip
        for c in r["crossover"]:
            a, b = C.median(c["res"]["inline"]), C.median(c["res"]["pool"])
            L.append(f"| {c['bytes'] / (1 << 20):.1f} MiB | {C.fmt_time(a)} | {C.fmt_time(b)} | "
                     f"{b / a:.2f} |")  # fmt: skip
    if "rtt" in r:
        t = r["rtt"]["res"]
        L += ["", "### Round trip and start", "",
              "| what | median | p99 |", "|---|---|---|",
              f"| `engine.ping()` (the empty job) from Python | "
              f"{C.fmt_time(C.median(t['sf_ping']))} | {C.fmt_time(C.pct(t['sf_ping'], 99))} |",
              f"| multiprocessing `Pool.apply(noop)` | {C.fmt_time(C.median(t['mp_apply']))} | "
              f"{C.fmt_time(C.pct(t['mp_apply'], 99))} |",
              f"| `shmframe.Engine(workers={n})` start, {len(t['sf_start'])} times | "
              f"{C.fmt_time(C.median(t['sf_start']))} | max {C.fmt_time(max(t['sf_start']))} |",
              "", f"{r['rtt']['count'] * 2:,} calls each, in two interleaved halves. Goals: "
              "round trip at most 30 µs, start at most 100 ms."]  # fmt: skip
    if "resize" in r:
        z = r["resize"]
        if "missing" in z:
            L += ["", f"### Resize: not measured ({z['missing']})"]
        else:
            res, k = z["res"], z["images"]
            ips = {s: k / C.median(v) for s, v in res.items()}
            L += ["", f"### Resize: {k} photos to 256x256 JPEG (Lanczos3, quality 90), "
                  f"{len(res['cmd'])} repetitions", "",
                  "| method | images/s | median | range |", "|---|---|---|---|",
                  f"| `shmframe resize` (the command; process and pool start included) | "
                  f"{ips['cmd']:.1f} | {C.fmt_time(C.median(res['cmd']))} | "
                  f"{C.fmt_range(res['cmd'])} |",
                  f"| Python: `with Engine(): engine.resize(...)` (pool start included) | "
                  f"{ips['py']:.1f} | {C.fmt_time(C.median(res['py']))} | "
                  f"{C.fmt_range(res['py'])} |",
                  f"| Python: `engine.resize(...)` on a warm engine | {ips['py_warm']:.1f} | "
                  f"{C.fmt_time(C.median(res['py_warm']))} | {C.fmt_range(res['py_warm'])} |",
                  "", f"Python against the command, same scope: **{ips['py'] / ips['cmd']:.2f}x**"
                  f" the images/s (goal: at least 0.95x). The job alone, as the engine times "
                  f"it: command {C.fmt_time(C.median(res['cmd_job']))}, warm Python engine "
                  f"{C.fmt_time(C.median(res['py_warm_job']))}."]  # fmt: skip
    L.append(END)
    return "\n".join(L)


def write_doc(text):
    old = DOC.read_text() if DOC.exists() else ""
    if BEGIN in old and END in old.split(BEGIN, 1)[1]:
        head, rest = old.split(BEGIN, 1)
        new = head + text + rest.split(END, 1)[1]
    elif C.DESIGN_BEGIN in old:  # where compare.py puts it: before the design section
        head, rest = old.split(C.DESIGN_BEGIN, 1)
        new = head + text + "\n\n" + C.DESIGN_BEGIN + rest
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    DOC.write_text(new)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-docs", action="store_true")
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--only", help="comma-separated sections (warm,first,small,rtt,resize)")
    ap.add_argument("--json", help="write the raw results here (and no tables)")
    ap.add_argument("--merge-huge", help="a --json file of the first section on huge pages")
    a = ap.parse_args()
    n, quick = a.workers, a.quick
    only = set(a.only.split(",")) if a.only else {"warm", "first", "small", "rtt", "resize"}
    segdir = Path(os.environ.get("SHMFRAME_DIR", "/dev/shm"))
    r = {"quick": quick, "when": time.strftime("%Y-%m-%d"), "machine": machine()}
    reps = 5 if quick else 9
    # The multiprocessing pool first, while this process has one thread.
    pool = mp.get_context("fork").Pool(n, initializer=W.init_shm_worker)
    ray = None
    try:
        with shmframe.Engine(workers=n) as engine:
            if "warm" in only:
                ray = C.start_ray(n)
                if ray is None:
                    log(f"Ray rows left out: {C.RAY_MISSING[0]}")
                r["warm"] = section_warm(engine, pool, ray, n, quick, reps)
                gc.collect()
            if "first" in only:
                r["first"] = section_first(engine, pool, n, quick, reps, segdir)
                gc.collect()
            if "small" in only:
                r["small"] = section_small(engine, 100 if quick else 400)
                r["crossover"] = section_crossover(engine, quick)
            if "rtt" in only:
                r["rtt"] = section_rtt(engine, pool, n, quick, segdir)
        if "resize" in only:
            r["resize"] = section_resize(n, 3 if quick else 5, segdir)
    except C.WrongAnswer as e:
        log(f"WRONG ANSWER: {e}")
        sys.exit(1)
    finally:
        pool.terminate()
        pool.join()
        if ray is not None:
            ray.shutdown()
    if a.merge_huge and Path(a.merge_huge).exists() and Path(a.merge_huge).stat().st_size:
        r["first_huge"] = json.loads(Path(a.merge_huge).read_text())["first"]
    if a.json:
        Path(a.json).write_text(json.dumps(r))
        return
    text = report(r, n)
    print(text)
    if not a.no_docs:
        write_doc(text)
        log(f"wrote {DOC.relative_to(ROOT)}")


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{len(os.sched_getaffinity(0))} cores ({cpu}), Python {sys.version.split()[0]}"


if __name__ == "__main__":
    main()
