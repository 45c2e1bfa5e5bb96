"""Functions that run inside the worker processes of the compared pools.

They live in their own module (not in compare.py) so that every start method can import them
by name: fork, forkserver, loky (joblib) and Ray workers (PYTHONPATH points here).
All pools run the same per-chunk kernel, `l2`, numpy's fastest row norm.
"""

import os
from multiprocessing import resource_tracker, shared_memory

import numpy as np


def l2(x):
    """Row L2 norms of a 2-D block: the kernel every Python pool runs on its chunk."""
    return np.sqrt(np.einsum("ij,ij->i", x, x))


def l2_range(x, lo, hi):
    """Row norms of rows [lo, hi) of a matrix the worker can already see (memmap, Ray object)."""
    return l2(x[lo:hi])


def noop(*_args):
    """The empty task of the round-trip measurement."""
    return None


def report_ready(queue):
    """Pool initializer for the start-time measurement: says 'this worker is up'."""
    queue.put(os.getpid())


# ----------------------------------------------------------------------------------------------
# multiprocessing.shared_memory workers
# ----------------------------------------------------------------------------------------------

_ATTACHED = {}  # name -> (SharedMemory, ndarray view): a warm worker keeps its mappings


def init_shm_worker():
    """Pool initializer: attaching a segment must not register it with the resource tracker.

    Python < 3.13 registers every attached segment (not only created ones), so the tracker
    would unlink the parent's segment when a worker exits or warn about a "leak" (CPython
    issue 82300); `track=False` only exists from 3.13 on.
    """
    original = resource_tracker.register

    def register(name, rtype):
        if rtype != "shared_memory":
            original(name, rtype)

    resource_tracker.register = register


def _forget_except(keep_names):
    for name in [n for n in _ATTACHED if n not in keep_names]:
        shm, arr = _ATTACHED.pop(name)
        del arr
        shm.close()


def _attach(name, shape, dtype, keep):
    if keep and name in _ATTACHED:
        return _ATTACHED[name][1], None
    shm = shared_memory.SharedMemory(name=name)
    arr = np.ndarray(shape, dtype=dtype, buffer=shm.buf)
    if keep:
        _ATTACHED[name] = (shm, arr)
        return arr, None
    return arr, shm


def shm_l2(in_name, out_name, shape, dtype, lo, hi, keep):
    """Norms of rows [lo, hi) of the shared input, written into the shared output.

    keep=True (warm): the mappings stay cached in this worker, as a long-lived service would.
    keep=False (copy-in): attach, compute, detach, as for data that is new each time.
    """
    if keep:
        _forget_except((in_name, out_name))  # one warm pair at a time: the previous shape's goes
    x, xs = _attach(in_name, tuple(shape), dtype, keep)
    out, os_ = _attach(out_name, (shape[0],), dtype, keep)
    out[lo:hi] = l2(x[lo:hi])
    del x, out
    for s in (xs, os_):
        if s is not None:
            s.close()
    return None
