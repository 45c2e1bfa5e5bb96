"""The :class:`Engine`: a pool of worker processes and the jobs it runs."""

from __future__ import annotations

import concurrent.futures
import os
import sys
import threading
import weakref
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from shmframe import _shmframe
from shmframe._errors import InvalidInput


class ResizeResult(NamedTuple):
    """What :meth:`Engine.resize` returns."""

    #: ``uint8 [N, height, width, channels]``, a read-only view of the output segment; the
    #: rows of failed images are zeros.
    images: np.ndarray
    #: The input paths, in row order.
    paths: list[str]
    #: ``(path, reason)`` of each image that failed (corrupt, truncated, not an image, …).
    failures: list[tuple[str, str]]
    #: Seconds of the job (decode, resize, encode, write on the workers).
    seconds: float


if TYPE_CHECKING:
    from collections.abc import Sequence

    from shmframe._shmframe import Frame

#: The row kernels :meth:`Engine.run` knows (the engine's own list).
KERNELS: tuple[str, ...] = tuple(_shmframe.KERNELS)

#: :meth:`Engine.run` always computes a numpy array of at most this many bytes in the calling
#: process (the workers' own kernel code, same results) instead of copying it into shared
#: memory for the pool: the copy and the dispatch cost more than the pool can save.
INLINE_BYTES = 16 << 20

#: What copying an ordinary array into a fresh segment costs, per byte and copying thread, in
#: passes of a built-in kernel over the same bytes on one core: tmpfs pages are allocated,
#: zeroed and mapped one by one, which on 4 KiB pages is far slower than reading them
#: (docs/BENCHMARKS.md "Python package", 2 cores: `frame(x)` took 0.92 s per GiB with 2
#: threads, the L2 kernel inline 0.24 s per GiB: 2 x 0.92 / 0.24, rounded up to 8).
COPY_COST_4K = 8.0
#: The same on a tmpfs mounted ``huge=`` (2 MiB pages): 0.29 s per GiB with 2 threads against
#: 0.20 s for the kernel, rounded up to 3.
COPY_COST_HUGE = 3.0

# A worker is this interpreter started afresh (-I: isolated, -S: no site), loading the
# native module by its path and running the worker loop. It never inherits the calling
# interpreter's threads (numpy's BLAS starts some at import), so no fork is involved.
_WORKER_CODE = (
    "import importlib.util as u, sys\n"
    "s = u.spec_from_file_location('shmframe._shmframe', sys.argv[1])\n"
    "m = u.module_from_spec(s)\n"
    "s.loader.exec_module(m)\n"
    "code = m._worker_main()\n"
    "if code is None:\n"
    "    sys.exit('shmframe worker: started without ' + m.WORKER_ENV)\n"
    "sys.exit(code)\n"
)


def _worker_command() -> tuple[str, list[str]]:
    return sys.executable, ["-I", "-S", "-c", _WORKER_CODE, _shmframe.__file__]


def sweep_stale(segment_dir: str | os.PathLike | None = None) -> list[str]:
    """Remove the segments whose owning process is gone, as ``shmframe gc`` does.

    A process that dies without closing its engine has them removed by the engine's janitor;
    this is for when the janitor died too (Ray kills an actor's children with the actor).
    Segments of live processes and of ``shmframe load`` are never touched.

    Args:
        segment_dir: the directory (default: ``$SHMFRAME_DIR``, else ``/dev/shm``).

    Returns:
        The names removed.

    """
    d = segment_dir or os.environ.get("SHMFRAME_DIR") or "/dev/shm"
    return _shmframe.sweep_stale(os.fspath(d))


def _cores() -> int:
    """The cores this process may run on (what the engine's copy threads are counted from)."""
    return len(os.sched_getaffinity(0))


def _on_huge_pages(path: str) -> bool:
    """Whether ``path`` is on a tmpfs mounted with ``huge=always`` or ``huge=within_size``."""
    best, huge = "", False
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                _, mnt, fs, opts = line.split()[:4]
                if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(
                    best
                ):
                    best = mnt
                    huge = fs == "tmpfs" and any(
                        o in ("huge=always", "huge=within_size") for o in opts.split(",")
                    )
    except OSError:
        return False
    return huge


def _born_in_shared_memory(a: object) -> Frame | None:
    """The frame of an array made by :meth:`Engine.empty` (the whole array, unchanged)."""
    if not isinstance(a, np.ndarray):
        return None
    base = a.base
    if not isinstance(base, _shmframe.WritableView):
        return None
    whole = base.__array_interface__
    if (
        a.__array_interface__["data"][0] != base.address
        or a.shape != tuple(whole["shape"])
        or a.dtype != np.dtype(whole["typestr"])
        or not a.flags.c_contiguous
    ):
        return None
    return base.frame


def _close(native: _shmframe.Engine, executor: list[concurrent.futures.Executor]) -> None:
    for ex in executor:
        ex.shutdown(wait=True, cancel_futures=True)
    native.close()


class Engine:
    """A pool of worker processes over shared memory.

    Use it as a context manager, or call :meth:`close`. Letting it go (garbage collection,
    interpreter exit) also stops its workers and removes its segments; results already
    returned stay valid.

    Args:
        workers: worker processes (default: the available cores).
        segment_dir: where segments live (default: ``$SHMFRAME_DIR``, else ``/dev/shm``).

    Workers are started as new interpreters (``python -I -S``) that load only the native
    module, never by forking this process, so threads in this interpreter are harmless.

    """

    def __init__(self, workers: int | None = None, *, segment_dir: str | os.PathLike | None = None):
        if workers is not None and workers < 1:
            raise InvalidInput(f"workers must be at least 1, got {workers}")
        program, args = _worker_command()
        self._native = _shmframe.Engine(
            program, args, workers, None if segment_dir is None else os.fspath(segment_dir)
        )
        self._n_workers = self._native.workers
        self._huge_pages = _on_huge_pages(
            os.path.realpath(segment_dir or os.environ.get("SHMFRAME_DIR") or "/dev/shm")
        )
        # The thread that runs submitted jobs, made on first use (a list the finalizer shares).
        self._executor: list[concurrent.futures.Executor] = []
        self._executor_lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _close, self._native, self._executor)

    def close(self) -> None:
        """Stop the workers and remove the engine's own segments. Idempotent."""
        self._finalizer()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run."""
        return self._native.closed

    @property
    def workers(self) -> int:
        """The number of worker processes."""
        return self._native.workers

    def worker_pids(self) -> list[int]:
        """The pids of the live worker processes."""
        return self._native.worker_pids()

    def frame(self, data: np.ndarray | str | os.PathLike) -> Frame:
        """Put data into shared memory as a :class:`Frame`.

        Args:
            data: an array made by :meth:`empty` (used in place: no copy); a 2-D float32 or
                float64 numpy array (a C-contiguous one is copied once into a segment, by
                several threads when it is large; any other layout is first converted by
                ``np.ascontiguousarray``, one more copy); anything with ``__arrow_c_array__``
                or ``__arrow_c_stream__`` (the Arrow PyCapsule interface: a pyarrow Table,
                RecordBatch, Array or ChunkedArray, a polars DataFrame or Series; copied once,
                no pyarrow needed for polars; a struct's fields become columns, any other
                array the matrix column ``x``); the path of a file (``.npy``,
                Arrow IPC, Parquet, CSV; read by its content, mapped in place where the
                format allows), or ``"shm:NAME"`` for a segment made by ``shmframe load``.

        Raises:
            InvalidInput: wrong dimensions or dtype (the message names them), a corrupt file.
            NotFound: a missing file or segment.

        """
        if isinstance(data, (str, os.PathLike)):
            return self._native.frame_from_source(os.fspath(data))
        born = _born_in_shared_memory(data)
        if born is not None:
            return born
        if hasattr(data, "__arrow_c_array__"):
            return self._native.frame_from_arrow_array(data)
        if hasattr(data, "__arrow_c_stream__"):
            if hasattr(data, "to_frame") and not hasattr(data, "columns"):
                data = data.to_frame()  # a polars (or pandas) Series: one column
            elif hasattr(data, "chunks") and hasattr(data, "combine_chunks"):
                data = data.combine_chunks()  # a pyarrow ChunkedArray: one array
                return self._native.frame_from_arrow_array(data)
            return self._native.frame_from_arrow(data)
        if not isinstance(data, np.ndarray):
            raise InvalidInput(
                f"expected a numpy array, a path or 'shm:NAME', got {type(data).__name__}"
            )
        return self._native.frame_from_numpy(self._checked_matrix(data))

    @staticmethod
    def _checked_matrix(data: np.ndarray) -> np.ndarray:
        """``data`` as a C-contiguous 2-D float array, or :class:`InvalidInput` naming why not."""
        if data.ndim != 2:
            raise InvalidInput(f"expected a 2-D array (rows, cols), got shape {data.shape}")
        if data.dtype not in (np.float32, np.float64):
            raise InvalidInput(f"expected dtype float32 or float64, got {data.dtype}")
        if data.shape[1] == 0:
            raise InvalidInput(f"expected at least one column, got shape {data.shape}")
        if not data.flags.c_contiguous:
            data = np.ascontiguousarray(data)
        return data

    def empty(self, shape: tuple[int, int], dtype: np.typing.DTypeLike = np.float64) -> np.ndarray:
        """A new writable ``(rows, cols)`` array that lives in shared memory, filled with zeros.

        Produce data straight into it (``np.copyto``, ``out=`` arguments, reading a file into
        it) and hand it to :meth:`run` or :meth:`frame`: the workers read it where it is, so
        it is never copied. The array keeps its segment alive; slices of it are ordinary
        views (only the whole array is recognised as a frame; a slice is copied).

        The workers read the values when the job runs: write before you call :meth:`run`, as
        with any array shared between threads. Writes that race a job give that job a mix of
        old and new values, never a crash.

        Args:
            shape: ``(rows, cols)``.
            dtype: ``float32`` or ``float64``.

        Raises:
            InvalidInput: another shape or dtype.
            SegmentSpace: the segment directory is full.

        """
        dt = np.dtype(dtype)
        if dt not in (np.float32, np.float64):
            raise InvalidInput(f"expected dtype float32 or float64, got {dt}")
        if len(shape) != 2 or shape[1] < 1 or shape[0] < 0:
            raise InvalidInput(f"expected a shape (rows, cols) with cols >= 1, got {shape}")
        _, view = self._native.empty(int(shape[0]), int(shape[1]), dt.name)
        return np.asarray(view)

    def pool_can_win(self, nbytes: int) -> bool:
        """Whether :meth:`run` sends an ordinary numpy array of ``nbytes`` to the workers.

        Never at most :data:`INLINE_BYTES`. Above, when copying it in (by
        ``min(cores, 8, nbytes / 64 MiB)`` threads, at :data:`COPY_COST_4K` or, on a
        ``huge=`` tmpfs, :data:`COPY_COST_HUGE` kernel passes per byte and thread) plus the
        workers' share of the kernel takes less than one pass in this process. On 4 KiB pages
        that is never (even 8 threads copy slower than one core computes); on a ``huge=``
        tmpfs with 8 cores and 8 workers, from 256 MiB.
        """
        if nbytes <= INLINE_BYTES:
            return False
        cost = COPY_COST_HUGE if self._huge_pages else COPY_COST_4K
        threads = max(1, min(_cores(), 8, nbytes // (64 << 20)))
        return cost / threads + 1 / self._n_workers < 1

    def ping(self) -> float:
        """Run the empty job (every worker wakes, joins, leaves): the pool's round trip.

        Returns:
            The job's seconds as the engine measured them.

        """
        return self._native.ping()

    def run(
        self,
        kernel: str,
        data: Frame | np.ndarray | str | os.PathLike,
        *,
        columns: Sequence[str] | None = None,
        query: Sequence[float] | np.ndarray | None = None,
        deadline: float | None = None,
        chunk_rows: int | None = None,
        inline: bool | None = None,
        _test_chunk_sleep_ms: int | None = None,
    ) -> np.ndarray:
        """Run a row kernel and return its result as a read-only numpy view.

        Args:
            kernel: one of :data:`KERNELS`.
            data: a :class:`Frame`, or anything :meth:`frame` takes.
            columns: the columns to read (default: the matrix column, else every numeric
                column).
            query: the query vector of ``dot`` and ``cosine``.
            deadline: cancel the job after this many seconds (raises :class:`Timeout`).
            chunk_rows: rows per chunk the workers claim (default: about 8 chunks per worker).
            inline: for an ordinary numpy array (not a frame, not from :meth:`empty`),
                compute in this process rather than in the workers (same code, same results).
                Default: whenever the pool cannot win, which a one-off call on private memory
                rarely lets it: the array must first be copied into shared memory, and that
                costs more than the kernel itself (see :meth:`pool_can_win`). ``False``
                always uses the workers. Arrays you reuse belong in a :meth:`frame`, and
                arrays you produce in :meth:`empty`: then nothing is copied and the pool wins.

        Ctrl-C (SIGINT) during a job raises ``KeyboardInterrupt`` within about 30 ms: the job
        is cancelled and the engine stays usable.

        Returns:
            A 1-D array (one value per row) or, for ``normalize``, a 2-D array, of the
            input's float type. It is a read-only view of the output segment: assigning to it
            raises ``ValueError``, and the segment lives exactly as long as the array does.
            An inline result (see ``inline``) is an ordinary array, also read-only.

        """
        if kernel not in KERNELS:
            raise InvalidInput(f"unknown kernel {kernel!r} (kernels: {', '.join(KERNELS)})")
        q = None if query is None else [float(v) for v in np.asarray(query, dtype=np.float64)]
        if (
            isinstance(data, np.ndarray)
            and columns is None
            and inline is not False
            and (inline or not self.pool_can_win(data.nbytes))
            and _born_in_shared_memory(data) is None
        ):
            x = self._checked_matrix(data)
            if self.closed:
                raise RuntimeError("the engine is closed")
            out = _shmframe.run_inline(kernel, x, q)
            out.flags.writeable = False  # read-only, as every result is
            return out
        frame = data if isinstance(data, _shmframe.Frame) else self.frame(data)
        out = self._native.run(
            kernel,
            frame,
            None if columns is None else list(columns),
            q,
            chunk_rows,
            deadline,
            _test_chunk_sleep_ms,
        )
        return out.to_numpy()

    def resize(
        self,
        images: str | os.PathLike | Sequence[str | os.PathLike],
        size: tuple[int, int],
        *,
        out_dir: str | os.PathLike | None = None,
        format: str = "jpeg",
        quality: int = 90,
        fit: str = "exact",
        filter: str = "lanczos3",
        keep_alpha: bool = False,
        recursive: bool = False,
        keep_extension: bool = False,
        max_pixels: int = 100_000_000,
    ) -> ResizeResult:
        """Resize images with the workers, as ``shmframe resize`` does.

        Args:
            images: a folder (its files, sorted; below it too with ``recursive``) or a list of
                paths. JPEG, PNG and WebP, turned upright by their EXIF orientation.
            size: ``(width, height)`` of the output.
            out_dir: also write each image there, mirroring the names below the folder.
            format: of the written files: ``"jpeg"``, ``"png"`` or ``"webp"`` (lossless).
            quality: JPEG quality, 1-100.
            fit: ``"exact"`` (stretch), ``"contain"`` (letterbox) or ``"cover"`` (crop).
            filter: ``"lanczos3"``, ``"bicubic"``, ``"bilinear"`` or ``"nearest"``.
            recursive: take the folder's subfolders too.
            keep_alpha: RGBA out (resampled premultiplied) instead of RGB over white.
            keep_extension: name outputs ``a.png.jpg`` rather than ``a.jpg`` (lets ``a.jpg``
                and ``a.png`` of one folder both through).
            max_pixels: refuse larger images (decompression bombs).

        Returns:
            A :class:`ResizeResult`. A bad image fails alone: it is listed in ``failures``
            and the others are done.

        """
        width, height = size
        if isinstance(images, (str, os.PathLike)):
            root = os.fspath(images)
            paths = [os.fspath(p) for p in _shmframe.list_image_files(root, recursive)]
        else:
            root = None
            paths = [os.fspath(p) for p in images]
        frame, failures, seconds = _shmframe.resize(
            self._native,
            paths,
            width,
            height,
            fit,
            filter,
            keep_alpha,
            max_pixels,
            None if out_dir is None else os.fspath(out_dir),
            format,
            quality,
            root,
            keep_extension,
        )
        channels = 4 if keep_alpha else 3
        pixels = frame.to_numpy("image").reshape(len(paths), height, width, channels)
        return ResizeResult(pixels, paths, failures, seconds)

    def submit(
        self,
        kernel: str,
        data: Frame | np.ndarray | str | os.PathLike,
        **kwargs: object,
    ) -> concurrent.futures.Future[np.ndarray]:
        """Start :meth:`run` in the background and return a :class:`~concurrent.futures.Future`.

        The job runs on one background thread with the GIL released, so Python work in the
        caller overlaps with it. Jobs of one engine run one at a time, in submission order
        (calls from several threads are serialised the same way and each gets its own
        correct result). :meth:`close` waits for a running job and cancels queued ones.
        """
        with self._executor_lock:
            if not self._executor:
                self._executor.append(
                    concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="shmframe-job")
                )
            return self._executor[0].submit(self.run, kernel, data, **kwargs)
