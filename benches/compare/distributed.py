#!/usr/bin/env python3
"""The distributed image table (issue 18) on one machine, as far as two cores allow.

1000 photographs to 256x256 JPEG: one process (Pillow), a `Pool` of Pillow processes, the
single-host engine with 1 and 2 workers, and `shmframe.ray` on a local Ray cluster
(`ray.cluster_utils.Cluster`: a head without CPUs, then 1 and 2 nodes of one CPU each, each
node its own segment directory). The Ray layer is compared with the engine on the same cores:
1 node against 1 worker, 2 nodes against 2 workers, interleaved repetitions in one run. Then
Ray's per-task cost (an actor call's round trip, measured here), and from it and a node's
throughput, how large a batch keeps scheduling under 5% on N hosts.

Run through `benches/compare/distributed.sh [--quick] [--no-docs]`, which sets up the venv
and the photo set; `--quick` uses 200 images and 2 repetitions. Writes the "Ray: many nodes"
section of docs/BENCHMARKS.md (between markers compare.py keeps) unless --no-docs.
"""

import sys
from pathlib import Path

# compare.py, imported first, sets the BLAS and Ray environment before numpy loads.
sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare as C  # noqa: E402, I001

import argparse  # noqa: E402
import multiprocessing as mp  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import ray  # noqa: E402
import shmframe  # noqa: E402
import shmframe.ray as sray  # noqa: E402
from PIL import Image  # noqa: E402
from ray.cluster_utils import Cluster as RayCluster  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PHOTOS = ROOT / "datasets" / "photos"
SIZE = (256, 256)
BEGIN, END = C.DIST_BEGIN, C.DIST_END


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def make_images(n: int) -> Path:
    """`n` distinct JPEGs (about 2 MP each) cut from the photo set, made once and kept in
    datasets/photos-N/ (git-ignored, like the photos)."""
    out = ROOT / "datasets" / f"photos-{n}"
    if out.is_dir() and len(list(out.glob("*.jpg"))) == n:
        return out
    shutil.rmtree(out, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix="photos-", dir=ROOT / "datasets"))
    photos = sorted(p for p in PHOTOS.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    log(f"making {n} images from {len(photos)} photos into {out}")
    i = 0
    for k, p in enumerate(photos):
        with Image.open(p) as im:
            im.draft("RGB", (2400, 2400))
            im = im.convert("RGB")
            w, h = im.size
            share = n // len(photos) + (1 if k < n % len(photos) else 0)
            for j in range(share):
                # A different window of the photo each time, at about 1800x1200.
                cw, ch = min(w, 1800), min(h, 1200)
                x0 = (j * 97) % max(1, w - cw + 1)
                y0 = (j * 61) % max(1, h - ch + 1)
                im.crop((x0, y0, x0 + cw, y0 + ch)).save(tmp / f"img{i:04d}.jpg", quality=90)
                i += 1
    tmp.rename(out)
    return out


def pillow_one(args):
    src, dst = args
    with Image.open(src) as im:
        im.convert("RGB").resize(SIZE, Image.Resampling.LANCZOS).save(dst, quality=90)


class Pillow:
    def __init__(self, images, out, pool=None):
        self.images, self.out, self.pool = images, out, pool

    def __call__(self):
        shutil.rmtree(self.out, ignore_errors=True)
        self.out.mkdir(parents=True)
        tasks = [(str(p), str(self.out / p.name)) for p in self.images]
        if self.pool is None:
            for t in tasks:
                pillow_one(t)
        else:
            self.pool.map(pillow_one, tasks, chunksize=8)


class Engine:
    def __init__(self, folder, out, engine):
        self.folder, self.out, self.engine = folder, out, engine

    def __call__(self):
        shutil.rmtree(self.out, ignore_errors=True)
        r = self.engine.resize(self.folder, SIZE, out_dir=self.out, quality=90)
        if r.failures:
            raise C.WrongAnswer(f"engine.resize failed: {r.failures[:3]}")


class RayLayer:
    def __init__(self, folder, out, cluster, batch):
        self.folder, self.out, self.cluster, self.batch = folder, out, cluster, batch

    def __call__(self):
        shutil.rmtree(self.out, ignore_errors=True)
        r = self.cluster.resize(self.folder, self.out, SIZE, batch=self.batch, quality=90)
        if r.failures:
            raise C.WrongAnswer(f"shmframe.ray resize failed: {r.failures[:3]}")


def interleave(methods: dict, reps: int) -> dict:
    out = {k: [] for k in methods}
    keys = list(methods)
    for rep in range(reps + 1):  # the first round warms up
        k = rep % len(keys)
        for key in keys[k:] + keys[:k]:
            t = time.perf_counter()
            methods[key]()
            dt = time.perf_counter() - t
            if rep:
                out[key].append(dt)
            log(f"   {key}: {dt:.2f} s")
    return out


def same_files(a: Path, b: Path) -> None:
    fa, fb = sorted(p.name for p in a.iterdir()), sorted(p.name for p in b.iterdir())
    if fa != fb:
        raise C.WrongAnswer(f"{a} and {b} hold different files")
    for name in fa:
        if (a / name).read_bytes() != (b / name).read_bytes():
            raise C.WrongAnswer(f"{name}: the Ray layer's bytes differ from the engine's")


def per_task_cost(n: int) -> list[float]:
    """Round trips of an empty actor call on a 1-CPU node: what a task costs beyond its work."""

    @ray.remote(num_cpus=0)
    class Noop:
        def call(self):
            return None

    a = Noop.remote()
    ray.get(a.call.remote())
    v = []
    for _ in range(n):
        t = time.perf_counter()
        ray.get(a.call.remote())
        v.append(time.perf_counter() - t)
    ray.kill(a)
    return v


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-docs", action="store_true")
    ap.add_argument("--images", type=int)
    ap.add_argument("--batch", type=int, default=50)
    a = ap.parse_args()
    n = a.images or (200 if a.quick else 1000)
    reps = 2 if a.quick else 3
    folder = make_images(n)
    images = sorted(folder.glob("*.jpg"))
    work = Path(tempfile.mkdtemp(prefix="sf-dist-"))
    res = {}
    pool = mp.get_context("fork").Pool(2)  # before any thread: Ray starts many
    rc = RayCluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False}
    )
    try:
        dirs = [work / "seg1", work / "seg2"]
        for d in dirs:
            d.mkdir()
        rc.add_node(num_cpus=1, env_vars={"SHMFRAME_DIR": str(dirs[0])})
        rc.wait_for_nodes()
        ray.init(address=rc.address, log_to_driver=False)
        log(f"== {n} images, 1 core: one process, the engine with 1 worker, Ray 1 node")
        with shmframe.Engine(workers=1) as e1, sray.Cluster() as c1:
            c1.nodes()
            m1 = {
                "pillow1": Pillow(images, work / "p1"),
                "engine1": Engine(folder, work / "e1", e1),
                "ray1": RayLayer(folder, work / "r1", c1, a.batch),
            }
            res.update(interleave(m1, reps))
            same_files(work / "e1", work / "r1")
            res["rtt"] = per_task_cost(300 if a.quick else 2000)
        rc.add_node(num_cpus=1, env_vars={"SHMFRAME_DIR": str(dirs[1])})
        rc.wait_for_nodes()
        log(f"== {n} images, 2 cores: a Pool of 2, the engine with 2 workers, Ray 2 nodes")
        with shmframe.Engine(workers=2) as e2, sray.Cluster() as c2:
            if len(c2.nodes()) != 2:
                raise C.WrongAnswer("the Ray layer does not see 2 nodes")
            m2 = {
                "pool2": Pillow(images, work / "p2", pool),
                "engine2": Engine(folder, work / "e2", e2),
                "ray2": RayLayer(folder, work / "r2", c2, a.batch),
            }
            res.update(interleave(m2, reps))
            same_files(work / "e2", work / "r2")
    finally:
        pool.terminate()
        ray.shutdown()
        rc.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    text = report(res, n, reps, a)
    print(text)
    if not a.no_docs:
        write_doc(text)


def report(res, n, reps, a):
    med = {k: C.median(v) for k, v in res.items()}
    ips = {k: n / v for k, v in med.items() if k != "rtt"}
    rtt = med["rtt"]
    L = [BEGIN, "## Ray: many nodes (issue 18)", ""]
    L.append(
        f"`benches/compare/distributed.sh{' --quick' if a.quick else ''}`, "
        f"{time.strftime('%Y-%m-%d')}, {len(os.sched_getaffinity(0))} cores: "
        f"{n} JPEGs of about 1800x1200 cut from the photo set, to 256x256 JPEG (Lanczos3, "
        f"quality 90), {reps} interleaved repetitions after a warm-up, medians. The Ray "
        f"cluster is `ray.cluster_utils.Cluster` on this machine: a head without CPUs and "
        f"nodes of one CPU each, each with its own segment directory; `batch={a.batch}` "
        f"images per task. The Ray layer's files are checked byte for byte against the "
        f"engine's."
    )
    L += ["", "| method | cores | median | images/s | range |", "|---|---|---|---|---|"]
    rows = [
        ("pillow1", "one process: Pillow `open`/`resize`/`save`", 1),
        ("engine1", "single-host engine, `Engine(workers=1).resize`", 1),
        ("ray1", "`shmframe.ray`, 1 node of 1 CPU", 1),
        ("pool2", "`multiprocessing.Pool(2)` of Pillow", 2),
        ("engine2", "single-host engine, `Engine(workers=2).resize`", 2),
        ("ray2", "`shmframe.ray`, 2 nodes of 1 CPU", 2),
    ]
    for k, label, cores in rows:
        L.append(
            f"| {label} | {cores} | {C.fmt_time(med[k])} | {ips[k]:.1f} | {C.fmt_range(res[k])} |"
        )
    o1 = med["ray1"] / med["engine1"] - 1
    o2 = med["ray2"] / med["engine2"] - 1
    L += [
        "",
        f"The Ray layer's overhead over the engine on the same cores: **{o1 * 100:+.1f}%** "
        f"with 1 node, **{o2 * 100:+.1f}%** with 2 nodes (goal: at most 10%).",
    ]
    r = ips["ray1"]  # one node's images/s through the Ray layer
    b5 = 19 * rtt * r
    L += [
        "",
        "### Per-task cost and N hosts, on paper",
        "",
        f"An empty actor call's round trip on this cluster: median {C.fmt_time(rtt)}, p99 "
        f"{C.fmt_time(C.pct(res['rtt'], 99))} ({len(res['rtt'])} calls). Each node runs one "
        f"task at a time and waits one round trip between tasks, so a task of `b` images at "
        f"`r` images/s per node spends `o / (b / r + o)` of its time on scheduling, with "
        f"`o` = {C.fmt_time(rtt)}. For that to stay under 5%, `b > 19 o r`: with one core's "
        f"r = {r:.0f} images/s, **b >= {max(1, int(b5 + 0.999))} images per task**; a "
        f"node of c cores does about c times r, so it needs about c times that batch "
        f"(b = {a.batch} here).",
        "",
        f"N hosts of c cores then resize about N x c x {r:.0f} images/s, as long as "
        f"the driver keeps up: it handles one result and one submission per task, about "
        f"one round trip of its own time, so it saturates near `b / o` = "
        f"{a.batch / rtt:,.0f} images/s with b = {a.batch} (about "
        f"{a.batch / rtt / r:,.0f} one-core nodes' worth); larger batches move that limit "
        f"up in proportion. Shared storage must also deliver N x c x {r:.0f} x the "
        f"average input size (here about 0.5 MB) per second. These are estimates from "
        f"this machine's figures, not measurements on N hosts.",
    ]
    L.append(END)
    return "\n".join(L)


def write_doc(text):
    doc = C.DOC
    old = doc.read_text() if doc.exists() else ""
    if BEGIN in old and END in old.split(BEGIN, 1)[1]:
        head, rest = old.split(BEGIN, 1)
        new = head + text + rest.split(END, 1)[1]
    elif C.DESIGN_BEGIN in old:
        head, rest = old.split(C.DESIGN_BEGIN, 1)
        new = head + text + "\n\n" + C.DESIGN_BEGIN + rest
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    doc.write_text(new)
    log(f"wrote {doc}")


if __name__ == "__main__":
    main()
