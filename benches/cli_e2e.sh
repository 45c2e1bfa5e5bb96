#!/usr/bin/env bash
# The command-line issue's performance claim, measured side by side in one run:
# `shmframe run l2-norm` on a page-cached 1 GiB .npy, end to end (process start to exit),
# against the steady-state job time of the engine benchmark on the same shape.
#
#   benches/cli_e2e.sh [--doc] [REPS]      (default 15 repetitions of each)
#
# Builds shmframe (release), then runs the engine benchmark's steady-state job (a warm pool,
# the matrix already in shared memory: `cargo bench --bench pool -- --rows 8388608 --cols 16
# --json`) and REPS runs of the command on datasets/bench-e2e-8Mx16.npy (shmframe gen, seed 7,
# git-ignored), each timed from fork to exit by this script. The command is timed twice over,
# with the page cache filled two ways: by writing the file (`shmframe gen`, as `np.save`
# would), and by reading it from disk (its pages dropped with POSIX_FADV_DONTNEED, then
# `cat`). What differs is the size of the page-cache folios: 2 MiB ones are mapped with one
# page-table entry, 4 KiB ones with one each, and a fresh process maps the whole file (see
# docs/ARCHITECTURE.md). Prints one table with medians and ratios; `--doc` also writes it
# into its marked section of docs/BENCHMARKS.md (compare.py keeps that section).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
doc=""
if [ "${1:-}" = "--doc" ]; then
  doc="$root/docs/BENCHMARKS.md"
  shift
fi
reps="${1:-15}"
rows=8388608 cols=16
data="$root/datasets/bench-e2e-8Mx16.npy"
cd "$root"

cargo build --release -q -p shmframe
bin="$root/target/release/shmframe"
# Drops the file's clean pages from the page cache.
evict() {
  python3 -c 'import os,sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$1"
}

echo "engine benchmark, steady state ($rows x $cols f64, 1 GiB)..." >&2
pool_json="$(cargo bench -q -p shmframe --bench pool -- --rows "$rows" --cols "$cols" --json 2>/dev/null | grep '^{')"

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

echo "command, $reps runs, page cache filled by writing the file..." >&2
"$bin" gen matrix --rows "$rows" --cols "$cols" --dtype f64 --seed 7 --out "$data" >&2
time_command
w_walls="$walls" w_jobs="$jobs" w_totals="$totals"
echo "command, $reps runs, page cache filled by reading the file from disk..." >&2
evict "$data"
cat "$data" >/dev/null
time_command

python3 - "$pool_json" "$w_walls" "$w_jobs" "$w_totals" "$walls" "$jobs" "$totals" "$doc" "$(git rev-parse --short HEAD)" <<'EOF'
import contextlib, io, json, statistics as st, sys
from pathlib import Path
pool = json.loads(sys.argv[1])
doc, commit = sys.argv[8], sys.argv[9]
out = io.StringIO()
print = lambda *a, **k: __builtins__.print(*a, **k, file=out)  # noqa: E731
def floats(i, scale=1.0):
    return [float(v) * scale for v in sys.argv[i].split()]
steady = pool["job_s"]
runs = {"written": (floats(2, 1e-6), floats(3), floats(4)), "read": (floats(5, 1e-6), floats(6), floats(7))}
print(f"`shmframe run l2-norm` on a page-cached 1 GiB .npy ({pool['rows']} x {pool['cols']} f64), "
      f"{pool['workers']} workers, {len(runs['read'][0])} runs per page-cache state; engine benchmark "
      f"on the same shape in the same run. *written*: the page cache as writing the file leaves it "
      f"(`shmframe gen`); *read*: as reading the file from disk fills it (`cat` after "
      f"POSIX_FADV_DONTNEED)\n")
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
for cache, (wall, job, total) in runs.items():
    row(f"command, {cache}: `seconds` (its job, input mapped)", job)
    row(f"command, {cache}: `total_seconds` (process start to output)", total)
    row(f"command, {cache}: wall time, fork to exit", wall)
ratios = {c: st.median(r[0]) / steady for c, r in runs.items()}
fresh = {c: st.median(r[0]) / pool["fresh_job_s"] for c, r in runs.items()}
print(f"\nend to end ÷ steady-state job: **{ratios['written']:.2f}×** as written, "
      f"**{ratios['read']:.2f}×** read from disk (goal ≤ 1.5×); ÷ the job into a fresh output "
      f"segment (what one command's job is): {fresh['written']:.2f}× and {fresh['read']:.2f}×")
text = out.getvalue()
__builtins__.print(text, end="")
if doc:
    begin = "<!-- cli_e2e.sh: begin (generated by benches/cli_e2e.sh --doc; do not edit by hand) -->"
    end = "<!-- cli_e2e.sh: end -->"
    section = "\n".join([begin, "## The command end to end against the engine's steady state", "",
                         f"`benches/cli_e2e.sh --doc` (shmframe {commit}), as printed in this run:", "",
                         text.rstrip(), end])
    path = Path(doc)
    old = path.read_text()
    if begin in old and end in old.split(begin, 1)[1]:
        head, rest = old.split(begin, 1)
        new = head + section + rest.split(end, 1)[1]
    elif "<!-- images.py: begin" in old:
        head, rest = old.split("<!-- images.py: begin", 1)
        new = head + section + "\n\n<!-- images.py: begin" + rest
    else:
        new = old.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(new)
    __builtins__.print(f"wrote its section of {doc}")
EOF
