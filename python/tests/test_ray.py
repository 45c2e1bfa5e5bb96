"""shmframe.ray on a local multi-node Ray cluster (ray.cluster_utils.Cluster), token auth on.

One cluster for the module: a head without CPUs (the driver's node, no engine) and two nodes
of one CPU each, every node with its own segment directory, the whole cluster with Ray's
token authentication on. The node-loss tests kill (or freeze) every process of one node in
the middle of a job and then add a replacement node. About 90 s on 2 cores.
"""

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

TOKEN = "5f0c0ffee5f0c0ffee5f0c0ffee5f0c0ffee5f0c0ffee5f0c0ffee5f0c0ffee0"
AUTH_ENV = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": TOKEN, "RAY_USAGE_STATS_ENABLED": "0"}
# Ray reads RAY_AUTH_MODE once, when it is imported: this driver must see token mode before
# the import (the fixture puts the environment back at the end of the module).
RAY_IMPORTED_BEFORE = "ray" in sys.modules
SAVED_ENV = {k: os.environ.get(k) for k in AUTH_ENV}


def restore_env() -> None:
    for k, v in SAVED_ENV.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


os.environ.update(AUTH_ENV)
try:
    import ray
except ImportError:
    restore_env()
    pytest.skip("Ray is not installed: pip install './python[ray]'", allow_module_level=True)
pa = pytest.importorskip("pyarrow")
PIL = pytest.importorskip("PIL")
import shmframe  # noqa: E402
import shmframe.ray as sray  # noqa: E402
from conftest import alive  # noqa: E402
from PIL import Image  # noqa: E402
from ray.cluster_utils import Cluster as RayCluster  # noqa: E402

# Short health checks (as Ray's own node-failure tests do), so a killed node is declared dead
# within a few seconds; not shorter, or two loaded cores miss beats of healthy nodes.
SYSTEM_CONFIG = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 1000,
    "health_check_timeout_ms": 1000,
    "health_check_failure_threshold": 4,
}


class Env:
    """The running cluster: Ray's Cluster object, the nodes with their segment dirs."""

    def __init__(self, rc: RayCluster, base: pathlib.Path):
        self.rc = rc
        self.base = base
        self.nodes: dict[str, tuple[object, pathlib.Path]] = {}  # node id -> (node, dir)
        self.pids: set[int] = set()  # every Ray and engine process seen, checked at the end
        self.added = 0

    def add_node(self) -> str:
        self.added += 1
        d = self.base / f"seg-{self.added}"
        d.mkdir()
        node = self.rc.add_node(num_cpus=1, env_vars={"SHMFRAME_DIR": str(d)})
        self.nodes[node.node_id] = (node, d)
        self.pids.update(node_pids(node))
        return node.node_id

    def dirs(self) -> dict[str, str]:
        return {nid: str(d) for nid, (_, d) in self.nodes.items()}


def children(pid: int) -> list[int]:
    """Every descendant of `pid` (from /proc)."""
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out


def node_pids(node) -> list[int]:
    """The node's own Ray processes and everything below its raylet (workers, engines)."""
    pids = [p.process.pid for infos in node.all_processes.values() for p in infos]
    raylet = node.all_processes[ray._private.ray_constants.PROCESS_TYPE_RAYLET][0].process.pid
    return pids + children(raylet)


def kill_node(env: Env, node_id: str) -> None:
    """A host lost: SIGSTOP then SIGKILL its raylet and every process on it, then forget it."""
    finish_off(env, *freeze_node(env, node_id))


def freeze_node(env: Env, node_id: str) -> tuple[object, set[int]]:
    """A host hung: SIGSTOP its raylet and every process on it (connections stay open)."""
    node, _ = env.nodes.pop(node_id)
    stopped: set[int] = set()
    while True:  # stop first, so no process reacts to another's death (janitor, respawns)
        new = set(node_pids(node)) - stopped
        if not new:
            break
        for pid in new:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        stopped |= new
    env.pids |= stopped
    return node, stopped


def finish_off(env: Env, node, stopped: set[int]) -> None:
    for pid in stopped:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    env.rc.remove_node(node, allow_graceful=False)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    assert not RAY_IMPORTED_BEFORE, "ray was imported before this module set RAY_AUTH_MODE"
    base = tmp_path_factory.mktemp("ray")
    rc = RayCluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,  # the driver's node: no engine there
            "include_dashboard": False,
            "_system_config": SYSTEM_CONFIG,
        },
    )
    e = Env(rc, base)
    try:
        e.pids.update(node_pids(rc.head_node))
        for _ in range(2):
            e.add_node()
        ray.init(address=rc.address)
        yield e
    finally:
        try:
            ray.shutdown()
            rc.shutdown()
        finally:
            restore_env()
    # Nothing left running, no segment in any node's directory.
    end = time.monotonic() + 20
    while any(alive(p) for p in e.pids) and time.monotonic() < end:
        time.sleep(0.2)
    assert not [p for p in e.pids if alive(p)]
    for _, d in e.nodes.values():
        assert list(d.iterdir()) == []


def engines(env: Env) -> sray.Cluster:
    """A shmframe cluster over `env`, its node actors started, checked to be where they belong."""
    c = sray.Cluster()
    infos = c.nodes()
    assert {i["node_id"]: i["segment_dir"] for i in infos} == env.dirs()
    for i in infos:
        env.pids.update([i["pid"], *i["worker_pids"]])
        # Each engine's segments (named after its process) are in its node's directory only.
        mine = f"shmframe.{i['pid']}."
        assert any(n.startswith(mine) for n in os.listdir(i["segment_dir"]))
        assert not any(n.startswith(mine) for n in os.listdir("/dev/shm"))
    return c


def only_engine_segments(c: sray.Cluster) -> None:
    """Between jobs a node's directory holds its engine's own segments and nothing else."""
    for i in c.nodes():
        left = [
            n for n in os.listdir(i["segment_dir"]) if not n.startswith(f"shmframe.{i['pid']}.")
        ]
        assert left == [], (i, left)


def closed_and_clean(c: sray.Cluster, env: Env) -> None:
    """Close `c`; every alive node's segment directory is then empty."""
    c.close()
    for _, d in env.nodes.values():
        assert list(d.iterdir()) == [], d


def arrays_of(r: pa.Array) -> np.ndarray:
    if pa.types.is_fixed_size_list(r.type):
        return r.flatten().to_numpy().reshape(len(r), r.type.list_size)
    return r.to_numpy()


def gradient(w: int, h: int, seed: int = 0) -> Image.Image:
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack(
        [x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x * y + seed * 37) % 256], axis=-1
    )
    return Image.fromarray(rgb.astype(np.uint8))


def tree(d: pathlib.Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def in_background(fn, *args, **kwargs):
    box: dict[str, object] = {}

    def target():
        try:
            box["result"] = fn(*args, **kwargs)
        except BaseException as e:  # re-raised in the test
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    return t, box


def test_row_kernels_over_shards_equal_the_single_host_engine(env, tmp_path):
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal((rows, 8)) for rows in (5000, 3001, 20000, 777, 1234)]
    arrays.append(rng.standard_normal((4096, 8)).astype(np.float32))
    files = []
    for i in (0, 1, 2, 5):
        files.append(tmp_path / f"part-{i}.npy")
        np.save(files[-1], arrays[i])
    table = pa.table({f"c{j}": arrays[4][:, j] for j in range(8)})
    shards = [files[0], files[1], files[2], arrays[3], table, files[3], ray.put(arrays[1])]
    inputs = [files[0], files[1], files[2], arrays[3], table, files[3], arrays[1]]
    query = np.linspace(-1, 1, 8)
    c = engines(env)
    try:
        with shmframe.Engine(workers=1, segment_dir=tmp_path) as one:
            pids = {i["pid"] for i in c.nodes()}
            for kernel in ("l2-norm", "cosine", "normalize"):
                q = query if kernel == "cosine" else None
                # normalize runs on one matrix column: not on the table of 8 columns.
                keep = [i for i in range(len(shards)) if kernel != "normalize" or i != 4]
                r = c.run(kernel, [shards[i] for i in keep], query=q, timeout=120)
                assert r.failures == [] and r.redone == []
                assert set(r.nodes) == set(env.nodes)  # both nodes took shards
                for got, x in zip(r.results, [inputs[i] for i in keep], strict=True):
                    want = one.run(kernel, x, query=q)
                    assert isinstance(got, pa.Array)
                    assert arrays_of(got).dtype == want.dtype
                    assert np.array_equal(arrays_of(got), want)
            # The same actors served every job.
            assert {i["pid"] for i in c.nodes()} == pids

            # Results written as Arrow IPC files instead, atomically: no temporary file left.
            out = tmp_path / "out"
            r = c.run("l2-norm", shards, out_dir=out, timeout=120)
            assert r.failures == []
            assert sorted(os.listdir(out)) == sorted(f"{i}.arrow" for i in range(len(shards)))
            for i, x in enumerate(inputs):
                assert r.results[i] == str(out / f"{i}.arrow")
                with pa.memory_map(r.results[i]) as f:
                    t = pa.ipc.open_file(f).read_all()
                assert t.column_names == ["l2_norm"]
                assert np.array_equal(t.column(0).to_numpy(), one.run("l2-norm", x))
    finally:
        closed_and_clean(c, env)


def test_a_corrupt_shard_is_reported_and_the_others_are_done(env, tmp_path):
    good = tmp_path / "good.npy"
    x = np.random.default_rng(1).standard_normal((2000, 4))
    np.save(good, x)
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"\x93NUMPY\x01\x00" + b"garbage" * 100)
    missing = tmp_path / "missing.npy"
    c = engines(env)
    try:
        r = c.run("sum", [good, bad, good, missing], timeout=120)
        assert [i for i, _ in r.failures] == [1, 3]
        why = dict(r.failures)
        # Tried on both nodes (once each), then reported with the engine's reason.
        assert why[1].startswith("InvalidInput") and "failed on 2 nodes" in why[1], why[1]
        assert why[3].startswith("NotFound") and "missing.npy" in why[3], why[3]
        assert r.results[1] is None and r.results[3] is None and r.nodes[1] is None
        for i in (0, 2):
            assert np.array_equal(r.results[i].to_numpy(), x.sum(axis=1))
    finally:
        closed_and_clean(c, env)


def test_the_module_level_run_and_resize_share_one_cluster(env, tmp_path):
    gradient(50, 40).save(tmp_path / "a.png")
    x = np.arange(12.0).reshape(4, 3)
    try:
        r = sray.run("sum", [x, x * 2])
        assert [a.to_pylist() for a in r.results] == [
            [3.0, 12.0, 21.0, 30.0],
            [6.0, 24.0, 42.0, 60.0],
        ]
        assert sray.resize([tmp_path / "a.png"], tmp_path / "out", (5, 4)).failures == []
        assert (tmp_path / "out" / "a.jpg").is_file()
        assert sray._default() is sray._default()
    finally:
        sray.shutdown()
    for _, d in env.nodes.values():
        assert list(d.iterdir()) == [], d


def test_segments_of_an_actor_ray_killed_are_swept_by_the_next_one(env):
    c = engines(env)
    c2 = None
    try:
        info = c.nodes()[0]
        mine = f"shmframe.{info['pid']}."
        # What Ray does to the actors when their driver exits: kills each with its children,
        # the engine's janitor too, so the engine's segments stay behind.
        ray.kill(c._nodes[info["node_id"]].actor)
        end = time.monotonic() + 30
        while alive(info["pid"]) and time.monotonic() < end:
            time.sleep(0.05)
        assert not alive(info["pid"])
        time.sleep(0.5)  # a janitor, were one left, has done its work by now
        left = sorted(n for n in os.listdir(info["segment_dir"]) if n.startswith(mine))
        c2 = sray.Cluster()
        new = {i["node_id"]: i for i in c2.nodes()}[info["node_id"]]
        assert set(left) <= set(new["swept"])
        assert not [n for n in os.listdir(info["segment_dir"]) if n.startswith(mine)]
    finally:
        c.close()
        if c2 is not None:
            closed_and_clean(c2, env)


def make_photos(src: pathlib.Path, n: int, size: tuple[int, int]) -> None:
    (src / "sub").mkdir(parents=True)
    for i in range(n):
        folder = src / "sub" if i % 3 == 0 else src
        img = gradient(size[0] + i, size[1] + 2 * i, seed=i)
        if i % 2:
            img.save(folder / f"p{i:03}.png")
        else:
            img.save(folder / f"p{i:03}.jpg", quality=92)
    (src / "notes.txt").write_text("not an image")


def test_resize_batches_equal_the_single_host_engine(env, tmp_path):
    src = tmp_path / "photos"
    make_photos(src, 14, (120, 90))
    c = engines(env)
    try:
        for fmt in ("png", "jpeg"):
            out, ref = tmp_path / f"out-{fmt}", tmp_path / f"ref-{fmt}"
            r = c.resize(src, out, (40, 30), batch=3, format=fmt, recursive=True, timeout=120)
            with shmframe.Engine(workers=1, segment_dir=tmp_path) as one:
                want = one.resize(src, (40, 30), out_dir=ref, format=fmt, recursive=True)
            assert r.paths == want.paths
            assert r.failures == want.failures and [p for p, _ in r.failures] == [
                str(src / "notes.txt")
            ]
            got_files, want_files = tree(out), tree(ref)
            assert got_files.keys() == want_files.keys() and len(got_files) == 14
            assert got_files == want_files  # byte for byte
            ext = {"png": "png", "jpeg": "jpg"}[fmt]
            assert sorted(r.outputs) == sorted(
                [str(out / k) for k in want_files] + [str(out / f"notes.{ext}")]
            )
        # A list of paths: outputs by file name, two that would collide are refused up front.
        with pytest.raises(shmframe.InvalidInput, match="both would be written to"):
            c.resize([src / "p001.png", src / "sub" / "p001.png"], tmp_path / "x", (8, 8))
        with pytest.raises(shmframe.InvalidInput, match="unknown fit"):
            c.resize(src, tmp_path / "x", (8, 8), fit="stretch")
    finally:
        closed_and_clean(c, env)


def replace_node_and_check_it_is_used(env: Env, c: sray.Cluster, tmp_path: pathlib.Path) -> None:
    """A new node joins: the same Cluster starts an engine there and uses it."""
    new = env.add_node()
    infos = c.nodes()
    assert {i["node_id"]: i["segment_dir"] for i in infos} == env.dirs()
    env.pids.update(p for i in infos for p in [i["pid"], *i["worker_pids"]])
    x = np.arange(40.0).reshape(10, 4)
    r = c.run("max", [x, x, x, x], timeout=120)
    assert r.failures == [] and new in r.nodes


@pytest.mark.parametrize("how", ["killed", "hung"])
def test_a_node_lost_mid_run_has_its_shards_redone(env, tmp_path, how):
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((4000, 16)) for _ in range(8)]
    files = []
    for i, x in enumerate(xs):
        files.append(tmp_path / f"s{i}.npy")
        np.save(files[-1], x)
    out = tmp_path / "out"
    c = engines(env)
    victim = sorted(env.nodes)[-1]
    victim_dir = env.nodes[victim][1]
    try:
        # Each shard takes about 4 chunks x 150 ms on its node's single worker.
        t, box = in_background(
            c.run,
            "l2-norm",
            files,
            out_dir=out,
            chunk_rows=1000,
            _test_chunk_sleep_ms=150,
            timeout=150,
        )
        end = time.monotonic() + 60
        while not (out.exists() and any(p.suffix == ".arrow" for p in out.iterdir())):
            assert time.monotonic() < end and t.is_alive(), box
            time.sleep(0.05)
        time.sleep(0.2)  # both nodes well into their next shard
        if how == "killed":  # its connections close: the driver hears of it at once
            kill_node(env, victim)
            t.join(180)
        else:  # nothing closes: only the GCS's health checks tell (4 x 1 s here)
            frozen = freeze_node(env, victim)
            t.join(180)
            finish_off(env, *frozen)
        assert not t.is_alive()
        if "error" in box:
            raise box["error"]
        r = box["result"]
        assert r.failures == []
        assert r.redone, "the victim had a shard in flight: it must have been redone"
        assert victim not in [r.nodes[i] for i in r.redone]
        # Complete and exact; every file once, none partial, no temporary file left.
        assert sorted(os.listdir(out)) == sorted(f"{i}.arrow" for i in range(len(files)))
        with shmframe.Engine(workers=1, segment_dir=tmp_path) as one:
            for i, x in enumerate(xs):
                with pa.memory_map(str(out / f"{i}.arrow")) as f:
                    got = pa.ipc.open_file(f).read_all().column(0).to_numpy()
                assert np.array_equal(got, one.run("l2-norm", x))
        only_engine_segments(c)
        replace_node_and_check_it_is_used(env, c, tmp_path)
    finally:
        closed_and_clean(c, env)
    # The lost host's memory went with it; here its directory is just a folder to clear.
    shutil.rmtree(victim_dir)


def test_a_node_killed_mid_resize_has_its_batches_redone(env, tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    # PNGs (no reduced-scale decoding): about 0.1 s each in the dev build CI tests.
    gradient(400, 300, seed=5).save(src / "p000.png")
    data = (src / "p000.png").read_bytes()
    for i in range(1, 40):
        (src / f"p{i:03}.png").write_bytes(data)
    (src / "p030.png").write_bytes(data[: len(data) // 3])  # truncated: fails alone
    ref = tmp_path / "ref"
    with shmframe.Engine(workers=2, segment_dir=tmp_path) as one:
        want = one.resize(src, (64, 48), out_dir=ref, format="jpeg")
    assert [p for p, _ in want.failures] == [str(src / "p030.png")]
    out = tmp_path / "out"
    c = engines(env)
    victim = sorted(env.nodes)[-1]
    victim_dir = env.nodes[victim][1]
    try:
        t, box = in_background(c.resize, src, out, (64, 48), batch=4, timeout=150)
        end = time.monotonic() + 60
        while not (out.exists() and len(list(out.glob("*.jpg"))) >= 5):
            assert time.monotonic() < end and t.is_alive(), box
            time.sleep(0.02)
        kill_node(env, victim)
        t.join(180)
        assert not t.is_alive()
        if "error" in box:
            raise box["error"]
        r = box["result"]
        assert r.redone, "the victim had a batch in flight: it must have been redone"
        assert r.failures == want.failures
        # Every file once and whole (equal to the single host's), no temporary file left.
        assert tree(out) == tree(ref)
        assert not [p for p in out.iterdir() if not p.name.endswith(".jpg")]
        only_engine_segments(c)
        replace_node_and_check_it_is_used(env, c, tmp_path)
    finally:
        closed_and_clean(c, env)
    shutil.rmtree(victim_dir)


def driver(env: Env, code, extra_env: dict[str, str], home: pathlib.Path, *args: str, cmd=None):
    """Run `code` (or `cmd`) with `args` as a separate driver; its completed process."""
    e = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RAY_AUTH") and k not in ("RAY_ADDRESS",)
    }
    # A refused driver retries for about 20 s by default (Ray 2.60); 2 tries are enough here.
    e.update(
        HOME=str(home),
        RAY_USAGE_STATS_ENABLED="0",
        RAY_gcs_server_port_wait_time_s="2",
        **extra_env,
    )
    cmd = [*(cmd or [sys.executable, "-c", code]), *args]
    return subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=180)


CONNECT = (
    "import sys, ray\n"
    "ray.init(address=sys.argv[1], logging_level='ERROR')\n"
    "print('answer', ray.get(ray.remote(num_cpus=0)(lambda: 42).remote()))\n"
)
COMMAND = "import sys; from shmframe.ray import main; sys.exit(main(sys.argv[1:]))"


def test_token_authentication_refuses_a_driver_without_the_token(env, tmp_path):
    home = tmp_path / "home"  # no ~/.ray/auth_token to fall back on
    home.mkdir()
    addr = env.rc.address
    refused = [
        ("no token, auth mode unset", {}),
        ("token mode, no token", {"RAY_AUTH_MODE": "token"}),
        ("a wrong token", {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 64}),
    ]
    for what, extra in refused:
        p = driver(env, CONNECT, extra, home, addr)
        assert p.returncode != 0, (what, p.stdout, p.stderr)
        assert "answer" not in p.stdout
        assert "auth" in (p.stdout + p.stderr).lower(), (what, p.stderr[-2000:])
    p = driver(env, CONNECT, {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": TOKEN}, home, addr)
    assert p.returncode == 0 and "answer 42" in p.stdout, p.stderr[-2000:]
    assert not (home / ".ray").exists() or not (home / ".ray" / "auth_token").exists()


def test_the_command(env, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    src = tmp_path / "photos"
    src.mkdir()
    for i in range(5):
        gradient(60 + i, 40, seed=i).save(src / f"a{i}.png")
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    out = tmp_path / "out"
    args = ["--address", env.rc.address, "resize", str(src), str(out), "--size", "16x12"]
    token = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": TOKEN}
    # The console script (the package's [project.scripts] entry).
    script = pathlib.Path(sys.executable).parent / "shmframe-ray"
    assert script.is_file(), "reinstall the package: its shmframe-ray script is missing"
    p = driver(env, None, token, home, *args, "--format", "png", "--batch", "2", cmd=[script])
    assert p.returncode == 3, p.stderr[-3000:]  # one image failed
    assert "5 of 6 images" in p.stdout and "broken.jpg" in p.stderr
    assert sorted(os.listdir(out)) == [f"a{i}.png" for i in range(5)]

    x = np.ones((100, 3))
    np.save(tmp_path / "x.npy", x)
    runs = ["--address", env.rc.address, "run", "l1-norm", str(tmp_path / "x.npy")]
    p = driver(env, COMMAND, token, home, *runs, "--out-dir", str(tmp_path / "r"))
    assert p.returncode == 0, p.stderr[-3000:]
    with pa.memory_map(str(tmp_path / "r" / "0.arrow")) as f:
        assert pa.ipc.open_file(f).read_all().column(0).to_pylist() == [3.0] * 100

    # Without the token: refused, with a message that says so.
    p = driver(env, COMMAND, {}, home, *runs, "--out-dir", str(tmp_path / "r2"))
    assert p.returncode == 1, (p.stdout, p.stderr[-3000:])
    assert "refused this driver" in p.stderr and "RAY_AUTH_TOKEN" in p.stderr, p.stderr[-3000:]
    assert not (tmp_path / "r2").exists()
    # Nobody there.
    nobody = ["--address", "127.0.0.1:9", *runs[2:], "--out-dir", str(tmp_path / "r3")]
    p = driver(env, COMMAND, token, home, *nobody)
    assert p.returncode == 1 and "cannot reach the Ray cluster" in p.stderr, p.stderr[-3000:]

    # Bad usage.
    for bad in (
        ["resize", str(src), str(out), "--size", "0x3", "--address", "x:1"],
        ["resize", str(src), str(out), "--address", "x:1"],
        ["run", "no-such-kernel", "x.npy", "--out-dir", "o", "--address", "x:1"],
    ):
        with pytest.raises(SystemExit) as e:
            sray.main(bad)
        assert e.value.code == 2
