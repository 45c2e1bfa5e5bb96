#!/usr/bin/env bash
# The command-line issue's performance claim, measured side by side in one run:
# `shmframe run l2-norm` on a page-cached 1 GiB .npy, end to end (process start to exit),
# against the steady-state job time of the engine benchmark on the same shape.
#
#   benches/cli_e2e.sh [--doc] [REPS]      (default 15 repetitions of each)
#
# Builds shmframe (release), then measures twice over ("passes"), with the segments on two
# kinds of pages:
#   1. /dev/shm as this machine mounts it (Docker's and most distributions' default is
#      huge=never: 4 KiB pages);
#   2. as root with `unshare`: through benches/on_huge_shm.sh, in a private mount namespace
#      whose /dev/shm is a fresh tmpfs mounted huge=within_size (2 MiB pages). Nothing outside
#      the namespace changes. Skipped, saying so, where it cannot be done.
# Each pass runs the engine benchmark's steady-state job (a warm pool, the matrix already in
# shared memory: `cargo bench --bench pool -- --rows 8388608 --cols 16 --json`), times the
# life of a fresh 64 MiB tmpfs object (the size of the command's output: reserve, fill, unmap,
# free), and times REPS runs of the command on datasets/bench-e2e-8Mx16.npy (shmframe gen,
# seed 7, git-ignored), each from fork to exit. The command is timed with the page cache
# filled two ways: by writing the file (`shmframe gen`, as `np.save` would), and by reading
# it from disk (its pages dropped with POSIX_FADV_DONTNEED, then `cat`). What differs is the
# size of the page-cache folios: 2 MiB ones are mapped with one page-table entry, 4 KiB ones
# with one each, and a fresh process maps the whole file (see docs/ARCHITECTURE.md). Prints
# one table per pass with medians and ratios; `--doc` also writes them into their marked
# section of docs/BENCHMARKS.md (compare.py keeps that section).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
rows=8388608 cols=16
data="$root/datasets/bench-e2e-8Mx16.npy"
bin="$root/target/release/shmframe"
cd "$root"

# Drops the file's clean pages from the page cache.
evict() {
  python3 -c 'import os,sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$1"
}

# Times REPS runs of the command; sets walls/jobs/totals (space-separated).
time_command() {
  local w=() j=() t=() out t0 t1
  "$bin" run l2-norm --input "$data" --json >/dev/null # warm-up
  for _ in $(seq "$reps"); do
    t0=$(date +%s%N)
    out="$("$bin" run l2-norm --input "$data" --json)"
    t1=$(date +%s%N)
    w+=("$(((t1 - t0) / 1000))")
    j+=("$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["seconds"])' "$out")")
    t+=("$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["total_seconds"])' "$out")")
  done
  walls="${w[*]}" jobs="${j[*]}" totals="${t[*]}"
}

# One pass under the /dev/shm this process sees: appends one JSON object to $results.
measure() {
  local label="$1" results="$2" huge pool_json lifecycle
  huge="$(python3 - <<'EOF'
# The huge= option of the mount holding /dev/shm (tmpfs's default is never).
opts = ""
for line in open("/proc/self/mountinfo"):
    f = line.split()
    if f[4] == "/dev/shm":
        opts = f[-1]  # the last mount on the point wins
print(next((o.split("=", 1)[1] for o in opts.split(",") if o.startswith("huge=")), "never"))
EOF
)"
  echo "pass: $label (/dev/shm huge=$huge)" >&2
  echo "engine benchmark, steady state ($rows x $cols f64, 1 GiB)..." >&2
  pool_json="$(cargo bench -q -p shmframe --bench pool -- --rows "$rows" --cols "$cols" --json 2>/dev/null | grep '^{')"
  echo "a fresh 64 MiB tmpfs object, $reps times..." >&2
  lifecycle="$(python3 - "$reps" <<'EOF'
# The life of a job's fresh 64 MiB output, without shmframe: create, reserve (ftruncate,
# posix_fallocate), map and fill (MADV_POPULATE_WRITE), unmap, unlink (the pages are freed).
import mmap, os, sys, time
n, times = 64 << 20, []
path = f"/dev/shm/shmframe-bench-pages.{os.getpid()}"
for _ in range(int(sys.argv[1])):
    t0 = time.perf_counter()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.ftruncate(fd, n)
        os.posix_fallocate(fd, 0, n)
        m = mmap.mmap(fd, n)
        m.madvise(23)  # MADV_POPULATE_WRITE
        m.close()
    finally:
        os.close(fd)
        os.unlink(path)
    times.append(time.perf_counter() - t0)
print(" ".join(map(str, times)))
EOF
)"
  echo "command, $reps runs, page cache filled by writing the file..." >&2
  "$bin" gen matrix --rows "$rows" --cols "$cols" --dtype f64 --seed 7 --out "$data" >&2
  time_command
  local w_walls="$walls" w_jobs="$jobs" w_totals="$totals"
  echo "command, $reps runs, page cache filled by reading the file from disk..." >&2
  evict "$data"
  cat "$data" >/dev/null
  time_command
  python3 - "$label" "$huge" "$pool_json" "$lifecycle" "$w_walls" "$w_jobs" "$w_totals" \
    "$walls" "$jobs" "$totals" >>"$results" <<'EOF'
import json, sys
a = sys.argv
floats = lambda i, scale=1.0: [float(v) * scale for v in a[i].split()]  # noqa: E731
print(json.dumps({
    "label": a[1], "huge": a[2], "pool": json.loads(a[3]), "lifecycle": floats(4),
    "written": [floats(5, 1e-6), floats(6), floats(7)],
    "read": [floats(8, 1e-6), floats(9), floats(10)],
}))
EOF
}

# The second pass re-enters this script inside the private mount namespace.
if [ "${1:-}" = "--pass" ]; then
  reps="$4"
  measure "$2" "$3"
  exit 0
fi

doc=""
if [ "${1:-}" = "--doc" ]; then
  doc="$root/docs/BENCHMARKS.md"
  shift
fi
reps="${1:-15}"
cargo build --release -q -p shmframe-cli
cargo bench -q -p shmframe --bench pool --no-run 2>/dev/null
results="$(mktemp)"
trap 'rm -f "$results"' EXIT
measure "/dev/shm as this machine mounts it" "$results"
huge_label="/dev/shm on a fresh tmpfs in a private mount namespace"
status=0
"$root/benches/on_huge_shm.sh" bash "$root/benches/cli_e2e.sh" --pass "$huge_label" "$results" "$reps" || status=$?
if [ "$status" = 77 ]; then
  echo "skipped the huge-page pass: needs root, unshare and a tmpfs mount" >&2
elif [ "$status" != 0 ]; then
  exit "$status"
fi

python3 - "$results" "$doc" "$(git rev-parse --short HEAD)" <<'EOF'
import io, json, statistics as st, sys
from pathlib import Path
passes = [json.loads(line) for line in open(sys.argv[1])]
doc, commit = sys.argv[2], sys.argv[3]
out = io.StringIO()
print = lambda *a, **k: __builtins__.print(*a, **k, file=out)  # noqa: E731
pool0 = passes[0]["pool"]
print(f"`shmframe run l2-norm` on a page-cached 1 GiB .npy ({pool0['rows']} x {pool0['cols']} f64), "
      f"{pool0['workers']} workers, {len(passes[0]['read'][0])} runs per page-cache state; engine "
      f"benchmark on the same shape in the same pass. *written*: the page cache as writing the "
      f"file leaves it (`shmframe gen`); *read*: as reading the file from disk fills it (`cat` "
      f"after POSIX_FADV_DONTNEED). One table per kind of shared-memory page, both from this run.")
summary = []
for p in passes:
    pool, steady = p["pool"], p["pool"]["job_s"]
    print(f"\n### {p['label']} (huge={p['huge']})\n")
    print("| measure | median | min – max | ÷ steady-state job |")
    print("|---|---:|---:|---:|")
    def row(name, v):
        m = st.median(v) if isinstance(v, list) else v
        lo_hi = f"{min(v)*1e3:.1f} – {max(v)*1e3:.1f} ms" if isinstance(v, list) else ""
        print(f"| {name} | {m*1e3:.1f} ms | {lo_hi} | {m/steady:.2f}× |")
    row("engine benchmark: steady-state job (warm pool, matrix in shm, recycled output)", steady)
    row("engine benchmark: `run` call (job and frame, recycled output)", pool["run_s"])
    row("engine benchmark: the job into a fresh output segment", pool["fresh_job_s"])
    row("engine benchmark: `run` call, fresh output segment (made, job, frame)", pool["fresh_run_s"])
    row("a fresh 64 MiB tmpfs object, no shmframe (create, fallocate, fill, unmap, free)", p["lifecycle"])
    for cache in ("written", "read"):
        wall, job, total = p[cache]
        row(f"command, {cache}: `seconds` (its job, input mapped)", job)
        row(f"command, {cache}: `total_seconds` (process start to output)", total)
        row(f"command, {cache}: wall time, fork to exit", wall)
    r = {c: st.median(p[c][0]) / steady for c in ("written", "read")}
    f = {c: st.median(p[c][0]) / pool["fresh_job_s"] for c in ("written", "read")}
    bw = pool["proben_s"] / steady
    print(f"\nend to end ÷ steady-state job: **{r['written']:.2f}×** as written, "
          f"**{r['read']:.2f}×** read from disk (goal ≤ 1.5×); ÷ the job into a fresh output "
          f"segment (what one command's job is): {f['written']:.2f}× and {f['read']:.2f}×. "
          f"The steady-state job reads at {bw:.0%} of the 2-thread read probe over the same "
          f"bytes ({pool['proben_s']*1e3:.1f} ms).")
    summary.append(f"huge={p['huge']}: {r['written']:.2f}× / {r['read']:.2f}×")
if len(passes) == 1:
    print("\nThe huge-page pass was skipped: it needs root, `unshare` and a tmpfs mount.")
print(f"\nIn short, end to end ÷ steady state (written / read): {'; '.join(summary)}.")
text = out.getvalue()
__builtins__.print(text, end="")
if doc:
    sys.path.insert(0, str(Path(doc).parent.parent / "benches"))
    from doc_section import write_section

    write_section(
        doc,
        "<!-- cli_e2e.sh: begin (generated by benches/cli_e2e.sh --doc; do not edit by hand) -->",
        "<!-- cli_e2e.sh: end -->",
        "## The command end to end against the engine's steady state",
        f"`benches/cli_e2e.sh --doc` (shmframe {commit}), as printed in this run:",
        text,
    )
    __builtins__.print(f"wrote its section of {doc}")
EOF
