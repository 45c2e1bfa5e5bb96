#!/usr/bin/env bash
# The Python package (issue 17) against the Rust API, numpy, multiprocessing, joblib and Ray:
#
#   benches/compare/package.sh [--quick] [--no-docs]
#
# Uses benches/compare/.venv (made by run.sh; made here the same way when missing), installs
# the package into it (`pip install ./python`, a release build: several minutes the first
# time), builds the command and the `api_norms` bench, makes the photo set, then runs
# package.py. As root with unshare it first runs the first-call section once more with
# /dev/shm on 2 MiB pages (on_huge_shm.sh: a private mount namespace, nothing outside
# changes) and merges that table in. --quick takes about 5 minutes once everything is built.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
step() { printf '==> %s\n' "$*" >&2; }

if [ ! -x "$venv/bin/python" ]; then
  step "creating $venv"
  "$(command -v python3.11 || command -v python3)" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt"
  "$venv/bin/python" -m pip install --quiet -r "$here/requirements-ray.txt" ||
    echo "warning: Ray could not be installed; its rows will say so" >&2
fi
step "pip install ./python (release build)"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$root/python"
step "cargo build --release -p shmframe-cli; cargo bench --bench api_norms --no-run"
(cd "$root" && cargo build --release --quiet -p shmframe-cli &&
  cargo bench --quiet -p shmframe --bench api_norms --no-run)
step "datasets/photos.sh"
"$root/datasets/photos.sh"

export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 RAY_USAGE_STATS_ENABLED=0
huge="$(mktemp --suffix=.json)"
trap 'rm -f "$huge"' EXIT
quick=()
for a in "$@"; do [ "$a" = --quick ] && quick=(--quick); done
step "first-call section on 2 MiB pages (benches/on_huge_shm.sh)"
"$root/benches/on_huge_shm.sh" "$venv/bin/python" "$here/package.py" "${quick[@]}" \
  --only first --json "$huge" || echo "note: no huge-page run (needs root and unshare)" >&2
step "package.py $*"
"$venv/bin/python" "$here/package.py" --merge-huge "$huge" "$@"
