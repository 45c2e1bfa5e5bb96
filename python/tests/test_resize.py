import os

import numpy as np
import pytest
import shmframe

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402


def gradient(w: int, h: int) -> Image.Image:
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) % 256], axis=-1)
    return Image.fromarray(rgb.astype(np.uint8))


def test_resize_a_folder_into_a_tensor_and_files(engine, tmp_path):
    src = tmp_path / "photos"
    (src / "sub").mkdir(parents=True)
    gradient(640, 480).save(src / "a.jpg", quality=95)
    gradient(300, 200).save(src / "b.png")
    gradient(64, 64).save(src / "sub" / "c.webp", lossless=True)
    (src / "notes.txt").write_text("not an image")
    out = tmp_path / "thumbs"
    r = engine.resize(src, (32, 24), out_dir=out, format="png", recursive=True)
    assert r.images.shape == (4, 24, 32, 3) and r.images.dtype == np.uint8
    assert not r.images.flags.writeable
    assert [p.rsplit("/", 1)[-1] for p in r.paths] == ["a.jpg", "b.png", "notes.txt", "c.webp"]
    assert [(p.rsplit("/", 1)[-1], "image" in why) for p, why in r.failures] == [
        ("notes.txt", True)
    ]
    # Each written file holds the tensor's pixels, and agrees with Pillow's own resize.
    for i, name in [(0, "a.png"), (1, "b.png"), (3, "sub/c.png")]:
        written = np.asarray(Image.open(out / name).convert("RGB"))
        np.testing.assert_array_equal(written, r.images[i])
        ref = np.asarray(
            Image.open(r.paths[i]).convert("RGB").resize((32, 24), Image.Resampling.LANCZOS)
        )
        assert np.abs(ref.astype(int) - r.images[i].astype(int)).mean() < 6
    assert not r.images[2].any()  # the failed row is zeros


def test_resize_options_are_checked(engine, tmp_path):
    gradient(8, 8).save(tmp_path / "a.png")
    with pytest.raises(ValueError, match='unknown fit "stretch"'):
        engine.resize([tmp_path / "a.png"], (4, 4), fit="stretch")
    with pytest.raises(ValueError, match="quality must be 1-100"):
        engine.resize([tmp_path / "a.png"], (4, 4), quality=0)
    r = engine.resize([tmp_path / "a.png"], (4, 4), keep_alpha=True)
    assert r.images.shape == (1, 4, 4, 4)
    assert isinstance(r, shmframe.ResizeResult)


def test_resize_outputs_are_the_files_the_engine_writes(engine, tmp_path):
    from shmframe import _shmframe

    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for name in ("a.jpg", "sub/b.png"):
        gradient(16, 16).save(src / name)
    paths = [str(src / "a.jpg"), str(src / "sub" / "b.png")]
    out = tmp_path / "out"
    planned = _shmframe.resize_outputs(paths, str(out), "webp", str(src))
    engine.resize(src, (8, 8), out_dir=out, format="webp", recursive=True)
    written = sorted(str(p) for p in out.rglob("*") if p.is_file())
    assert sorted(map(str, planned)) == written
    # Two inputs with one output: the engine's own refusal, before any work.
    gradient(16, 16).save(src / "a.png")
    with pytest.raises(shmframe.InvalidInput, match="both would be written to"):
        _shmframe.resize_outputs([str(src / "a.jpg"), str(src / "a.png")], str(out))
    kept = _shmframe.resize_outputs(
        [str(src / "a.jpg"), str(src / "a.png")], str(out), keep_extension=True
    )
    assert [os.path.basename(p) for p in kept] == ["a.jpg.jpg", "a.png.jpg"]
    tmp = _shmframe.resize_temporary_path(str(out / "a.webp"), 1234)
    assert str(tmp) == str(out / ".a.webp.shmframe-tmp.1234")
