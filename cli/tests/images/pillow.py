"""Files written by Pillow and Pillow's own results on them, for cli/tests/images.rs.

The Rust test runs this with the python named by SHMFRAME_PYTHON (numpy and Pillow needed):

  pillow.py orientation DIR W H
      DIR/in/: a 96x64 picture saved with every EXIF orientation 1-8 in every format that
      carries one, each as Pillow (or, for what Pillow does not write, Pillow's file with
      its chunks moved) writes it; DIR/ref/STEM.rgb: ImageOps.exif_transpose, then a
      LANCZOS resize to W x H, RGB bytes; DIR/manifest.json: [[stem, kind, orientation]].
  pillow.py alpha DIR W H
      DIR/in/alpha.png: a 48x32 RGBA picture with fully transparent pixels of a loud colour
      beside opaque and half-transparent ones; DIR/ref/: Pillow's LANCZOS resize of it to
      W x H as RGBA (keep.rgba, premultiplied resampling), straight-alpha resampling for
      contrast (straight.rgba), and composited over white then resized (flatten.rgb).
"""

import io
import json
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin

XMP = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="{}"/></rdf:RDF></x:xmpmeta>'
)


def picture(w, h):
    """Smooth (kind to JPEG) and asymmetric along both axes and both diagonals."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 30 + 200 * x / (w - 1)
    g = 20 + 180 * (y / (h - 1)) ** 1.5
    b = 40 + 190 * np.exp(-(((x - 0.22 * w) / (0.18 * w)) ** 2 + ((y - 0.3 * h) / (0.25 * h)) ** 2))
    return Image.fromarray(np.dstack([r, g, b]).round().astype(np.uint8), "RGB")


def exif(o):
    e = Image.Exif()
    e[0x0112] = o
    return e


def saved(im, fmt, **kw):
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


def png_chunks(data):
    out, i = [], 8
    while i < len(data):
        (n,) = struct.unpack(">I", data[i : i + 4])
        out.append((data[i + 4 : i + 8], data[i + 8 : i + 8 + n]))
        i += 12 + n
    return out


def png_build(chunks):
    def chunk(kind, body):
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    return b"\x89PNG\r\n\x1a\n" + b"".join(chunk(k, b) for k, b in chunks)


def png_exif_after_idat(data):
    """Pillow writes eXIf before the image data; exiftool and others append it after."""
    chunks = png_chunks(data)
    ex = [c for c in chunks if c[0] == b"eXIf"]
    rest = [c for c in chunks if c[0] != b"eXIf"]
    return png_build(rest[:-1] + ex + rest[-1:])


def webp_chunks(data):
    out, i = [], 12
    while i + 8 <= len(data):
        kind = data[i : i + 4]
        (n,) = struct.unpack("<I", data[i + 4 : i + 8])
        out.append([kind, data[i + 8 : i + 8 + n]])
        i += 8 + n + (n & 1)
    return out


def webp_build(chunks):
    body = b"WEBP" + b"".join(
        k + struct.pack("<I", len(b)) + b + (b"\0" if len(b) & 1 else b"") for k, b in chunks
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def webp_exif_header(data):
    """An EXIF chunk that starts with 'Exif\\0\\0': the JPEG APP1 payload copied whole, as
    some writers do (Pillow itself strips the header)."""
    chunks = webp_chunks(data)
    for c in chunks:
        if c[0] == b"EXIF":
            c[1] = b"Exif\0\0" + c[1]
    return webp_build(chunks)


def orientation_files(pic, o):
    """(kind, extension, bytes) of every way a file can carry orientation o."""
    ex = exif(o)
    png_raw = PngImagePlugin.PngInfo()
    # ImageMagick's legacy text chunk: hex of the APP1 payload, compressed (zTXt).
    payload = ex.tobytes()
    png_raw.add_text(
        "Raw profile type exif",
        f"\nexif\n{len(payload):8d}\n{payload.hex()}\n",
        zip=True,
    )
    png_xmp = PngImagePlugin.PngInfo()
    png_xmp.add_itxt("XML:com.adobe.xmp", XMP.format(o))
    jpeg = dict(quality=95, subsampling=0)
    png = saved(pic, "PNG", exif=ex)
    lossy = saved(pic, "WEBP", exif=ex, quality=95)
    return [
        ("jpeg", "jpg", saved(pic, "JPEG", exif=ex, **jpeg)),
        ("png", "png", png),
        ("webp-lossy", "webp", lossy),
        ("webp-lossless", "webp", saved(pic, "WEBP", exif=ex, lossless=True)),
        ("png-exif-after-idat", "png", png_exif_after_idat(png)),
        ("png-raw-profile", "png", saved(pic, "PNG", pnginfo=png_raw)),
        ("webp-exif-header", "webp", webp_exif_header(lossy)),
        ("jpeg-xmp", "jpg", saved(pic, "JPEG", xmp=XMP.format(o).encode(), **jpeg)),
        ("png-xmp", "png", saved(pic, "PNG", pnginfo=png_xmp)),
        ("webp-xmp", "webp", saved(pic, "WEBP", xmp=XMP.format(o).encode(), lossless=True)),
    ]


def orientation(out, w, h):
    os.makedirs(f"{out}/in")
    os.makedirs(f"{out}/ref")
    pic = picture(96, 64)
    manifest = []
    for o in range(1, 9):
        for kind, ext, data in orientation_files(pic, o):
            stem = f"{kind}-o{o}"
            path = f"{out}/in/{stem}.{ext}"
            with open(path, "wb") as f:
                f.write(data)
            with Image.open(path) as im:
                shown = ImageOps.exif_transpose(im)
                # Pillow itself must read back what it was given.
                want = (96, 64) if o <= 4 else (64, 96)
                assert shown.size == want, (stem, shown.size)
                ref = shown.convert("RGB").resize((w, h), Image.Resampling.LANCZOS)
            with open(f"{out}/ref/{stem}.rgb", "wb") as f:
                f.write(ref.tobytes())
            manifest.append([stem, kind, o])
    with open(f"{out}/manifest.json", "w") as f:
        json.dump(manifest, f)


def alpha(out, w, h):
    os.makedirs(f"{out}/in")
    os.makedirs(f"{out}/ref")
    sw, sh = 48, 32
    a = np.zeros((sh, sw, 4), np.uint8)
    y, x = np.mgrid[0:sh, 0:sw]
    # Opaque blue-grey on the left, fully transparent loud green on the right, a
    # half-transparent red stripe between, and a transparent magenta dot inside the opaque part.
    a[:, :] = [40, 60, 200, 255]
    a[x >= 26] = [0, 255, 0, 0]
    a[(x >= 22) & (x < 26)] = [220, 40, 40, 128]
    a[(abs(x - 8) < 3) & (abs(y - 16) < 3)] = [255, 0, 255, 0]
    im = Image.fromarray(a, "RGBA")
    im.save(f"{out}/in/alpha.png")
    size = (w, h)
    lanczos = Image.Resampling.LANCZOS
    # Pillow resizes RGBA premultiplied (through mode RGBa).
    keep = im.resize(size, lanczos)
    # Each channel alone: what a resize that ignores alpha gives (colour bleeds).
    straight = Image.merge("RGBA", [c.resize(size, lanczos) for c in im.split()])
    white = Image.new("RGBA", im.size, (255, 255, 255, 255))
    flatten = Image.alpha_composite(white, im).convert("RGB").resize(size, lanczos)
    for name, ref in [("keep.rgba", keep), ("straight.rgba", straight), ("flatten.rgb", flatten)]:
        with open(f"{out}/ref/{name}", "wb") as f:
            f.write(ref.tobytes())


if __name__ == "__main__":
    mode, out, w, h = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    {"orientation": orientation, "alpha": alpha}[mode](out, w, h)
