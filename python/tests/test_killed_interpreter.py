"""An interpreter SIGKILLed with an open engine leaves no segment and no process behind.

The engine's janitor (a process started with the workers) removes the dead interpreter's
segments; ``shmframe gc`` is not needed.
"""

import os
import signal
import subprocess
import sys
import time

from conftest import alive


def children_of(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid:
            out.append(int(entry))
    return sorted(out)


def test_a_sigkilled_interpreter_leaves_no_segment_and_no_process(segdir):
    code = (
        "import numpy as np, shmframe, sys, time\n"
        f"e = shmframe.Engine(workers=2, segment_dir={str(segdir)!r})\n"
        "x = np.arange(4000.0).reshape(1000, 4)\n"
        "f = e.frame(x)\n"
        # On the frame, so the job runs on the workers (a small array may be computed inline).
        "r = e.run('l2-norm', f)\n"
        "print(' '.join(map(str, e.worker_pids())))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    started: list[int] = []
    try:
        workers = [int(p) for p in child.stdout.readline().split()]
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        started = children_of(child.pid)
        janitors = [p for p in started if p not in workers]
        assert len(workers) == 2 and len(janitors) == 1, (workers, started)
        # The interpreter's own segments: control, the frame, the result.
        ours = f"shmframe.{child.pid}."
        before = [p.name for p in segdir.iterdir() if p.name.startswith(ours)]
        assert len(before) >= 3 and any(n.endswith(".ctl") for n in before), before

        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if not list(segdir.iterdir()) and not any(alive(p) for p in started):
                break
            time.sleep(0.01)
        assert list(segdir.iterdir()) == []
        assert [p for p in started if alive(p)] == []
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        for p in started:
            if alive(p):
                os.kill(p, signal.SIGKILL)
        child.stdout.close()
        child.stderr.close()
