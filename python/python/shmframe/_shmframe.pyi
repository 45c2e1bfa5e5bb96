"""Type stubs of the native module ``shmframe._shmframe`` (private: use ``shmframe``)."""

import numpy as np

WORKER_ENV: str
KERNELS: list[str]
RESIZE_FITS: list[str]
RESIZE_FILTERS: list[str]
RESIZE_FORMATS: list[str]

def _worker_main() -> int | None:
    """Run this process as a worker when it was started as one."""

def sweep_stale(dir: str) -> list[str]:
    """Remove the segments of dead owners in ``dir``; their names."""

def list_image_files(dir: str, recursive: bool) -> list[str]:
    """The files of a folder, sorted, hidden ones skipped."""

class Frame:
    """A frame in shared memory (or a mapped file)."""

    @property
    def num_rows(self) -> int:
        """Rows."""
    @property
    def column_names(self) -> list[str]:
        """Column names."""
    @property
    def path(self) -> str:
        """The file or segment path holding the data."""
    def default_columns(self) -> list[str]:
        """The columns a kernel reads when none are named."""
    def to_numpy(self, column: str | None = None) -> np.ndarray:
        """A read-only numpy view of a column (default: the first)."""

def run_inline(kernel: str, array: np.ndarray, query: list[float] | None = None) -> np.ndarray:
    """A row kernel over a 2-D float array, computed in this process."""

class WritableView:
    """The writable values of a frame made by ``Engine.empty``."""

    @property
    def __array_interface__(self) -> dict[str, object]:
        """The numpy array interface of the values (writable)."""
    @property
    def frame(self) -> Frame:
        """The frame the values belong to."""
    @property
    def address(self) -> int:
        """The address of the first value."""

class Engine:
    """The native engine; ``shmframe.Engine`` wraps it."""

    def __init__(
        self,
        program: str,
        args: list[str],
        workers: int | None = None,
        segment_dir: str | None = None,
    ) -> None: ...
    def close(self) -> None:
        """Stop the workers and remove the engine's segments."""
    @property
    def closed(self) -> bool:
        """Whether close has run."""
    @property
    def workers(self) -> int:
        """Worker processes."""
    def worker_pids(self) -> list[int]:
        """Live worker pids."""
    def frame_from_numpy(self, array: np.ndarray) -> Frame:
        """Copy a C-contiguous 2-D float array into a frame."""
    def frame_from_arrow(self, data: object) -> Frame:
        """Copy an object with ``__arrow_c_stream__`` into a frame."""
    def frame_from_arrow_array(self, data: object) -> Frame:
        """Copy an object with ``__arrow_c_array__`` into a frame."""
    def frame_from_source(self, source: str) -> Frame:
        """A frame from a file or ``shm:NAME``."""
    def empty(self, rows: int, cols: int, dtype: str) -> tuple[Frame, WritableView]:
        """A frame of zeros and the writable view of its values."""
    def ping(self) -> float:
        """Run the empty job; its seconds."""
    def run(
        self,
        kernel: str,
        frame: Frame,
        columns: list[str] | None = None,
        query: list[float] | None = None,
        chunk_rows: int | None = None,
        deadline: float | None = None,
        _test_chunk_sleep_ms: int | None = None,
    ) -> Frame:
        """Run a row kernel; the result frame."""

def resize(
    engine: Engine,
    paths: list[str],
    width: int,
    height: int,
    fit: str = "exact",
    filter: str = "lanczos3",
    keep_alpha: bool = False,
    max_pixels: int = 100_000_000,
    out_dir: str | None = None,
    format: str = "jpeg",
    quality: int = 90,
    strip_prefix: str | None = None,
    keep_extension: bool = False,
) -> tuple[Frame, list[tuple[str, str]], float]:
    """Resize image files; the tensor frame, failures and seconds."""

def resize_outputs(
    paths: list[str],
    out_dir: str,
    format: str = "jpeg",
    strip_prefix: str | None = None,
    keep_extension: bool = False,
) -> list[str]:
    """The file a resize job writes for each path; two inputs with one output are refused."""

def resize_temporary_path(dest: str, coordinator: int) -> str:
    """The temporary file a resize job writes ``dest`` through."""
