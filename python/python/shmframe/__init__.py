"""shmframe: zero-copy shared-memory compute on numpy arrays with a pool of worker processes.

Data goes into named shared-memory segments laid out as Arrow IPC files, a persistent pool of
worker processes maps them read-only and computes row-wise results into output segments, and
the results come back as read-only numpy views of those segments: no pickling, no copies.

>>> import numpy as np, shmframe
>>> x = np.random.default_rng(0).standard_normal((100_000, 32))
>>> with shmframe.Engine(workers=2) as engine:
...     norms = engine.run("l2-norm", x)
>>> bool(np.allclose(norms, np.linalg.norm(x, axis=1)))
True
"""

from shmframe._engine import INLINE_BYTES, KERNELS, Engine, ResizeResult, sweep_stale
from shmframe._errors import (
    Error,
    InvalidInput,
    NotFound,
    SegmentSpace,
    Timeout,
    WorkerDied,
)
from shmframe._shmframe import Frame, list_image_files

__all__ = [
    "INLINE_BYTES",
    "KERNELS",
    "Engine",
    "Error",
    "Frame",
    "InvalidInput",
    "NotFound",
    "ResizeResult",
    "SegmentSpace",
    "Timeout",
    "WorkerDied",
    "list_image_files",
    "sweep_stale",
]
