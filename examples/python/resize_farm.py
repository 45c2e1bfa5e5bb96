"""Resizing a folder of photos: a ``Pool`` of Pillow workers, then shmframe, in one run.

The Pillow way is the usual farm: each worker opens a file, applies its EXIF orientation,
resizes it and saves a JPEG. shmframe decodes (at a reduced DCT scale where it can), resizes
and encodes with its own workers and also returns every image's pixels as one
``uint8 [N, H, W, 3]`` array.

Run: ``python examples/python/resize_farm.py IN_DIR [SIZE] [WORKERS]`` (default 256 and 2
workers). Prints images per second for each way.
"""

import os
import sys
import tempfile
import time
from multiprocessing import Pool

from PIL import Image, ImageOps

import shmframe

SIZE = int(sys.argv[2]) if len(sys.argv) > 2 else 256


def _pillow(args):
    src, dst = args
    try:
        with Image.open(src) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            im.resize((SIZE, SIZE), Image.Resampling.LANCZOS).save(dst, quality=90)
        return None
    except Exception as e:  # a bad file fails alone, as in shmframe
        return (src, str(e))


def main():
    src = sys.argv[1]
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    # The folder's files, as shmframe lists them (hidden ones and subfolders skipped).
    files = [os.fspath(p) for p in shmframe.list_image_files(src, False)]
    with tempfile.TemporaryDirectory() as out:
        tasks = [(f, os.path.join(out, f"{i}.jpg")) for i, f in enumerate(files)]
        with Pool(workers) as pool:
            t = time.perf_counter()
            failed = [r for r in pool.map(_pillow, tasks) if r]
            t_pil = time.perf_counter() - t
        with shmframe.Engine(workers=workers) as engine:
            t = time.perf_counter()
            r = engine.resize(src, (SIZE, SIZE), out_dir=os.path.join(out, "sf"))
            t_sf = time.perf_counter() - t
    n = len(files)
    print(f"{n} images to {SIZE}x{SIZE}, {workers} workers")
    print(f"Pillow in a Pool: {n / t_pil:8.1f} images/s ({len(failed)} failed)")
    print(f"shmframe:         {n / t_sf:8.1f} images/s ({len(r.failures)} failed)")
    print(f"speed-up: {t_pil / t_sf:.2f}x; pixels as one array: {r.images.shape}")


if __name__ == "__main__":
    main()
