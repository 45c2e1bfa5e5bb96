#!/usr/bin/env bash
# shmframe against numpy, multiprocessing, joblib, Ray and polars (issue 6).
#
#   benches/compare/run.sh [--quick] [compare.py options]
#
# Sets up benches/compare/.venv (once; again when a requirements file changes), builds
# shmframe in release mode and its pool benchmark, then runs compare.py, which prints the
# tables and, for a complete run, rewrites docs/BENCHMARKS.md and docs/img/compare-*.png.
# `--quick` (smaller matrices) finishes in under 5 minutes on 2 cores once the venv and the
# build exist. Exit status: non-zero when any method returns a wrong answer or a step fails.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"

python="${PYTHON:-}"
if [ -z "$python" ]; then
  python="$(command -v python3.11 || command -v python3)"
fi

step() { printf '==> %s\n' "$*" >&2; }

if [ ! -x "$venv/bin/python" ]; then
  step "creating $venv with $("$python" --version 2>&1)"
  "$python" -m venv "$venv"
fi
want="$(cat "$here/requirements.txt" "$here/requirements-ray.txt" | sha256sum | cut -c1-16)"
have="$(cat "$venv/.installed" 2>/dev/null || true)"
if [ "$want" != "$have" ]; then
  step "pip install (numpy, pyarrow, joblib, polars, matplotlib, psutil; then ray)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  if "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements-ray.txt"; then
    echo "$want" > "$venv/.installed"
  else
    echo "warning: Ray could not be installed; the Ray rows will say so" >&2
  fi
fi

step "cargo build --release -p shmframe"
(cd "$root" && cargo build --release --quiet -p shmframe)
step "cargo bench -p shmframe --bench pool --no-run"
(cd "$root" && cargo bench --quiet -p shmframe --bench pool --no-run)

# No BLAS threads anywhere (the pools fork a single-threaded process); Ray reports nothing.
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
export RAY_USAGE_STATS_ENABLED=0
step "compare.py $*"
exec "$venv/bin/python" "$here/compare.py" "$@"
