#!/usr/bin/env python3
"""shmframe's image batch resize against Pillow and vipsthumbnail, on real photographs.

Run through `benches/compare/run.sh [--quick]` (sets up the venv, builds shmframe, makes the
photo set with datasets/photos.sh, then runs compare.py and this script), or alone:

    benches/compare/.venv/bin/python benches/compare/images.py [--quick] [--no-docs]

Every method turns the same photos into 256x256 JPEG files (quality 90) on the same N cores;
the methods are interleaved and their order rotates every repetition; figures are medians
with min-max over the repetitions. Each repetition writes into a fresh temporary directory,
whose files are checked (one per input, each decodes to 256x256) before the time counts; a
wrong answer ends the run with exit status 1.

Quality: every method's pixels are compared (PSNR) with a reference made from the full
resolution decode (Pillow, EXIF orientation applied, RGB) resized straight to 256x256 with
Lanczos; both before JPEG encoding where the method lets us see its pixels, and after.

A complete run (all four methods measured, no --only, no --no-docs) rewrites its own section
of docs/BENCHMARKS.md, between the `images.py` markers, and docs/img/compare-images.png.
compare.py keeps that section when it rewrites the rest of the file. Nothing there is typed
by hand.

The shmframe rows need `target/release/shmframe resize`; without that subcommand they are
skipped with a message and the rest still runs (no docs are written then).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# compare.py sets the no-BLAS-threads environment before numpy is imported: import it first.
import argparse  # noqa: E402
import datetime  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import multiprocessing as mp  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402
from compare import IMAGES_BEGIN as BEGIN  # noqa: E402
from compare import IMAGES_END as END  # noqa: E402
from compare import machine_info, median  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

ROOT = HERE.parent.parent
SHMFRAME = ROOT / "target" / "release" / "shmframe"
PHOTOS = ROOT / "datasets" / "photos"
DOC = ROOT / "docs" / "BENCHMARKS.md"
SIZE = (256, 256)
QUALITY = 90
PSNR_CAP = 100.0  # identical pixels (MSE 0) count as 100 dB, so means stay finite

# Goals of the image issue.
GOAL_PSNR_DB = 40.0
GOAL_VS_DRAFT = 2.0
GOAL_VS_PLAIN = 4.0


class WrongAnswer(Exception):
    """A method wrote something other than one decodable 256x256 JPEG per input."""


# ----------------------------------------------------------------------------------------------
# The photos
# ----------------------------------------------------------------------------------------------


@dataclass
class Photo:
    name: str  # file name in the photo directory
    path: Path
    width: int
    height: int
    encoding: str  # "baseline" or "progressive"
    package: str
    licence: str

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6

    @property
    def stem(self) -> str:
        return Path(self.name).stem


def load_photos(directory: Path) -> list[Photo]:
    """The photos of `directory`, from its MANIFEST.tsv (datasets/photos.sh) when there is one,
    else every *.jpg in it (encoding read from the file)."""
    manifest = directory / "MANIFEST.tsv"
    out = []
    if manifest.exists():
        lines = manifest.read_text().splitlines()
        head = lines[0].split("\t")
        for line in lines[1:]:
            r = dict(zip(head, line.split("\t"), strict=False))
            out.append(
                Photo(
                    r["file"],
                    directory / r["file"],
                    int(r["width"]),
                    int(r["height"]),
                    r["encoding"],
                    r["package"],
                    r["licence"],
                )
            )
    else:
        for p in sorted(directory.glob("*.jp*g")):
            with Image.open(p) as im:
                enc = "progressive" if im.info.get("progressive") else "baseline"
                out.append(Photo(p.name, p, im.width, im.height, enc, "?", "?"))
    missing = [p.name for p in out if not p.path.is_file()]
    if missing:
        raise SystemExit(f"{directory}: missing {missing[:3]}...: rerun datasets/photos.sh")
    return out


def stage_inputs(photos: list[Photo], cycles: int, into: Path) -> list[Path]:
    """Copies the photos `cycles` times into one directory (c0-NAME, c1-NAME, ...): the input
    directory of every method. Copies, not links, so that a directory walker that skips
    symlinks sees the same files as everyone else."""
    into.mkdir()
    paths = []
    for c in range(cycles):
        for p in photos:
            dst = into / (f"c{c}-{p.name}" if cycles > 1 else p.name)
            shutil.copyfile(p.path, dst)
            paths.append(dst)
    return paths


def output_key(p: Path) -> str:
    """The input stem an output file stands for: 'x.jpg' and 'x.jpg.jpg' both give 'x'."""
    name = p.name
    for _ in range(2):
        stem, ext = os.path.splitext(name)
        if ext.lower() in (".jpg", ".jpeg", ".png"):
            name = stem
    return name


def check_outputs(label: str, inputs: list[Path], out_dir: Path) -> dict[str, Path]:
    """One file per input, named after it, each a JPEG that decodes to 256x256. Returns
    input stem -> output file."""
    files = sorted(f for f in out_dir.rglob("*") if f.is_file())
    by_key = {output_key(f): f for f in files}
    want = {p.stem for p in inputs}
    if len(files) != len(inputs) or set(by_key) != want:
        extra = sorted(set(by_key) - want)[:3]
        lacking = sorted(want - set(by_key))[:3]
        raise WrongAnswer(
            f"{label}: {len(files)} files for {len(inputs)} inputs in {out_dir} "
            f"(unexpected: {extra}, missing: {lacking})"
        )
    for f in files:
        try:
            with Image.open(f) as im:
                fmt = im.format
                im.load()
                size = im.size
        except Exception as e:  # noqa: BLE001 - any decoder error is a wrong answer
            raise WrongAnswer(f"{label}: {f.name} does not decode ({type(e).__name__}: {e})") from e
        if fmt != "JPEG" or size != SIZE:
            raise WrongAnswer(f"{label}: {f.name} is {fmt} {size}, expected JPEG {SIZE}")
    return by_key


# ----------------------------------------------------------------------------------------------
# What the Pillow pool workers run (module level: the fork pool finds them by reference)
# ----------------------------------------------------------------------------------------------


def pillow_plain(p: str) -> Image.Image:
    """The naive seed: full decode, Pillow's default filter (bicubic), no orientation."""
    return Image.open(p).resize(SIZE)


def pillow_draft(p: str) -> Image.Image:
    """JPEG draft mode (libjpeg scales by 1/2, 1/4 or 1/8 while decoding, never below the
    target), EXIF orientation applied as the reference does, then Lanczos to 256x256."""
    im = Image.open(p)
    im.draft("RGB", SIZE)
    ImageOps.exif_transpose(im, in_place=True)
    return im.convert("RGB").resize(SIZE, Image.Resampling.LANCZOS)


PILLOW_FN = {"pillow_plain": pillow_plain, "pillow_draft": pillow_draft}


def pillow_job(task: tuple[str, str, str]) -> None:
    key, src, dst = task
    PILLOW_FN[key](src).save(dst, quality=QUALITY)


def rgb(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("RGB"))


def sampling(jpeg: Image.Image) -> str:
    """Chroma subsampling of a decoded-from-JPEG image, as 4:4:4 / 4:2:2 / 4:2:0."""
    from PIL import JpegImagePlugin

    return {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}.get(JpegImagePlugin.get_sampling(jpeg), "?")


def jpeg_sampling(files: list[Path | io.BytesIO]) -> str:
    """The subsampling(s) seen in colour outputs (grey ones have none)."""
    seen = set()
    for f in files:
        with Image.open(f) as im:
            if im.mode != "L":
                seen.add(sampling(im))
    return ", ".join(sorted(seen)) or "n/a"


def pillow_pixels(task: tuple[str, str]) -> tuple[np.ndarray, np.ndarray, str]:
    """A Pillow method's pixels before encoding, and after a JPEG round trip with the same
    settings as the timed runs' save(); and the JPEG's chroma subsampling."""
    key, src = task
    im = PILLOW_FN[key](src)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=QUALITY)
    back = Image.open(io.BytesIO(buf.getvalue()))
    return rgb(im), rgb(back), sampling(back) if back.mode != "L" else ""


def reference(src: str) -> np.ndarray:
    """The quality reference: full-resolution decode, EXIF orientation, RGB, then Lanczos
    straight to 256x256 (exact fit, aspect not kept, no reducing_gap shortcut)."""
    im = ImageOps.exif_transpose(Image.open(src)).convert("RGB")
    return np.asarray(im.resize(SIZE, Image.Resampling.LANCZOS, reducing_gap=None))


def psnr(a: np.ndarray, ref: np.ndarray) -> float:
    """PSNR in dB over all RGB uint8 values, peak 255 (capped at PSNR_CAP when identical)."""
    if a.shape != ref.shape:
        raise WrongAnswer(f"pixels of shape {a.shape}, reference {ref.shape}")
    mse = float(np.mean((a.astype(np.float64) - ref.astype(np.float64)) ** 2))
    return PSNR_CAP if mse == 0 else min(PSNR_CAP, 10 * math.log10(255.0**2 / mse))


# ----------------------------------------------------------------------------------------------
# The methods. measure() runs once, timed, into a fresh directory; quality() is untimed.
# ----------------------------------------------------------------------------------------------


class Method:
    key = ""
    label = ""
    unavailable: str | None = None

    def measure(self, inputs: list[Path], out_dir: Path) -> dict[str, float]:
        raise NotImplementedError

    def quality(self, photos: list[Photo], tmp: Path) -> dict:
        """{"pixels": {stem: HxWx3}, "jpeg": {stem: HxWx3}, "sampling": "4:2:0"}: its pixels
        before JPEG encoding (when it can show them), its JPEG files decoded, and their
        chroma subsampling."""
        raise NotImplementedError


class PillowPool(Method):
    def __init__(self, key: str, pool, n: int):
        self.key, self.pool, self.n = key, pool, n
        if key == "pillow_plain":
            self.label = (
                f"Pillow, naive: `Image.open(p).resize((256,256)).save(out, quality=90)`, "
                f"`Pool({n})`"
            )
        else:
            self.label = (
                f"Pillow, `draft('RGB', (256,256))` + `exif_transpose` + LANCZOS, `Pool({n})`"
            )

    def measure(self, inputs, out_dir):
        tasks = [(self.key, str(p), str(out_dir / f"{p.stem}.jpg")) for p in inputs]
        t = time.perf_counter()
        self.pool.map(pillow_job, tasks, chunksize=1)
        return {self.key: time.perf_counter() - t}

    def quality(self, photos, tmp):
        res = self.pool.map(pillow_pixels, [(self.key, str(p.path)) for p in photos], chunksize=1)
        return {
            "pixels": {p.stem: r[0] for p, r in zip(photos, res, strict=False)},
            "jpeg": {p.stem: r[1] for p, r in zip(photos, res, strict=False)},
            "sampling": ", ".join(sorted({r[2] for r in res if r[2]})) or "n/a",
        }


class VipsThumbnail(Method):
    """`vipsthumbnail --size 256x256!` (the `!` forces the exact size, aspect not kept): the
    inputs split round-robin over N processes, each started with VIPS_CONCURRENCY=1, since
    a process works through its files one after another and the cores are shared that way."""

    key = "vips"

    def __init__(self, n: int):
        self.n = n
        self.exe = shutil.which("vipsthumbnail")
        self.label = (
            f"`vipsthumbnail --size 256x256! -o DIR/%s.jpg[Q=90]`, {n} processes "
            "(`VIPS_CONCURRENCY=1`, inputs split round-robin)"
        )
        if not self.exe:
            self.unavailable = "vipsthumbnail not installed (apt-get install libvips-tools)"
        self.env = dict(os.environ, VIPS_CONCURRENCY="1")

    def _run(self, inputs: list[Path], out_dir: Path, fmt: str) -> None:
        procs = []
        for k in range(self.n):
            part = inputs[k :: self.n]
            if part:
                cmd = [self.exe, "--size", f"{SIZE[0]}x{SIZE[1]}!", "-o", f"{out_dir}/%s.{fmt}"]
                procs.append(
                    subprocess.Popen(
                        cmd + [str(p) for p in part],
                        env=self.env,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                    )
                )
        errors = []
        for pr in procs:
            _, se = pr.communicate(timeout=600)
            if pr.returncode != 0:
                errors.append(f"exit {pr.returncode}: {se.decode(errors='replace').strip()[-800:]}")
        if errors:
            raise WrongAnswer(f"vipsthumbnail failed: {errors[0]}")

    def measure(self, inputs, out_dir):
        t = time.perf_counter()
        self._run(inputs, out_dir, f"jpg[Q={QUALITY}]")
        return {self.key: time.perf_counter() - t}

    def quality(self, photos, tmp):
        got = {}
        for kind, fmt in (("pixels", "png"), ("jpeg", f"jpg[Q={QUALITY}]")):
            d = tmp / f"vips-{kind}"
            d.mkdir()
            self._run([p.path for p in photos], d, fmt)
            files = [d / f"{p.stem}.{fmt[:3]}" for p in photos]
            got[kind] = {p.stem: rgb(Image.open(f)) for p, f in zip(photos, files, strict=False)}
            if kind == "jpeg":
                got["sampling"] = jpeg_sampling(files)
            shutil.rmtree(d)
        return got


class ShmframeResize(Method):
    """`shmframe resize IN_DIR OUT_DIR ... --json`: one command per repetition (pool start
    included), its own figures from the JSON and the subprocess wall time measured here."""

    key = "sf_wall"
    label = "shmframe"

    def __init__(self, exe: Path, n: int):
        self.exe, self.n = exe, n
        self.last: dict = {}
        self.stages: list[dict[str, float]] = []
        self.load: list[float] = []
        self.busy: list[float] = []
        if not exe.exists():
            self.unavailable = f"{exe} not built (cargo build --release -p shmframe-cli)"
            return
        p = subprocess.run([str(exe), "resize", "--help"], capture_output=True, text=True)
        if p.returncode != 0:
            self.unavailable = f"{exe.name} has no `resize` subcommand yet"

    def cmd(self, in_dir: Path, out_dir: Path, *extra: str) -> list[str]:
        return [str(self.exe), "resize", str(in_dir), str(out_dir),
                "--size", f"{SIZE[0]}x{SIZE[1]}", "--fit", "exact", "--filter", "lanczos3",
                "--format", "jpeg", "--quality", str(QUALITY), "--workers", str(self.n),
                "--json", *extra]  # fmt: skip

    def _run(self, in_dir: Path, out_dir: Path, n_inputs: int, *extra: str) -> tuple[dict, float]:
        t = time.perf_counter()
        p = subprocess.run(
            self.cmd(in_dir, out_dir, *extra), capture_output=True, text=True, timeout=1200
        )
        wall = time.perf_counter() - t
        if p.returncode != 0:
            raise WrongAnswer(f"shmframe resize failed ({p.returncode}): {p.stderr.strip()[-800:]}")
        try:
            j = json.loads(p.stdout)
        except json.JSONDecodeError as e:
            raise WrongAnswer(
                f"shmframe resize --json printed no JSON ({e}): {p.stdout[:300]!r}"
            ) from e
        if j.get("failed"):
            f = j["failed"][0]
            raise WrongAnswer(f"shmframe failed {len(j['failed'])} images, first {f}")
        if j.get("images") != n_inputs:
            raise WrongAnswer(f"shmframe says {j.get('images')} images, there are {n_inputs}")
        return j, wall

    def measure(self, inputs, out_dir):
        j, wall = self._run(inputs[0].parent, out_dir, len(inputs))
        self.last = j
        return {
            "sf_job": float(j["seconds"]),
            "sf_total": float(j["total_seconds"]),
            "sf_wall": wall,
        }

    def record(self) -> None:
        """Keeps the last run's stages and load time (a timed repetition, not a warm-up)."""
        j = self.last
        stages = {k: float(v) for k, v in (j.get("stages") or {}).items()}
        self.stages.append(stages)
        self.load.append(float(j.get("load_seconds", float("nan"))))
        if stages and j.get("seconds"):
            workers = int(j.get("workers") or self.n)
            self.busy.append(sum(stages.values()) / (float(j["seconds"]) * workers))

    def quality(self, photos, tmp):
        in_dir, out_dir, arrow = tmp / "sf-in", tmp / "sf-out", tmp / "sf.arrow"
        in_dir.mkdir()
        out_dir.mkdir()
        for p in photos:
            shutil.copyfile(p.path, in_dir / p.name)
        inputs = [in_dir / p.name for p in photos]
        self._run(in_dir, out_dir, len(photos), "--tensor-out", str(arrow))
        files = check_outputs("shmframe (quality run)", inputs, out_dir)
        pixels = read_tensor(arrow, [p.stem for p in photos])
        jpeg = {p.stem: rgb(Image.open(files[p.stem])) for p in photos}
        sub = jpeg_sampling([files[p.stem] for p in photos])
        shutil.rmtree(in_dir)
        shutil.rmtree(out_dir)
        arrow.unlink()
        return {"pixels": pixels, "jpeg": jpeg, "sampling": sub}


def read_tensor(path: Path, stems: list[str]) -> dict[str, np.ndarray]:
    """`--tensor-out`: columns `path` (utf8) and `image` (arrow.fixed_shape_tensor of uint8,
    [256,256,3]), one row per image; null for a failed image (a wrong answer here)."""
    import pyarrow as pa

    shape = (SIZE[1], SIZE[0], 3)
    per = shape[0] * shape[1] * shape[2]
    table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    if "path" not in table.column_names or "image" not in table.column_names:
        raise WrongAnswer(f"--tensor-out has columns {table.column_names}, wants path and image")
    col = table.column("image")
    if isinstance(col.type, pa.ExtensionType):
        t = col.type
        perm = getattr(t, "permutation", None)
        if (
            tuple(getattr(t, "shape", ())) != shape
            or getattr(t, "value_type", None) != pa.uint8()
            or perm not in (None, [0, 1, 2])
        ):
            raise WrongAnswer(f"--tensor-out image type is {t}, expected uint8 {list(shape)} HWC")
    paths = table.column("path").to_pylist()
    out: dict[str, np.ndarray] = {}
    row = 0
    for chunk in col.chunks:
        storage = chunk.storage if isinstance(chunk, pa.ExtensionArray) else chunk
        if storage.type.list_size != per or storage.type.value_type != pa.uint8():
            raise WrongAnswer(
                f"--tensor-out image storage is {storage.type}, expected uint8[{per}]"
            )
        values = storage.values.to_numpy(zero_copy_only=False)
        for i in range(len(storage)):
            p = paths[row]
            if not storage[i].is_valid:
                raise WrongAnswer(f"--tensor-out: image of {p} is null (failed)")
            at = (storage.offset + i) * per
            out[Path(p).stem] = values[at : at + per].reshape(shape)
            row += 1
    if sorted(out) != sorted(stems) or len(paths) != len(stems):
        raise WrongAnswer(f"--tensor-out has {len(paths)} rows for {len(stems)} photos")
    return out


# ----------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------


def measure_all(
    methods: list[Method], inputs: list[Path], tmp: Path, warmup: int, reps: int, log, verbose: bool
) -> dict[str, list[float]]:
    """Interleaved repetitions, the order rotating every time; each method writes into a
    fresh directory, checked, then removed."""
    times: dict[str, list[float]] = {}
    for rep in range(warmup + reps):
        k = rep % len(methods)
        for m in methods[k:] + methods[:k]:
            out_dir = tmp / f"out-{m.key}-{rep}"
            out_dir.mkdir()
            t = m.measure(inputs, out_dir)
            check_outputs(m.label, inputs, out_dir)
            shutil.rmtree(out_dir)
            if rep >= warmup:
                for s, v in t.items():
                    times.setdefault(s, []).append(v)
                if isinstance(m, ShmframeResize):
                    m.record()
            if verbose:
                log(
                    f"      {m.key}: "
                    + ", ".join(f"{s} {len(inputs) / v:.1f} img/s" for s, v in t.items())
                )
        if rep < warmup:
            log(f"   warm-up {rep + 1}/{warmup} done")
        else:
            log(f"   rep {rep + 1 - warmup}/{reps} done")
    return times


def measure_quality(
    methods: list[Method], photos: list[Photo], pool, tmp: Path, log, verbose: bool
) -> dict[str, dict]:
    log(f"== quality: reference (full decode + LANCZOS) of {len(photos)} photos")
    refs = dict(
        zip(
            [p.stem for p in photos],
            pool.map(reference, [str(p.path) for p in photos], chunksize=1),
            strict=False,
        )
    )
    q: dict[str, dict] = {}
    for m in methods:
        got = m.quality(photos, tmp)
        q[m.key] = {"sampling": got.get("sampling", "?")}
        for kind in ("pixels", "jpeg"):
            if kind in got:
                q[m.key][kind] = [psnr(got[kind][p.stem], refs[p.stem]) for p in photos]
        if verbose:
            for kind in ("pixels", "jpeg"):
                for p, v in zip(photos, q[m.key].get(kind, []), strict=False):
                    log(f"      {m.key} {kind} {p.name}: {v:.2f} dB")
        log(
            f"   {NAME[m.key]}: "
            + ", ".join(
                f"{k} {np.mean(q[m.key][k]):.2f} dB" for k in ("pixels", "jpeg") if k in q[m.key]
            )
            + f" (JPEG chroma {q[m.key]['sampling']})"
        )
    return q


# ----------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------

SERIES = [
    ("pillow_plain", None),
    ("pillow_draft", None),
    ("vips", None),
    ("sf_job", "**shmframe** job (`seconds` in its JSON)"),
    ("sf_total", "**shmframe** command (`total_seconds`: pool start, listing, job)"),
    ("sf_wall", "**shmframe** subprocess wall time (exec to exit)"),
]
NAME = {
    "pillow_plain": "Pillow naive",
    "pillow_draft": "Pillow draft",
    "vips": "vipsthumbnail",
    "sf_wall": "shmframe",
}
SHORT = {
    "pillow_plain": "Pillow, naive",
    "pillow_draft": "Pillow, draft + LANCZOS",
    "vips": "vipsthumbnail",
    "sf_job": "shmframe job",
    "sf_total": "shmframe command",
    "sf_wall": "shmframe subprocess",
}


def rate(n: int, secs: list[float]) -> tuple[float, float, float]:
    """Images/s: median, min, max (the median of the rates, i.e. of the times inverted)."""
    r = [n / s for s in secs]
    return median(r), min(r), max(r)


def label_of(methods: list[Method], s: str) -> str:
    for k, lab in SERIES:
        if k == s and lab:
            return lab
    for m in methods:
        if m.key == s:
            return m.label
    return s


def speed_table(methods: list[Method], times: dict[str, list[float]], n: int) -> str:
    job = median(times["sf_job"]) if "sf_job" in times else None
    wall = median(times["sf_wall"]) if "sf_wall" in times else None
    lines = [
        "| method | images/s: median | min – max | ÷ shmframe job | ÷ shmframe command wall |",
        "|---|---:|---:|---:|---:|",
    ]
    for m in methods:
        if m.unavailable:
            lines.append(f"| {m.label} | unavailable: {m.unavailable} | | | |")
    for s, _ in SERIES:
        if s not in times:
            continue
        md, lo, hi = rate(n, times[s])
        t = median(times[s])
        lines.append(
            f"| {label_of(methods, s)} | {md:.1f} | {lo:.1f} – {hi:.1f} "
            f"| {ratio(t, job)} | {ratio(t, wall)} |"
        )
    return "\n".join(lines)


def ratio(t: float, ref: float | None) -> str:
    return "n/a" if not ref else f"{t / ref:.2f}×"


def quality_table(methods: list[Method], q: dict) -> str:
    lines = [
        "| method | PSNR of its pixels, mean (min) | PSNR of its JPEG files (q90), mean (min) "
        "| JPEG chroma subsampling |",
        "|---|---:|---:|---:|",
    ]
    names = {
        "pillow_plain": "Pillow, naive (bicubic from full resolution; JPEG via `save(quality=90)`)",
        "pillow_draft": "Pillow, draft + LANCZOS (JPEG via `save(quality=90)`)",
        "vips": "vipsthumbnail (pixels: the same command writing PNG)",
        "sf_wall": "**shmframe** (pixels: `--tensor-out`, before encoding)",
    }
    for m in methods:
        if m.key not in q:
            continue
        cells = []
        for kind in ("pixels", "jpeg"):
            v = q[m.key].get(kind)
            cells.append(f"{np.mean(v):.2f} dB ({min(v):.2f})" if v else "n/a")
        cells.append(q[m.key].get("sampling", "?"))
        lines.append(f"| {names.get(m.key, m.label)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def goals(times: dict, q: dict) -> list[tuple[str, bool | None, str]]:
    """(goal, met?, figures); met is None when not measured."""
    out: list[tuple[str, bool | None, str]] = []
    sfq = q.get("sf_wall", {}).get("pixels")
    dq = q.get("pillow_draft", {}).get("pixels")
    if sfq:
        out.append(
            (
                f"shmframe mean PSNR ≥ {GOAL_PSNR_DB:.0f} dB",
                bool(np.mean(sfq) >= GOAL_PSNR_DB),
                f"{np.mean(sfq):.2f} dB",
            )
        )
    else:
        out.append((f"shmframe mean PSNR ≥ {GOAL_PSNR_DB:.0f} dB", None, "not measured"))
    if sfq and dq:
        out.append(
            (
                "shmframe mean PSNR ≥ Pillow draft's",
                bool(np.mean(sfq) >= np.mean(dq)),
                f"{np.mean(sfq):.2f} vs {np.mean(dq):.2f} dB",
            )
        )
    else:
        out.append(("shmframe mean PSNR ≥ Pillow draft's", None, "not measured"))
    wall = median(times["sf_wall"]) if "sf_wall" in times else None
    for key, want, what in (
        ("pillow_draft", GOAL_VS_DRAFT, "Pillow draft"),
        ("pillow_plain", GOAL_VS_PLAIN, "Pillow naive"),
    ):
        goal = f"shmframe images/s ≥ {want:.0f}× {what}'s (command wall time)"
        if wall and key in times:
            x = median(times[key]) / wall
            out.append((goal, bool(x >= want), f"{x:.2f}×"))
        else:
            out.append((goal, None, "not measured"))
    return out


def goals_table(gs) -> str:
    lines = ["| goal | result | measured |", "|---|---|---:|"]
    for g, ok, fig in gs:
        res = "not measured" if ok is None else ("**met**" if ok else "**missed**")
        lines.append(f"| {g} | {res} | {fig} |")
    return "\n".join(lines)


def stage_table(sf: ShmframeResize, times: dict) -> str:
    if not sf.stages or not sf.stages[0]:
        return "shmframe printed no `stages`."
    keys = list(sf.stages[0])
    meds = {k: median([s.get(k, 0.0) for s in sf.stages]) for k in keys}
    total = sum(meds.values())
    lines = ["| stage | CPU seconds (median, summed over workers) | share |", "|---|---:|---:|"]
    for k in keys:
        lines.append(
            f"| {k} | {meds[k]:.3f} | {meds[k] / total * 100:.0f}% |"
            if total
            else f"| {k} | {meds[k]:.3f} | n/a |"
        )
    lines.append(f"| **all stages** | {total:.3f} | 100% |")
    lines.append("")
    extra = [
        f"`seconds` (the job) {median(times['sf_job']):.3f} s",
        f"`total_seconds` (the command) {median(times['sf_total']):.3f} s",
        f"subprocess wall {median(times['sf_wall']):.3f} s",
    ]
    if sf.load and not all(math.isnan(v) for v in sf.load):
        extra.insert(0, f"`load_seconds` {median(sf.load):.3f} s")
    if sf.busy:
        extra.append(
            f"workers busy {median(sf.busy) * 100:.0f}% of the job's wall time "
            "(summed stage CPU ÷ (`seconds` × workers))"
        )
    lines.append("Medians: " + "; ".join(extra) + ".")
    return "\n".join(lines)


def photo_summary(photos: list[Photo], directory: Path, cycles: int) -> str:
    mps = [p.megapixels for p in photos]
    enc = {e: sum(p.encoding == e for p in photos) for e in ("progressive", "baseline")}
    mb = sum(p.path.stat().st_size for p in photos) / 1e6
    by_pkg: dict[str, tuple[int, set[str]]] = {}
    for p in photos:
        n, lic = by_pkg.get(p.package, (0, set()))
        lic.add(p.licence)
        by_pkg[p.package] = (n + 1, lic)
    src = "; ".join(f"{n} from `{k}` ({', '.join(sorted(lic))})" for k, (n, lic) in by_pkg.items())
    try:
        shown = directory.relative_to(ROOT)
    except ValueError:
        shown = directory
    return (
        f"{len(photos)} distinct photographs in `{shown}` ({mb:.1f} MB of JPEG, "
        f"{min(mps):.1f}–{max(mps):.1f} megapixels, median {median(mps):.1f}; "
        f"{enc['progressive']} progressive, {enc['baseline']} baseline), made by "
        f"`datasets/photos.sh` from Debian packages: {src}. Each repetition processes "
        f"{len(photos) * cycles} images"
        + (f": the set {cycles} times over (copies named c0-…, c1-…)." if cycles > 1 else ".")
    )


def versions(sf: ShmframeResize) -> dict[str, str]:
    import PIL
    from PIL import features

    v = {
        "python": platform.python_version(),
        "Pillow": PIL.__version__,
        "libjpeg (Pillow's)": str(features.version("jpg")),
    }
    try:
        v["vipsthumbnail"] = (
            subprocess.run(["vips", "--version"], capture_output=True, text=True).stdout.strip()
            or "?"
        )
    except OSError:
        v["vipsthumbnail"] = "not available"
    v["numpy"] = np.__version__
    try:
        import pyarrow

        v["pyarrow"] = pyarrow.__version__
    except ImportError:
        v["pyarrow"] = "not available"
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "ipc", "engine"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        v["shmframe"] = head + (" + uncommitted changes" if dirty else "")
    except OSError:
        v["shmframe"] = "?"
    if sf.unavailable:
        v["shmframe"] += f" ({sf.unavailable})"
    return v


NOTES = """\
What each row does (all write 256x256 JPEG files at quality 90, aspect ratio not kept, into a
fresh directory per repetition, from the same input directory in the page cache):

* **Pillow, naive**: the seed behaviour, `Image.open(p).resize((256, 256)).save(out,
  quality=90)` in a `multiprocessing.Pool(N)` (fork, started before the run and reused,
  `chunksize=1`). Full-resolution decode, Pillow's default filter (bicubic), no EXIF
  orientation. Quality 90 is added so every method pays for the same encoding.
* **Pillow, draft + LANCZOS**: the same pool; `im.draft("RGB", (256, 256))` lets libjpeg
  scale by 1/2, 1/4 or 1/8 inside the decoder (never below 256 on either side), then
  `ImageOps.exif_transpose`, `convert("RGB")` and `resize((256, 256), LANCZOS)`. The
  orientation step is there so that it does what the reference does; in this photo set every
  EXIF Orientation is 1 or absent, so it changes no pixel.
* **vipsthumbnail** (libvips, shrink-on-load, then its Lanczos-3 reduce; auto-rotates by
  EXIF): `--size 256x256!` (`!` = exact size), the inputs split round-robin over N processes
  started together, each with `VIPS_CONCURRENCY=1` (one file after another per process is
  how it parallelises best; process start is included, once per process).
* **shmframe**: `target/release/shmframe resize IN OUT --size 256x256 --fit exact --filter
  lanczos3 --format jpeg --quality 90 --workers N --json`, one command per repetition (its
  pool start included). `seconds` is the job as the command measures it, `total_seconds`
  the whole command, and the subprocess wall time adds exec and exit. The goals use the wall
  time, the least favourable figure.

Checked in every repetition before the time counts: one output per input, named after it,
each a JPEG that decodes to 256x256. Ratios are the method's median time divided by
shmframe's: above 1 means slower than shmframe.

Quality: the reference for each photo is Pillow's full-resolution decode, EXIF orientation
applied, RGB, resized with `resize((256, 256), LANCZOS, reducing_gap=None)`. PSNR is over
all RGB uint8 values with peak 255, per photo, then averaged over the photos (the grey photo
is compared as RGB). "Pixels" are each method's image before JPEG encoding (shmframe:
`--tensor-out`, an Arrow `fixed_shape_tensor` column read with pyarrow; vipsthumbnail: the
same command writing PNG); "JPEG files" decode what the method writes at quality 90. That
column includes each encoder's own choices: at quality 90 libvips turns chroma subsampling
off (4:4:4) while Pillow keeps 4:2:0, which costs Pillow about 2 dB there (the table shows
what each method's files use).
"""


def section(ctx, methods, times, q, sf, photos, img_file) -> str:
    n = ctx["n_images"]
    mi = ctx["machine"]
    L = [BEGIN, "## Image resizing", ""]
    L.append(
        f"Run on {ctx['date']} with `benches/compare/images.py{' --quick' if ctx['quick'] else ''}` "
        f"({ctx['elapsed']:.0f} s in all; `benches/compare/run.sh{' --quick' if ctx['quick'] else ''}` "
        f"runs it), {ctx['reps']} repetitions after {ctx['warmup']} warm-up, every method on "
        f"{ctx['workers']} cores ({mi['cpu']}, {mi['affinity']} usable, {mi['memory']}, "
        f"Linux {mi['kernel']}; 1-minute load average {ctx['loadavg']:.2f} at the start, well "
        "above 0 when other work shared the machine)."
    )
    L.append("")
    L.append(photo_summary(photos, ctx["photos_dir"], ctx["cycles"]))
    L.append("")
    L.append("| | |")
    L.append("|---|---|")
    for k, v in ctx["versions"].items():
        L.append(f"| {k} | {v} |")
    L.append("")
    L.append(NOTES)
    L.append(f"### Throughput, {n} images per repetition")
    L.append("")
    L.append(speed_table(methods, times, n))
    L.append("")
    if img_file is not None:
        L.append(f"![images/s by method](img/{img_file.name})")
        L.append("")
    L.append(f"### Quality against the full-resolution Lanczos reference, {len(photos)} photos")
    L.append("")
    L.append(quality_table(methods, q))
    L.append("")
    L.append("### Goals (image issue)")
    L.append("")
    L.append(goals_table(goals(times, q)))
    L.append("")
    L.append("### Where shmframe's time goes")
    L.append("")
    L.append(
        "`stages` from its `--json`: CPU seconds per stage summed over the workers, median over "
        "the repetitions."
    )
    L.append("")
    L.append(stage_table(sf, times))
    L.append("")
    L.append(END)
    return "\n".join(L)


def write_section(doc: Path, text: str) -> None:
    """Replaces the marked section of `doc`. A doc without one (written by an older
    compare.py) gets it in place of its "Not compared yet" image placeholder, or at the end."""
    old = doc.read_text() if doc.exists() else ""
    if BEGIN in old and END in old.split(BEGIN, 1)[1]:
        head, rest = old.split(BEGIN, 1)
        new = head + text + rest.split(END, 1)[1]
    elif "\n## Not compared yet\n" in old:
        head, rest = old.split("\n## Not compared yet\n", 1)
        nxt = rest.find("\n## ")
        tail = rest[nxt:] if nxt >= 0 else ""
        new = head.rstrip("\n") + "\n\n" + text + "\n" + tail
    else:
        new = old.rstrip("\n") + ("\n\n" if old else "") + text + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(new)


def plot(times: dict, n: int, workers: int, img_dir: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k, _ in SERIES if k in times]
    med, lo, hi = [], [], []
    for k in keys:
        m, a, b = rate(n, times[k])
        med.append(m)
        lo.append(m - a)
        hi.append(b - m)
    colors = ["#d62728" if k.startswith("sf_") else "#1f77b4" for k in keys]
    fig, ax = plt.subplots(figsize=(6.4, 0.28 * len(keys) + 1.1), dpi=100)
    y = np.arange(len(keys))[::-1]
    ax.barh(y, med, xerr=[lo, hi], color=colors, capsize=2)
    ax.set_yticks(y, [SHORT[k] for k in keys], fontsize=8)
    ax.set_xlabel("images/s (median, bars: min–max)", fontsize=8)
    ax.set_title(f"Photo to 256x256 JPEG, {n} images per run, {workers} cores", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    img_dir.mkdir(parents=True, exist_ok=True)
    f = img_dir / "compare-images.png"
    fig.savefig(f)
    plt.close(fig)
    return f


# ----------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------


def main() -> int:
    ncpu = len(os.sched_getaffinity(0))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="each photo once, 3 repetitions")
    ap.add_argument("--workers", type=int, default=ncpu, help="processes per method")
    ap.add_argument(
        "--photos", type=Path, default=PHOTOS, help="photo directory (datasets/photos.sh)"
    )
    ap.add_argument("--reps", type=int, help="timed repetitions (quick 3, full 7)")
    ap.add_argument(
        "--cycles", type=int, help="times the photo set is repeated per run (quick 1, full 4)"
    )
    ap.add_argument(
        "--only",
        action="append",
        choices=["pillow_plain", "pillow_draft", "vips", "shmframe"],
        help="run only this method (repeatable; no docs are written)",
    )
    ap.add_argument("--shmframe", type=Path, default=SHMFRAME, help="the shmframe binary")
    ap.add_argument(
        "--doc", type=Path, default=DOC, help="markdown file whose image section is rewritten"
    )
    ap.add_argument("--no-docs", action="store_true", help="print only; leave docs/ alone")
    ap.add_argument("--verbose", action="store_true", help="log every measurement")
    a = ap.parse_args()
    n = a.workers
    reps = a.reps or (3 if a.quick else 7)
    cycles = a.cycles or (1 if a.quick else 4)
    warmup = 1
    started = time.perf_counter()
    loadavg = os.getloadavg()[0]

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)

    if not a.photos.is_dir():
        print(f"{a.photos} does not exist: run datasets/photos.sh first", file=sys.stderr)
        return 2
    photos = load_photos(a.photos)
    if not photos:
        print(f"{a.photos} holds no photos: run datasets/photos.sh", file=sys.stderr)
        return 2

    # The pool first, while this process has one thread (the fork rule).
    pool = mp.get_context("fork").Pool(n)
    tmp = Path(tempfile.mkdtemp(prefix="shmframe-images-"))
    failed: Exception | None = None
    try:
        methods: list[Method] = [
            PillowPool("pillow_plain", pool, n),
            PillowPool("pillow_draft", pool, n),
            VipsThumbnail(n),
            ShmframeResize(a.shmframe, n),
        ]
        sf = methods[-1]
        assert isinstance(sf, ShmframeResize)
        wanted = set(a.only or ["pillow_plain", "pillow_draft", "vips", "shmframe"])
        shown = [m for m in methods if ("shmframe" if m.key == "sf_wall" else m.key) in wanted]
        live = [m for m in shown if not m.unavailable]
        for m in methods:
            if m.unavailable:
                log(f"skipping {NAME[m.key]}: {m.unavailable}")
        if not live:
            log("nothing to measure")
            return 2
        if loadavg > 0.5:
            log(
                f"note: load average {loadavg:.2f} before the run; other processes share these "
                "cores, so every method's figures come out low"
            )
        inputs = stage_inputs(photos, cycles, tmp / "in")
        mps = [p.megapixels for p in photos]
        log(
            f"{len(photos)} photos ({min(mps):.1f}-{max(mps):.1f} MP) x {cycles} = {len(inputs)} "
            f"images per run; {warmup} warm-up + {reps} reps; {n} workers"
        )
        log("== throughput (interleaved)")
        times = measure_all(live, inputs, tmp, warmup, reps, log, a.verbose)
        q = measure_quality(live, photos, pool, tmp, log, a.verbose)
    except WrongAnswer as e:
        failed = e
    finally:
        pool.terminate()
        pool.join()
        shutil.rmtree(tmp, ignore_errors=True)
    if failed is not None:
        print(f"WRONG ANSWER: {failed}", file=sys.stderr)
        print("images.py: the run failed; no timing of it is reported.", file=sys.stderr)
        return 1

    n_images = len(inputs)
    ctx = {
        "quick": a.quick,
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "machine": machine_info(),
        "versions": versions(sf),
        "elapsed": time.perf_counter() - started,
        "reps": reps,
        "warmup": warmup,
        "workers": n,
        "cycles": cycles,
        "photos_dir": a.photos.resolve(),
        "n_images": n_images,
        "loadavg": loadavg,
    }
    out = [
        f"\n### Image resizing: {n_images} images per run ({len(photos)} photos), {reps} reps, {n} workers\n"
    ]
    out.append(speed_table(shown, times, n_images))
    out.append("\n### Quality (PSNR against full-resolution LANCZOS)\n")
    out.append(quality_table(live, q))
    out.append("\n### Goals\n")
    out.append(goals_table(goals(times, q)))
    if sf in live:
        out.append("\n### shmframe stages\n")
        out.append(stage_table(sf, times))
    print("\n".join(out))

    complete = not a.only and all(not m.unavailable for m in methods)
    if complete and not a.no_docs:
        img = plot(times, n_images, n, a.doc.parent / "img")
        write_section(a.doc, section(ctx, methods, times, q, sf, photos, img))
        log(f"wrote the image section of {a.doc} and {img}")
    elif not a.no_docs:
        why = "--only" if a.only else "; ".join(m.unavailable for m in methods if m.unavailable)
        log(f"partial run ({why}): {a.doc} left as it was")
    log(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
