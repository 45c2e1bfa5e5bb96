#!/usr/bin/env bash
# The distributed image table (issue 18) on this machine: one process, a Pool, the engine and
# shmframe.ray on a local Ray cluster of 1 and 2 one-CPU nodes, side by side:
#
#   benches/compare/distributed.sh [--quick] [--no-docs]
#
# Uses benches/compare/.venv (run.sh or package.sh make it) with the package installed
# (`pip install './python[ray]'`, release) and the photo set (datasets/photos.sh), from which
# distributed.py cuts its 1000 images once (datasets/photos-1000/). About 6 minutes on 2
# cores; --quick (200 images) about 2.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
  echo "$venv is missing: run benches/compare/package.sh (or run.sh) once first" >&2
  exit 2
fi
printf '==> %s\n' "pip install './python[ray]' (release build)" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$root/python[ray]"
"$root/datasets/photos.sh"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 RAY_USAGE_STATS_ENABLED=0
"$venv/bin/python" "$here/distributed.py" "$@"
