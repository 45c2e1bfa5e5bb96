#!/usr/bin/env bash
# The command-line issue's performance claim, measured side by side in one run:
# `shmframe run l2-norm` on a page-cached 1 GiB .npy, end to end (process start to exit),
# against the steady-state job time of the engine benchmark on the same shape.
#
#   benches/cli_e2e.sh [REPS]      (default 15 repetitions of each)
#
# Builds shmframe (release), makes datasets/bench-e2e-8Mx16.npy once (shmframe gen, seed 7,
# git-ignored), reads it once so it is page-cached, then interleaves: the engine benchmark's
# steady-state job (a warm pool, the matrix already in shared memory: `cargo bench --bench
# pool -- --rows 8388608 --cols 16 --json`) and REPS runs of the command, each timed from
# fork to exit by this script. Prints one table with medians and the ratio.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
reps="${1:-15}"
rows=8388608 cols=16
data="$root/datasets/bench-e2e-8Mx16.npy"
cd "$root"

cargo build --release -q -p shmframe
bin="$root/target/release/shmframe"
[ -f "$data" ] || "$bin" gen matrix --rows "$rows" --cols "$cols" --dtype f64 --seed 7 --out "$data" >&2
cat "$data" >/dev/null # page-cached

echo "engine benchmark, steady state ($rows x $cols f64, 1 GiB)..." >&2
pool_json="$(cargo bench -q -p shmframe --bench pool -- --rows "$rows" --cols "$cols" --json 2>/dev/null | grep '^{')"

echo "command, $reps runs..." >&2
walls=() jobs=() totals=()
"$bin" run l2-norm --input "$data" --json >/dev/null # warm-up
for _ in $(seq "$reps"); do
  t0=$(date +%s%N)
  out="$("$bin" run l2-norm --input "$data" --json)"
  t1=$(date +%s%N)
  walls+=("$(((t1 - t0) / 1000))")
  jobs+=("$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["seconds"])' "$out")")
  totals+=("$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["total_seconds"])' "$out")")
done

python3 - "$pool_json" "${walls[*]}" "${jobs[*]}" "${totals[*]}" <<'EOF'
import json, statistics as st, sys
pool = json.loads(sys.argv[1])
wall = [int(v) / 1e6 for v in sys.argv[2].split()]
job = [float(v) for v in sys.argv[3].split()]
total = [float(v) for v in sys.argv[4].split()]
steady = pool["job_s"]
print(f"`shmframe run l2-norm` on a page-cached 1 GiB .npy ({pool['rows']} x {pool['cols']} f64), "
      f"{pool['workers']} workers, {len(wall)} runs; engine benchmark on the same shape in the same run\n")
print("| measure | median | min – max | ÷ steady-state job |")
print("|---|---:|---:|---:|")
def row(name, v):
    m = st.median(v) if isinstance(v, list) else v
    lo_hi = f"{min(v)*1e3:.1f} – {max(v)*1e3:.1f} ms" if isinstance(v, list) else ""
    print(f"| {name} | {m*1e3:.1f} ms | {lo_hi} | {m/steady:.2f}× |")
row("engine benchmark: steady-state job (warm pool, matrix in shm)", steady)
row("engine benchmark: `run` call (output segment made, job, frame)", pool["run_s"])
row("command: `seconds` (its job, input mapped)", job)
row("command: `total_seconds` (process start to output)", total)
row("command: wall time, fork to exit (measured by this script)", wall)
ratio = st.median(wall) / steady
print(f"\nend to end ÷ steady-state job: **{ratio:.2f}×** (goal ≤ 1.5×)")
EOF
