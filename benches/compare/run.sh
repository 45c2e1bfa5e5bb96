#!/usr/bin/env bash
# shmframe against numpy, multiprocessing, joblib, Ray and polars (issue 6), and its image
# batch resize against Pillow and vipsthumbnail on real photographs (image issue).
#
#   benches/compare/run.sh [--quick] [--no-images | --images-only] [compare.py options]
#
# Sets up benches/compare/.venv (once; again when a requirements file or the Pillow pin
# changes), builds shmframe in release mode and its pool benchmark, then runs compare.py,
# which prints the tables and, for a complete run, rewrites docs/BENCHMARKS.md and
# docs/img/compare-*.png. Then it makes the photo set (datasets/photos.sh: once, from Debian
# packages; installs libvips-tools for vipsthumbnail when missing) and runs images.py, which
# rewrites the image section of docs/BENCHMARKS.md and docs/img/compare-images.png.
# `--quick` (smaller matrices, each photo once) finishes in under 5 minutes for compare.py
# and a minute or two for images.py on 2 cores once the venv, the build and the photos
# exist. `--quick`, `--workers N`, `--no-docs` and `--verbose` go to both scripts, every
# other option to compare.py only. Exit status: non-zero when any method returns a wrong
# answer or a step fails (both scripts run either way).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
# Pillow for images.py, pinned here (matplotlib pulls in some Pillow; this fixes which).
pillow_pin="pillow==13.0.0"

python="${PYTHON:-}"
if [ -z "$python" ]; then
  python="$(command -v python3.11 || command -v python3)"
fi

step() { printf '==> %s\n' "$*" >&2; }

run_compare=1 run_images=1
compare_args=() images_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-images) run_images=0 ;;
    --images-only) run_compare=0 ;;
    --quick | --no-docs | --verbose) compare_args+=("$1"); images_args+=("$1") ;;
    --workers=*) compare_args+=("$1"); images_args+=("$1") ;;
    --workers) compare_args+=("$1" "${2:?--workers needs a count}"); images_args+=("$1" "$2"); shift ;;
    *) compare_args+=("$1") ;;
  esac
  shift
done

if [ ! -x "$venv/bin/python" ]; then
  step "creating $venv with $("$python" --version 2>&1)"
  "$python" -m venv "$venv"
fi
want="$( (cat "$here/requirements.txt" "$here/requirements-ray.txt"; echo "$pillow_pin") | sha256sum | cut -c1-16)"
have="$(cat "$venv/.installed" 2>/dev/null || true)"
if [ "$want" != "$have" ]; then
  step "pip install (numpy, pyarrow, joblib, polars, matplotlib, psutil, $pillow_pin; then ray)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt" "$pillow_pin"
  if "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements-ray.txt"; then
    echo "$want" > "$venv/.installed"
  else
    echo "warning: Ray could not be installed; the Ray rows will say so" >&2
  fi
fi

step "cargo build --release -p shmframe-cli"
(cd "$root" && cargo build --release --quiet -p shmframe-cli)
if [ "$run_compare" = 1 ]; then
  step "cargo bench -p shmframe --bench pool --no-run"
  (cd "$root" && cargo bench --quiet -p shmframe --bench pool --no-run)
fi

# No BLAS threads anywhere (the pools fork a single-threaded process); Ray reports nothing.
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
export RAY_USAGE_STATS_ENABLED=0
status=0
if [ "$run_compare" = 1 ]; then
  step "compare.py ${compare_args[*]}"
  "$venv/bin/python" "$here/compare.py" "${compare_args[@]}" || status=$?
fi

if [ "$run_images" = 1 ]; then
  if ! command -v vipsthumbnail >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      step "apt-get install libvips-tools (vipsthumbnail)"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libvips-tools >/dev/null
    else
      echo "warning: vipsthumbnail missing (apt-get install libvips-tools); its rows will say so" >&2
    fi
  fi
  step "datasets/photos.sh"
  "$root/datasets/photos.sh"
  step "images.py ${images_args[*]}"
  "$venv/bin/python" "$here/images.py" "${images_args[@]}" || { s=$?; [ "$status" != 0 ] || status=$s; }
fi
exit "$status"
