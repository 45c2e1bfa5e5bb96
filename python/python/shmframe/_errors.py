"""The exceptions of shmframe.

Every error the engine raises is a :class:`shmframe.Error`, and also the built-in exception a
Python user would catch for that situation, so ``except ValueError`` keeps working.

This module imports nothing from the native extension: the extension imports it to raise
these classes.
"""


class Error(Exception):
    """Base class of every error shmframe raises."""


class InvalidInput(Error, ValueError):
    """Bad input: wrong shape or dtype, a corrupt file, an unknown column or kernel."""


class Timeout(Error, TimeoutError):
    """A job passed its deadline and was cancelled; the engine stays usable."""


class SegmentSpace(Error, MemoryError, OSError):
    """The segment directory (``/dev/shm``) has no room for a new segment."""


class NotFound(Error, FileNotFoundError):
    """A file or a named segment does not exist."""


class WorkerDied(Error, RuntimeError):
    """Workers kept dying on a job and the engine gave up on it (the pool stays usable)."""
