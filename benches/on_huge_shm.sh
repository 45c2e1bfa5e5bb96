#!/usr/bin/env bash
# Runs COMMAND with shmframe's segments on 2 MiB pages, without touching the machine:
#
#   benches/on_huge_shm.sh COMMAND [ARG...]
#   benches/on_huge_shm.sh cargo bench -p shmframe --bench pool
#
# COMMAND runs in a private mount namespace whose /dev/shm is a fresh tmpfs mounted
# huge=within_size (tmpfs's default size, half the RAM). Nothing outside the namespace sees
# the mount, and it vanishes with everything in it when COMMAND exits. /dev/shm as Docker and
# most distributions mount it is huge=never: 4 KiB pages, whose allocation, zeroing, mapping
# and freeing dominate a fresh output's cost on some machines (docs/BENCHMARKS.md measures
# both). Needs root and unshare (util-linux); exits 77 when it cannot set the namespace up.
set -euo pipefail
if [ $# -eq 0 ]; then
  echo "usage: $0 COMMAND [ARG...]" >&2
  exit 2
fi
if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null; then
  echo "$0: needs root and unshare" >&2
  exit 77
fi
# shellcheck disable=SC2016 # expanded by the inner shell
exec unshare -m --propagation private sh -c \
  'mount -t tmpfs -o huge=within_size,mode=1777 tmpfs /dev/shm || exit 77; exec "$@"' sh "$@"
