import os
import pathlib

import pytest
import shmframe


@pytest.fixture
def segdir(tmp_path: pathlib.Path) -> pathlib.Path:
    """A private segment directory: whatever a test leaves behind is visible there."""
    d = tmp_path / "seg"
    d.mkdir()
    return d


@pytest.fixture
def engine(segdir: pathlib.Path):
    with shmframe.Engine(workers=2, segment_dir=segdir) as e:
        yield e
    # The engine's own segments (control, recycled outputs) are gone once it is closed.
    left = [p.name for p in segdir.iterdir() if ".ctl" in p.name]
    assert not left, left


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return [a.decode() for a in f.read().split(b"\0") if a]


os.environ.setdefault("RUST_BACKTRACE", "0")
