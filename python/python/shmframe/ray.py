"""shmframe jobs on a Ray cluster: one engine per node, shards and image batches spread over them.

Ray places the work, carries the small messages, notices dead nodes and authenticates
clients; on each node one long-lived actor holds a :class:`shmframe.Engine` over that node's
cores and its own segment directory, so bulk data stays in shared memory on the host that
computes it. Only results travel, to the driver or to an output directory.

>>> import shmframe.ray  # doctest: +SKIP
>>> with shmframe.ray.Cluster("head:6379") as cluster:  # doctest: +SKIP
...     r = cluster.run("l2-norm", ["/data/part-0.npy", "/data/part-1.npy"])
...     r.results[0]  # a pyarrow array, in shard order

An optional extra (``pip install 'shmframe[ray]'``). docs/DISTRIBUTED.md tells how to start a
cluster, what each node needs, what happens when a node dies, and how to secure it.

**Scheduling.** The driver keeps one task in flight per node: a node takes the next shard
(or image batch) when it has finished one, so a faster or less loaded node does more.

**Failures.** Two kinds, kept apart (as ``ray.util.multiprocessing.Pool`` does):

* *The node or its actor was lost* (``RayActorError``, ``NodeDiedError``, or the node gone
  from ``ray.nodes()``): the shard runs again on another node, up to ``max_node_losses``
  times. Nothing it computed is used; output files are replaced atomically, and temporary
  files the lost attempt may have left are removed.
* *The shard itself failed* (an engine error such as :class:`shmframe.InvalidInput` for a
  corrupt file, returned in-band by the actor): it is tried once more on a different node
  (the file may be unreadable only there) and then reported in ``failures`` with its reason.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import logging
import os
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

import shmframe
from shmframe import _shmframe
from shmframe._errors import Error, InvalidInput, Timeout

try:
    import pyarrow as pa
    import ray
    from ray import exceptions as _rex
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
except ImportError as e:  # pragma: no cover - the extra is not installed
    raise ImportError(
        f"shmframe.ray needs Ray and pyarrow ({e}): pip install 'shmframe[ray]'"
    ) from e

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = [
    "Cluster",
    "ClusterError",
    "ClusterResizeResult",
    "RunResult",
    "main",
    "resize",
    "run",
    "shutdown",
]

log = logging.getLogger(__name__)

#: The options of ``resize`` with their accepted values (the engine's own tables, checked here
#: before any work is sent so that a typo fails at once rather than once per batch).
FITS: tuple[str, ...] = tuple(_shmframe.RESIZE_FITS)
FILTERS: tuple[str, ...] = tuple(_shmframe.RESIZE_FILTERS)
FORMATS: tuple[str, ...] = tuple(_shmframe.RESIZE_FORMATS)

# A node or its actor was lost: the work is redone elsewhere.
_LOST = (
    _rex.RayActorError,  # ActorDiedError, ActorUnavailableError
    _rex.NodeDiedError,
    _rex.WorkerCrashedError,
    _rex.LocalRayletDiedError,
    _rex.ActorUnschedulableError,
)


class ClusterError(Error, RuntimeError):
    """The cluster cannot run the job: unreachable, refused, or no node can hold an engine."""


class RunResult(NamedTuple):
    """What :meth:`Cluster.run` returns; every list is in shard order."""

    #: Per shard: a ``pyarrow.Array`` (a ``FixedSizeListArray`` for ``normalize``), or with
    #: ``out_dir`` the path of the Arrow IPC file written; ``None`` for a failed shard.
    results: list[Any]
    #: ``(shard index, reason)`` of each shard that failed.
    failures: list[tuple[int, str]]
    #: The Ray node id that computed each shard (``None`` for a failed one).
    nodes: list[str | None]
    #: Shards that were run again because the node running them was lost.
    redone: list[int]
    #: Seconds of the whole job, as the driver measured them.
    seconds: float


class ClusterResizeResult(NamedTuple):
    """What :meth:`Cluster.resize` returns."""

    #: The input images, in order.
    paths: list[str]
    #: The output file of each input (not written for a failed one).
    outputs: list[str]
    #: ``(path, reason)`` of each image that failed, in input order.
    failures: list[tuple[str, str]]
    #: Indices of the batches that were run again because their node was lost.
    redone: list[int]
    #: Seconds of the whole job, as the driver measured them.
    seconds: float


# --------------------------------------------------------------------------------------------
# The actor: one per node, holding that node's engine.


def _reason(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def _to_arrow(values: np.ndarray) -> pa.Array:
    """A result as an Arrow array wrapping the same memory (no copy)."""
    if values.ndim == 1:
        return pa.array(values)
    rows, cols = values.shape
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), cols)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_arrow_atomically(arr: pa.Array, name: str, final: str, tmp: str) -> None:
    """Write ``arr`` as the one column ``name`` of an Arrow IPC file at ``final``.

    Through ``tmp`` in the same folder: written, fsynced, renamed over ``final``, then the
    folder fsynced. A crash leaves the old file or the new one, never half of one.
    """
    batch = pa.record_batch([arr], names=[name])
    try:
        with pa.OSFile(tmp, "wb") as sink, pa.ipc.new_file(sink, batch.schema) as writer:
            writer.write_batch(batch)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
    except BaseException:
        _remove_quietly(tmp)
        raise
    _fsync_dir(os.path.dirname(final) or ".")


class _NodeEngine:
    """The actor on one node: a :class:`shmframe.Engine` kept for as long as the driver lives.

    Errors of a job are returned in-band (``("error", reason)``); an exception out of a method
    means the actor itself is broken.
    """

    def __init__(self, workers: int, segment_dir: str | None):
        self._segment_dir = segment_dir or os.environ.get("SHMFRAME_DIR") or "/dev/shm"
        # Ray kills an actor's children with the actor, the engine's janitor among them: the
        # next actor on the node removes what a dead engine left.
        self._swept = shmframe.sweep_stale(self._segment_dir)
        self._engine = shmframe.Engine(workers, segment_dir=self._segment_dir)

    def ready(self) -> dict[str, Any]:
        """Where this actor runs: node id, host, pid, workers, segment directory.

        ``swept``: the segments of dead engines it removed from that directory at start.
        """
        return {
            "node_id": ray.get_runtime_context().get_node_id(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "workers": self._engine.workers,
            "worker_pids": self._engine.worker_pids(),
            "segment_dir": self._segment_dir,
            "swept": list(self._swept),
        }

    def run_shard(
        self,
        kernel: str,
        shard: Any,
        options: dict[str, Any],
        out: dict[str, Any] | None,
    ) -> tuple:
        """Run ``kernel`` over one shard; the Arrow result, or the file it was written to."""
        try:
            values = self._engine.run(kernel, shard, **options)
            arr = _to_arrow(values)
            if out is None:
                return ("ok", arr)
            os.makedirs(out["dir"], exist_ok=True)
            final = os.path.join(out["dir"], out["name"])
            _write_arrow_atomically(
                arr, kernel.replace("-", "_"), final, os.path.join(out["dir"], out["tmp"])
            )
            return ("ok", final)
        except Exception as e:
            return ("error", _reason(e))
        finally:
            # Temporary files of attempts lost with their node: nobody else will remove them.
            for name in out["stale"] if out else ():
                _remove_quietly(os.path.join(out["dir"], name))

    def resize_batch(
        self,
        paths: list[str],
        size: tuple[int, int],
        out_dir: str,
        options: dict[str, Any],
        outputs: list[str],
        stale_pids: list[int],
    ) -> tuple:
        """Resize a batch of images into ``out_dir``; the per-image failures and the seconds."""
        try:
            r = self._engine.resize(paths, tuple(size), out_dir=out_dir, **options)
            return ("ok", list(r.failures), r.seconds)
        except Exception as e:
            return ("error", _reason(e))
        finally:
            # The engine writes each file through a temporary name carrying the coordinator's
            # pid (the actor's) and a rename; an actor lost mid-batch leaves its own.
            for pid in stale_pids:
                for name in outputs:
                    dest = os.path.join(out_dir, name)
                    _remove_quietly(os.fspath(_shmframe.resize_temporary_path(dest, pid)))

    def close(self) -> None:
        """Stop the engine's workers and remove its segments."""
        self._engine.close()


def _list_images(root: str, recursive: bool) -> list[str]:
    return [os.fspath(p) for p in shmframe.list_image_files(root, recursive)]


_ACTOR_CLASS: list[Any] = []


def _actor_class() -> Any:
    # Asks for no CPU (the engine's workers use the node's cores outside Ray's accounting: an
    # actor holding a CPU can deadlock a cluster whose tasks wait on it, ray-project/ray#22048)
    # and is never restarted by Ray: the driver recreates it when its node comes back.
    if not _ACTOR_CLASS:
        _ACTOR_CLASS.append(ray.remote(num_cpus=0, max_restarts=0, max_task_retries=0)(_NodeEngine))
    return _ACTOR_CLASS[0]


# --------------------------------------------------------------------------------------------
# The driver: a registry of node actors and the scheduler.


@dataclass(eq=False)
class _Node:
    node_id: str
    actor: Any
    ready_ref: Any
    info: dict[str, Any] | None = None


@dataclass(eq=False)
class _Task:
    index: int
    payload: Any
    #: node id -> reason, for each node where the task failed by itself.
    app_failed: dict[str, str] = field(default_factory=dict)
    #: ``ready()`` info of each node lost while running it.
    lost: list[dict[str, Any]] = field(default_factory=list)
    #: Temporary file names of earlier attempts (``run`` with ``out_dir``).
    tmps: list[str] = field(default_factory=list)


class Cluster:
    """The shmframe engines of a Ray cluster: one actor per node, reused across jobs.

    Joins the cluster Ray is connected to, else ``ray.init(address)`` (``None``: Ray's own
    rules, ``RAY_ADDRESS`` first). Each alive node with at least one CPU gets an actor
    pinned to it (``NodeAffinitySchedulingStrategy(node_id, soft=False)``) whose engine has
    as many workers as the node has CPUs. Before and during every job the registry is
    checked against ``ray.nodes()``: an actor whose node is dead is dropped, and a node that
    (re)joined, under a new node id, gets a new actor.

    Args:
        address: the cluster to join (``"HOST:6379"``, ``"auto"``), when Ray is not yet
            initialised in this process.
        workers: workers per node (default: the node's CPUs).
        segment_dir: the engines' segment directory on every node (default: each node's
            ``$SHMFRAME_DIR`` as its Ray processes see it, else ``/dev/shm``).
        max_node_losses: how many lost nodes a shard or batch survives before it is
            reported as failed.
        refresh: seconds between checks of ``ray.nodes()`` during a job.
        node_wait: seconds a job waits for a node to (re)join when none is left.
        init_kwargs: passed to ``ray.init`` when this object makes the connection.

    Raises:
        ClusterError: the cluster is unreachable or refused this driver (token
            authentication).

    Jobs of one ``Cluster`` run one at a time. :meth:`close` stops the actors (their
    engines remove their segments). The actors also die with the driver, then without
    cleaning up: the next actor on each node removes what they left.

    """

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int | None = None,
        segment_dir: str | os.PathLike | None = None,
        max_node_losses: int = 3,
        refresh: float = 1.0,
        node_wait: float = 30.0,
        **init_kwargs: Any,
    ):
        if workers is not None and workers < 1:
            raise InvalidInput(f"workers must be at least 1, got {workers}")
        self._connected_here = False
        if not ray.is_initialized():
            _check_reachable(address or os.environ.get("RAY_ADDRESS"))
            try:
                ray.init(address=address, **init_kwargs)
            except (_rex.AuthenticationError, ConnectionError, TimeoutError, RuntimeError) as e:
                raise _connect_error(address, e) from e
            self._connected_here = True
        self._workers = workers
        self._segment_dir = None if segment_dir is None else os.fspath(segment_dir)
        self._max_node_losses = max_node_losses
        self._refresh_s = refresh
        self._node_wait = node_wait
        self._nodes: dict[str, _Node] = {}
        # Nodes whose actor failed to start in this job (engine start-up error), with why.
        self._broken: dict[str, str] = {}
        # ``ready()`` info of dropped actors (their pid names their temporary files).
        self._gone: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the registry

    def _alive_nodes(self) -> dict[str, dict[str, Any]]:
        return {
            n["NodeID"]: n
            for n in ray.nodes()
            if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) >= 1
        }

    def _refresh(self) -> None:
        alive = self._alive_nodes()
        for node_id in list(self._nodes):
            if node_id not in alive:
                self._drop(node_id)
        for node_id, n in alive.items():
            if node_id in self._nodes or node_id in self._broken:
                continue
            workers = self._workers or max(1, int(n["Resources"]["CPU"]))
            actor = (
                _actor_class()
                .options(
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
                    name=None,
                )
                .remote(workers, self._segment_dir)
            )
            self._nodes[node_id] = _Node(node_id, actor, actor.ready.remote())

    def _drop(self, node_id: str) -> _Node | None:
        node = self._nodes.pop(node_id, None)
        if node is not None:
            if node.info is not None:
                self._gone[node_id] = node.info
            with contextlib.suppress(Exception):
                ray.kill(node.actor, no_restart=True)
        return node

    def _wait_ready(self, timeout: float) -> None:
        """Wait until every actor being started is ready or failed (at most ``timeout`` s)."""
        end = time.monotonic() + timeout
        while True:
            pending = {n.ready_ref: n for n in self._nodes.values() if n.info is None}
            if not pending or time.monotonic() >= end:
                return
            done, _ = ray.wait(
                list(pending), num_returns=len(pending), timeout=end - time.monotonic()
            )
            for ref in done:
                self._settle_ready(pending[ref])

    def _settle_ready(self, node: _Node) -> None:
        try:
            node.info = ray.get(node.ready_ref)
        except Exception as e:  # the engine could not start there, or the node went away
            self._broken[node.node_id] = _reason(e)
            self._drop(node.node_id)
            log.warning("shmframe: no engine on node %s: %s", node.node_id, _reason(e))

    def nodes(self, timeout: float = 60.0) -> list[dict[str, Any]]:
        """The ready engines: for each, its node id, host, actor pid, workers, segment dir.

        Starts actors on nodes that have none (and drops those of dead nodes) first, and
        waits up to ``timeout`` seconds for them.
        """
        with self._lock:
            self._check_open()
            self._broken.clear()
            self._refresh()
            self._wait_ready(timeout)
            return [dict(n.info) for n in self._nodes.values() if n.info is not None]

    def close(self) -> None:
        """Stop every node's engine and its actor; disconnect if this object connected."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            nodes = list(self._nodes.values())
            self._nodes.clear()
            refs = []
            for n in nodes:
                with contextlib.suppress(Exception):
                    refs.append(n.actor.close.remote())
            with contextlib.suppress(Exception):
                ray.wait(refs, num_returns=len(refs), timeout=30)
            for n in nodes:
                with contextlib.suppress(Exception):
                    ray.kill(n.actor, no_restart=True)
            if self._connected_here:
                ray.shutdown()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the shmframe.ray.Cluster is closed")

    # ---- the scheduler

    def _schedule(
        self,
        tasks: list[_Task],
        submit: Callable[[_Node, _Task], Any],
        timeout: float | None,
    ) -> tuple[dict[int, tuple[str, Any, str | None]], list[int]]:
        """Run every task on some node; ``{index: ("ok", value, node) | ("failed", why, None)}``.

        One task in flight per ready node. A task whose node is lost goes back to the front
        of the queue; one that fails by itself is tried once more on another node.
        """
        start = time.monotonic()
        deadline = None if timeout is None else start + timeout
        self._broken.clear()
        self._refresh()
        if not self._nodes:
            raise ClusterError("no alive node with a CPU in the Ray cluster")
        queue: collections.deque[_Task] = collections.deque(tasks)
        inflight: dict[Any, tuple[str, _Task]] = {}
        busy: set[str] = set()
        outcomes: dict[int, tuple[str, Any, str | None]] = {}
        redone: set[int] = set()
        last_refresh = time.monotonic()
        nodeless_since: float | None = None

        def fail(task: _Task, why: str) -> None:
            outcomes[task.index] = ("failed", why, None)

        def lost(node_id: str, task: _Task, why: str) -> None:
            self._drop(node_id)
            # Not again in this job: its node is likely dead, not yet declared so by the GCS
            # (a new actor there would wait until then). A node back under a new id is new.
            self._broken[node_id] = why
            info = self._gone.get(node_id, {"node_id": node_id})
            task.lost.append(info)
            redone.add(task.index)
            log.warning("shmframe: node %s lost (%s); redoing task %d", node_id, why, task.index)
            if len(task.lost) > self._max_node_losses:
                fail(task, f"lost {len(task.lost)} nodes while running it (last: {why})")
            else:
                queue.appendleft(task)

        def app_error(node_id: str, task: _Task, why: str) -> None:
            task.app_failed[node_id] = why
            if len(task.app_failed) >= 2:
                fail(task, f"{why} (failed on {len(task.app_failed)} nodes)")
            else:
                queue.appendleft(task)

        while queue or inflight:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise Timeout(
                    f"the job did not finish in {timeout} s ({len(outcomes)} of "
                    f"{len(tasks)} done); tasks still running finish on their nodes"
                )
            if now - last_refresh >= self._refresh_s:
                last_refresh = now
                self._refresh()
                for ref, (node_id, task) in list(inflight.items()):
                    if node_id not in self._nodes:  # dead in the GCS before its task failed
                        del inflight[ref]
                        busy.discard(node_id)
                        lost(node_id, task, "its node is gone from ray.nodes()")
            # A task that failed by itself runs only on a node where it has not failed.
            candidates = set(self._nodes)
            for task in list(queue):
                if task.app_failed and not candidates - task.app_failed.keys():
                    queue.remove(task)
                    fail(task, next(reversed(task.app_failed.values())))
            if not self._nodes and not inflight and not outcomes and self._broken:
                raise ClusterError(
                    "no node could start an engine: "
                    + "; ".join(f"{n}: {why}" for n, why in self._broken.items())
                )
            if not self._nodes:
                nodeless_since = nodeless_since or now
                if now - nodeless_since >= self._node_wait:
                    for task in queue:
                        fail(task, f"no node left to run it (waited {self._node_wait} s)")
                    queue.clear()
            else:
                nodeless_since = None
            for node_id, node in list(self._nodes.items()):
                if node.info is None or node_id in busy:
                    continue
                task = next((t for t in queue if node_id not in t.app_failed), None)
                if task is None:
                    continue
                queue.remove(task)
                inflight[submit(node, task)] = (node_id, task)
                busy.add(node_id)
            starting = {n.ready_ref: n for n in self._nodes.values() if n.info is None}
            refs = list(inflight) + list(starting)
            wait_s = max(0.0, self._refresh_s - (time.monotonic() - last_refresh))
            if deadline is not None:
                wait_s = min(wait_s, max(0.0, deadline - time.monotonic()))
            if not refs:
                if queue:
                    time.sleep(min(wait_s, 0.1) or 0.01)
                continue
            done, _ = ray.wait(refs, num_returns=1, timeout=wait_s)
            for ref in done:
                if ref in starting:
                    self._settle_ready(starting[ref])
                    continue
                node_id, task = inflight.pop(ref)
                busy.discard(node_id)
                try:
                    out = ray.get(ref)
                except _LOST as e:
                    lost(node_id, task, _reason(e))
                    continue
                except _rex.ObjectLostError as e:  # the shard's input object is gone
                    fail(task, _reason(e))
                    continue
                except _rex.RayError as e:  # the actor's code raised: the task's own fault
                    app_error(node_id, task, _reason(e))
                    continue
                if out[0] == "ok":
                    outcomes[task.index] = ("ok", out[1:], node_id)
                else:
                    app_error(node_id, task, out[1])
        return outcomes, sorted(redone)

    # ---- jobs

    def run(
        self,
        kernel: str,
        shards: Sequence[Any],
        *,
        query: Sequence[float] | np.ndarray | None = None,
        columns: Sequence[str] | None = None,
        out_dir: str | os.PathLike | None = None,
        chunk_rows: int | None = None,
        deadline: float | None = None,
        timeout: float | None = None,
        _test_chunk_sleep_ms: int | None = None,
    ) -> RunResult:
        """Run a row kernel over shards, each shard on one node, as :meth:`Engine.run` does.

        Args:
            kernel: one of :data:`shmframe.KERNELS`.
            shards: each a path every node can read (``.npy``, Arrow IPC, Parquet, CSV:
                mapped or read on the node that computes it), a numpy array or an Arrow
                table / record batch / array (put into Ray's object store once by this
                call), or a ``ray.ObjectRef`` to one already there.
            query: the query vector of ``dot`` and ``cosine``.
            columns: the columns to read.
            out_dir: write each shard's result to ``out_dir/<shard index>.arrow`` (an Arrow
                IPC file, one column named after the kernel with ``_`` for ``-``) instead of
                returning it. A folder every node can write; each file is written to a
                temporary name in it, fsynced and renamed, so it is complete or absent.
            chunk_rows: rows per chunk the node's workers claim, as in :meth:`Engine.run`.
            deadline: cancel a shard's job after this many seconds on its node (the shard
                then fails with :class:`shmframe.Timeout` as its reason).
            timeout: raise :class:`shmframe.Timeout` when the whole job has not finished in
                this many seconds.

        Returns:
            A :class:`RunResult`. What is copied: an in-memory shard once into the object
            store (here) and once into the segment of the node that computes it; a file
            shard is mapped in place on that node. The result is the engine's output
            segment wrapped as an Arrow array without a copy, serialized once into the
            node's object store when the actor returns it, and read by ``ray.get`` without
            a copy from this host's object store (Ray transfers it when the driver is on
            another host). With ``out_dir`` it is written from the segment to the file and
            nothing travels but the path.

        Raises:
            ClusterError: no node can run engines.
            Timeout: see ``timeout``.

        """
        if kernel not in shmframe.KERNELS:
            raise InvalidInput(
                f"unknown kernel {kernel!r} (kernels: {', '.join(shmframe.KERNELS)})"
            )
        options: dict[str, Any] = {}
        if query is not None:
            options["query"] = [float(v) for v in np.asarray(query, dtype=np.float64)]
        if columns is not None:
            options["columns"] = list(columns)
        if chunk_rows is not None:
            options["chunk_rows"] = chunk_rows
        if deadline is not None:
            options["deadline"] = deadline
        if _test_chunk_sleep_ms is not None:
            options["_test_chunk_sleep_ms"] = _test_chunk_sleep_ms
        out = None if out_dir is None else os.path.abspath(os.fspath(out_dir))
        start = time.monotonic()
        with self._lock:
            self._check_open()
            tasks = [_Task(i, _shard_payload(s)) for i, s in enumerate(shards)]

            def submit(node: _Node, task: _Task) -> Any:
                target = None
                if out is not None:
                    tmp = f".{task.index}.arrow.{uuid.uuid4().hex[:12]}.tmp"
                    # Earlier attempts' temporary files: those of lost nodes stay behind.
                    target = {
                        "dir": out,
                        "name": f"{task.index}.arrow",
                        "tmp": tmp,
                        "stale": list(task.tmps),
                    }
                    task.tmps.append(tmp)
                return node.actor.run_shard.remote(kernel, task.payload, options, target)

            outcomes, redone = self._schedule(tasks, submit, timeout)
            if out is not None:  # visible here too: what the nodes may have missed
                for task in tasks:
                    for name in task.tmps:
                        _remove_quietly(os.path.join(out, name))
        results: list[Any] = []
        failures: list[tuple[int, str]] = []
        nodes: list[str | None] = []
        for i in range(len(tasks)):
            kind, value, node_id = outcomes[i]
            if kind == "ok":
                results.append(value[0])
            else:
                results.append(None)
                failures.append((i, value))
            nodes.append(node_id)
        return RunResult(results, failures, nodes, redone, time.monotonic() - start)

    def resize(
        self,
        images: str | os.PathLike | Sequence[str | os.PathLike],
        out_dir: str | os.PathLike,
        size: tuple[int, int],
        *,
        batch: int = 64,
        format: str = "jpeg",
        quality: int = 90,
        fit: str = "exact",
        filter: str = "lanczos3",
        keep_alpha: bool = False,
        recursive: bool = False,
        keep_extension: bool = False,
        max_pixels: int = 100_000_000,
        timeout: float | None = None,
    ) -> ClusterResizeResult:
        """Resize images into ``out_dir`` with every node, as ``shmframe resize`` does on one.

        The images go out in batches of ``batch`` (never spanning two folders); each batch
        runs on one node through its engine's :meth:`Engine.resize`. Output names mirror the
        input folder (with a list of paths: the file names), as on one host.

        Each file is written by the engine to a temporary name beside it and renamed: a
        batch run again after its node was lost replaces the files already written with
        the same bytes, atomically, and the lost attempt's temporary files are removed.

        Args:
            images: a folder every node can read (its files, sorted; below it too with
                ``recursive``), or a list of paths.
            out_dir: a folder every node can write.
            size: ``(width, height)`` of the output.
            batch: images per task. Larger batches cost less scheduling (a few ms per task)
                but redo more after a node loss and balance worse at the end.
            format: of the written files: ``"jpeg"``, ``"png"`` or ``"webp"``.
            quality: JPEG quality, 1-100.
            fit: ``"exact"``, ``"contain"`` or ``"cover"``.
            filter: ``"lanczos3"``, ``"bicubic"``, ``"bilinear"`` or ``"nearest"``.
            keep_alpha: RGBA out instead of RGB over white.
            recursive: take the folder's subfolders too (mirrored below ``out_dir``).
            keep_extension: name outputs ``a.png.jpg`` rather than ``a.jpg``.
            max_pixels: refuse larger images (decompression bombs).
            timeout: raise :class:`shmframe.Timeout` when the whole job has not finished in
                this many seconds.

        Returns:
            A :class:`ClusterResizeResult`. No pixels travel: the tensors stay on the nodes
            and are dropped there.

        Raises:
            InvalidInput: a bad option, or two inputs that would be written to one file.
            ClusterError: no node can run engines.

        """
        width, height = size
        if width < 1 or height < 1:
            raise InvalidInput(f"size must be positive, got {width}x{height}")
        if batch < 1:
            raise InvalidInput(f"batch must be at least 1, got {batch}")
        if not 1 <= quality <= 100:
            raise InvalidInput(f"quality must be 1-100, got {quality}")
        for what, value, allowed in (
            ("fit", fit, FITS),
            ("filter", filter, FILTERS),
            ("format", format, FORMATS),
        ):
            if value not in allowed:
                raise InvalidInput(f"unknown {what} {value!r} (one of: {', '.join(allowed)})")
        options = {
            "format": format,
            "quality": quality,
            "fit": fit,
            "filter": filter,
            "keep_alpha": keep_alpha,
            "keep_extension": keep_extension,
            "max_pixels": max_pixels,
        }
        out = os.path.abspath(os.fspath(out_dir))
        start = time.monotonic()
        with self._lock:
            self._check_open()
            if isinstance(images, (str, os.PathLike)):
                root: str | None = os.path.abspath(os.fspath(images))
                paths = self._list_images(root, recursive)
            else:
                root = None
                paths = [os.path.abspath(os.fspath(p)) for p in images]
            # The files the single-host engine would write, by its own rules (two inputs with
            # one output are refused here, before any work): (input index, folder relative to
            # out_dir, file name).
            dests = _shmframe.resize_outputs(paths, out, format, root, keep_extension)
            placed: list[tuple[int, str, str]] = []
            for i, dest in enumerate(map(os.fspath, dests)):
                sub = os.path.relpath(os.path.dirname(dest), out)
                placed.append((i, "" if sub == "." else sub, os.path.basename(dest)))
            groups: dict[str, list[tuple[int, str, str]]] = {}
            for item in placed:
                groups.setdefault(item[1], []).append(item)
            tasks = []
            for sub, items in groups.items():
                for k in range(0, len(items), batch):
                    tasks.append(_Task(len(tasks), (sub, items[k : k + batch])))

            def submit(node: _Node, task: _Task) -> Any:
                sub, items = task.payload
                stale = [info["pid"] for info in task.lost if "pid" in info]
                return node.actor.resize_batch.remote(
                    [paths[i] for i, _, _ in items],
                    (width, height),
                    os.path.join(out, sub),
                    options,
                    [name for _, _, name in items],
                    stale,
                )

            outcomes, redone = self._schedule(tasks, submit, timeout)
            for task in tasks:  # what the nodes may have missed, if this host sees out_dir
                sub, items = task.payload
                for info in task.lost:
                    for _, _, name in items:
                        if "pid" in info:
                            dest = os.path.join(out, sub, name)
                            tmp = _shmframe.resize_temporary_path(dest, info["pid"])
                            _remove_quietly(os.fspath(tmp))
        failed: dict[int, str] = {}
        index = {p: i for i, p in enumerate(paths)}
        for task in tasks:
            kind, value, _ = outcomes[task.index]
            if kind == "ok":
                for p, why in value[0]:
                    failed[index[p]] = why
            else:
                for i, _, _ in task.payload[1]:
                    failed[i] = value
        outputs = [os.path.join(out, sub, name) for _, sub, name in placed]
        failures = [(paths[i], failed[i]) for i in sorted(failed)]
        return ClusterResizeResult(paths, outputs, failures, redone, time.monotonic() - start)

    def _list_images(self, root: str, recursive: bool) -> list[str]:
        """The images of ``root``: listed here if this host sees it, else on a node."""
        if os.path.isdir(root):
            return _list_images(root, recursive)
        self._broken.clear()
        self._refresh()
        if not self._nodes:
            raise ClusterError("no alive node with a CPU in the Ray cluster")
        node_id = next(iter(self._nodes))
        lister = ray.remote(num_cpus=0, max_retries=0)(_list_images).options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=True)
        )
        try:
            return ray.get(lister.remote(root, recursive), timeout=120)
        except _rex.RayTaskError as e:
            raise e.as_instanceof_cause() from None


def _check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """Fail at once, not after Ray's minute of retries, when nothing listens at HOST:PORT."""
    if not address or "://" in address or address == "auto" or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise ClusterError(f"cannot reach the Ray cluster at {address}: {e}") from e


def _connect_error(address: str | None, e: BaseException) -> ClusterError:
    """Why ``ray.init`` failed, as a :class:`ClusterError` that says whether auth was it.

    Ray 2.60 retries a refused connection (about 20 s, ``RAY_gcs_server_port_wait_time_s``)
    and then raises a ``ConnectionError`` whose chain holds the refusal only as text.
    """
    chain, seen = [], e
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    text = " ".join(str(x) for x in chain)
    refused = any(isinstance(x, _rex.AuthenticationError) for x in chain) or any(
        key in text for key in ("InvalidAuthToken", "AuthenticationError", "Unauthenticated")
    )
    if refused:
        return ClusterError(
            f"the Ray cluster at {address or 'RAY_ADDRESS'} refused this driver: its "
            "authentication token is missing or wrong (the cluster runs with "
            "RAY_AUTH_MODE=token: set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN, or "
            "RAY_AUTH_TOKEN_PATH, to the cluster's token)"
        )
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return ClusterError(f"cannot reach the Ray cluster at {address or 'RAY_ADDRESS'}: {first}")


def _shard_payload(shard: Any) -> Any:
    """What travels to the node for a shard: a path, or a reference into the object store."""
    if isinstance(shard, ray.ObjectRef):
        return shard
    if isinstance(shard, (str, os.PathLike)):
        path = os.fspath(shard)
        if isinstance(path, str) and path.startswith("shm:"):
            raise InvalidInput(f"{path}: a segment of one host cannot be a shard of a cluster job")
        return os.path.abspath(path)
    if isinstance(shard, np.ndarray) or hasattr(shard, "__arrow_c_stream__"):
        return ray.put(shard)
    if hasattr(shard, "__arrow_c_array__"):
        return ray.put(shard)
    raise InvalidInput(
        "a shard is a path, a numpy array, an Arrow table or array, or a ray.ObjectRef; "
        f"got {type(shard).__name__}"
    )


# --------------------------------------------------------------------------------------------
# Module-level conveniences over one shared Cluster.

_DEFAULT: list[Cluster] = []
_DEFAULT_LOCK = threading.Lock()


def _default() -> Cluster:
    with _DEFAULT_LOCK:
        if not _DEFAULT or _DEFAULT[0]._closed:
            _DEFAULT[:] = [Cluster()]
        return _DEFAULT[0]


def run(kernel: str, shards: Sequence[Any], **kwargs: Any) -> RunResult:
    """:meth:`Cluster.run` on a shared :class:`Cluster`, made on first use (:func:`shutdown`)."""
    return _default().run(kernel, shards, **kwargs)


def resize(
    images: str | os.PathLike | Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    size: tuple[int, int],
    **kwargs: Any,
) -> ClusterResizeResult:
    """:meth:`Cluster.resize` on the shared :class:`Cluster` of :func:`run`."""
    return _default().resize(images, out_dir, size, **kwargs)


def shutdown() -> None:
    """Close the shared :class:`Cluster` of :func:`run` and :func:`resize`, if any."""
    with _DEFAULT_LOCK:
        if _DEFAULT:
            _DEFAULT.pop().close()


# --------------------------------------------------------------------------------------------
# The command: shmframe-ray.


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return w, h


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 1,0,0.5, got {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="shmframe-ray",
        description="Run shmframe jobs over the nodes of a Ray cluster (docs/DISTRIBUTED.md).",
    )
    p.add_argument(
        "--address",
        default=os.environ.get("RAY_ADDRESS"),
        help="the cluster's head, HOST:PORT (default: $RAY_ADDRESS); 'auto' for a local one",
    )
    p.add_argument(
        "--segment-dir", help="the engines' segment directory (default: each node's own)"
    )
    p.add_argument("--timeout", type=float, help="give up after this many seconds (exit 1)")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("resize", help="resize a folder of images, in batches over the nodes")
    r.add_argument("input", help="a folder every node can read")
    r.add_argument("output", help="a folder every node can write")
    r.add_argument("--size", type=_size, required=True, help="WIDTHxHEIGHT")
    r.add_argument("--fit", choices=FITS, default="exact")
    r.add_argument("--filter", choices=FILTERS, default="lanczos3")
    r.add_argument("--format", choices=FORMATS, default="jpeg")
    r.add_argument("--quality", type=int, default=90, help="JPEG quality, 1-100")
    r.add_argument("--keep-alpha", action="store_true")
    r.add_argument("--keep-extension", action="store_true")
    r.add_argument("--recursive", action="store_true")
    r.add_argument("--max-pixels", type=int, default=100_000_000)
    r.add_argument("--batch", type=int, default=64, help="images per task (default 64)")

    k = sub.add_parser("run", help="run a row kernel over shard files, results to files")
    k.add_argument("kernel", choices=shmframe.KERNELS)
    k.add_argument("shards", nargs="+", help="files every node can read (.npy, Arrow, Parquet)")
    k.add_argument("--out-dir", required=True, help="writes OUT_DIR/<shard index>.arrow")
    k.add_argument("--query", type=_floats, help="the query vector of dot and cosine: 1,0,0")
    k.add_argument("--columns", help="the columns to read, comma separated")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The ``shmframe-ray`` command: exit 0 when all is done, 3 when some items failed.

    2 for bad usage, 1 when the cluster is unreachable, refuses this driver or the job
    cannot run.
    """
    p = _parser()
    args = p.parse_args(argv)
    if args.command == "resize" and not 1 <= args.quality <= 100:
        p.error(f"--quality must be 1-100, got {args.quality}")
    if args.command == "resize" and args.batch < 1:
        p.error(f"--batch must be at least 1, got {args.batch}")
    if not args.address:
        p.error("give the cluster's head with --address HOST:PORT (or set RAY_ADDRESS)")
    try:
        cluster = Cluster(
            args.address,
            segment_dir=args.segment_dir,
            logging_level=logging.WARNING,
            log_to_driver=False,
        )
    except ClusterError as e:
        print(f"shmframe-ray: {e}", file=sys.stderr)
        return 1
    try:
        with cluster:
            if args.command == "resize":
                res = cluster.resize(
                    args.input,
                    args.output,
                    args.size,
                    batch=args.batch,
                    format=args.format,
                    quality=args.quality,
                    fit=args.fit,
                    filter=args.filter,
                    keep_alpha=args.keep_alpha,
                    recursive=args.recursive,
                    keep_extension=args.keep_extension,
                    max_pixels=args.max_pixels,
                    timeout=args.timeout,
                )
                done = len(res.paths) - len(res.failures)
                print(
                    f"{done} of {len(res.paths)} images written to {args.output} in "
                    f"{res.seconds:.2f} s"
                    + (
                        f" ({len(res.redone)} batches redone after a node loss)"
                        if res.redone
                        else ""
                    )
                )
                for path, why in res.failures:
                    print(f"failed: {path}: {why}", file=sys.stderr)
                return 3 if res.failures else 0
            res = cluster.run(
                args.kernel,
                args.shards,
                query=args.query,
                columns=None if args.columns is None else args.columns.split(","),
                out_dir=args.out_dir,
                timeout=args.timeout,
            )
            done = len(res.results) - len(res.failures)
            print(
                f"{done} of {len(res.results)} shards written to {args.out_dir} in "
                f"{res.seconds:.2f} s"
            )
            for i, why in res.failures:
                print(f"failed: {args.shards[i]}: {why}", file=sys.stderr)
            return 3 if res.failures else 0
    except (Error, OSError) as e:
        print(f"shmframe-ray: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
