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


def mapped_file_at(addr: int) -> str | None:
    """The file mapped at `addr` in this process (from /proc/self/maps)."""
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(maxsplit=5)
            lo, hi = (int(v, 16) for v in parts[0].split("-"))
            if lo <= addr < hi:
                return parts[5].strip() if len(parts) == 6 else None
    return None


os.environ.setdefault("RUST_BACKTRACE", "0")
