#!/usr/bin/env bash
# A/B: this checkout against another revision, interleaved in one run, so a change's effect
# on speed is read as ratios measured side by side (absolute times drift on a shared machine).
#
#   benches/ab.sh [--doc] BASE_REV [PAIRS] [REPS]   (default 6 pairs, 15 command runs per side)
#
# Builds BASE_REV in a worktree under $TMPDIR (its own target directory), and both trees'
# release command and pool benchmark. Then PAIRS times, alternating which side goes first:
#   - the pool benchmark (`cargo bench --bench pool -- --json`: 256 MiB f64, 15 reps), and
#   - REPS runs of `shmframe run l2-norm` on the 1 GiB datasets/bench-e2e-8Mx16.npy (as in
#     benches/cli_e2e.sh), each timed from fork to exit, plus the job time it reports.
# Prints, per figure, the median over all pairs of each side, the ratio new/base of those
# medians, and the range of the per-pair ratios (the noise). Nothing of BASE_REV is kept.
# `--doc` also writes the table into its marked section of docs/BENCHMARKS.md (compare.py
# keeps that section). AB_BASE_TARGET=DIR reuses a target directory for BASE_REV's build.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
doc=""
if [ "${1:-}" = "--doc" ]; then
  doc="$root/docs/BENCHMARKS.md"
  shift
fi
base_rev="${1:?usage: benches/ab.sh [--doc] BASE_REV [PAIRS] [REPS]}"
pairs="${2:-6}"
reps="${3:-15}"
work="$(mktemp -d "${TMPDIR:-/tmp}/shmframe-ab.XXXXXX")"
base="$work/base"
cleanup() {
  git -C "$root" worktree remove --force "$base" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# The package that builds the `shmframe` binary: `shmframe-cli` since the core redesign.
bin_pkg() { if [ -f "$1/cli/Cargo.toml" ]; then echo shmframe-cli; else echo shmframe; fi; }

git -C "$root" worktree add --detach "$base" "$base_rev" >/dev/null
echo "building $base_rev and this checkout (release)..." >&2
base_target="${AB_BASE_TARGET:-$work/target}"
(cd "$base" && CARGO_TARGET_DIR="$base_target" cargo build --release -q -p "$(bin_pkg "$base")" &&
  CARGO_TARGET_DIR="$base_target" cargo bench -q -p shmframe --bench pool --no-run 2>/dev/null)
(cd "$root" && cargo build --release -q -p "$(bin_pkg "$root")" &&
  cargo bench -q -p shmframe --bench pool --no-run 2>/dev/null)

data="$root/datasets/bench-e2e-8Mx16.npy"
if [ ! -f "$data" ]; then
  "$root/target/release/shmframe" gen matrix --rows 8388608 --cols 16 --dtype f64 --seed 7 \
    --out "$data" >&2
fi

results="$work/results.jsonl"
# side NAME DIR TARGET: one pool benchmark and REPS command runs; one JSON line.
side() {
  local name="$1" dir="$2" target="$3" pool walls=() jobs=() t0 t1 out
  pool="$(cd "$dir" && CARGO_TARGET_DIR="$target" cargo bench -q -p shmframe --bench pool -- --json 2>/dev/null | grep '^{')"
  "$target/release/shmframe" run l2-norm --input "$data" --json >/dev/null # warm-up
  for _ in $(seq "$reps"); do
    t0=$(date +%s%N)
    out="$("$target/release/shmframe" run l2-norm --input "$data" --json)"
    t1=$(date +%s%N)
    walls+=("$(((t1 - t0) / 1000))")
    jobs+=("$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["seconds"])' "$out")")
  done
  python3 - "$name" "$pool" "${walls[*]}" "${jobs[*]}" >>"$results" <<'EOF'
import json, sys
print(json.dumps({"side": sys.argv[1], "pool": json.loads(sys.argv[2]),
                  "walls": [float(v) * 1e-6 for v in sys.argv[3].split()],
                  "jobs": [float(v) for v in sys.argv[4].split()]}))
EOF
}

for p in $(seq "$pairs"); do
  echo "pair $p of $pairs..." >&2
  if [ $((p % 2)) -eq 1 ]; then
    side base "$base" "$base_target"
    side new "$root" "$root/target"
  else
    side new "$root" "$root/target"
    side base "$base" "$base_target"
  fi
done

head="$(git -C "$root" rev-parse --short HEAD)"
git -C "$root" diff --quiet HEAD -- . ':!docs' || head="$head+uncommitted"
python3 - "$results" "$base_rev" "$head" "$pairs" "$reps" "$doc" <<'EOF'
import io, json, statistics as st, sys
from pathlib import Path
rows = [json.loads(l) for l in open(sys.argv[1])]
base_rev, head, pairs, reps, doc = sys.argv[2:7]
out = io.StringIO()
print = lambda *a: __builtins__.print(*a, file=out)  # noqa: E731
figures = [
    ("pool: job, recycled output (ms)", lambda r: [r["pool"]["job_s"] * 1e3]),
    ("pool: run call, recycled output (ms)", lambda r: [r["pool"]["run_s"] * 1e3]),
    ("pool: job, fresh output (ms)", lambda r: [r["pool"]["fresh_job_s"] * 1e3]),
    ("pool: run call, fresh output (ms)", lambda r: [r["pool"]["fresh_run_s"] * 1e3]),
    ("pool: 2-thread read probe (ms)", lambda r: [r["pool"]["proben_s"] * 1e3]),
    ("pool: empty-job round trip, median (us)", lambda r: [r["pool"]["rt_median_s"] * 1e6]),
    ("pool: pool start (ms)", lambda r: [r["pool"]["start_s"] * 1e3]),
    ("command on 1 GiB: fork to exit (ms)", lambda r: [w * 1e3 for w in r["walls"]]),
    ("command on 1 GiB: job it reports (ms)", lambda r: [j * 1e3 for j in r["jobs"]]),
]
by = {"base": [r for r in rows if r["side"] == "base"], "new": [r for r in rows if r["side"] == "new"]}
print(f"A/B, {pairs} interleaved pairs ({reps} command runs per side per pair): "
      f"base {base_rev}, new {head}")
print()
print("| figure | base median | new median | new / base | per-pair ratio range |")
print("|---|---:|---:|---:|---:|")
for name, get in figures:
    b = [v for r in by["base"] for v in get(r)]
    n = [v for r in by["new"] for v in get(r)]
    per = [st.median(get(y)) / st.median(get(x)) for x, y in zip(by["base"], by["new"])]
    print(f"| {name} | {st.median(b):.3f} | {st.median(n):.3f} | {st.median(n) / st.median(b):.3f} "
          f"| {min(per):.3f}-{max(per):.3f} |")
text = out.getvalue()
__builtins__.print(text, end="")
if doc:
    sys.path.insert(0, str(Path(doc).parent.parent / "benches"))
    from doc_section import write_section

    write_section(
        doc,
        "<!-- ab.sh: begin (generated by benches/ab.sh --doc; do not edit by hand) -->",
        "<!-- ab.sh: end -->",
        "## A/B: the last measured change against the revision before it",
        f"`benches/ab.sh --doc {base_rev} {pairs} {reps}`, as printed in this run:",
        text,
    )
    __builtins__.print(f"wrote its section of {doc}")
EOF
